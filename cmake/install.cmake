# Installing qnet like any tool: `cmake --install build [--prefix P]` puts
# qnetd, qnetctl and qnetsim in bin/, the example networks in
# share/qnet/examples, man pages made from the programs' own --help in
# share/man/man1, and bash completion for qnetctl; `cpack` (run in the build
# directory) makes a Debian package of the same files.
include(GNUInstallDirs)

install(TARGETS qnetd qnetctl qnetsim RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/examples/ DESTINATION ${CMAKE_INSTALL_DATADIR}/qnet/examples
        FILES_MATCHING PATTERN "*.yaml" PATTERN "README.md")
install(FILES ${PROJECT_SOURCE_DIR}/tools/completion/qnetctl.bash
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME qnetctl)

# Man pages: generated after each program is linked (the sanitizer build's
# programs must not fail --help for a leak report at exit).
set(QNET_MAN_PAGES)
foreach(program IN ITEMS qnetd qnetctl qnetsim)
  if(program STREQUAL "qnetd")
    set(summary "the qnet daemon: one node of a quantum network, peering over gRPC")
  elseif(program STREQUAL "qnetctl")
    set(summary "run and use a multi-process qnet network")
  else()
    set(summary "the qnet network simulator (in-process, seeded)")
  endif()
  set(page ${CMAKE_CURRENT_BINARY_DIR}/man/${program}.1)
  add_custom_command(
    OUTPUT ${page}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/man
    COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=0
            ${CMAKE_COMMAND} -DPROGRAM=$<TARGET_FILE:${program}> -DNAME=${program} "-DSUMMARY=${summary}"
            -DOUT=${page} -P ${PROJECT_SOURCE_DIR}/cmake/man_page.cmake
    DEPENDS ${program} ${PROJECT_SOURCE_DIR}/cmake/man_page.cmake
    COMMENT "man page ${program}.1 from ${program} --help"
    VERBATIM)
  list(APPEND QNET_MAN_PAGES ${page})
endforeach()
add_custom_target(qnet_man_pages ALL DEPENDS ${QNET_MAN_PAGES})
install(FILES ${QNET_MAN_PAGES} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

# A .deb of the installed files; its Depends come from the programs' shared
# libraries (dpkg-shlibdeps), so it installs on a clean Debian 12.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME qnet)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "qnet developers <qnet@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "layered quantum network protocol stack: daemons, CLI and simulator")
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# Stripped and gzip-compressed: the debug info is most of the programs' size,
# and xz takes minutes over it.
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
include(CPack)
