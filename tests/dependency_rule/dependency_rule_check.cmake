# cmake -DQNET_SOURCE_DIR=... -DEDGES_FILE=... -P dependency_rule_check.cmake
# Fails (FATAL_ERROR) if the checker accepts a broken edge or rejects the real
# graph. With -DENFORCE_EDGES=..., only runs the configure step's enforcement
# on those edges (used below to see it fail the way a configure would).
cmake_minimum_required(VERSION 3.25)
include(${QNET_SOURCE_DIR}/cmake/dependency_rule.cmake)

if(DEFINED ENFORCE_EDGES)
  qnet_enforce_dependency_rule("${ENFORCE_EDGES}")
  return()
endif()

set(failures "")
macro(expect_violation edges expected)
  qnet_dependency_rule_violations(found "${edges}")
  string(FIND "${found}" "${expected}" at)
  if(at LESS 0)
    list(APPEND failures "edges ${edges}: expected a violation containing '${expected}', got '${found}'")
  endif()
endmacro()
macro(expect_allowed edges)
  qnet_dependency_rule_violations(found "${edges}")
  if(found)
    list(APPEND failures "edges ${edges}: expected no violation, got '${found}'")
  endif()
endmacro()

# Broken edges are named.
expect_violation("qnet_network>qnet_daemon" "qnet_network -> qnet_daemon: not allowed")
expect_violation("qnet_launcher>qnet_daemon" "qnet_launcher -> qnet_daemon: not allowed")
expect_violation("qnetctl>qnet_daemon" "qnetctl -> qnet_daemon: not allowed")
expect_violation("qnet_qkd>qnet_network" "qnet_qkd -> qnet_network: not allowed")
expect_violation("qnet_link>gRPC::grpc++" "qnet_link -> gRPC::grpc++: only")
expect_violation("qnet_node_client>gRPC::grpc++_reflection" "only qnet_daemon may link gRPC::grpc++_reflection")
expect_violation("qnet_network>Boost::headers" "only qnet_daemon may link Boost::")
expect_violation("qnet_newlib>" "qnet_newlib: not in the dependency rule")
# Allowed edges, direct or through the libraries a target may use.
expect_allowed("qnet_stack>qnet_keydist;qnet_daemon>qnet_stack;qnet_daemon>qnet_core;qnet_netsim>qnet_keydist")
expect_allowed("qnet_launcher>qnet_peers_file;qnet_launcher>gRPC::grpc++;qnet_daemon>Boost::headers;qnetctl>")

# The configure step's enforcement stops with an error naming the edge and this rule's file.
execute_process(COMMAND ${CMAKE_COMMAND} -DQNET_SOURCE_DIR=${QNET_SOURCE_DIR}
                        "-DENFORCE_EDGES=qnet_network>qnet_daemon;qnet_launcher>qnet_daemon"
                        -P ${CMAKE_CURRENT_LIST_FILE}
                RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_QUIET)
if(rc EQUAL 0)
  list(APPEND failures "enforcement accepted qnet_network -> qnet_daemon")
endif()
foreach(expected "qnet_network -> qnet_daemon" "qnet_launcher -> qnet_daemon" "cmake/dependency_rule.cmake")
  string(FIND "${err}" "${expected}" at)
  if(at LESS 0)
    list(APPEND failures "enforcement error does not name '${expected}': ${err}")
  endif()
endforeach()

# This build's real graph passes, and is the real one (not empty).
file(READ ${EDGES_FILE} real)
foreach(edge "qnet_daemon>qnet_stack" "qnet_launcher>qnet_peers_file" "qnetctl>qnet_launcher")
  if(NOT edge IN_LIST real)
    list(APPEND failures "${EDGES_FILE} lacks ${edge}")
  endif()
endforeach()
expect_allowed("${real}")

if(failures)
  list(JOIN failures "\n  " text)
  message(FATAL_ERROR "dependency rule checker:\n  ${text}")
endif()
message(STATUS "dependency rule checker: broken edges rejected, real graph (${EDGES_FILE}) accepted")
