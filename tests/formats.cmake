# zip / npy / npz / restricted unpickler / torch .pt readers against files
# written by independent writers (numpy, pickle+zipfile, torch.save when
# python3-torch is installed). Debian's /usr/bin/python3 with python3-numpy.
find_program(SV_DEBIAN_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
sv_test_exe(test_formats test_formats.c)
add_test(NAME formats_gen
         COMMAND ${CMAKE_COMMAND} -E env SAEVAL_NO_TORCH=$ENV{SAEVAL_NO_TORCH}
                 ${SV_DEBIAN_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/formats_gen.py ${CMAKE_CURRENT_BINARY_DIR}/formats_data)
set_tests_properties(formats_gen PROPERTIES FIXTURES_SETUP formats_data)
add_test(NAME formats COMMAND test_formats ${CMAKE_CURRENT_BINARY_DIR}/formats_data)
set_tests_properties(formats PROPERTIES FIXTURES_REQUIRED formats_data)

# The reference's new architectures (signed top-k, groupmax, skip,
# transcoder targets) against hand-computed values.
# Standalone (no saevalcore): the reference needs only libm.
add_executable(test_ref_arch test_ref_arch.c ref.c)
target_include_directories(test_ref_arch PRIVATE ${CMAKE_SOURCE_DIR}/tests ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(test_ref_arch PRIVATE MPI::MPI_C m) # MPI: headers reached through testutil.h
add_test(NAME ref_arch COMMAND test_ref_arch)

# Native SAE formats (nativesae.c) against tests/formats_write.py's files.
sv_test_exe(test_native test_native.c)
add_test(NAME native_gen COMMAND ${SV_DEBIAN_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/native_gen.py ${CMAKE_CURRENT_BINARY_DIR}/native_data)
set_tests_properties(native_gen PROPERTIES FIXTURES_SETUP native_data)
add_test(NAME native COMMAND test_native ${CMAKE_CURRENT_BINARY_DIR}/native_data)
set_tests_properties(native PROPERTIES FIXTURES_REQUIRED native_data)

# Helper for the manual cross-check against the projects' own classes
# (tests/native_vs_projects.py); built, not run by ctest.
sv_test_exe(native_forward native_forward.c ref.c)
target_sources(test_native PRIVATE ref.c)

# End to end through the format table: native SAEs vs SAELens twins with
# the same weights, 1 and 2 ranks.
if(TRUE)
  add_test(NAME native_e2e
           COMMAND ${SV_DEBIAN_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/native_e2e.py $<TARGET_FILE:saeval>
                   ${CMAKE_CURRENT_BINARY_DIR}/native_e2e ${SV_MPIEXEC} ${SV_MPI_FLAGS})
  set_tests_properties(native_e2e PROPERTIES TIMEOUT 600)
  # Each native format through info, glob expansion, input_hash and resume.
  add_test(NAME native_ident
           COMMAND ${SV_DEBIAN_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/native_ident.py $<TARGET_FILE:saeval>
                   ${CMAKE_CURRENT_BINARY_DIR}/native_ident ${SV_MPIEXEC} ${SV_MPI_FLAGS})
  set_tests_properties(native_ident PROPERTIES TIMEOUT 900)
endif()

# Bad native SAEs through `saeval run` with the corpus checks (exit 2, one
# error line naming file and field, no result file), and no pickle payload run.
if(TRUE)
  set(SV_NCORPUS ${CMAKE_CURRENT_BINARY_DIR}/corpus_native)
  add_test(NAME corpus_native_gen
           COMMAND sh -c "rm -rf \"$2\" && \"$0\" synth \"$2/synth\" > /dev/null && \"$1\" \"$3\" \"$2/cases\" \"$2/synth/stores/oos_task.h5\""
                   $<TARGET_FILE:saeval> ${SV_DEBIAN_PYTHON3} ${SV_NCORPUS} ${CMAKE_CURRENT_SOURCE_DIR}/corpus_native.py)
  set_tests_properties(corpus_native_gen PROPERTIES FIXTURES_SETUP corpus_native TIMEOUT 300)
  add_test(NAME corpus_native_bad_inputs
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/corpus_run.sh ${SV_NCORPUS}/cases $<TARGET_FILE:saeval>)
  set_tests_properties(corpus_native_bad_inputs PROPERTIES FIXTURES_REQUIRED corpus_native TIMEOUT 600
                       ENVIRONMENT "MPIEXEC=${SV_CORPUS_MPIEXEC_STR}")
  add_test(NAME corpus_native_no_payload
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/corpus_native_check.sh ${SV_NCORPUS}/cases)
  set_tests_properties(corpus_native_no_payload PROPERTIES FIXTURES_REQUIRED corpus_native DEPENDS corpus_native_bad_inputs)
endif()
