sv_test_exe(test_reduce test_reduce.c)
foreach(np 1 2 3 4)
  add_test(NAME reduce_tree_np${np}
           COMMAND ${SV_MPIEXEC} ${SV_MPI_FLAGS} -np ${np} $<TARGET_FILE:test_reduce>)
endforeach()
