// Daemon logging: one line per event on stderr, carrying the wall time, the
// level, the node name and the protocol stack's (scaled) time - readable
// text, or one JSON object per line (qnetd --log-format json) for jq and
// `qnetctl logs`. Events may carry fields (layer, circuit, request, link) so
// that one request can be followed across daemons. Thread-safe; several
// daemons in one process (tests) each have a Logger.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "core/time.h"

namespace qnet::daemon {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };
enum class LogFormat { kText, kJson };

// "error", "warn", "info", "debug".
absl::StatusOr<LogLevel> ParseLogLevel(std::string_view name);
// "text", "json".
absl::StatusOr<LogFormat> ParseLogFormat(std::string_view name);

// A named value an event carries: text lines end in "[key=value ...]",
// JSON lines have it as a field.
struct LogField {
  std::string key;
  std::string value;
};
using LogFields = std::vector<LogField>;

class Logger {
 public:
  Logger(std::string node, LogLevel level, LogFormat format = LogFormat::kText)
      : node_(std::move(node)), level_(level), format_(format) {}

  // Lets lines carry the protocol stack's clock as well as wall time.
  void set_clock(std::function<TimePoint()> clock) { clock_ = std::move(clock); }

  bool Enabled(LogLevel level) const { return level <= level_; }
  LogLevel level() const { return level_; }
  const std::string& node() const { return node_; }
  void Log(LogLevel level, std::string_view message, const LogFields& fields = {}) const;

 private:
  std::string node_;
  LogLevel level_;
  LogFormat format_;
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

// QNET_LOG_WITH(logger, kInfo, fields, "format %s", arg): an event with fields.
#define QNET_LOG_WITH(logger, lvl, fields, ...)                                              \
  do {                                                                                       \
    if ((logger).Enabled(::qnet::daemon::LogLevel::lvl)) {                                   \
      (logger).Log(::qnet::daemon::LogLevel::lvl, ::absl::StrFormat(__VA_ARGS__), (fields)); \
    }                                                                                        \
  } while (0)
