# Feature analysis (issue 14): tokenizer.json decoding, per-latent examples,
# feature files and the Neuronpedia export.
sv_test_exe(test_tokenizer test_tokenizer.c)
add_test(NAME feat_tokenizer COMMAND test_tokenizer ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus_fuzz_tokenizer)
sv_test_exe(test_features test_features.c)
add_test(NAME feat_features COMMAND test_features)
sv_test_exe(test_featfile test_featfile.c)
target_link_libraries(test_featfile PRIVATE saevalapp) # the export is a tool
add_test(NAME feat_file COMMAND test_featfile ${CMAKE_CURRENT_BINARY_DIR}/featfile_work ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus_fuzz_tokenizer)
# The export command on the file test_featfile wrote: text tokens with the
# byte-level fixture; a tokenizer whose vocabulary is too small for the
# file's ids, a missing file and a missing option are bad input (exit 2).
set(SV_FEATW ${CMAKE_CURRENT_BINARY_DIR}/featfile_work)
set(SV_TOKFIX ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus_fuzz_tokenizer)
set_tests_properties(feat_file PROPERTIES FIXTURES_SETUP feat_file_written)
add_test(NAME feat_export_cli
         COMMAND $<TARGET_FILE:saeval> export --neuronpedia ${SV_FEATW}/a0.features.h5 --out ${SV_FEATW}/cli_np
                 --tokenizer ${SV_TOKFIX}/bytelevel.json --model-id gpt2-small --layer 8 --batch-size 3)
set_tests_properties(feat_export_cli PROPERTIES FIXTURES_REQUIRED feat_file_written)
add_test(NAME feat_export_small_vocab
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/feat_expect_error.sh 2 "outside the vocabulary of"
                 $<TARGET_FILE:saeval> export --neuronpedia ${SV_FEATW}/a0.features.h5 --out ${SV_FEATW}/cli_np2
                 --tokenizer ${SV_TOKFIX}/unigram.json)
set_tests_properties(feat_export_small_vocab PROPERTIES FIXTURES_REQUIRED feat_file_written)
add_test(NAME feat_export_missing
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/feat_expect_error.sh 2 "nope.features.h5: cannot open"
                 $<TARGET_FILE:saeval> export --neuronpedia ${SV_FEATW}/nope.features.h5 --out ${SV_FEATW}/cli_np3)
add_test(NAME feat_export_usage
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/feat_expect_error.sh 2 "are required" $<TARGET_FILE:saeval> export --out x)
# explain on the demo (fixture from outputs.cmake)
sv_test_exe(test_explain test_explain.c)
target_link_libraries(test_explain PRIVATE saevalapp)
add_test(NAME feat_explain COMMAND test_explain ${CMAKE_CURRENT_BINARY_DIR}/demo/config.json ${CMAKE_CURRENT_BINARY_DIR}/explain_work)
set_tests_properties(feat_explain PROPERTIES FIXTURES_REQUIRED demo_data)
# Across ranks: 1-4 ranks (x 2 "threads"), windows and whole sequences; each
# run checks itself against a serial computation, then the files are compared.
sv_test_exe(test_features_mpi test_features_mpi.c)
set(SV_FEATMPI ${CMAKE_CURRENT_BINARY_DIR}/features_mpi)
file(MAKE_DIRECTORY ${SV_FEATMPI})
foreach(mode win whole)
  set(files "")
  foreach(np 1 2 3 4)
    add_test(NAME feat_mpi_${mode}_np${np}
             COMMAND ${SV_MPIEXEC} ${SV_MPI_FLAGS} -np ${np} $<TARGET_FILE:test_features_mpi>
                     ${SV_FEATMPI}/${mode}_np${np}.features.h5 ${mode})
    set_tests_properties(feat_mpi_${mode}_np${np} PROPERTIES FIXTURES_SETUP feat_mpi_${mode})
    list(APPEND files ${SV_FEATMPI}/${mode}_np${np}.features.h5)
  endforeach()
  string(REPLACE ";" " " files "${files}")
  add_test(NAME feat_mpi_${mode}_identical
           COMMAND sh -c "for f in ${files}; do cmp ${SV_FEATMPI}/${mode}_np1.features.h5 $f || exit 1; done; echo identical")
  set_tests_properties(feat_mpi_${mode}_identical PROPERTIES FIXTURES_REQUIRED feat_mpi_${mode})
