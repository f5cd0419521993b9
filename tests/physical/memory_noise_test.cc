// physical::IdleNoise against the solution of the joint master equation of
// relaxation (T1), dephasing (T2) and depolarising (tau): |1>'s population
// relaxes at 1/T1 + 1/tau towards (1/(2 tau)) / (1/T1 + 1/tau), coherence
// decays as exp(-t/T2 - t/tau); two waits compose to one (applying the
// processes one after the other would not: they do not commute).
#include "physical/memory_noise.h"

#include <cmath>
#include <complex>

#include <gtest/gtest.h>

namespace qnet::physical {
namespace {

using Matrix2 = Eigen::Matrix2cd;

Matrix2 Apply(const std::vector<quantum::Matrix>& kraus, const Matrix2& rho) {
  if (kraus.empty()) return rho;
  Matrix2 out = Matrix2::Zero();
  Matrix2 sum = Matrix2::Zero();
  for (const quantum::Matrix& k : kraus) {
    const Matrix2 k2 = k;
    out += k2 * rho * k2.adjoint();
    sum += k2.adjoint() * k2;
  }
  EXPECT_LT((sum - Matrix2::Identity()).norm(), 1e-12);  // trace preserving
  return out;
}

// A state with population and coherence: 0.3 |0><0| + 0.7 |1><1| + 0.4 (|0><1| + h.c.).
Matrix2 Probe() {
  Matrix2 rho;
  rho << 0.3, std::complex<double>(0.4, 0.1), std::complex<double>(0.4, -0.1), 0.7;
  return rho;
}

TEST(MemoryNoiseTest, MatchesTheJointMasterEquation) {
  NodeHardware hw;
  hw.t1_s = 1.0;
  hw.t2_s = 0.5;
  hw.depolarising_time_s = 2.0;
  const double t = 0.8;
  const Matrix2 rho = Apply(IdleNoise(hw, t), Probe());
  const double rate = 1.0 / hw.t1_s + 1.0 / hw.depolarising_time_s;
  const double p_inf = (0.5 / hw.depolarising_time_s) / rate;
  EXPECT_NEAR(rho(1, 1).real(), p_inf + (0.7 - p_inf) * std::exp(-rate * t), 1e-12);
  EXPECT_NEAR(std::abs(rho(0, 1)), std::abs(Probe()(0, 1)) * std::exp(-t / hw.t2_s - t / hw.depolarising_time_s),
              1e-12);
  EXPECT_NEAR(rho.trace().real(), 1.0, 1e-12);
}

TEST(MemoryNoiseTest, TwoWaitsComposeToOne) {
  NodeHardware hw;
  hw.t1_s = 1.0;
  hw.t2_s = 0.7;
  hw.depolarising_time_s = 0.5;
  const Matrix2 once = Apply(IdleNoise(hw, 0.6), Probe());
  const Matrix2 twice = Apply(IdleNoise(hw, 0.2), Apply(IdleNoise(hw, 0.4), Probe()));
  EXPECT_LT((once - twice).norm(), 1e-12);
}

TEST(MemoryNoiseTest, LimitsAreTheSingleProcesses) {
  // Depolarising alone: kept with exp(-t/tau), else I/2.
  NodeHardware depolarising;
  depolarising.depolarising_time_s = 0.5;
  const double keep = std::exp(-0.3 / 0.5);
  const Matrix2 expected = keep * Probe() + (1 - keep) * Matrix2::Identity() / 2.0;
  EXPECT_LT((Apply(IdleNoise(depolarising, 0.3), Probe()) - expected).norm(), 1e-12);
  // No depolarising: exactly quantum::channels::MemoryDecay (T2 absent: only T1 acts).
  NodeHardware t1_only;
  t1_only.t1_s = 2.0;
  const Matrix2 relaxed = Apply(IdleNoise(t1_only, 0.5), Probe());
  EXPECT_NEAR(relaxed(1, 1).real(), 0.7 * std::exp(-0.25), 1e-12);
  EXPECT_NEAR(std::abs(relaxed(0, 1)), std::abs(Probe()(0, 1)) * std::exp(-0.125), 1e-12);
  // Nothing to do: no operators.
  EXPECT_TRUE(IdleNoise(NodeHardware{}, 1.0).empty());
  EXPECT_TRUE(IdleNoise(depolarising, 0.0).empty());
}

}  // namespace
}  // namespace qnet::physical
