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
