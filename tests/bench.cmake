# The benchmark runs end to end (small shapes) and prints every row. Its
# timings are never pass/fail: only that it completes and reports.
add_test(NAME bench_quick COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/bench_quick.sh ${SV_MPIEXEC} ${SV_MPI_FLAGS} -- $<TARGET_FILE:saeval>)
set_tests_properties(bench_quick PROPERTIES TIMEOUT 300)
