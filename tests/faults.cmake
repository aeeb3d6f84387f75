# The faults a cluster throws (tests/faults.sh; README "Faults"): a rank
# SIGKILLed mid-run, a full disk, an output directory made unwritable or
# deleted mid-run. Each needs root (tmpfs mounts, an unprivileged run).
foreach(c sigkill diskfull readonly vanish)
  add_test(NAME faults_${c}
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/faults.sh ${c} $<TARGET_FILE:saeval>
                   ${CMAKE_CURRENT_BINARY_DIR}/faults/${c} ${CMAKE_CURRENT_SOURCE_DIR}/e2e_cmp.sh)
  set_tests_properties(faults_${c} PROPERTIES TIMEOUT 300 LABELS faults)
endforeach()
