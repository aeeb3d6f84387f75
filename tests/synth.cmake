sv_test_exe(test_synth test_synth.c)
target_link_libraries(test_synth PRIVATE saevalapp) # sv_synth
add_test(NAME synth_deterministic
         COMMAND ${SV_MPIEXEC} ${SV_MPI_FLAGS} -np 1 $<TARGET_FILE:test_synth>)
