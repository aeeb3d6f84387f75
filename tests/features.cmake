# Feature analysis (issue 14): tokenizer.json decoding, per-latent examples,
# feature files and the Neuronpedia export.
sv_test_exe(test_tokenizer test_tokenizer.c)
add_test(NAME feat_tokenizer COMMAND test_tokenizer ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus_fuzz_tokenizer)
sv_test_exe(test_features test_features.c)
add_test(NAME feat_features COMMAND test_features)
sv_test_exe(test_featfile test_featfile.c)
add_test(NAME feat_file COMMAND test_featfile ${CMAKE_CURRENT_BINARY_DIR}/featfile_work ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus_fuzz_tokenizer)
