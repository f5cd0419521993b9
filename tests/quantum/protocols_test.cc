// Textbook protocols run on the engine and checked against hand-computed
// results: teleportation, the CHSH value of an ideal pair, and entanglement
// swapping of Werner pairs.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <vector>

#include "core/rng.h"
#include "quantum/bell.h"
#include "quantum/gates.h"
#include "quantum/quantum_system.h"
#include "tests/quantum/reference.h"

namespace qnet::quantum {
namespace {

// |psi> on s teleported through PHI+ on (a, b): Bell-measure (s, a), correct
// b with X^x Z^z. Fidelity 1 on every branch; branches equally likely.
TEST(ProtocolsTest, TeleportationOfHaarRandomStates) {
  Rng rng(2024);
  const int trials = 400;
  std::array<int, 4> branches{};
  for (int i = 0; i < trials; ++i) {
    const Vector psi = testing::HaarState(rng, 2);
    QuantumSystem sys;
    const QubitId s = 1, a = 2, b = 3;
    ASSERT_TRUE(sys.Prepare(std::vector<QubitId>{s}, psi * psi.adjoint()).ok());
    ASSERT_TRUE(sys.Prepare(std::vector<QubitId>{a, b}, BellDensity(BellState::kPhiPlus)).ok());
    auto label = sys.BellMeasure(s, a, rng);
    ASSERT_TRUE(label.ok());
    ++branches[static_cast<int>(*label)];
    ASSERT_TRUE(
        sys.ApplyUnitary(gates::Pauli(XBit(*label), ZBit(*label)), std::vector<QubitId>{b}).ok());
    EXPECT_NEAR(*sys.Fidelity(std::vector<QubitId>{b}, psi), 1.0, 1e-9) << BellName(*label);
    EXPECT_EQ(sys.GroupOf(b), std::vector<QubitId>{b});
  }
  const double sigma = std::sqrt(trials * 0.25 * 0.75);
  for (int k = 0; k < 4; ++k) {
    EXPECT_GT(branches[k], 0);
    EXPECT_NEAR(branches[k], trials / 4.0, 5 * sigma) << BellName(static_cast<BellState>(k));
  }
}

// sigma(angle) = cos(angle) Z + sin(angle) X, the observable of Basis::XZ.
Matrix Observable(double angle) {
  return std::cos(angle) * gates::Z() + std::sin(angle) * gates::X();
}

TEST(ProtocolsTest, ChshOfIdealPair) {
  const double alice[2] = {0.0, M_PI / 2};
  const double bob[2] = {M_PI / 4, -M_PI / 4};
  const double sign[2][2] = {{1, 1}, {1, -1}};

  // Exact correlators from the state: E = Tr(rho sigma_a (x) sigma_b) = cos(a - b).
  QuantumSystem sys;
  const std::vector<QubitId> ab = {1, 2};
  ASSERT_TRUE(sys.Prepare(ab, BellDensity(BellState::kPhiPlus)).ok());
  const Matrix rho = *sys.ReducedState(ab);
  double s_exact = 0;
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j) {
      const double e =
          (rho * testing::Kron(Observable(alice[i]), Observable(bob[j]))).trace().real();
      EXPECT_NEAR(e, std::cos(alice[i] - bob[j]), 1e-12);
      s_exact += sign[i][j] * e;
    }
  }
  EXPECT_NEAR(s_exact, 2 * std::sqrt(2.0), 1e-12);

  // Sampled: each correlator from `shots` measured pairs; Var(E_hat) = (1 - E^2) / shots.
  Rng rng(77);
  const int shots = 20000;
  double s_sampled = 0, variance = 0;
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j) {
      long sum = 0;
      for (int k = 0; k < shots; ++k) {
        QuantumSystem pair;
        ASSERT_TRUE(pair.Prepare(ab, BellDensity(BellState::kPhiPlus)).ok());
        const int x = *pair.Measure(1, Basis::XZ(alice[i]), rng);
        const int y = *pair.Measure(2, Basis::XZ(bob[j]), rng);
        sum += (x == y) ? 1 : -1;
      }
      const double e = static_cast<double>(sum) / shots;
      s_sampled += sign[i][j] * e;
      const double e_exact = std::cos(alice[i] - bob[j]);
      variance += (1 - e_exact * e_exact) / shots;
    }
  }
  const double sigma = std::sqrt(variance);
  EXPECT_NEAR(s_sampled, 2 * std::sqrt(2.0), 5 * sigma);
  EXPECT_GT(s_sampled, 2.0 + 5 * sigma);  // a local model could not get here
}

// Swapping Werner pairs (a,b) of fidelity F1 and (c,d) of F2 by a Bell
// measurement on (b,c) and correction X^x Z^z on d: F = F1 F2 + (1-F1)(1-F2)/3
// on every branch, since Werner states are invariant under the Pauli twirl.
TEST(ProtocolsTest, SwappingWernerPairs) {
  Rng rng(5);
  const std::vector<std::pair<double, double>> cases = {
      {1.0, 1.0}, {0.9, 0.8}, {0.95, 0.6}, {0.5, 0.7}, {0.25, 0.99}};
  for (const auto& [f1, f2] : cases) {
    const double expected = f1 * f2 + (1 - f1) * (1 - f2) / 3;
    std::array<int, 4> branches{};
    for (int trial = 0; trial < 60; ++trial) {
      QuantumSystem sys;
      const QubitId a = 1, b = 2, c = 3, d = 4;
      ASSERT_TRUE(sys.Prepare(std::vector<QubitId>{a, b}, testing::Werner(f1)).ok());
      ASSERT_TRUE(sys.Prepare(std::vector<QubitId>{c, d}, testing::Werner(f2)).ok());
      auto label = sys.BellMeasure(b, c, rng);
      ASSERT_TRUE(label.ok());
      ++branches[static_cast<int>(*label)];
      ASSERT_TRUE(
          sys.ApplyUnitary(gates::Pauli(XBit(*label), ZBit(*label)), std::vector<QubitId>{d}).ok());
      EXPECT_NEAR(*sys.Fidelity(std::vector<QubitId>{a, d}, BellVector(BellState::kPhiPlus)),
                  expected, 1e-9)
          << "F1=" << f1 << " F2=" << f2 << " outcome " << BellName(*label);
      // The measured qubits stand alone; the outer ones form the new pair.
      EXPECT_EQ(sys.GroupOf(a), (std::vector<QubitId>{a, d}));
      EXPECT_EQ(sys.group_count(), 3u);
    }
    for (int k = 0; k < 4; ++k) EXPECT_GT(branches[k], 0) << BellName(static_cast<BellState>(k));
  }
}

}  // namespace
}  // namespace qnet::quantum
