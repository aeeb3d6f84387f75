# HTML report (issue 16): sv_report on hand-written result files, and the
# pages of real sweeps checked in Debian's headless chromium (playwright-core
# from the build's npm install). Screenshots: build/tests/report_artifacts/.
sv_test_exe(test_report test_report.c)
add_test(NAME report_unit COMMAND test_report ${CMAKE_CURRENT_BINARY_DIR}/report_unit)
# Bad input through the command line: exit code 2, one line naming the file.
set(_d ${CMAKE_CURRENT_BINARY_DIR}/report_cli_bad)
add_test(NAME report_cli_bad_input COMMAND sh -c
  "rm -rf '${_d}' && mkdir -p '${_d}' && printf '[{\"sae_id\": 1}]' > '${_d}/all_eval_results.json' && \
   '$<TARGET_FILE:saeval>' report --output-dir '${_d}' 2> '${_d}/err'; rc=$?; cat '${_d}/err'; \
   [ $rc = 2 ] && grep -q 'all_eval_results.json: \\[0\\].sae_id: expected a string' '${_d}/err'")

if(SV_REPORT_CHARTS)
  find_program(SV_NODE node REQUIRED)
  # Debian's python3 (python3-h5py) reads the feature files for the latents test.
  find_program(SV_REPORT_PY python3 PATHS /usr/bin NO_DEFAULT_PATH)
  foreach(mode ok failed downstream nocharts latents)
    add_test(NAME report_browser_${mode}
             COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/report_browser.sh ${mode} $<TARGET_FILE:saeval> ${SV_MPIEXEC}
                     ${SV_NODE} ${SV_WEB_DIR}/node_modules ${CMAKE_CURRENT_BINARY_DIR}/report_browser/${mode}
                     ${CMAKE_CURRENT_BINARY_DIR}/report_artifacts/${mode} ${SV_REPORT_PY})
    set_tests_properties(report_browser_${mode} PROPERTIES TIMEOUT 1200)
  endforeach()
endif()
