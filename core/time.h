// Time as the protocol stack sees it: nanoseconds since the runtime's epoch.
// The simulator advances it virtually; the daemon derives it from the wall
// clock times a scale factor. Protocol code never reads a system clock.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>

namespace qnet {

// Tag clock for the runtime's time line (no now(): only the runtime knows it).
struct RuntimeClock {
  using rep = int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<RuntimeClock>;
  static constexpr bool is_steady = true;
};

using Duration = std::chrono::nanoseconds;
using TimePoint = RuntimeClock::time_point;

inline constexpr double ToSeconds(Duration d) { return static_cast<double>(d.count()) * 1e-9; }
// The longest timeout a request from outside may name (simulated seconds,
// ~11.6 days): far inside Duration's range (~292 years), so FromSeconds and
// arithmetic on the result cannot overflow.
inline constexpr double kMaxRequestTimeoutS = 1e6;
inline Duration FromSeconds(double s) { return Duration(static_cast<int64_t>(std::llround(s * 1e9))); }
inline constexpr double SecondsSinceEpoch(TimePoint t) { return ToSeconds(t.time_since_epoch()); }

// Light in standard telecom fibre (refractive index ~1.5): 2e5 km/s, 5 us/km.
inline constexpr double kFibreLightSpeedKmPerSecond = 2.0e5;
inline Duration FibreDelay(double length_km) { return FromSeconds(length_km / kFibreLightSpeedKmPerSecond); }

// "1.5ms", "20us", "3s": for logs and CLI output.
std::string FormatDuration(Duration d);

}  // namespace qnet
