// The range a sweep runs over, as a user writes it on the command line
// (`--sweep length_km=0:100:10`, `--sweep hops=1:8`): the x axis of the
// figures qnetsim and qnetctl draw.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace qnet::plot {

// The parameters a sweep can vary.
inline constexpr std::string_view kSweepLengthKm = "length_km";  // a link's length (or every link's)
inline constexpr std::string_view kSweepHops = "hops";           // hops from --from to the far end

inline constexpr size_t kMaxSweepPoints = 200;

struct SweepRange {
  std::string parameter;  // kSweepLengthKm or kSweepHops
  double start = 0.0;
  double stop = 0.0;
  double step = 1.0;
  // start, start + step, ... up to stop (included, within rounding).
  std::vector<double> Values() const;
};

// "PARAM=START:STOP:STEP", e.g. "length_km=0:100:10" or "hops=1:8:1" (STEP
// may be left out: 1). InvalidArgument naming what is wrong: an unknown
// parameter, STOP < START, STEP <= 0, more than kMaxSweepPoints points, a
// negative length, hops that are not whole numbers >= 1.
absl::StatusOr<SweepRange> ParseSweep(const std::string& spec);

}  // namespace qnet::plot
