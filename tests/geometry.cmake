sv_test_exe(test_geometry test_geometry.c)
foreach(np 1 2 3 4)
  add_test(NAME geometry_np${np}
           COMMAND ${SV_MPIEXEC} ${SV_MPI_FLAGS} -np ${np} $<TARGET_FILE:test_geometry>)
endforeach()
# Scale demonstration, run by hand (not a test): see README "Weight geometry".
sv_test_exe(geometry_big geometry_big.c)
