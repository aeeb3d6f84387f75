# GEMM layer: tile bits and values per backend, bfloat16 tiles, kernel probe.
sv_test_exe(test_gemm test_gemm.c)
target_compile_options(test_gemm PRIVATE ${OpenMP_C_FLAGS})
add_test(NAME gemm_layer COMMAND $<TARGET_FILE:test_gemm> $<TARGET_FILE:saeval>)