endforeach()

# saeval run with top_examples on the demo (3 SAEs, in_sample): feature files
# byte-identical for 1-4 ranks, 2 threads and block_tokens 2048; counts agree
# with the pair files; explain reads them.
sv_test_exe(test_featrun test_featrun.c)
set(SV_DEMO ${CMAKE_CURRENT_BINARY_DIR}/demo) # as in outputs.cmake (included after this file)
set(SV_FCFG "{\"output_dir\": \"results_feat\", \"saes\": [\"saes/std_w512\", \"saes/topk_k32_w512\", \"saes/jumprelu_w512\"], \"datasets\": [{\"name\": \"in_sample\", \"path\": \"stores/in_sample.h5\", \"role\": \"in_sample\"}], \"top_examples\": 20, \"context\": [5, 5]")
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/feat_config.json.in "${SV_FCFG}}\n")
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/feat_config_b2048.json.in "${SV_FCFG}, \"block_tokens\": 2048}\n")
add_test(NAME feat_run_config
         COMMAND sh -c "cp '${CMAKE_CURRENT_BINARY_DIR}/feat_config.json.in' '${SV_DEMO}/config_feat.json' && cp '${CMAKE_CURRENT_BINARY_DIR}/feat_config_b2048.json.in' '${SV_DEMO}/config_feat_b2048.json'")
set_tests_properties(feat_run_config PROPERTIES FIXTURES_REQUIRED demo_data FIXTURES_SETUP feat_cfg)
set(SV_FRUNS "")
foreach(run np1 np2t2 np3 np4 np2b2048)
  set(cfgf config_feat.json)
  set(thr 1)
  string(REGEX MATCH "np([0-9])" _m ${run})
  set(np ${CMAKE_MATCH_1})
  if(run STREQUAL "np2t2")
    set(thr 2)
  elseif(run STREQUAL "np2b2048")
    set(cfgf config_feat_b2048.json)
  endif()
  add_test(NAME feat_run_${run}
           COMMAND ${CMAKE_COMMAND} -E env SAEVAL_THREADS=${thr}
                   ${SV_MPIEXEC} ${SV_MPI_FLAGS} -np ${np} $<TARGET_FILE:saeval> run ${SV_DEMO}/${cfgf}
                   --output-dir ${SV_DEMO}/results_feat_${run} --quiet --no-table --force)
  set_tests_properties(feat_run_${run} PROPERTIES FIXTURES_REQUIRED feat_cfg FIXTURES_SETUP feat_runs)
  if(NOT run STREQUAL "np1")
    add_test(NAME feat_run_identical_${run}
             COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/feat_cmp.sh ${SV_DEMO}/results_feat_np1 ${SV_DEMO}/results_feat_${run})
    set_tests_properties(feat_run_identical_${run} PROPERTIES FIXTURES_REQUIRED feat_runs)
  endif()
endforeach()
foreach(sae std_w512 topk_k32_w512 jumprelu_w512)
  add_test(NAME feat_run_counts_${sae} COMMAND test_featrun ${SV_DEMO}/results_feat_np2t2 ${sae} in_sample)
  set_tests_properties(feat_run_counts_${sae} PROPERTIES FIXTURES_REQUIRED feat_runs)
endforeach()
add_test(NAME feat_run_explain
         COMMAND sh -c "'$<TARGET_FILE:saeval>' explain '${SV_DEMO}/config_feat.json' --dataset in_sample --sequence 3 --positions 1:4 --output-dir '${SV_DEMO}/results_feat_np1' | grep -q 'fires on'")
