#include "daemon/log.h"

#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
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

absl::StatusOr<LogFormat> ParseLogFormat(std::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError(absl::StrFormat("unknown log format '%s' (expected text or json)", name));
}

void Logger::Log(LogLevel level, std::string_view message, const LogFields& fields) const {
  std::string line;
  if (format_ == LogFormat::kJson) {
    static constexpr const char* kNames[] = {"error", "warn", "info", "debug"};
    nlohmann::json j;
    // UTC, microseconds: sortable as text, the same on every host.
    j["time"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone());
    if (clock_) j["t_sim_s"] = SecondsSinceEpoch(clock_());
    j["level"] = kNames[static_cast<int>(level)];
    j["node"] = node_;
    for (const LogField& f : fields) j[f.key] = f.value;
    j["msg"] = std::string(message);
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  } else {
    static constexpr char kLetters[] = {'E', 'W', 'I', 'D'};
    std::string wall = absl::FormatTime("%Y-%m-%d %H:%M:%E3S", absl::Now(), absl::LocalTimeZone());
    std::string sim = clock_ ? absl::StrFormat(" t=%.6fs", SecondsSinceEpoch(clock_())) : "";
    std::string tags;
    for (const LogField& f : fields) absl::StrAppend(&tags, tags.empty() ? " [" : " ", f.key, "=", f.value);
    if (!tags.empty()) tags += "]";
    line = absl::StrFormat("%s %c %s%s %s%s\n", wall, kLetters[static_cast<int>(level)], node_, sim, message, tags);
  }
  std::lock_guard<std::mutex> lock(StderrMutex());
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace qnet::daemon
