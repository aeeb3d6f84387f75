# GEMM layer: tile bits and values per backend, bfloat16 tiles, kernel probe.
sv_test_exe(test_gemm test_gemm.c)
target_compile_options(test_gemm PRIVATE ${OpenMP_C_FLAGS})
add_test(NAME gemm_layer COMMAND $<TARGET_FILE:test_gemm> $<TARGET_FILE:saeval>)
# precision bfloat16 on the e2e ranks case: byte-identical across ranks and
# threads, and not the float32 results.
add_test(NAME gemm_bf16_identity
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/gemm_bf16_identity.sh ${CMAKE_CURRENT_BINARY_DIR}/e2e/ranks
                 $<TARGET_FILE:saeval> ${SV_MPIEXEC} ${SV_MPI_FLAGS})
set_tests_properties(gemm_bf16_identity PROPERTIES FIXTURES_REQUIRED e2e_ranks_gen TIMEOUT 300)
