#include "physical/calibration.h"

#include <cmath>
#include <limits>
#include <utility>

#include "core/status.h"
#include "physical/memory_noise.h"
#include "quantum/bell.h"
#include "quantum/channels.h"

namespace qnet::physical {
namespace {

// rho -> sum_k (K_k on one qubit of the pair) rho (...)^dagger; `first` picks
// the qubit (node_a's is the more significant one).
Eigen::Matrix4cd ApplyToOne(const Eigen::Matrix4cd& rho, const std::vector<quantum::Matrix>& kraus, bool first) {
  Eigen::Matrix4cd out = Eigen::Matrix4cd::Zero();
  const Eigen::Matrix2cd id = Eigen::Matrix2cd::Identity();
  for (const quantum::Matrix& k : kraus) {
    const Eigen::Matrix2cd k2 = k;
    const Eigen::Matrix2cd& left = first ? k2 : id;
    const Eigen::Matrix2cd& right = first ? id : k2;
    Eigen::Matrix4cd full;
    for (int r = 0; r < 4; ++r) {
      for (int c = 0; c < 4; ++c) full(r, c) = left(r >> 1, c >> 1) * right(r & 1, c & 1);
    }
    out += full * rho * full.adjoint();
  }
  return out;
}

double LabelFidelity(quantum::BellState label, const Eigen::Matrix4cd& rho) {
  const Eigen::Vector4cd v = quantum::BellVector(label);
  return std::real(v.dot(rho * v));
}

}  // namespace

double LinkCalibration::MeanGenerationSeconds() const {
  if (!(success_probability > 0.0)) return std::numeric_limits<double>::infinity();
  return ToSeconds(attempt_duration) / success_probability;
}

absl::StatusOr<LinkCalibration> Calibrate(const NodeHardware& a, const NodeHardware& b,
                                          const LinkPhysics& link, double bright_state_alpha) {
  QNET_ASSIGN_OR_RETURN(AttemptModel model, ComputeAttemptModel(a, b, link, bright_state_alpha));
  LinkCalibration calibration;
  calibration.bright_state_alpha = bright_state_alpha;
  calibration.success_probability = model.success_probability;
  calibration.attempt_duration = model.attempt_duration;
  calibration.outcomes = std::move(model.outcomes);
  calibration.fidelity = FidelityAfterWait(calibration, a, b, Duration{0}, Duration{0});
  return calibration;
}

double FidelityAfterWait(const LinkCalibration& calibration, const NodeHardware& a, const NodeHardware& b,
                         Duration wait_a, Duration wait_b) {
  double weighted = 0.0;
  double total = 0.0;
  const std::vector<quantum::Matrix> kraus_a = IdleNoise(a, ToSeconds(wait_a));
  const std::vector<quantum::Matrix> kraus_b = IdleNoise(b, ToSeconds(wait_b));
  const bool decay_a = !kraus_a.empty();
  const bool decay_b = !kraus_b.empty();
  for (const HeraldedOutcome& outcome : calibration.outcomes) {
    if (!(outcome.probability > 0.0)) continue;
    Eigen::Matrix4cd rho = outcome.state;
    if (decay_a) rho = ApplyToOne(rho, kraus_a, true);
    if (decay_b) rho = ApplyToOne(rho, kraus_b, false);
    weighted += outcome.probability * LabelFidelity(outcome.label, rho);
    total += outcome.probability;
  }
  return total > 0.0 ? weighted / total : 0.0;
}

}  // namespace qnet::physical
