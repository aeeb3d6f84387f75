# A real multi-node run: 3 "nodes" made of network namespaces (own hostname,
# veth links into a bridge), Open MPI's daemons started through an rsh agent
# that is `ip netns exec`, TCP only between ranks, one shared output
# directory. Byte-identical to a 1-rank run; a rank SIGKILLed on one node
# ends the job on every node within 30 s; the rerun resumes. Needs root.
# RUN_SERIAL: 6 ranks on 2 cores.
add_test(NAME multinode_netns
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/multinode.sh $<TARGET_FILE:saeval>
                 ${CMAKE_CURRENT_BINARY_DIR}/multinode ${CMAKE_CURRENT_SOURCE_DIR}/e2e_cmp.sh 3)
set_tests_properties(multinode_netns PROPERTIES TIMEOUT 900 RUN_SERIAL TRUE LABELS multinode)
