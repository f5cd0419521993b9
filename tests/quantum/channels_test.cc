// Noise channels: completeness, their documented action on states, and the
// memory-decay model checked against closed forms for a stored PHI+ pair.
#include "quantum/channels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/rng.h"
#include "quantum/gates.h"
#include "tests/quantum/reference.h"

namespace qnet::quantum {
namespace {

using testing::MaxAbsDiff;
constexpr double kInf = std::numeric_limits<double>::infinity();

Matrix ApplyKraus(const std::vector<Matrix>& kraus, const Matrix& rho) {
  Matrix out = Matrix::Zero(rho.rows(), rho.cols());
  for (const Matrix& k : kraus) out += k * rho * k.adjoint();
  return out;
}

void ExpectComplete(const std::vector<Matrix>& kraus) {
  ASSERT_FALSE(kraus.empty());
  Matrix sum = Matrix::Zero(kraus[0].cols(), kraus[0].cols());
  for (const Matrix& k : kraus) sum += k.adjoint() * k;
  EXPECT_LT(MaxAbsDiff(sum, Matrix::Identity(sum.rows(), sum.cols())), 1e-14);
}

TEST(ChannelsTest, KrausSetsAreTracePreserving) {
  for (double p : {0.0, 0.1, 0.5, 1.0}) {
    ExpectComplete(channels::Depolarizing(p));
    ExpectComplete(channels::TwoQubitDepolarizing(p));
    ExpectComplete(channels::Dephasing(p));
    ExpectComplete(channels::BitFlip(p));
    ExpectComplete(channels::AmplitudeDamping(p));
  }
  ExpectComplete(channels::MemoryDecay(0.3, 1.0, 0.5));
  ExpectComplete(channels::MemoryDecay(0.3, 1.0, 2.0));  // T2 = 2 T1: no extra dephasing
  ExpectComplete(channels::MemoryDecay(0.3, kInf, 0.5));
  ExpectComplete(channels::MemoryDecay(0.3, 1.0, kInf));
  ExpectComplete(channels::MemoryDecay(0.0, 1.0, 0.5));
}

TEST(ChannelsTest, ActionMatchesDocumentedFormulas) {
  Rng rng(3);
  const Matrix rho = testing::RandomDensity(rng, 2);
  const Matrix rho2 = testing::RandomDensity(rng, 4);
  const double p = 0.37;
  const Matrix id2 = Matrix::Identity(2, 2), id4 = Matrix::Identity(4, 4);
  EXPECT_LT(MaxAbsDiff(ApplyKraus(channels::Depolarizing(p), rho), (1 - p) * rho + p * id2 / 2),
            1e-14);
  EXPECT_LT(
      MaxAbsDiff(ApplyKraus(channels::TwoQubitDepolarizing(p), rho2), (1 - p) * rho2 + p * id4 / 4),
      1e-14);
  EXPECT_LT(MaxAbsDiff(ApplyKraus(channels::Dephasing(p), rho),
                       (1 - p) * rho + p * gates::Z() * rho * gates::Z()),
            1e-14);
  EXPECT_LT(MaxAbsDiff(ApplyKraus(channels::BitFlip(p), rho),
                       (1 - p) * rho + p * gates::X() * rho * gates::X()),
            1e-14);
  Matrix one = Matrix::Zero(2, 2);
  one(1, 1) = 1;
  const Matrix damped = ApplyKraus(channels::AmplitudeDamping(p), one);
  EXPECT_NEAR(damped(0, 0).real(), p, 1e-15);
  EXPECT_NEAR(damped(1, 1).real(), 1 - p, 1e-15);
}

TEST(ChannelsTest, MemoryDecayPopulationAndCoherence) {
  const double t = 0.2, t1 = 0.8, t2 = 0.3;
  const auto kraus = channels::MemoryDecay(t, t1, t2);
  Matrix one = Matrix::Zero(2, 2);
  one(1, 1) = 1;
  EXPECT_NEAR(ApplyKraus(kraus, one)(1, 1).real(), std::exp(-t / t1), 1e-14);
  Matrix plus = Matrix::Constant(2, 2, 0.5);
  EXPECT_NEAR(std::abs(ApplyKraus(kraus, plus)(0, 1)), 0.5 * std::exp(-t / t2), 1e-14);
}

// The documented composition: amplitude damping, then dephasing with
// 1 - 2p = exp(-t/T2) / sqrt(1 - gamma).
TEST(ChannelsTest, MemoryDecayEqualsDampingThenDephasing) {
  Rng rng(5);
  const Matrix rho = testing::RandomDensity(rng, 2);
  const double t = 0.4, t1 = 1.5, t2 = 0.9;
  const double gamma = 1 - std::exp(-t / t1);
  const double p = (1 - std::exp(-t / t2) / std::sqrt(1 - gamma)) / 2;
  const Matrix expected =
      ApplyKraus(channels::Dephasing(p), ApplyKraus(channels::AmplitudeDamping(gamma), rho));
  EXPECT_LT(MaxAbsDiff(ApplyKraus(channels::MemoryDecay(t, t1, t2), rho), expected), 1e-14);
}

TEST(ChannelsTest, AbsentProcessesLeaveStateAlone) {
  Rng rng(9);
  const Matrix rho = testing::RandomDensity(rng, 2);
  EXPECT_LT(MaxAbsDiff(ApplyKraus(channels::MemoryDecay(5.0, kInf, kInf), rho), rho), 1e-15);
  EXPECT_LT(MaxAbsDiff(ApplyKraus(channels::MemoryDecay(5.0, 0.0, 0.0), rho), rho), 1e-15);
  EXPECT_LT(MaxAbsDiff(ApplyKraus(channels::MemoryDecay(0.0, 1.0, 0.5), rho), rho), 1e-15);
}

// Fidelity with PHI+ after both halves of a stored pair wait t.
double StoredPairFidelity(double t, double t1, double t2) {
  QuantumSystem sys;
  const QubitId ab[] = {1, 2};
  EXPECT_TRUE(sys.Prepare(ab, BellDensity(BellState::kPhiPlus)).ok());
  const auto kraus = channels::MemoryDecay(t, t1, t2);
  for (QubitId q : ab) {
    const QubitId one[] = {q};
    EXPECT_TRUE(sys.ApplyChannel(kraus, one).ok());
  }
  return *sys.Fidelity(ab, BellVector(BellState::kPhiPlus));
}

// T1 = inf: each qubit's coherence shrinks by lambda = exp(-t/T2), so the
// |00><11| term shrinks by lambda^2 and F = (1 + exp(-2t/T2)) / 2.
TEST(ChannelsTest, StoredPairDephasingClosedForm) {
  for (double t : {0.0, 0.01, 0.1, 0.5, 2.0}) {
    const double t2 = 0.25;
    EXPECT_NEAR(StoredPairFidelity(t, kInf, t2), (1 + std::exp(-2 * t / t2)) / 2, 1e-12) << t;
  }
}

// With damping gamma = 1 - exp(-t/T1) on both qubits: |11><11| keeps weight
// (1-gamma)^2, feeds gamma^2 into |00><00| and gamma(1-gamma) into |01>,|10>
// (orthogonal to PHI+); the coherence is lambda^2. Hand-computed:
// F = (1 - gamma + gamma^2 + lambda^2) / 2.
TEST(ChannelsTest, StoredPairRelaxationClosedForm) {
  const double t1 = 1.0;
  for (double t2 : {0.5, 1.3, 2.0, kInf}) {
    for (double t : {0.05, 0.3, 1.0}) {
      const double gamma = 1 - std::exp(-t / t1);
      const double lambda2 = std::isinf(t2) ? 1 - gamma : std::exp(-2 * t / t2);
      EXPECT_NEAR(StoredPairFidelity(t, t1, t2), (1 - gamma + gamma * gamma + lambda2) / 2, 1e-12)
          << "t=" << t << " T2=" << t2;
    }
  }
}

TEST(ChannelsDeathTest, ProbabilitiesOutsideUnitIntervalAbort) {
  EXPECT_DEATH(channels::Depolarizing(1.5), "outside \\[0, 1\\]");
  EXPECT_DEATH(channels::Dephasing(-0.1), "outside \\[0, 1\\]");
  EXPECT_DEATH(channels::BitFlip(std::nan("")), "outside \\[0, 1\\]");
  EXPECT_DEATH(channels::AmplitudeDamping(2.0), "outside \\[0, 1\\]");
  EXPECT_DEATH(channels::TwoQubitDepolarizing(-1.0), "outside \\[0, 1\\]");
  EXPECT_DEATH(channels::MemoryDecay(1.0, 1.0, 3.0), "exceeds 2\\*T1");
  EXPECT_DEATH(channels::MemoryDecay(-1.0, 1.0, 1.0), "negative");
}

}  // namespace
}  // namespace qnet::quantum
