# Writes a man page (roff) from a program's own --help, so the page and the
# help can never disagree. For qnetctl, every command's `qnetctl CMD --help`
# follows as a subsection.
#   cmake -DPROGRAM=path -DNAME=qnetctl -DSUMMARY="..." -DOUT=qnetctl.1 -P man_page.cmake
function(qnet_run_help out_var)
  execute_process(COMMAND ${ARGN} OUTPUT_VARIABLE text RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${ARGN} exited ${rc}: ${err}")
  endif()
  set(${out_var} "${text}" PARENT_SCOPE)
endfunction()

# roff: a backslash is \e; a line starting with . or ' would be a request.
function(qnet_roff_escape out_var text)
  string(REPLACE "\\" "\\e" text "${text}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" text "${text}")
  set(${out_var} "${text}" PARENT_SCOPE)
endfunction()

qnet_run_help(help "${PROGRAM}" --help)
qnet_roff_escape(body "${help}")
set(page ".TH ${NAME} 1 \"\" \"qnet\" \"qnet manual\"\n.SH NAME\n${NAME} \\- ${SUMMARY}\n.SH DESCRIPTION\n.nf\n${body}\n.fi\n")
if(NAME STREQUAL "qnetctl")
  # The command names: the lines of the "Commands:" section that start with two spaces and a word.
  string(REGEX MATCH "Commands:\n(.*)\nGlobal options" commands "${help}")
  string(REGEX MATCHALL "\n  [a-z][a-z-]*" names "\n${CMAKE_MATCH_1}")
  string(APPEND page ".SH COMMANDS\n")
  foreach(name IN LISTS names)
    string(STRIP "${name}" name)
    qnet_run_help(command_help "${PROGRAM}" ${name} --help)
    qnet_roff_escape(command_body "${command_help}")
    string(APPEND page ".SS ${name}\n.nf\n${command_body}\n.fi\n")
  endforeach()
endif()
string(APPEND page ".SH SEE ALSO\nqnetd(1), qnetctl(1), qnetsim(1); README.md of the qnet sources.\n")
file(WRITE "${OUT}" "${page}")
