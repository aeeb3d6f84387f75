# Sweeps at scale (issue 15): result heads for resume/merge, the plan
# command against an independent recomputation, feature_metrics.h5.
sv_test_exe(test_scale test_scale.c)
add_test(NAME scale_result_head
         COMMAND test_scale head ${SV_DEMO}/results/topk_k64_w1024__in_sample.json ${CMAKE_CURRENT_BINARY_DIR}/scale_head)
set_tests_properties(scale_result_head PROPERTIES FIXTURES_REQUIRED demo_results)
add_test(NAME scale_plan
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/scale_plan.sh $<TARGET_FILE:saeval> ${SV_DEMO}/config.json
                 ${CMAKE_CURRENT_BINARY_DIR}/scale_plan)
set_tests_properties(scale_plan PROPERTIES FIXTURES_REQUIRED demo_data)
add_test(NAME scale_h5_values COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/scale_h5.py ${SV_DEMO}/results 18)
set_tests_properties(scale_h5_values PROPERTIES FIXTURES_REQUIRED demo_results)
add_test(NAME scale_weights_once
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/scale_weights.sh $<TARGET_FILE:saeval> ${SV_MPIEXEC} "${SV_MPI_FLAGS_SH}"
                 ${SV_DEMO}/config.json ${CMAKE_CURRENT_BINARY_DIR}/scale_weights)
set_tests_properties(scale_weights_once PROPERTIES FIXTURES_REQUIRED demo_data)
# The forward pass's buffers against the plan's count, measured by glibc.
sv_test_exe(test_fwdmem test_fwdmem.c)
add_test(NAME scale_fwd_mem COMMAND test_fwdmem)
# The two decode orders: bit-identical, and against a double loop.
sv_test_exe(test_decode test_decode.c)
add_test(NAME forward_decode_orders COMMAND test_decode)
