sv_test_exe(test_synth test_synth.c)
add_test(NAME synth_deterministic
         COMMAND ${SV_MPIEXEC} ${SV_MPI_FLAGS} -np 1 $<TARGET_FILE:test_synth>)
