sv_test_exe(test_store test_store.c)
target_link_libraries(test_store PRIVATE saevalapp) # sv_info_print
foreach(np 1 3)
  add_test(NAME store_np${np}
           COMMAND ${SV_MPIEXEC} ${SV_MPI_FLAGS} -np ${np} $<TARGET_FILE:test_store>)
  set_tests_properties(store_np${np} PROPERTIES TIMEOUT 120)
endforeach()
