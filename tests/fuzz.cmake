# libFuzzer targets (tests/fuzz/): only with clang and -DSAEVAL_FUZZ=ON.
# With gcc (the default build) this file does nothing. .ci/fuzz builds and
# runs them: CC=clang cmake -S . -B build-fuzz -DSAEVAL_FUZZ=ON
option(SAEVAL_FUZZ "Build the libFuzzer targets (needs clang)" OFF)
if(SAEVAL_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  set(SV_FUZZ_CFLAGS -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
                     -fno-omit-frame-pointer -g -O1)
  set(SV_FUZZ_LDFLAGS -fsanitize=fuzzer,address,undefined)

  # The library again, instrumented for coverage + ASan + UBSan.
  add_library(saevalcore_fuzz STATIC ${SV_SOURCES})
  target_compile_options(saevalcore_fuzz PRIVATE ${SV_FUZZ_CFLAGS})
  target_include_directories(saevalcore_fuzz PUBLIC ${CMAKE_SOURCE_DIR}/include PRIVATE ${HDF5_C_INCLUDE_DIRS})
  target_compile_definitions(saevalcore_fuzz PRIVATE ${HDF5_C_DEFINITIONS} _POSIX_C_SOURCE=200809L)
  target_link_libraries(saevalcore_fuzz PUBLIC MPI::MPI_C ${HDF5_C_LIBRARIES} PkgConfig::OPENBLAS OpenMP::OpenMP_C m)
  if(TARGET cjson)
    target_link_libraries(saevalcore_fuzz PUBLIC cjson)
    target_include_directories(saevalcore_fuzz PUBLIC ${CJSON_INCLUDE_DIRS})
  else()
    target_link_libraries(saevalcore_fuzz PUBLIC PkgConfig::CJSON)
  endif()

  foreach(t fuzz_safetensors fuzz_sae_cfg fuzz_config fuzz_result_head)
    add_executable(${t} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/${t}.c)
    target_compile_options(${t} PRIVATE ${SV_FUZZ_CFLAGS} -fsanitize=fuzzer)
    target_compile_definitions(${t} PRIVATE _POSIX_C_SOURCE=200809L)
    target_link_libraries(${t} PRIVATE saevalcore_fuzz)
    target_link_options(${t} PRIVATE ${SV_FUZZ_LDFLAGS})
  endforeach()
elseif(SAEVAL_FUZZ)
  message(WARNING "SAEVAL_FUZZ=ON needs clang (CMAKE_C_COMPILER_ID is ${CMAKE_C_COMPILER_ID}); fuzz targets not built")
endif()
