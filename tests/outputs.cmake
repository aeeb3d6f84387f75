# The demo, end to end: synth, a 2-rank run, then the outputs checked by
# rules recomputed in test_outputs.c. Also runs the example configs.
sv_test_exe(test_outputs test_outputs.c)
set(SV_DEMO ${CMAKE_CURRENT_BINARY_DIR}/demo)
add_test(NAME demo_synth COMMAND ${CMAKE_COMMAND} -E env SAEVAL_THREADS=1
         sh -c "rm -rf '${SV_DEMO}' && '$<TARGET_FILE:saeval>' synth '${SV_DEMO}'")
set_tests_properties(demo_synth PROPERTIES FIXTURES_SETUP demo_data)
add_test(NAME demo_run_np2
         COMMAND ${SV_MPIEXEC} ${SV_MPI_FLAGS} -np 2 $<TARGET_FILE:saeval> run ${SV_DEMO}/config.json --quiet)
set_tests_properties(demo_run_np2 PROPERTIES FIXTURES_REQUIRED demo_data FIXTURES_SETUP demo_results)
add_test(NAME demo_outputs COMMAND test_outputs ${SV_DEMO}/results 6 3 --demo)
set_tests_properties(demo_outputs PROPERTIES FIXTURES_REQUIRED demo_results)

# Block size never changes results: the demo's units (~1450 tokens) span
# two 1024-row blocks by default and one with block_tokens 2048.
string(REPLACE ";" " " SV_MPI_FLAGS_SH "${SV_MPI_FLAGS}")
add_test(NAME demo_run_block2048
         COMMAND sh -c "sed 's/\"precision\":/\"block_tokens\": 2048, \"precision\":/' '${SV_DEMO}/config.json' > '${SV_DEMO}/config_block2048.json' && grep -q block_tokens '${SV_DEMO}/config_block2048.json' && ${SV_MPIEXEC} ${SV_MPI_FLAGS_SH} -np 2 '$<TARGET_FILE:saeval>' run '${SV_DEMO}/config_block2048.json' --output-dir '${SV_DEMO}/results_block2048' --quiet --no-table")
set_tests_properties(demo_run_block2048 PROPERTIES FIXTURES_REQUIRED demo_data FIXTURES_SETUP demo_block2048)
add_test(NAME demo_block2048_identical
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/e2e_cmp.sh ${SV_DEMO}/results ${SV_DEMO}/results_block2048)
set_tests_properties(demo_block2048_identical PROPERTIES FIXTURES_REQUIRED "demo_results;demo_block2048")
