# Structure of the code base: the module include graph has no cycle (with a
# self-test on a planted cycle), and CSV cells are quoted.
add_test(NAME include_graph_acyclic COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/include_graph.sh ${CMAKE_SOURCE_DIR})
add_test(NAME include_graph_selftest COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/include_graph.sh --selftest)
sv_test_exe(test_csv test_csv.c)
add_test(NAME csv_cells COMMAND test_csv)
add_test(NAME csv_comma_sae_id
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/csv_comma.sh ${CMAKE_CURRENT_BINARY_DIR}/csv_comma
                 ${CMAKE_CURRENT_BINARY_DIR}/demo ${SV_MPIEXEC} $<TARGET_FILE:saeval> $<TARGET_FILE:test_csv>)
set_tests_properties(csv_comma_sae_id PROPERTIES FIXTURES_REQUIRED demo_data TIMEOUT 300)
sv_test_exe(test_metrics test_metrics.c)
add_test(NAME metrics_table COMMAND test_metrics)
# printf-free number formatting, byte for byte against snprintf.
sv_test_exe(test_numfmt test_numfmt.c)
add_test(NAME numfmt_vs_printf COMMAND test_numfmt)
