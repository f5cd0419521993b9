// Pair statistics against the quantum engine: the ideal correlations equal
// those computed from each Bell state, and the estimates recovered from
// sampled outcomes of Werner states match the closed forms
// F and S = 2 sqrt(2) (4F - 1)/3.
#include "apps/pair_statistics.h"

#include <cmath>

#include <unsupported/Eigen/KroneckerProduct>

#include "gtest/gtest.h"
#include "quantum/quantum_system.h"

namespace qnet::apps {
namespace {

using link::MeasurementBasis;
using quantum::BellState;

constexpr MeasurementBasis kAll[] = {MeasurementBasis::kZ,      MeasurementBasis::kX,      MeasurementBasis::kY,
                                     MeasurementBasis::kChshA0, MeasurementBasis::kChshA1, MeasurementBasis::kChshB0,
                                     MeasurementBasis::kChshB1};

Eigen::Matrix2cd Observable(MeasurementBasis b) {
  const quantum::Basis q = link::ToQuantumBasis(b);
  Eigen::Matrix2cd x, y, z;
  x << 0, 1, 1, 0;
  y << 0, std::complex<double>(0, -1), std::complex<double>(0, 1), 0;
  z << 1, 0, 0, -1;
  return std::sin(q.theta) * std::cos(q.phi) * x + std::sin(q.theta) * std::sin(q.phi) * y + std::cos(q.theta) * z;
}

TEST(PairStatistics, IdealCorrelationMatchesEveryBellState) {
  for (int s = 0; s < 4; ++s) {
    const auto state = static_cast<BellState>(s);
    const Eigen::Matrix4cd rho = quantum::BellDensity(state);
    for (MeasurementBasis a : kAll) {
      for (MeasurementBasis b : kAll) {
        Eigen::Matrix4cd op = Eigen::kroneckerProduct(Observable(a), Observable(b));
        const double expected = (rho * op).trace().real();
        EXPECT_NEAR(IdealCorrelation(state, a, b), expected, 1e-12)
            << quantum::BellName(state) << " " << link::MeasurementBasisName(a) << link::MeasurementBasisName(b);
      }
    }
  }
}

// Werner state of fidelity f around `state`, sampled with the engine.
std::vector<MeasuredPair> SampleWerner(double f, int n, bool chsh, Rng& rng) {
  std::vector<MeasuredPair> pairs;
  quantum::QuantumSystem system;
  const quantum::QubitId ids[] = {1, 2};
  for (int i = 0; i < n; ++i) {
    const auto state = static_cast<BellState>(rng.UniformInt(4));
    const double p = (4 * f - 1) / 3;
    Eigen::Matrix4cd rho = p * quantum::BellDensity(state) + (1 - p) * Eigen::Matrix4cd::Identity() / 4.0;
    EXPECT_TRUE(system.Prepare(ids, rho).ok());
    MeasuredPair pair;
    pair.bell_state = state;
    if (chsh) {
      pair.basis_a = rng.Bernoulli(0.5) ? MeasurementBasis::kChshA0 : MeasurementBasis::kChshA1;
      pair.basis_b = rng.Bernoulli(0.5) ? MeasurementBasis::kChshB0 : MeasurementBasis::kChshB1;
    } else {
      const MeasurementBasis b[] = {MeasurementBasis::kZ, MeasurementBasis::kX, MeasurementBasis::kY};
      pair.basis_a = b[rng.UniformInt(3)];
      pair.basis_b = b[rng.UniformInt(3)];
    }
    pair.outcome_a = *system.Measure(1, link::ToQuantumBasis(pair.basis_a), rng);
    pair.outcome_b = *system.Measure(2, link::ToQuantumBasis(pair.basis_b), rng);
    pairs.push_back(pair);
  }
  return pairs;
}

TEST(PairStatistics, FidelityFromOutcomesOfWernerStates) {
  Rng rng(11);
  for (double f : {1.0, 0.9, 0.7}) {
    const PairStatistics s = AnalysePairs(SampleWerner(f, 30000, false, rng));
    ASSERT_TRUE(s.fidelity.has_value());
    EXPECT_NEAR(s.fidelity->value, f, 5 * s.fidelity->standard_error + 1e-9) << f;
    // Each basis of a Werner state errs with probability 2(1-f)/3.
    EXPECT_NEAR(s.z.rate(), 2 * (1 - f) / 3, 5 * s.z.standard_error()) << f;
    EXPECT_FALSE(s.chsh.has_value());
  }
}

TEST(PairStatistics, ChshOfWernerStates) {
  Rng rng(12);
  for (double f : {1.0, 0.85, 0.6}) {
    const PairStatistics s = AnalysePairs(SampleWerner(f, 40000, true, rng));
    ASSERT_TRUE(s.chsh.has_value());
    const double expected = 2 * std::sqrt(2.0) * (4 * f - 1) / 3;
    EXPECT_NEAR(s.chsh->value, expected, 5 * s.chsh->standard_error) << f;
    EXPECT_FALSE(s.fidelity.has_value());
  }
}

}  // namespace
}  // namespace qnet::apps
