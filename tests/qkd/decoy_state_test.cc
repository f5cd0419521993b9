// The decoy-state estimators (qkd/decoy_state.h) on counts with known
// answers: the closed forms in their limits, the bounds against the true
// single-photon yield and error, what a photon-number-splitting attack does
// to them, and the finite key growing towards the asymptotic one.
#include "qkd/decoy_state.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qnet::qkd {
namespace {

using ::testing::HasSubstr;

// Counts that reproduce expected gains and error rates exactly enough (the
// rounding of 10^13 pulses is far below any tolerance here).
std::array<IntensityCounts, 3> CountsFromRates(const WeakCoherentLink& link, const DecoyIntensities& in,
                                               double pulses) {
  std::array<IntensityCounts, 3> counts{};
  for (int k = 0; k < 3; ++k) {
    const ExpectedCounts e = ExpectedWeakCoherent(link, in.mean_photon_number[k]);
    IntensityCounts& c = counts[k];
    const double n = pulses * in.probability[k];
    c.pulses = static_cast<uint64_t>(std::llround(n));
    c.detections = static_cast<uint64_t>(std::llround(n * e.gain));
    // Uniform bases: a quarter of the detections are sifted in Z, a quarter in X.
    c.sifted_z = c.sifted_x = static_cast<uint64_t>(std::llround(n * e.gain / 4));
    c.errors_z = c.errors_x = static_cast<uint64_t>(std::llround(n * e.gain / 4 * e.error_rate));
  }
  return counts;
}

TEST(DecoyStateTest, ClosedFormsInTheirLimits) {
  // Free of noise: gain 1 - e^(-eta mu), no errors.
  ExpectedCounts clean = ExpectedWeakCoherent({0.1, 0.0, 0.0}, 0.5);
  EXPECT_NEAR(clean.gain, 1 - std::exp(-0.05), 1e-15);
  EXPECT_EQ(clean.error_rate, 0.0);
  // No light: two detectors' dark counts, a random bit each.
  ExpectedCounts dark = ExpectedWeakCoherent({0.0, 1e-5, 0.03}, 0.5);
  EXPECT_NEAR(dark.gain, 2e-5 - 1e-10, 1e-15);
  EXPECT_NEAR(dark.error_rate, 0.5, 1e-12);
  // Weak light, no dark counts: hand computation for eta mu = 0.05, e_d =
  // 0.03: right detector 1 - e^-0.0485 = 0.0473428, wrong 1 - e^-0.0015 =
  // 0.00149888; errors 0.00149888 (1 - 0.0473428) + 0.0473428 x
  // 0.00149888 / 2 = 0.00146341 over the gain 0.0487706.
  ExpectedCounts weak = ExpectedWeakCoherent({0.1, 0.0, 0.03}, 0.5);
  EXPECT_NEAR(weak.error_rate, 0.00146341 / 0.0487706, 2e-6);
  // A single photon without dark counts: Y1 = eta, e1 = e_d.
  ExpectedCounts single = ExpectedSinglePhoton({0.2, 0.0, 0.03});
  EXPECT_NEAR(single.gain, 0.2, 1e-15);
  EXPECT_NEAR(single.error_rate, 0.03, 1e-15);
  // BB84 from such a source: 0.1 x (1 - 2.16 h(0.03)), h(0.03) = 0.1943919.
  EXPECT_NEAR(SinglePhotonSourceKeyRate({0.2, 0.0, 0.03}, 1.16), 0.1 * (1 - 2.16 * 0.1943919), 1e-7);
  EXPECT_NEAR(SinglePhotonSourceKeyRate({0.2, 0.0, 0.0}, 1.16), 0.1, 1e-15);
}

TEST(DecoyStateTest, AsymptoticBoundsHoldAndTightenAsTheDecoyWeakens) {
  // GYS-like link at 50 km (Ma et al. 2005, Table I).
  const WeakCoherentLink link{std::pow(10, -0.21 * 50 / 10) * 0.045, 8.5e-7, 0.033};
  const ExpectedCounts truth = ExpectedSinglePhoton(link);
  double previous_gap = 1.0;
  for (double nu : {0.2, 0.1, 0.02}) {
    DecoyIntensities in;
    in.mean_photon_number = {0.5, nu, 0.0};
    auto e = EstimateAsymptotic(in, CountsFromRates(link, in, 1e13), 1.16);
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_LE(e->yield_single_lower, truth.gain * (1 + 1e-6)) << "nu " << nu;
    EXPECT_GE(e->error_single_upper, truth.error_rate * (1 - 1e-6)) << "nu " << nu;
    const double gap = 1.0 - e->yield_single_lower / truth.gain;
    EXPECT_LT(gap, previous_gap) << "a weaker decoy bounds Y1 more tightly (Ma et al. 2005)";
    previous_gap = gap;
  }
  EXPECT_LT(previous_gap, 0.02) << "nu = 0.02 bounds Y1 within 2%";
}

TEST(DecoyStateTest, ThePhotonNumberSplittingSignatureLeavesNoSingleYieldAndNoKey) {
  // Under the attack, decoy pulses (few multi-photon) click far less than the
  // signal's gain implies for an honest lossy channel: Y1's lower bound
  // collapses and the key rate is negative.
  DecoyIntensities in;
  const double mu = 0.5, nu = 0.1, forward = 0.54, eta_d = 0.5;
  std::array<IntensityCounts, 3> counts{};
  const double pulses[3] = {8e8, 1e8, 1e8};
  const double gains[3] = {forward * eta_d * (1 - std::exp(-mu) * (1 + mu)),
                           forward * eta_d * (1 - std::exp(-nu) * (1 + nu)), 1e-6};
  for (int k = 0; k < 3; ++k) {
    counts[k].pulses = static_cast<uint64_t>(pulses[k]);
    counts[k].detections = static_cast<uint64_t>(pulses[k] * gains[k]);
    counts[k].sifted_z = counts[k].sifted_x = counts[k].detections / 4;
    counts[k].errors_z = counts[k].errors_x = counts[k].detections / 4 / 50;  // 2%: misalignment alone
  }
  auto asymptotic = EstimateAsymptotic(in, counts, 1.16);
  ASSERT_TRUE(asymptotic.ok());
  EXPECT_EQ(asymptotic->yield_single_lower, 0.0);
  EXPECT_LT(asymptotic->key_rate_per_pulse, 0.0);
  auto finite = EstimateFiniteKey(in, counts, {});
  ASSERT_TRUE(finite.ok());
  EXPECT_EQ(finite->key_bits, 0u);
  // The same counts read as single photons claim a key.
  EXPECT_GT(SinglePhotonAssumptionKeyRate(counts[0], 0.8, 1.16), 0.0);
}

TEST(DecoyStateTest, FiniteKeyGrowsWithThePulsesTowardsTheAsymptoticRate) {
  const WeakCoherentLink link{std::pow(10, -0.2 * 25 / 10) * 0.2, 1e-6, 0.01};
  DecoyIntensities in;
  in.mean_photon_number = {0.5, 0.1, 0.0};
  in.probability = {0.7, 0.2, 0.1};
  const double asymptotic = AnalyticDecoyKeyRate(link, in, 1.16);
  ASSERT_GT(asymptotic, 0.0);
  double previous = -1.0;
  for (double n : {1e8, 1e9, 1e10, 1e11, 1e12}) {
    auto e = EstimateFiniteKey(in, CountsFromRates(link, in, n), {});
    ASSERT_TRUE(e.ok()) << e.status();
    const double per_pulse = e->key_length_bound / n;
    EXPECT_GT(per_pulse, previous) << n << " pulses";
    // Lim et al. keep only Z-basis bits (a quarter of the pulses with
    // uniform bases), GLLP above both bases' (half): below it.
    EXPECT_LT(per_pulse, asymptotic) << n << " pulses";
    previous = per_pulse;
  }
  EXPECT_GT(previous, 0.3 * asymptotic) << "at 10^12 pulses the finite key is near its own asymptote";
}

TEST(DecoyStateTest, FiniteKeyTermsMatchAnIndependentComputationOfLimEtAl) {
  // The expected counts of 10^10 pulses over a link with eta = 0.01, p_d =
  // 3e-5, e_d = 0.01 (sifted a quarter per basis, rounded), and each term
  // of Lim et al.'s eqs. (2)-(5) and (A10)-(A12) computed separately, in
  // Python, from those integers: Hoeffding deviations sqrt(n/2 ln(21/eps)),
  // gamma with ln 2 inside and log2 outside.
  DecoyIntensities in;
  in.mean_photon_number = {0.5, 0.1, 0.0};
  in.probability = {0.7, 0.2, 0.1};
  std::array<IntensityCounts, 3> counts{};
  const uint64_t table[3][4] = {{7000000000, 35330545, 8832636, 139647},
                                {2000000000, 2118879, 529720, 19990},
                                {1000000000, 59999, 15000, 7500}};
  for (int k = 0; k < 3; ++k) {
    counts[k] = {table[k][0], table[k][1], table[k][2], table[k][3], table[k][2], table[k][3]};
  }
  auto e = EstimateFiniteKey(in, counts, {});
  ASSERT_TRUE(e.ok()) << e.status();
  auto near = [](double value, double expected) { return std::abs(value / expected - 1.0) < 1e-9; };
  EXPECT_TRUE(near(e->vacuum_events_z_lower, 31350.68528145865)) << e->vacuum_events_z_lower;
  EXPECT_TRUE(near(e->single_photon_events_z_lower, 5131464.479621377)) << e->single_photon_events_z_lower;
  EXPECT_TRUE(near(e->single_photon_events_x_lower, 5131464.479621377)) << e->single_photon_events_x_lower;
  EXPECT_TRUE(near(e->single_photon_errors_x_upper, 132108.30951019045)) << e->single_photon_errors_x_upper;
  // phi = v / s_X1 (0.0257448) + gamma (0.000861348).
  EXPECT_TRUE(near(e->phase_error_upper, 0.026606105177633343)) << e->phase_error_upper;
  EXPECT_TRUE(near(e->error_correction_bits, 1403652.2063721856)) << e->error_correction_bits;
  EXPECT_TRUE(near(e->key_length_bound, 2850252.0742082633)) << e->key_length_bound;
  EXPECT_EQ(e->key_bits, 2850252u);
}

TEST(DecoyStateTest, RejectsIntensitiesOutsideTheEstimatorsDomain) {
  DecoyIntensities in;
  in.mean_photon_number = {0.1, 0.5, 0.0};
  EXPECT_THAT(ValidateDecoyIntensities(in).message(), HasSubstr("signal > decoy + vacuum"));
  in.mean_photon_number = {0.5, 0.1, 0.0};
  in.probability = {0.5, 0.2, 0.2};
  EXPECT_THAT(ValidateDecoyIntensities(in).message(), HasSubstr("sum to 0.9"));
  in.probability = {0.8, 0.1, 0.1};
  in.mean_photon_number = {0.5, 0.1, 0.05};
  std::array<IntensityCounts, 3> counts{};
  for (auto& c : counts) c.pulses = 10;
  EXPECT_THAT(EstimateAsymptotic(in, counts, 1.16).status().message(), HasSubstr("vacuum (0)"));
  in.mean_photon_number = {0.5, 0.1, 0.0};
  counts[1].pulses = 0;
  EXPECT_THAT(EstimateAsymptotic(in, counts, 1.16).status().message(), HasSubstr("no pulses"));
  FiniteKeyOptions bad;
  bad.epsilon_secrecy = 0;
  EXPECT_THAT(EstimateFiniteKey(in, counts, bad).status().message(), HasSubstr("epsilons"));
}

}  // namespace
}  // namespace qnet::qkd
