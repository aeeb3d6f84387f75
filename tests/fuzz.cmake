# libFuzzer targets (tests/fuzz/): only with clang and -DSAEVAL_FUZZ=ON.
# With gcc (the default build) this file does nothing. .ci/fuzz builds and
# runs them: CC=clang cmake -S . -B build-fuzz -DSAEVAL_FUZZ=ON
option(SAEVAL_FUZZ "Build the libFuzzer targets (needs clang)" OFF)
if(SAEVAL_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  set(SV_FUZZ_CFLAGS -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
                     -fno-omit-frame-pointer -g -O1)
  set(SV_FUZZ_LDFLAGS -fsanitize=fuzzer,address,undefined)

  # The library again, instrumented for coverage + ASan + UBSan.
  sv_core_library(saevalcore_fuzz ${SV_REPORT_GEN})
  target_compile_options(saevalcore_fuzz PRIVATE ${SV_FUZZ_CFLAGS})
  target_include_directories(saevalcore_fuzz PRIVATE ${CMAKE_SOURCE_DIR}/src)

  file(GLOB SV_FUZZ_TARGETS RELATIVE ${CMAKE_CURRENT_SOURCE_DIR}/fuzz CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_*.c)
  string(REPLACE ".c" "" SV_FUZZ_TARGETS "${SV_FUZZ_TARGETS}")
  foreach(t ${SV_FUZZ_TARGETS})
    add_executable(${t} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/${t}.c)
    target_compile_options(${t} PRIVATE ${SV_FUZZ_CFLAGS} -fsanitize=fuzzer)
    target_compile_definitions(${t} PRIVATE _POSIX_C_SOURCE=200809L)
    target_link_libraries(${t} PRIVATE saevalcore_fuzz)
    target_link_options(${t} PRIVATE ${SV_FUZZ_LDFLAGS})
  endforeach()
elseif(SAEVAL_FUZZ)
  message(WARNING "SAEVAL_FUZZ=ON needs clang (CMAKE_C_COMPILER_ID is ${CMAKE_C_COMPILER_ID}); fuzz targets not built")
endif()
