#include "daemon/log.h"

#include <cstdio>
#include <mutex>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace qnet::daemon {
namespace {
std::mutex& StderrMutex() {
  static std::mutex m;
  return m;
}
}  // namespace

absl::StatusOr<LogLevel> ParseLogLevel(std::string_view name) {
  if (name == "error") return LogLevel::kError;
  if (name == "warn") return LogLevel::kWarn;
  if (name == "info") return LogLevel::kInfo;
  if (name == "debug") return LogLevel::kDebug;
  return absl::InvalidArgumentError(
      absl::StrFormat("unknown log level '%s' (expected error, warn, info or debug)", name));
}

void Logger::Log(LogLevel level, std::string_view message) const {
  static constexpr char kLetters[] = {'E', 'W', 'I', 'D'};
  std::string wall = absl::FormatTime("%Y-%m-%d %H:%M:%E3S", absl::Now(), absl::LocalTimeZone());
  std::string sim = clock_ ? absl::StrFormat(" t=%.6fs", SecondsSinceEpoch(clock_())) : "";
  std::string line = absl::StrFormat("%s %c %s%s %s\n", wall, kLetters[static_cast<int>(level)], node_, sim,
                                     message);
  std::lock_guard<std::mutex> lock(StderrMutex());
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace qnet::daemon
