# Native transformer forward pass against transformers 4.48's outputs
# (tests/data/lm, see its README), in float and double, 1 and 2 threads.
sv_test_exe(test_model test_model.c)
sv_test_exe(test_model_errors test_model_errors.c)
set(SV_LM_DATA ${CMAKE_CURRENT_SOURCE_DIR}/data/lm)
foreach(model gpt2 pythia gemma2 gemma2_bf16 llama3 llama3_rope_scaled)
  foreach(prec 32 64)
    add_test(NAME model_${model}_f${prec} COMMAND test_model ${SV_LM_DATA} ${model} ${prec} 1)
    set_tests_properties(model_${model}_f${prec} PROPERTIES TIMEOUT 120)
  endforeach()
endforeach()
add_test(NAME model_gemma2_f32_threads2 COMMAND test_model ${SV_LM_DATA} gemma2 32 2)
add_test(NAME model_errors COMMAND test_model_errors ${SV_LM_DATA} ${CMAKE_CURRENT_BINARY_DIR}/model_errors_tmp)
set_tests_properties(model_gemma2_f32_threads2 model_errors PROPERTIES TIMEOUT 120)
sv_test_exe(test_downstream test_downstream.c ref_lm.c)
add_test(NAME model_downstream COMMAND test_downstream ${SV_LM_DATA} ${CMAKE_CURRENT_BINARY_DIR}/downstream_tmp)
set_tests_properties(model_downstream PROPERTIES TIMEOUT 120)
# saeval collect: 1, 3 and 4 ranks, then the stores compared byte for byte.
sv_test_exe(test_collect test_collect.c)
target_link_libraries(test_collect PRIVATE saevalapp) # sv_cli_prepare_env
set(SV_COLLECT_OUT ${CMAKE_CURRENT_BINARY_DIR}/collect_out)
foreach(np 1 3 4)
  add_test(NAME model_collect_np${np}
           COMMAND ${SV_MPIEXEC} ${SV_MPI_FLAGS} -np ${np} $<TARGET_FILE:test_collect> ${SV_LM_DATA} ${SV_COLLECT_OUT} np${np})
  set_tests_properties(model_collect_np${np} PROPERTIES TIMEOUT 180 FIXTURES_SETUP collect_np${np})
endforeach()
foreach(np 3 4)
  foreach(f h0 h1 h2 bf16)
    add_test(NAME model_collect_identical_np${np}_${f}
             COMMAND ${CMAKE_COMMAND} -E compare_files ${SV_COLLECT_OUT}/np1_${f}.h5 ${SV_COLLECT_OUT}/np${np}_${f}.h5)
    set_tests_properties(model_collect_identical_np${np}_${f} PROPERTIES FIXTURES_REQUIRED "collect_np1;collect_np${np}")
  endforeach()
endforeach()
sv_test_exe(test_ds_e2e test_ds_e2e.c ref.c ref_lm.c)
add_test(NAME model_downstream_e2e COMMAND test_ds_e2e ${SV_LM_DATA} ${CMAKE_CURRENT_BINARY_DIR}/ds_e2e_tmp)
set_tests_properties(model_downstream_e2e PROPERTIES TIMEOUT 120)
sv_test_exe(test_model_variants test_model_variants.c ref_lm.c)
add_test(NAME model_variants COMMAND test_model_variants ${SV_LM_DATA} ${CMAKE_CURRENT_BINARY_DIR}/variants_tmp)
set_tests_properties(model_variants PROPERTIES TIMEOUT 120)
# The command line: 2 ranks, one hook; the store equals the library's (1 rank, three hooks).
add_test(NAME model_collect_cli_np2
         COMMAND ${SV_MPIEXEC} ${SV_MPI_FLAGS} -np 2 $<TARGET_FILE:saeval> collect --model ${SV_LM_DATA}/gpt2
                 --tokens ${SV_COLLECT_OUT}/np1_tokens.h5 --hook blocks.1.hook_resid_pre=${SV_COLLECT_OUT}/cli_np2_h0.h5
                 --model-name gpt2-fixture --dataset-name fixture-tokens --force)
set_tests_properties(model_collect_cli_np2 PROPERTIES TIMEOUT 120 FIXTURES_REQUIRED collect_np1 FIXTURES_SETUP collect_cli)
add_test(NAME model_collect_cli_identical
         COMMAND ${CMAKE_COMMAND} -E compare_files ${SV_COLLECT_OUT}/np1_h0.h5 ${SV_COLLECT_OUT}/cli_np2_h0.h5)
