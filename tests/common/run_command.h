// Runs a shell command for a test and returns what it printed on stdout (the
// command may add 2>&1), with its exit code: how tests drive qnetsim and
// qnetctl as a user would.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace qnet::testing {

inline std::string RunCommand(const std::string& command, int* exit_code) {
  std::string out;
  *exit_code = -1;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  const int status = pclose(pipe);
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

}  // namespace qnet::testing
