// Estimates of bounded quantities from finite samples: a fidelity is at most
// 1 and CHSH S at most 2 sqrt(2) (Tsirelson), yet an estimate from a few
// hundred outcomes can land above its bound. Reports print the raw estimate
// (it is what the outcomes say, and an average over runs needs it unclamped)
// and say why it is above the bound.
#pragma once

#include <cmath>
#include <string>
#include <string_view>

#include "absl/strings/str_format.h"

namespace qnet::apps {

inline constexpr double kTsirelsonBound = 2.8284271247461903;  // 2 sqrt(2)

// "" when `value` is within `bound`; otherwise a note for a report line,
// e.g. " - above the quantum bound 2.828 by 1.8 standard errors: a
// statistical fluctuation". Beyond 3 standard errors a fluctuation is
// unlikely, and the note says so.
inline std::string AboveBoundNote(double value, double standard_error, double bound, std::string_view bound_name) {
  if (!(value > bound)) return "";
  const double sigmas = standard_error > 0 ? (value - bound) / standard_error : INFINITY;
  return absl::StrFormat(" - above the %s %.4g by %.1f standard errors: %s", bound_name, bound, sigmas,
                         sigmas <= 3 ? "a statistical fluctuation" : "unlikely by chance; please report it");
}

}  // namespace qnet::apps
