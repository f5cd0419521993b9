#include "apps/ghz_statistics.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"

namespace qnet::apps {
namespace {

double BinomialSe(double mean_pm1, uint64_t n) {
  return std::sqrt(std::max(0.0, 1.0 - mean_pm1 * mean_pm1) / static_cast<double>(n));
}

}  // namespace

absl::StatusOr<GhzEstimate> EstimateGhz(const std::vector<GhzSettingTally>& tallies) {
  if (tallies.empty()) return absl::InvalidArgumentError("no GHZ settings were measured");
  const size_t n = tallies.front().bases.size();
  if (n < 2 || n > 16) return absl::InvalidArgumentError(absl::StrCat("a GHZ estimate needs 2 to 16 qubits, not ", n));
  GhzEstimate e;
  e.qubits = static_cast<int>(n);
  const uint64_t all_ones = (uint64_t{1} << n) - 1;
  bool have_z = false;
  std::set<std::string> xy_seen;
  double coherence_var = 0.0;
  for (const GhzSettingTally& t : tallies) {
    if (t.bases.size() != n || t.counts.size() != (size_t{1} << n)) {
      return absl::InvalidArgumentError(absl::StrCat("setting '", t.bases, "' does not match ", n, " qubits"));
    }
    uint64_t shots = 0;
    for (uint64_t c : t.counts) shots += c;
    if (shots == 0) return absl::InvalidArgumentError(absl::StrCat("setting '", t.bases, "' has no shots"));
    e.shots += shots;
    GhzEstimate::Setting s{t.bases, shots, 0.0, 0.0};
    if (t.bases == std::string(n, 'Z')) {
      if (have_z) return absl::InvalidArgumentError(absl::StrCat("setting '", t.bases, "' is listed twice"));
      const double p = static_cast<double>(t.counts[0] + t.counts[all_ones]) / static_cast<double>(shots);
      s.expectation = p;
      s.se = std::sqrt(p * (1 - p) / static_cast<double>(shots));
      e.populations = p;
      e.populations_se = s.se;
      have_z = true;
    } else {
      int ys = 0;
      for (char b : t.bases) {
        if (b == 'Y') {
          ++ys;
        } else if (b != 'X') {
          return absl::InvalidArgumentError(absl::StrCat("setting '", t.bases, "' mixes Z with X/Y"));
        }
      }
      if (ys % 2 != 0) return absl::InvalidArgumentError(absl::StrCat("setting '", t.bases, "' has an odd number of Y"));
      double sum = 0.0;
      for (uint64_t pattern = 0; pattern < t.counts.size(); ++pattern) {
        sum += (__builtin_popcountll(pattern) % 2 == 0 ? 1.0 : -1.0) * static_cast<double>(t.counts[pattern]);
      }
      s.expectation = sum / static_cast<double>(shots);
      s.se = BinomialSe(s.expectation, shots);
      const double sign = (ys / 2) % 2 == 0 ? 1.0 : -1.0;
      e.mermin += sign * s.expectation;
      coherence_var += s.se * s.se;
      if (!xy_seen.insert(t.bases).second) {
        return absl::InvalidArgumentError(absl::StrCat("setting '", t.bases, "' is listed twice"));
      }
    }
    e.settings.push_back(std::move(s));
  }
  const size_t xy_needed = size_t{1} << (n - 1);
  if (!have_z || xy_seen.size() != xy_needed) {
    return absl::InvalidArgumentError(absl::StrCat("a GHZ estimate on ", n, " qubits needs the all-Z setting and all ",
                                                   xy_needed, " X/Y settings with an even number of Y; got ",
                                                   have_z ? "Z and " : "no Z and ", xy_seen.size()));
  }
  const double scale = std::ldexp(1.0, static_cast<int>(n) - 1);  // 2^(N-1)
  e.mermin_se = std::sqrt(coherence_var);
  e.coherence = e.mermin / scale;
  e.coherence_se = e.mermin_se / scale;
  e.fidelity = (e.populations + e.coherence) / 2;
  e.fidelity_se = std::hypot(e.populations_se, e.coherence_se) / 2;
  e.mermin_quantum_max = scale;
  e.mermin_local_bound = std::ldexp(1.0, static_cast<int>(n % 2 == 0 ? n / 2 : (n - 1) / 2));
  e.mermin_violation_sigmas =
      e.mermin_se > 0 ? (e.mermin - e.mermin_local_bound) / e.mermin_se
                      : (e.mermin > e.mermin_local_bound ? INFINITY : -INFINITY);
  return e;
}

double GhzFusionFidelity(int qubits, double p) {
  const int k = qubits - 1;
  return (std::pow((1 + p) / 2, k) + std::pow(p, k)) / 2;
}

double GhzFusionMermin(int qubits, double p) { return std::ldexp(std::pow(p, qubits - 1), qubits - 1); }

}  // namespace qnet::apps
