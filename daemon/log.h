// Daemon logging: one readable line per event on stderr, carrying the wall
// time, the level, the node name and the protocol stack's (scaled) time.
// Thread-safe; several daemons in one process (tests) each have a Logger.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "core/time.h"

namespace qnet::daemon {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

// "error", "warn", "info", "debug".
absl::StatusOr<LogLevel> ParseLogLevel(std::string_view name);

class Logger {
 public:
  Logger(std::string node, LogLevel level) : node_(std::move(node)), level_(level) {}

  // Lets lines carry the protocol stack's clock as well as wall time.
  void set_clock(std::function<TimePoint()> clock) { clock_ = std::move(clock); }

  bool Enabled(LogLevel level) const { return level <= level_; }
  LogLevel level() const { return level_; }
  const std::string& node() const { return node_; }
  void Log(LogLevel level, std::string_view message) const;

 private:
  std::string node_;
  LogLevel level_;
  std::function<TimePoint()> clock_;
};

}  // namespace qnet::daemon

// QNET_LOG(logger, kInfo, "format %s", arg): formats only when enabled.
#define QNET_LOG(logger, lvl, ...)                                                   \
  do {                                                                               \
    if ((logger).Enabled(::qnet::daemon::LogLevel::lvl)) {                           \
      (logger).Log(::qnet::daemon::LogLevel::lvl, ::absl::StrFormat(__VA_ARGS__));   \
    }                                                                                \
  } while (0)
