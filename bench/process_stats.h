// What the daemon benchmarks read about running qnetd processes from /proc
// (CPU time, threads, open files, resident memory) and the percentile helper
// their counters share.
#pragma once

#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"

namespace qnet::bench {

// CPU seconds (user + system, all threads, also those that ended) process
// `pid` has used so far, or nothing if it cannot be read. From the
// process's CPU-time clock (nanoseconds); else from /proc/PID/stat fields
// 14 and 15, which count whole clock ticks (10 ms: 0.2% of a core over a
// 5 s window, too coarse for idle daemons).
inline std::optional<double> ProcessCpuSeconds(pid_t pid) {
  clockid_t clock;
  timespec used{};
  if (clock_getcpuclockid(pid, &clock) == 0 && clock_gettime(clock, &used) == 0) {
    return static_cast<double>(used.tv_sec) + static_cast<double>(used.tv_nsec) * 1e-9;
  }
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  // The command name (field 2) may hold spaces: count fields after its ')'.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 13; ++i) rest >> field;
  double utime = 0, stime = 0;
  if (!(rest >> utime >> stime)) return std::nullopt;
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Entries of a /proc directory (a process's threads or open files), or
// nothing if it cannot be read.
inline std::optional<int> CountEntries(const std::string& dir) {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) return std::nullopt;
  int n = 0;
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) return std::nullopt;
    ++n;
  }
  return n;
}

inline std::optional<int> ProcessThreads(pid_t pid) { return CountEntries(absl::StrCat("/proc/", pid, "/task")); }
inline std::optional<int> ProcessOpenFiles(pid_t pid) { return CountEntries(absl::StrCat("/proc/", pid, "/fd")); }

// Resident set size in MiB (VmRSS of /proc/PID/status), or nothing.
inline std::optional<double> ProcessRssMiB(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    std::istringstream value(line.substr(6));
    double kib = 0;
    if (value >> kib) return kib / 1024.0;
  }
  return std::nullopt;
}

// The value below which a fraction q of `sorted` lies (nearest rank).
inline double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0.0;
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

}  // namespace qnet::bench
