# End-to-end correctness tests: tests/test_e2e.c generates inputs and the
# expected metrics from the naive reference (tests/ref.c); saeval runs under
# MPI; test_e2e compares. Sequenced with fixtures: gen -> run -> check.
sv_test_exe(test_e2e test_e2e.c ref.c)
set(SV_E2E_DIR ${CMAKE_CURRENT_BINARY_DIR}/e2e)
set(SV_E2E_RUN sh ${CMAKE_CURRENT_SOURCE_DIR}/e2e_run.sh)

add_test(NAME e2e_ref_selftest COMMAND test_e2e selftest)

# Generate case `case` into its own directory (fixture e2e_<case>_gen).
function(sv_e2e_gen case)
  set(dir ${SV_E2E_DIR}/${case})
  add_test(NAME e2e_gen_${case} COMMAND ${SV_E2E_RUN} ${dir} $<TARGET_FILE:test_e2e> gen ${dir} ${case})
  set_tests_properties(e2e_gen_${case} PROPERTIES FIXTURES_SETUP e2e_${case}_gen TIMEOUT 600)
endfunction()

# Run saeval on case `case` with `np` ranks into ${dir}/out_<tag> (fixture
# e2e_<case>_run_<tag>); extra args: environment entries.
function(sv_e2e_run case tag np)
  set(dir ${SV_E2E_DIR}/${case})
  set(out ${dir}/out_${tag})
  add_test(NAME e2e_run_${case}_${tag}
           COMMAND ${SV_E2E_RUN} ${out} ${SV_MPIEXEC} ${SV_MPI_FLAGS} -np ${np} $<TARGET_FILE:saeval>
                   run ${dir}/config.json --output-dir ${out} --quiet --no-table)
  set_tests_properties(e2e_run_${case}_${tag} PROPERTIES
                       FIXTURES_REQUIRED e2e_${case}_gen FIXTURES_SETUP e2e_${case}_run_${tag} TIMEOUT 300)
  if(ARGN)
    set_tests_properties(e2e_run_${case}_${tag} PROPERTIES ENVIRONMENT "${ARGN}")
  endif()
endfunction()

# Compare ${dir}/out_<tag> with expected.json at relative tolerance `tol`.
function(sv_e2e_check case tag tol)
  set(dir ${SV_E2E_DIR}/${case})
  add_test(NAME e2e_check_${case}_${tag} COMMAND test_e2e check ${dir} ${dir}/out_${tag} ${tol})
  set_tests_properties(e2e_check_${case}_${tag} PROPERTIES
                       FIXTURES_REQUIRED "e2e_${case}_gen;e2e_${case}_run_${tag}" TIMEOUT 300)
endfunction()

# One reference case "name;ranks;tolerance": generate, run, check.
function(sv_e2e_case spec)
  list(GET spec 0 case)
  list(GET spec 1 np)
  list(GET spec 2 tol)
  sv_e2e_gen(${case})
  sv_e2e_run(${case} np${np} ${np})
  sv_e2e_check(${case} np${np} ${tol})
endfunction()

# Byte-identical result files of two runs of one case (out_<tag> vs out_<ref>).
function(sv_e2e_identical case tag ref)
  add_test(NAME e2e_${case}_identical_${tag}_vs_${ref}
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/e2e_cmp.sh ${SV_E2E_DIR}/${case}/out_${ref} ${SV_E2E_DIR}/${case}/out_${tag})
  set_tests_properties(e2e_${case}_identical_${tag}_vs_${ref} PROPERTIES
                       FIXTURES_REQUIRED "e2e_${case}_run_${ref};e2e_${case}_run_${tag}" TIMEOUT 60)
endfunction()

# Bad input `err` (test_e2e gen_error): exit code 2, a message naming the
# file/field, no result file.
function(sv_e2e_error err)
  add_test(NAME e2e_${err}
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/e2e_error.sh ${err} ${SV_E2E_DIR}/${err}
                   $<TARGET_FILE:test_e2e> $<TARGET_FILE:saeval> ${SV_MPIEXEC} ${SV_MPI_FLAGS})
  set_tests_properties(e2e_${err} PROPERTIES TIMEOUT 120)
endfunction()

# Every architecture x precision (also with d_sae over several encoder
# panels); every normalization x precision; exact pre-activations (topk
# ties, tokens exactly on jumprelu/gate boundaries).
foreach(spec "arch64;2;1e-9" "arch32;2;1e-5" "wide64;2;1e-9" "wide32;3;1e-5" "norm64;3;1e-9" "norm32;3;1e-5" "exact64;2;1e-9" "exact32;3;1e-5")
  sv_e2e_case("${spec}")
