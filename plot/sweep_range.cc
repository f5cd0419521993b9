#include "plot/sweep_range.h"

#include <cmath>
#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace qnet::plot {

std::vector<double> SweepRange::Values() const {
  std::vector<double> values;
  // Counted, not accumulated, so 0:1:0.1 ends at 1 and not at 0.9999.
  const double count = std::floor((stop - start) / step + 1e-9);
  for (int64_t i = 0; i <= static_cast<int64_t>(count) && values.size() < kMaxSweepPoints; ++i) {
    values.push_back(start + static_cast<double>(i) * step);
  }
  return values;
}

absl::StatusOr<SweepRange> ParseSweep(const std::string& spec) {
  const std::vector<std::string> sides = absl::StrSplit(spec, absl::MaxSplits('=', 1));
  if (sides.size() != 2) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--sweep '%s' is not PARAM=START:STOP[:STEP], e.g. length_km=0:100:10 or hops=1:8", spec));
  }
  SweepRange range;
  range.parameter = sides[0];
  if (range.parameter != kSweepLengthKm && range.parameter != kSweepHops) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--sweep parameter '%s' is unknown (one of: %s, %s)", sides[0], kSweepLengthKm, kSweepHops));
  }
  const std::vector<std::string> parts = absl::StrSplit(sides[1], ':');
  if (parts.size() != 2 && parts.size() != 3) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--sweep range '%s' is not START:STOP[:STEP], e.g. 0:100:10", sides[1]));
  }
  double* fields[] = {&range.start, &range.stop, &range.step};
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!absl::SimpleAtod(parts[i], fields[i]) || !std::isfinite(*fields[i])) {
      return absl::InvalidArgumentError(absl::StrFormat("--sweep: '%s' is not a number", parts[i]));
    }
  }
  if (range.stop < range.start) {
    return absl::InvalidArgumentError(absl::StrFormat("--sweep: STOP %g is below START %g", range.stop, range.start));
  }
  if (!(range.step > 0)) return absl::InvalidArgumentError(absl::StrFormat("--sweep: STEP %g must be positive", range.step));
  if ((range.stop - range.start) / range.step + 1 > static_cast<double>(kMaxSweepPoints) + 1e-6) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--sweep %s has more than %d points; take a larger STEP", spec, kMaxSweepPoints));
  }
  if (range.parameter == kSweepLengthKm && range.start < 0) {
    return absl::InvalidArgumentError(absl::StrFormat("--sweep: a length of %g km is negative", range.start));
  }
  if (range.parameter == kSweepHops) {
    for (double v : {range.start, range.step}) {
      if (v != std::floor(v)) return absl::InvalidArgumentError(absl::StrFormat("--sweep: hops %g is not a whole number", v));
    }
    if (range.start < 1) return absl::InvalidArgumentError("--sweep: hops start at 1");
  }
  return range;
}

}  // namespace qnet::plot
