// The physics of one heralded entanglement attempt on a fibre link: given both
// nodes' hardware, the link and (single-click) the bright-state parameter,
// the probability that an attempt succeeds, which Bell state each success
// heralds, and the two-memory-qubit density matrix it leaves behind. Computed
// from a photonic model of emission, fibre loss, the station's beam splitter
// and threshold detectors (with dark counts and imperfect two-photon
// visibility), not from a fitted formula; tests compare it with the schemes'
// published closed forms. The abstract `werner` scheme skips the photons: a
// Werner pair with the link's stated probability, for like-with-like studies.
#pragma once

#include <string_view>
#include <vector>

#include <Eigen/Dense>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/time.h"
#include "physical/params.h"
#include "quantum/bell.h"

namespace qnet::physical {

// One click pattern that counts as success.
struct HeraldedOutcome {
  quantum::BellState label;   // the Bell state this click pattern announces
  double probability = 0.0;   // P(this pattern) per attempt
  Eigen::Matrix4cd state;     // memory state (A, B) given the pattern, trace 1
};

struct AttemptModel {
  double success_probability = 0.0;        // sum of outcomes' probabilities
  std::vector<HeraldedOutcome> outcomes;   // the success patterns
  Duration attempt_duration{0};            // one attempt, including waiting for the herald
  // Photon transmission from each node to a detector click: emission x fibre x detector.
  double transmissivity_a = 0.0;
  double transmissivity_b = 0.0;
};

// Conventions. A node's memory emits a photon iff it is |1> ("bright");
// states are over (A, B) with A the most significant qubit. Outcomes come in
// a fixed order: single-click [D+ -> PSI+, D- -> PSI-] (exactly one detector
// clicks); double-click [(+,+) -> PSI+, (+,-) -> PSI-, (-,+) -> PSI-,
// (-,-) -> PSI+] (one click in each round). The double-click state is the
// one after the second round, with no X applied afterwards.
// attempt_duration: single-click max(emission cycle, round trip to the
// farther end of the link); double-click one emission cycle more (round 2
// follows round 1 without waiting for a herald; the station reports once).
// `bright_state_alpha` is used only for single-click. An outcome of
// probability 0 (no light, no dark counts) carries the state I/4.
//
// Fails with InvalidArgument for parameters outside their physical range
// (efficiencies outside [0,1], negative length, alpha outside (0,1) for
// single-click...), naming the parameter.
absl::StatusOr<AttemptModel> ComputeAttemptModel(const NodeHardware& a, const NodeHardware& b,
                                                 const LinkPhysics& link, double bright_state_alpha);

// Per-detector probability of a dark count in one detection window.
double DarkCountProbability(const LinkPhysics& link);

// Range checks of every field of a node's hardware / a link's physics (the
// heralding model's inputs and the simulated device's): InvalidArgument naming
// the field, e.g. "node_a (alice): emission_efficiency = 1.3 is outside
// [0, 1]". `which` names the node in the message ("node_a (alice)").
absl::Status ValidateNodeHardware(const NodeHardware& node, std::string_view which);
absl::Status ValidateLinkPhysics(const LinkPhysics& link);

}  // namespace qnet::physical