set_tests_properties(model_collect_cli_identical PROPERTIES FIXTURES_REQUIRED "collect_np1;collect_cli")
add_test(NAME model_collect_cli_bad_option COMMAND $<TARGET_FILE:saeval> collect --model x --bogus)
set_tests_properties(model_collect_cli_bad_option PROPERTIES WILL_FAIL TRUE)
add_test(NAME model_collect_cli_bad_hook
         COMMAND ${SV_MPIEXEC} ${SV_MPI_FLAGS} -np 2 $<TARGET_FILE:saeval> collect --model ${SV_LM_DATA}/gpt2
                 --tokens ${SV_COLLECT_OUT}/np1_tokens.h5 --hook blocks.9.hook_resid_pre=${SV_COLLECT_OUT}/never.h5)
set_tests_properties(model_collect_cli_bad_hook PROPERTIES FIXTURES_REQUIRED collect_np1
                     PASS_REGULAR_EXPRESSION "beyond the model's last layer")
# saeval run with a model: the downstream metrics through the evaluator, on
# the collected GPT-2 store (np1_h0.h5: blocks.1.hook_resid_pre, BOS masked)
# and the two SAEs of test_ds_e2e; result files byte-identical for 1-4
# ranks and 1-2 threads.
set(SV_DS_RUN ${CMAKE_CURRENT_BINARY_DIR}/ds_run)
file(WRITE ${SV_DS_RUN}/config.json
"{\"output_dir\": \"out\", \"saes\": [\"${CMAKE_CURRENT_BINARY_DIR}/ds_e2e_tmp/standard\", \"${CMAKE_CURRENT_BINARY_DIR}/ds_e2e_tmp/topk\"],
  \"datasets\": [{\"name\": \"gpt2_l1\", \"path\": \"${SV_COLLECT_OUT}/np1_h0.h5\"}],
  \"model\": \"${SV_LM_DATA}/gpt2\", \"downstream_sequences\": 5, \"legacy_batch_sequences\": 2, \"geometry\": false}\n")
set_tests_properties(model_downstream_e2e PROPERTIES FIXTURES_SETUP ds_saes)
foreach(run np1 np2 np3 np4 np2t2)
  string(REGEX REPLACE "^np([0-9]).*" "\\1" np ${run})
  set(th 1)
  if(run MATCHES "t2$")
    set(th 2)
  endif()
  add_test(NAME model_run_${run}
           COMMAND ${CMAKE_COMMAND} -E env SAEVAL_THREADS=${th}
                   ${SV_MPIEXEC} ${SV_MPI_FLAGS} -np ${np} $<TARGET_FILE:saeval> run ${SV_DS_RUN}/config.json
                   --output-dir ${SV_DS_RUN}/out_${run} --force --quiet --no-table)
  set_tests_properties(model_run_${run} PROPERTIES TIMEOUT 300 FIXTURES_REQUIRED "collect_np1;ds_saes"
                       FIXTURES_SETUP ds_run_${run})
endforeach()
foreach(run np2 np3 np4 np2t2)
  foreach(sae standard topk)
    add_test(NAME model_run_identical_${run}_${sae}
             COMMAND ${CMAKE_COMMAND} -E compare_files ${SV_DS_RUN}/out_np1/${sae}__gpt2_l1.json
                     ${SV_DS_RUN}/out_${run}/${sae}__gpt2_l1.json)
    set_tests_properties(model_run_identical_${run}_${sae} PROPERTIES FIXTURES_REQUIRED "ds_run_np1;ds_run_${run}")
  endforeach()
endforeach()
add_test(NAME model_run_has_group COMMAND grep -c "\"ce_loss_score\"" ${SV_DS_RUN}/out_np1/topk__gpt2_l1.json)
set_tests_properties(model_run_has_group PROPERTIES FIXTURES_REQUIRED ds_run_np1)
# The evaluator's numbers against the double reference (tests/ref.c +
# tests/ref_lm.c) over the same 5 sequences, BOS (special id 511) masked.
add_test(NAME model_run_vs_reference
         COMMAND test_ds_e2e ${SV_LM_DATA} ${CMAKE_CURRENT_BINARY_DIR}/ds_e2e_check_tmp --check ${SV_DS_RUN}/out_np1
                 ${SV_COLLECT_OUT}/np1_h0.h5 5)
set_tests_properties(model_run_vs_reference PROPERTIES TIMEOUT 120 FIXTURES_REQUIRED ds_run_np1)
