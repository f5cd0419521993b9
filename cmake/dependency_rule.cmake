# The dependency rule (docs/architecture.md, "Dependency rule"): which qnet
# library or executable may link which. Each qnet_allow() line names a target
# and the qnet libraries it may depend on directly; it may also link whatever
# those may (the rule is transitive), and nothing else. The top CMakeLists.txt
# calls qnet_check_dependency_rule() after every target exists: an edge
# outside the rule stops the configure step, naming the edge and this file.
# tests/dependency_rule/ checks the checker. Tests and benchmarks are exempt.
#
# To add a library or an edge: add or extend its line here and the table in
# docs/architecture.md, in the same change.

set(QNET_RULE_TARGETS "")
macro(qnet_allow target)
  list(APPEND QNET_RULE_TARGETS ${target})
  set(QNET_RULE_${target} ${ARGN})
endmacro()

# Wire formats and shared core.
qnet_allow(qnet_proto)
qnet_allow(qnet_grpc        qnet_proto)
qnet_allow(qnet_core        qnet_proto)
qnet_allow(qnet_peers_file)
# Figures drawn by gnuplot, for the tools' sweeps.
qnet_allow(qnet_plot)
# Certificates, identities and mutual-TLS credentials.
qnet_allow(qnet_security)
qnet_allow(qnet_kme         qnet_security)
# The simulated hardware and the network file.
qnet_allow(qnet_quantum     qnet_core)
qnet_allow(qnet_physical    qnet_quantum)
qnet_allow(qnet_config      qnet_physical)
qnet_allow(qnet_topology_generator qnet_config)
# The protocol layers, each over the one below.
qnet_allow(qnet_link        qnet_physical)
qnet_allow(qnet_network     qnet_link)
qnet_allow(qnet_transport   qnet_network)
# Applications and key distribution.
qnet_allow(qnet_apps        qnet_link)
qnet_allow(qnet_qkd         qnet_core)
qnet_allow(qnet_keydist     qnet_network qnet_qkd)
# One node's stack, and the two runtimes that drive it.
qnet_allow(qnet_stack       qnet_transport qnet_keydist qnet_config)
qnet_allow(qnet_sim         qnet_core)
qnet_allow(qnet_netsim      qnet_stack qnet_keydist qnet_apps qnet_sim qnet_config)
qnet_allow(qnet_daemon      qnet_stack qnet_keydist qnet_grpc qnet_peers_file qnet_security qnet_kme)
# Clients of the daemons: never the daemon library itself.
qnet_allow(qnet_launcher    qnet_config qnet_peers_file qnet_security)
qnet_allow(qnet_node_client qnet_apps qnet_grpc qnet_security)
qnet_allow(qnet_time_scale_probe qnet_launcher qnet_node_client qnet_config)
# Executables.
qnet_allow(qnetd            qnet_daemon)
qnet_allow(qnetsim          qnet_netsim qnet_plot)
# qnetctl parses circuit files (transport/circuit_program.h) before asking a daemon.
qnet_allow(qnetctl          qnet_time_scale_probe qnet_node_client qnet_launcher qnet_security qnet_config qnet_plot
                            qnet_topology_generator qnet_transport)

# Outside libraries only some targets may link directly (first matching
# prefix wins): Boost.Asio and gRPC server reflection are the daemon's; gRPC
# is for the service stubs, the daemon and its clients. The protocol
# libraries link neither.
set(QNET_RULE_EXTERNAL
  "Boost::|qnet_daemon"
  "OpenSSL::|qnet_security"
  "gRPC::grpc++_reflection|qnet_daemon"
  "gRPC::|qnet_grpc,qnet_security,qnet_daemon,qnet_launcher,qnet_node_client,qnet_time_scale_probe")

# Everything `target` may link: its allowed libraries and theirs.
function(qnet_rule_closure target out)
  set(seen "")
  set(todo ${QNET_RULE_${target}})
  while(todo)
    list(POP_FRONT todo next)
    if(NOT next IN_LIST seen)
      list(APPEND seen ${next})
      list(APPEND todo ${QNET_RULE_${next}})
    endif()
  endwhile()
  set(${out} ${seen} PARENT_SCOPE)
endfunction()

