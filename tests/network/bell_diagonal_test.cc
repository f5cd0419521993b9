// The network layer's Bell-diagonal fidelity model against the exact
// density-matrix engine and published closed forms.
#include "network/bell_diagonal.h"

#include <cmath>

#include "gtest/gtest.h"
#include "physical/memory_noise.h"
#include "quantum/bell.h"
#include "quantum/channels.h"
#include "quantum/gates.h"
#include "quantum/quantum_system.h"
#include "tests/quantum/reference.h"

namespace qnet::network {
namespace {

using quantum::BellState;

TEST(BellDiagonalTest, SwappingWernerPairsMatchesTheClosedForm) {
  for (auto [f1, f2] : {std::pair{1.0, 1.0}, {0.9, 0.8}, {0.95, 0.6}, {0.5, 0.7}}) {
    const double expected = f1 * f2 + (1 - f1) * (1 - f2) / 3;
    EXPECT_NEAR(BellDiagonal::Swap(BellDiagonal::Werner(f1), BellDiagonal::Werner(f2)).fidelity(), expected, 1e-12);
  }
}

// The twirled decay gives the exact fidelity when one qubit of a
// Bell-diagonal pair decays, and (T2 only) when both do. With amplitude
// damping on both, the state between the two channels is no longer
// Bell-diagonal: the model is then an approximation, on the low side here.
TEST(BellDiagonalTest, MemoryDecayMatchesTheEngine) {
  struct Case {
    double f, t, t1, t2;
  };
  for (const Case& c : {Case{1.0, 0.01, physical::kInfinity, 0.05}, Case{1.0, 0.02, 0.1, 0.05},
                        Case{0.85, 0.03, 0.05, 0.02}, Case{0.7, 0.5, 1.0, physical::kInfinity}}) {
    for (bool both : {false, true}) {
      quantum::QuantumSystem sys;
      ASSERT_TRUE(sys.Prepare(std::vector<quantum::QubitId>{1, 2}, quantum::testing::Werner(c.f)).ok());
      ASSERT_TRUE(
          sys.ApplyChannel(quantum::channels::MemoryDecay(c.t, c.t1, c.t2), std::vector<quantum::QubitId>{2}).ok());
      if (both) {
        ASSERT_TRUE(sys.ApplyChannel(quantum::channels::MemoryDecay(c.t / 2, c.t1, c.t2),
                                     std::vector<quantum::QubitId>{1})
                        .ok());
      }
      auto exact = sys.Fidelity(std::vector<quantum::QubitId>{1, 2}, quantum::BellVector(BellState::kPhiPlus));
      ASSERT_TRUE(exact.ok());
      const MemoryDecayRates rates{c.t1, c.t2};
      const double model =
          Decay(BellDiagonal::Werner(c.f), FromSeconds(both ? c.t / 2 : 0.0), rates, FromSeconds(c.t), rates)
              .fidelity();
      if (!both || !std::isfinite(c.t1)) {
        EXPECT_NEAR(model, *exact, 1e-9) << "F=" << c.f << " t=" << c.t << " both=" << both;
      } else {
        EXPECT_LE(model, *exact + 1e-12) << "F=" << c.f << " t=" << c.t;
        EXPECT_GT(model, *exact - 0.04) << "F=" << c.f << " t=" << c.t;
      }
    }
  }
}

// Depolarising memories (the model most studies use) keep a Werner pair
// Werner: the exact engine, running physical::IdleNoise on both qubits, and
// the twirled model agree exactly, with T2 dephasing alongside too.
TEST(BellDiagonalTest, DepolarisingMemoryMatchesTheEngineExactly) {
  for (double t2 : {physical::kInfinity, 0.05}) {
    physical::NodeHardware hw;
    hw.t2_s = t2;
    hw.depolarising_time_s = 0.04;
    quantum::QuantumSystem sys;
    ASSERT_TRUE(sys.Prepare(std::vector<quantum::QubitId>{1, 2}, quantum::testing::Werner(0.9)).ok());
    ASSERT_TRUE(sys.ApplyChannel(physical::IdleNoise(hw, 0.03), std::vector<quantum::QubitId>{1}).ok());
    ASSERT_TRUE(sys.ApplyChannel(physical::IdleNoise(hw, 0.01), std::vector<quantum::QubitId>{2}).ok());
    auto exact = sys.Fidelity(std::vector<quantum::QubitId>{1, 2}, quantum::BellVector(BellState::kPhiPlus));
    ASSERT_TRUE(exact.ok());
    const MemoryDecayRates rates = MemoryDecayRates::Of(hw);
    const double model =
        Decay(BellDiagonal::Werner(0.9), FromSeconds(0.03), rates, FromSeconds(0.01), rates).fidelity();
    EXPECT_NEAR(model, *exact, 1e-9) << "t2 " << t2;
    if (!std::isfinite(t2)) {
      // Werner parameter (4F-1)/3 = 13/15, shrunk by exp(-0.04/0.04).
      EXPECT_NEAR(model, (3 * (13.0 / 15) * std::exp(-1.0) + 1) / 4, 1e-12);
    }
  }
}

TEST(BellDiagonalTest, PureDephasingIsAZError) {
  // T2 only: coherence c = exp(-t/T2); Z error with (1 - c)/2.
  const BellDiagonal d = MemoryDecayErrors(FromSeconds(0.01), {physical::kInfinity, 0.01});
  const double c = std::exp(-1.0);
  EXPECT_NEAR(d.p[2], (1 - c) / 2, 1e-12);
  EXPECT_NEAR(d.p[1] + d.p[3], 0.0, 1e-12);
}

TEST(BellDiagonalTest, BellMeasurementErrorsOfAnIdealDeviceAreNone) {
  const BellDiagonal d = BellMeasurementErrors(0, 0, 0, 0);
  EXPECT_DOUBLE_EQ(d.fidelity(), 1.0);
  // Readout r on both bits: (1-r)^2 no error; r(1-r) each single flip; r^2 both.
  const BellDiagonal r = BellMeasurementErrors(0, 0, 0.1, 0.1);
  EXPECT_NEAR(r.p[0], 0.81, 1e-12);
  EXPECT_NEAR(r.p[1], 0.09, 1e-12);
  EXPECT_NEAR(r.p[2], 0.09, 1e-12);
  EXPECT_NEAR(r.p[3], 0.01, 1e-12);
  // Two-qubit depolarising p randomises the outcome: 1 - 3p/4 keeps it.
  EXPECT_NEAR(BellMeasurementErrors(0, 0.2, 0, 0).fidelity(), 0.85, 1e-12);
}

}  // namespace
}  // namespace qnet::network

