// The transport layer's pure parts: the teleportation correction for every
// Bell-state outcome and pair frame (checked on the density-matrix engine),
// the input states, and the outcome-only estimate of a teleported state.
#include <array>
#include <cmath>
#include <vector>

#include "core/rng.h"
#include "gtest/gtest.h"
#include "quantum/bell.h"
#include "quantum/gates.h"
#include "quantum/quantum_system.h"
#include "transport/qubit_state.h"
#include "transport/transport_layer.h"

namespace qnet::transport {
namespace {

using quantum::BellState;

// Data qubit D in |psi>, pair (A, B) in B(frame) with A first; the BSM of
// (D, A) and the correction on B must leave B in |psi>. Outcomes are random,
// so each frame is run until all four outcomes have been seen.
TEST(TeleportMathTest, CorrectionRestoresTheStateForEveryOutcomeAndPairFrame) {
  Rng rng(42);
  const std::vector<BlochAngles> states = {{0.3, 1.1}, {2.0, -0.7}, {M_PI / 2, M_PI / 2}, {M_PI, 0.0}};
  int checked = 0;
  for (int frame_index = 0; frame_index < 4; ++frame_index) {
    const BellState frame = static_cast<BellState>(frame_index);
    std::array<bool, 4> seen{};
    for (int run = 0; run < 400 && !(seen[0] && seen[1] && seen[2] && seen[3]); ++run) {
      const BlochAngles& state = states[static_cast<size_t>(run) % states.size()];
      quantum::QuantumSystem system;
      const std::array<quantum::QubitId, 3> ids = {1, 2, 3};  // D, A, B
      for (quantum::QubitId q : ids) ASSERT_TRUE(system.Create(q).ok());
      const quantum::Vector psi = StateVector(state);
      ASSERT_TRUE(system.Prepare(std::span(&ids[0], 1), psi * psi.adjoint()).ok());
      ASSERT_TRUE(system.Prepare(std::span(&ids[1], 2), quantum::BellDensity(frame)).ok());
      absl::StatusOr<BellState> measured = system.BellMeasure(ids[0], ids[1], rng);
      ASSERT_TRUE(measured.ok()) << measured.status();
      const BellState c = TeleportCorrection(*measured, frame);
      ASSERT_TRUE(system.ApplyUnitary(quantum::gates::Pauli(quantum::XBit(c), quantum::ZBit(c)), std::span(&ids[2], 1)).ok());
      absl::StatusOr<double> f = system.Fidelity(std::span(&ids[2], 1), psi);
      ASSERT_TRUE(f.ok()) << f.status();
      EXPECT_NEAR(*f, 1.0, 1e-12) << "frame " << quantum::BellName(frame) << " outcome "
                                  << quantum::BellName(*measured);
      if (!seen[static_cast<size_t>(*measured)]) ++checked;
      seen[static_cast<size_t>(*measured)] = true;
    }
  }
  EXPECT_EQ(checked, 16);
}

// Without the frame (or without the outcome) the state is wrong for some
// combination: the test above would catch a correction that ignores either.
TEST(TeleportMathTest, IgnoringThePairFrameWouldBeWrong) {
  for (int m = 0; m < 4; ++m) {
    for (int p = 1; p < 4; ++p) {
      EXPECT_NE(TeleportCorrection(static_cast<BellState>(m), static_cast<BellState>(p)), static_cast<BellState>(m));
    }
  }
}

TEST(TeleportMathTest, NamedStatesHaveTheirBlochVectors) {
  const std::vector<std::pair<NamedState, std::array<double, 3>>> cases = {
      {NamedState::kZero, {0, 0, 1}},  {NamedState::kOne, {0, 0, -1}},   {NamedState::kPlus, {1, 0, 0}},
      {NamedState::kMinus, {-1, 0, 0}}, {NamedState::kPlusI, {0, 1, 0}}, {NamedState::kMinusI, {0, -1, 0}}};
  for (const auto& [state, expected] : cases) {
    const std::array<double, 3> n = BlochVector(ToAngles(state));
    for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(n[i], expected[i], 1e-12) << NamedStateName(state);
    // The state vector's expectation values agree with the Bloch vector.
    const quantum::Vector v = StateVector(ToAngles(state));
    const std::array<quantum::Matrix, 3> paulis = {quantum::gates::X(), quantum::gates::Y(), quantum::gates::Z()};
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_NEAR((v.adjoint() * paulis[i] * v)(0, 0).real(), expected[i], 1e-12) << NamedStateName(state);
    }
    absl::StatusOr<NamedState> parsed = ParseNamedState(NamedStateName(state));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, state);
  }
  EXPECT_EQ(*ParseNamedState("+i"), NamedState::kPlusI);
  EXPECT_EQ(*ParseNamedState("-"), NamedState::kMinus);
  absl::StatusOr<NamedState> bad = ParseNamedState("|2>");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("+i"), std::string::npos) << bad.status();
}

// Outcomes drawn from a known mixed state (Bloch vector shrunk by 0.8): the
// estimated fidelity is within 5 standard errors of the true one, and the
// standard error is the binomial one.
TEST(TeleportMathTest, OutcomeEstimateMatchesTheTruthWithinFiveSigma) {
  Rng rng(7);
  const uint64_t shots = 3000;  // per axis
  for (int k = 0; k < 20; ++k) {
    const BlochAngles intended{std::acos(1 - 2 * rng.Uniform()), 2 * M_PI * rng.Uniform()};
    const std::array<double, 3> n = BlochVector(intended);
    const double shrink = 0.8;
    std::array<AxisCounts, 3> counts;
    for (size_t i = 0; i < 3; ++i) {
      counts[i].shots = shots;
      const double p_plus = (1 + shrink * n[i]) / 2;
      for (uint64_t s = 0; s < shots; ++s) counts[i].plus += rng.Bernoulli(p_plus) ? 1 : 0;
    }
    absl::StatusOr<BlochEstimate> e = EstimateFromOutcomes(counts[0], counts[1], counts[2], intended);
    ASSERT_TRUE(e.ok()) << e.status();
    const double truth = (1 + shrink) / 2;
    EXPECT_NEAR(e->fidelity, truth, 5 * e->fidelity_standard_error);
    // sigma_F^2 = sum n_i^2 (1 - (0.8 n_i)^2) / (4 shots): the estimate's error is that, to a few percent.
    double var = 0;
    for (size_t i = 0; i < 3; ++i) var += n[i] * n[i] * (1 - shrink * shrink * n[i] * n[i]) / (4.0 * shots);
    EXPECT_NEAR(e->fidelity_standard_error, std::sqrt(var), 0.1 * std::sqrt(var));
    for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(e->r[i], shrink * n[i], 5 * e->standard_error[i]);
  }
  AxisCounts none;
  EXPECT_EQ(EstimateFromOutcomes(none, {1, 1}, {1, 0}, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EstimateFromOutcomes({1, 2}, {1, 1}, {1, 0}, {}).status().code(), absl::StatusCode::kInvalidArgument);
  // All outcomes agree: fidelity 1 with a small, non-zero error.
  absl::StatusOr<BlochEstimate> pure = EstimateFromOutcomes({100, 50}, {100, 50}, {100, 100}, {});
  ASSERT_TRUE(pure.ok());
  EXPECT_NEAR(pure->fidelity, 1.0, 1e-12);
  EXPECT_GT(pure->fidelity_standard_error, 0.0);
}

}  // namespace
}  // namespace qnet::transport
