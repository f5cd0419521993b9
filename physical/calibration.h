// A link's calibration table entry: what the hardware delivers for one
// bright-state parameter (success probability, attempt duration, expected
// fidelity of a heralded pair, and how that fidelity falls while the two
// memories wait). A real device has such a table from characterisation; here
// it is computed from the same attempt model the simulated station samples,
// so the link layer can choose parameters and estimate fidelities without
// ever reading simulated qubit state.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "core/time.h"
#include "physical/heralding_model.h"
#include "physical/params.h"

namespace qnet::physical {

struct LinkCalibration {
  double bright_state_alpha = 0.0;  // the parameter this entry is for (single-click)
  double success_probability = 0.0;
  Duration attempt_duration{0};
  // Expected fidelity of a heralded pair with the Bell state its herald
  // announces, at emission: sum_i p_i <label_i|rho_i|label_i> / sum_i p_i.
  double fidelity = 0.0;
  // Expected time to the first success (attempt_duration / p); infinite if
  // the link never succeeds.
  double MeanGenerationSeconds() const;

  // The herald outcomes behind the numbers (probability, label, state).
  std::vector<HeraldedOutcome> outcomes;
};

// InvalidArgument as ComputeAttemptModel does for impossible parameters.
absl::StatusOr<LinkCalibration> Calibrate(const NodeHardware& a, const NodeHardware& b,
                                          const LinkPhysics& link, double bright_state_alpha);

// The expected fidelity after node_a's memory qubit has waited `wait_a` and
// node_b's `wait_b` since emission, under each node's T1/T2 memory decay
// (the hardware's characterised decoherence, applied to the calibrated
// outcome states).
double FidelityAfterWait(const LinkCalibration& calibration, const NodeHardware& a,
                         const NodeHardware& b, Duration wait_a, Duration wait_b);

}  // namespace qnet::physical
