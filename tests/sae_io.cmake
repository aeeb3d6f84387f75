# half / safetensors / SAE loading.
sv_test_exe(test_half test_half.c)
add_test(NAME half COMMAND test_half)
sv_test_exe(test_safetensors test_safetensors.c)
add_test(NAME safetensors COMMAND test_safetensors)
sv_test_exe(test_sae test_sae.c)
add_test(NAME sae_load COMMAND test_sae)