namespace qnet::network {
namespace {

// DEJMPS against the exact engine: the gate sequence on four qubits, the
// success probability and the kept pair's fidelity after post-selection.
TEST(BellDiagonalTest, DejmpsMatchesTheExactGateSequence) {
  using quantum::Matrix;
  using quantum::testing::EmbedOperator;
  auto density = [](const BellDiagonal& d) {
    Matrix rho = Matrix::Zero(4, 4);
    for (int k = 0; k < 4; ++k) rho += d.p[static_cast<size_t>(k)] * quantum::BellDensity(static_cast<BellState>(k));
    return rho;
  };
  const std::vector<std::pair<BellDiagonal, BellDiagonal>> cases = {
      {BellDiagonal::Werner(0.8), BellDiagonal::Werner(0.8)},
      {BellDiagonal::Werner(0.9), BellDiagonal::Werner(0.7)},
      {BellDiagonal{{0.85, 0.0, 0.15, 0.0}}, BellDiagonal{{0.85, 0.0, 0.15, 0.0}}},  // phase errors only
      {BellDiagonal{{0.7, 0.2, 0.05, 0.05}}, BellDiagonal{{0.75, 0.05, 0.1, 0.1}}},
  };
  for (const auto& [a, b] : cases) {
    // Qubits: 0 = a's first end, 1 = a's second, 2 = b's first, 3 = b's second.
    Matrix rho = quantum::testing::Kron(density(a), density(b));
    const Matrix plus = quantum::gates::Rx(M_PI / 2), minus = quantum::gates::Rx(-M_PI / 2);
    Matrix u = EmbedOperator(plus, {0}, 4) * EmbedOperator(minus, {1}, 4) * EmbedOperator(plus, {2}, 4) *
               EmbedOperator(minus, {3}, 4);
    u = EmbedOperator(quantum::gates::CNOT(), {0, 2}, 4) * EmbedOperator(quantum::gates::CNOT(), {1, 3}, 4) * u;
    rho = u * rho * u.adjoint();
    // Keep outcomes 00 and 11 of qubits 2, 3.
    Matrix keep = Matrix::Zero(16, 16);
    for (long i = 0; i < 16; ++i) {
      const int q2 = (i >> 1) & 1, q3 = i & 1;
      if (q2 == q3) keep(i, i) = 1;
    }
    const Matrix post = keep * rho * keep;
    const double success = post.trace().real();
    const Matrix kept = quantum::testing::NaivePartialTrace(post, 4, {0, 1}) / success;
    const double fidelity = (quantum::BellDensity(BellState::kPhiPlus) * kept).trace().real();
    const auto [model, model_success] = BellDiagonal::Dejmps(a, b);
    EXPECT_NEAR(model_success, success, 1e-9);
    EXPECT_NEAR(model.fidelity(), fidelity, 1e-9);
    for (int k = 1; k < 4; ++k) {
      const double exact = (quantum::BellDensity(static_cast<BellState>(k)) * kept).trace().real();
      EXPECT_NEAR(model.p[static_cast<size_t>(k)], exact, 1e-9) << k;
    }
  }
}

}  // namespace
}  // namespace qnet::network
