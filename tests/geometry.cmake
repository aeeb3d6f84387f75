sv_test_exe(test_geometry test_geometry.c)
foreach(np 1 2 3 4)
  add_test(NAME geometry_np${np}
           COMMAND ${SV_MPIEXEC} ${SV_MPI_FLAGS} -np ${np} $<TARGET_FILE:test_geometry>)
endforeach()
