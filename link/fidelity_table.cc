#include "link/fidelity_table.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status.h"
#include "physical/memory_noise.h"

namespace qnet::link {

std::vector<double> DefaultAlphaGrid() {
  std::vector<double> grid;
  for (int i = 1; i <= 9; ++i) grid.push_back(0.001 * i);
  for (int i = 2; i <= 100; ++i) grid.push_back(0.005 * i);
  return grid;
}

absl::StatusOr<FidelityTable> FidelityTable::Build(const physical::NodeHardware& a,
                                                   const physical::NodeHardware& b,
                                                   const physical::LinkPhysics& link,
                                                   const std::vector<double>& alpha_grid) {
  FidelityTable table;
  table.a_ = a;
  table.b_ = b;
  const Duration d_a = FibreDelay(link.length_a_km());
  const Duration d_b = FibreDelay(link.length_b_km());
  const Duration whole = FibreDelay(link.length_km);
  // Click at t: A hears at t + d_a, B at t + d_b; each report takes `whole`.
  // A delivers at t + max(d_a, d_b + whole), B at t + max(d_b, d_a + whole);
  // a qubit's wait runs from its emission at t - d.
  const Duration at_a = std::max(d_a, d_b + whole);
  const Duration at_b = std::max(d_b, d_a + whole);
  table.keep_at_a_ = {at_a + d_a, at_a + d_b};
  table.keep_at_b_ = {at_b + d_a, at_b + d_b};
  table.measure_ = {2 * d_a + a.measurement_time, 2 * d_b + b.measurement_time};

  std::vector<double> alphas;
  if (link.scheme != physical::HeraldingScheme::kSingleClick) {
    alphas = {0.0};  // only single-click has a bright-state parameter
  } else {
    alphas = alpha_grid;
    std::sort(alphas.begin(), alphas.end());
    alphas.erase(std::unique(alphas.begin(), alphas.end()), alphas.end());
  }
  if (alphas.empty()) return absl::InvalidArgumentError("the link layer's alpha grid is empty");
  for (double alpha : alphas) {
    QNET_ASSIGN_OR_RETURN(physical::LinkCalibration calibration, physical::Calibrate(a, b, link, alpha));
    Entry entry;
    entry.calibration = std::move(calibration);
    const auto estimate = [&](Waits w) {
      return physical::FidelityAfterWait(entry.calibration, a, b, w.a, w.b);
    };
    entry.keep = std::min(estimate(table.keep_at_a_), estimate(table.keep_at_b_));
    entry.measure = estimate(table.measure_);
    table.entries_.push_back(std::move(entry));
  }
  return table;
}

absl::StatusOr<FidelityTable::Choice> FidelityTable::Choose(RequestType type, double min_fidelity) const {
  const Entry* best = nullptr;
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    if (!(it->calibration.success_probability > 0.0)) continue;
    const double f = type == RequestType::kKeep ? it->keep : it->measure;
    if (f >= min_fidelity) {
      return Choice{it->calibration.bright_state_alpha, f, &it->calibration};
    }
    const double best_f = best == nullptr ? -1.0 : (type == RequestType::kKeep ? best->keep : best->measure);
    if (f > best_f) best = &*it;
  }
  if (best == nullptr) {
    return absl::FailedPreconditionError("UNSUPPORTED: the link never heralds a success with its hardware");
  }
  const double best_f = type == RequestType::kKeep ? best->keep : best->measure;
  return absl::FailedPreconditionError(absl::StrFormat(
      "UNSUPPORTED: min_fidelity %.4f is out of reach; the best this link's hardware delivers for a %s pair is "
      "%.4f%s",
      min_fidelity, type == RequestType::kKeep ? "KEEP" : "MEASURE", best_f,
      entries_.size() > 1 ? absl::StrFormat(" (bright-state alpha %g)", best->calibration.bright_state_alpha)
                          : std::string()));
}

absl::StatusOr<FidelityTable::Choice> FidelityTable::Best(RequestType type) const {
  const Entry* best = nullptr;
  for (const Entry& e : entries_) {
    if (!(e.calibration.success_probability > 0.0)) continue;
    const double f = type == RequestType::kKeep ? e.keep : e.measure;
    if (best == nullptr || f > (type == RequestType::kKeep ? best->keep : best->measure)) best = &e;
  }
  if (best == nullptr) {
    return absl::FailedPreconditionError("UNSUPPORTED: the link never heralds a success with its hardware");
  }
  return Choice{best->calibration.bright_state_alpha, type == RequestType::kKeep ? best->keep : best->measure,
                &best->calibration};
}

const physical::LinkCalibration* FidelityTable::Find(double alpha) const {
  for (const Entry& e : entries_) {
    if (std::bit_cast<uint64_t>(e.calibration.bright_state_alpha) == std::bit_cast<uint64_t>(alpha)) {
      return &e.calibration;
    }
  }
  return nullptr;
}

double FidelityTable::Estimate(double alpha, Duration wait_a, Duration wait_b) const {
  const physical::LinkCalibration* c = Find(alpha);
  if (c == nullptr) return 0.0;
  // Memories that do not decay keep the fidelity at herald, whatever the
  // wait (FidelityAfterWait would give the same, per pair, at some cost).
  if (!physical::HasIdleNoise(a_) && !physical::HasIdleNoise(b_)) return c->fidelity;
  return physical::FidelityAfterWait(*c, a_, b_, std::max(Duration{0}, wait_a), std::max(Duration{0}, wait_b));
}

}  // namespace qnet::link
