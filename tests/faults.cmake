# The faults a cluster throws (tests/faults.sh; README "Faults"): a rank
# SIGKILLed mid-run, a full disk, an output directory made unwritable or
# deleted mid-run. Each needs root (tmpfs mounts, an unprivileged run).
# A slow file system without FUSE: an LD_PRELOAD shim delaying large reads
# (never sanitized itself: it is preloaded into every process of the run).
add_library(slowfs MODULE slowfs.c)
target_compile_options(slowfs PRIVATE -fno-sanitize=all)
target_link_options(slowfs PRIVATE -fno-sanitize=all)
target_link_libraries(slowfs PRIVATE ${CMAKE_DL_LIBS})
foreach(c sigkill diskfull readonly vanish concurrent stale inputchange budget stall)
  add_test(NAME faults_${c}
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/faults.sh ${c} $<TARGET_FILE:saeval>
                   ${CMAKE_CURRENT_BINARY_DIR}/faults/${c} ${CMAKE_CURRENT_SOURCE_DIR}/e2e_cmp.sh
                   $<TARGET_FILE:slowfs>)
  set_tests_properties(faults_${c} PROPERTIES TIMEOUT 900 LABELS faults)
endforeach()