endforeach()

# Rank invariance (float32, four architectures, three stores of 3, 2 and 1
# work units so ranks sit idle at -np 4) and thread invariance.
sv_e2e_gen(ranks)
foreach(np 1 2 3 4)
  sv_e2e_run(ranks np${np} ${np})
endforeach()
sv_e2e_run(ranks t1 2 SAEVAL_THREADS=1)
sv_e2e_run(ranks t2 2 SAEVAL_THREADS=2)
sv_e2e_check(ranks np4 1e-5)
foreach(tag np2 np3 np4 t2)
  if(tag STREQUAL "t2")
    set(ref t1)
  else()
    set(ref np1)
  endif()
  sv_e2e_identical(ranks ${tag} ${ref})
endforeach()

# Threads split a row's encoder panels between them when d_sae spans
# several panels: results must not depend on it.
sv_e2e_run(wide32 t1 1 SAEVAL_THREADS=1)
sv_e2e_run(wide32 t2 1 SAEVAL_THREADS=2)
sv_e2e_identical(wide32 t2 t1)

# Bad inputs: exit code 2, a message naming the file/field, no result file.
foreach(err err_missing_sae err_d_in err_arch err_noseq err_unknown_key err_scaling_factor err_groupmax_cfg)
  sv_e2e_error(${err})
endforeach()

# Issue 11: signed top-k and groupmax (sparsify files) against the
# reference, over several encoder panels and threads; rank invariance 1-4.
foreach(spec "arch11_64;2;1e-9" "arch11_32;3;1e-5")
  sv_e2e_case("${spec}")
endforeach()
sv_e2e_run(arch11_32 t1 1 SAEVAL_THREADS=1)
sv_e2e_run(arch11_32 t3 1 SAEVAL_THREADS=3)
sv_e2e_identical(arch11_32 t3 t1)
sv_e2e_gen(ranks11)
foreach(np 1 2 3 4)
  sv_e2e_run(ranks11 np${np} ${np})
endforeach()
sv_e2e_check(ranks11 np1 1e-5)
foreach(np 2 3 4)
  sv_e2e_identical(ranks11 np${np} np1)
endforeach()

# Issue 11, SAELens cases: a pre-6.0 standard+topk cfg is top-k, the same
# keys under sae_lens_version 6.5.0 are standard, a bfloat16 cfg dtype is
# computed in the run's precision (and eval_cfg says so), a scaling_factor
# of ones is dropped; against the reference. (A non-1 scaling_factor:
# e2e_err_scaling_factor; top-k l1 with rescale: the *_rs SAEs above.)
sv_e2e_gen(saelens11)
sv_e2e_run(saelens11 np2 2)
sv_e2e_check(saelens11 np2 1e-5)

# Transcoders and skip connections (issue 11): SAELens transcoder,
# skip_transcoder and jumprelu_transcoder, sparsify transcode/skip and a
# Gemma Scope transcoder (native files written by tests/formats_write.py),
# with an ordinary SAE in the same pass, on stores with /targets; float64
# and float32, against tests/ref.c; 1, 2 and 4 ranks and 1/2 threads
# byte-identical.
find_program(SV_E2E_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
foreach(spec "tc64;2;1e-9" "tc32;3;1e-5" "tcsq64;2;1e-9")
  sv_e2e_case("${spec}")
  list(GET spec 0 case)
  set_tests_properties(e2e_gen_${case} PROPERTIES
                       ENVIRONMENT "SV_PYTHON=${SV_E2E_PYTHON3};SV_FORMATS_WRITE=${CMAKE_CURRENT_SOURCE_DIR}/formats_write.py")
endforeach()
foreach(np 1 2 4)
  sv_e2e_run(tc32 r${np} ${np})
endforeach()
sv_e2e_run(tc32 t1 1 SAEVAL_THREADS=1)
sv_e2e_run(tc32 t2 1 SAEVAL_THREADS=2)
foreach(pair "r2;r1" "r4;r1" "np3;r1" "t2;t1")
  list(GET pair 0 tag)
  list(GET pair 1 ref)
  sv_e2e_identical(tc32 ${tag} ${ref})
endforeach()
foreach(err err_tc_no_targets err_tc_targets_shape)
  sv_e2e_error(${err})
endforeach()