set_tests_properties(feat_run_explain PROPERTIES FIXTURES_REQUIRED feat_runs)
# Bad feature keys: exit 2 naming the key.
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/feat_bad_topn.json.in "${SV_FCFG}, \"top_examples\": -1}\n")
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/feat_bad_context.json.in "${SV_FCFG}, \"context\": [5]}\n")
foreach(bad topn context)
  add_test(NAME feat_config_bad_${bad}
           COMMAND sh -c "sed 's/, \"top_examples\": 20, \"context\": \\[5, 5\\]//' '${CMAKE_CURRENT_BINARY_DIR}/feat_bad_${bad}.json.in' > '${SV_DEMO}/config_feat_bad_${bad}.json' && sh '${CMAKE_CURRENT_SOURCE_DIR}/feat_expect_error.sh' 2 '$<IF:$<STREQUAL:${bad},topn>,top_examples,context>' '$<TARGET_FILE:saeval>' run '${SV_DEMO}/config_feat_bad_${bad}.json' --quiet")
  set_tests_properties(feat_config_bad_${bad} PROPERTIES FIXTURES_REQUIRED demo_data)
endforeach()
# Data for the memory check of the feature analysis (run by hand, see README).
sv_test_exe(feat_mem_gen feat_mem_gen.c)
target_link_libraries(feat_mem_gen PRIVATE saevalapp)
target_include_directories(feat_mem_gen PRIVATE ${CMAKE_SOURCE_DIR}/src/app)
# A rerun recomputes a complete pair whose feature file is missing (and only it):
# the file comes back byte-identical; a second rerun has nothing to do.
add_test(NAME feat_run_rerun_missing
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/feat_rerun.sh $<TARGET_FILE:saeval> ${SV_DEMO}/config_feat.json
                 ${SV_DEMO}/results_feat_np1 ${SV_DEMO}/results_feat_rerun)
set_tests_properties(feat_run_rerun_missing PROPERTIES FIXTURES_REQUIRED feat_runs)
# Two datasets: every SAE fits the budget, so the run loads each once and
# keeps it across the datasets; each (SAE, dataset) must still get its own
# feature data (a regression: the second dataset saw the first's examples).
set(SV_FCFG2 "{\"output_dir\": \"${SV_DEMO}/results_feat2ds\", \"saes\": [\"${SV_DEMO}/saes/std_w512\", \"${SV_DEMO}/saes/topk_k32_w512\"], \"datasets\": [{\"name\": \"in_sample\", \"path\": \"${SV_DEMO}/stores/in_sample.h5\", \"role\": \"in_sample\"}, {\"name\": \"oos_domain\", \"path\": \"${SV_DEMO}/stores/oos_domain.h5\", \"role\": \"oos\"}], \"top_examples\": 20}\n")
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/feat_config_2ds.json "${SV_FCFG2}")
add_test(NAME feat_run_two_datasets
         COMMAND ${SV_MPIEXEC} ${SV_MPI_FLAGS} -np 2 $<TARGET_FILE:saeval> run ${CMAKE_CURRENT_BINARY_DIR}/feat_config_2ds.json
                 --quiet --no-table --no-report --force)
set_tests_properties(feat_run_two_datasets PROPERTIES FIXTURES_REQUIRED demo_data FIXTURES_SETUP feat_2ds)
foreach(sae std_w512 topk_k32_w512)
  foreach(ds in_sample oos_domain)
    add_test(NAME feat_run_two_datasets_${sae}_${ds} COMMAND test_featrun ${SV_DEMO}/results_feat2ds ${sae} ${ds})
    set_tests_properties(feat_run_two_datasets_${sae}_${ds} PROPERTIES FIXTURES_REQUIRED feat_2ds)
  endforeach()
endforeach()