# Checks `edges` against the rule: "from>to" items, and "from>" for a target
# that links no qnet library (it must still be in the rule). Sets `out` to one
# line per edge the rule does not allow (empty if all are allowed).
function(qnet_dependency_rule_violations out edges)
  set(violations "")
  foreach(edge IN LISTS edges)
    string(FIND "${edge}" ">" at)
    string(SUBSTRING "${edge}" 0 ${at} from)
    math(EXPR at "${at} + 1")
    string(SUBSTRING "${edge}" ${at} -1 to)
    if(NOT from IN_LIST QNET_RULE_TARGETS)
      set(missing "${from}: not in the dependency rule (give it a line)")
      if(NOT missing IN_LIST violations)
        list(APPEND violations "${missing}")
      endif()
    elseif(to MATCHES "^qnet_")
      qnet_rule_closure(${from} allowed)
      if(NOT to IN_LIST allowed)
        list(JOIN QNET_RULE_${from} ", " direct)
        if(direct)
          set(direct "${direct} and what those may")
        else()
          set(direct "no qnet library")
        endif()
        list(APPEND violations "${from} -> ${to}: not allowed (${from} may use ${direct})")
      endif()
    endif()
    foreach(rule IN LISTS QNET_RULE_EXTERNAL)
      string(REPLACE "|" ";" rule "${rule}")
      list(GET rule 0 prefix)
      list(GET rule 1 users)
      string(FIND "${to}" "${prefix}" at)
      if(at EQUAL 0)
        string(REPLACE "," ";" users "${users}")
        if(NOT from IN_LIST users)
          list(JOIN users ", " names)
          list(APPEND violations "${from} -> ${to}: only ${names} may link ${prefix}*")
        endif()
        break()
      endif()
    endforeach()
  endforeach()
  set(${out} "${violations}" PARENT_SCOPE)
endfunction()

# Stops with FATAL_ERROR if any of `edges` breaks the rule.
function(qnet_enforce_dependency_rule edges)
  qnet_dependency_rule_violations(violations "${edges}")
  if(violations)
    list(JOIN violations "\n  " text)
    message(FATAL_ERROR "qnet dependency rule broken:\n  ${text}\n"
            "Remove the edge, or if the design changes, allow it in cmake/dependency_rule.cmake "
            "and the table in docs/architecture.md (\"Dependency rule\").")
  endif()
endfunction()

# The edges of every target under `dir` the rule covers, every qnet_* library
# and the executables named in the rule: "from>" for each, "from>to" for each
# direct link to a qnet library, Boost or gRPC.
function(qnet_collect_edges dir out)
  set(edges "")
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(target IN LISTS targets)
    get_target_property(type ${target} TYPE)
    if(NOT target IN_LIST QNET_RULE_TARGETS AND NOT (target MATCHES "^qnet_" AND type MATCHES "LIBRARY"))
      continue()  # tests, benchmarks, tools
    endif()
    list(APPEND edges "${target}>")
    set(links "")
    if(NOT type STREQUAL "INTERFACE_LIBRARY")
      get_target_property(direct ${target} LINK_LIBRARIES)
      if(direct)
        list(APPEND links ${direct})
      endif()
    endif()
    get_target_property(interface ${target} INTERFACE_LINK_LIBRARIES)
    if(interface)
      list(APPEND links ${interface})
    endif()
    list(REMOVE_DUPLICATES links)
    foreach(link IN LISTS links)
      if(link MATCHES "^(qnet_|gRPC::|Boost::)")
        list(APPEND edges "${target}>${link}")
      endif()
    endforeach()
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    qnet_collect_edges(${sub} sub_edges)
    list(APPEND edges ${sub_edges})
  endforeach()
  set(${out} ${edges} PARENT_SCOPE)
endfunction()

# Called at the end of the top CMakeLists.txt. Also writes the edges to
# dependency_edges.txt in the build directory for tests/dependency_rule/.
function(qnet_check_dependency_rule)
  qnet_collect_edges(${PROJECT_SOURCE_DIR} edges)
  list(REMOVE_DUPLICATES edges)
  file(WRITE ${PROJECT_BINARY_DIR}/dependency_edges.txt "${edges}")
  qnet_enforce_dependency_rule("${edges}")
endfunction()
