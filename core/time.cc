#include "core/time.h"

#include "absl/strings/str_format.h"

namespace qnet {

std::string FormatDuration(Duration d) {
  const double ns = static_cast<double>(d.count());
  const double a = std::fabs(ns);
  if (a < 1e3) return absl::StrFormat("%.0fns", ns);
  if (a < 1e6) return absl::StrFormat("%.3gus", ns / 1e3);
  if (a < 1e9) return absl::StrFormat("%.3gms", ns / 1e6);
  return absl::StrFormat("%.4gs", ns / 1e9);
}

}  // namespace qnet
