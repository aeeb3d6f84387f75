# Pair claims between runs sharing an output directory (src/claim.c).
sv_test_exe(test_claim test_claim.c)
add_test(NAME claim_unit COMMAND test_claim ${CMAKE_CURRENT_BINARY_DIR}/claim)
set_tests_properties(claim_unit PROPERTIES TIMEOUT 120)
