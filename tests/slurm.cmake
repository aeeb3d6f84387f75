# SLURM job scripts (jobs/) on a real single-node Slurm cluster that the test
# starts itself from Debian's slurm-wlm + munge (installed with apt-get if
# missing; needs root).  Array + merge, the sweep job, requeue on USR1,
# scancel + resubmit and a no-op resubmission are compared byte for byte with
# a direct `mpirun -np 2 saeval run`.  Fails (never skips) if Slurm cannot
# start.  RUN_SERIAL: it uses both cores and fixed local ports.
add_test(NAME slurm_jobs
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/slurm_test.sh $<TARGET_FILE:saeval> ${CMAKE_CURRENT_BINARY_DIR}/slurm)
set_tests_properties(slurm_jobs PROPERTIES TIMEOUT 900 RUN_SERIAL TRUE LABELS slurm)
