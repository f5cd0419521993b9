// BB84 with weak coherent pulses, simulated photon by photon
// (netsim/decoy_experiment.h), against the closed forms: gains and QBERs
// per intensity, the decoy bounds against the simulator's true single-photon
// counts, the asymptotic key rate against GLLP on the same link, and the
// photon-number-splitting attack (without decoys the attacker holds the
// key; with decoys the estimate leaves no key).
#include <cmath>
#include <algorithm>
#include <array>
#include <cstdint>

#include "gtest/gtest.h"
#include "netsim/decoy_experiment.h"
#include "physical/params.h"
#include "qkd/decoy_state.h"

namespace qnet::netsim {
namespace {

// A prepare-and-measure link: 20% receiver efficiency, 1e-6 dark counts per
// gate per detector, 1.5% misalignment.
physical::LinkPhysics Link(double length_km) {
  physical::LinkPhysics link;
  link.name = "alice-bob";
  link.node_a = "alice";
  link.node_b = "bob";
  link.length_km = length_km;
  link.attenuation_db_per_km = 0.2;
  link.detector_efficiency = 0.2;
  link.dark_count_rate_hz = 1000;
  link.detection_window = FromSeconds(1e-9);
  link.visibility = 0.97;
  return link;
}

double Sigma(double p, double n) { return std::sqrt(p * (1.0 - p) / n); }

TEST(WeakCoherentBb84SimTest, GainAndQberPerIntensityFollowTheClosedForm) {
  WeakCoherentBb84Options options;
  options.pulses = 4'000'000;
  options.seed = 3;
  auto r = RunWeakCoherentBb84(Link(25), options);
  ASSERT_TRUE(r.ok()) << r.status();
  for (int k = 0; k < 3; ++k) {
    const qkd::ExpectedCounts e = qkd::ExpectedWeakCoherent(r->link_model, options.intensities.mean_photon_number[k]);
    const qkd::IntensityCounts& c = r->counts[k];
    EXPECT_NEAR(c.gain(), e.gain, 5 * Sigma(e.gain, c.pulses)) << "gain of intensity " << k;
    const double sifted = static_cast<double>(c.sifted_z + c.sifted_x);
    if (sifted > 1000) {
      EXPECT_NEAR(c.error_rate(), e.error_rate, 5 * Sigma(e.error_rate, sifted)) << "QBER of intensity " << k;
    }
  }
  // The truth the simulator keeps agrees with the single-photon closed form.
  const qkd::ExpectedCounts single = qkd::ExpectedSinglePhoton(r->link_model);
  const PhotonNumberTruth& one = r->by_photon_number[1];
  EXPECT_NEAR(one.yield(), single.gain, 5 * Sigma(single.gain, one.pulses));
  EXPECT_NEAR(one.error_rate(), single.error_rate, 5 * Sigma(single.error_rate, one.sifted));
}

TEST(WeakCoherentBb84SimTest, FiniteKeyBoundsContainTheTrueSinglePhotonCounts) {
  // Lim et al.'s bounds hold except with probability ~eps_sec: on every
  // seed, the lower bounds on single-photon events lie below the true
  // counts and the upper bound on their X errors above.
  // (Hoeffding's deviation scales with all Z events and is divided by each
  // intensity's probability: below ~10^7 pulses the vacuum's bound swamps
  // the decoy's and s_Z,1 is 0, true but empty.)
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    WeakCoherentBb84Options options;
    options.pulses = 10'000'000;
    options.intensities.probability = {0.5, 0.3, 0.2};
    options.seed = seed;
    auto r = RunWeakCoherentBb84(Link(10), options);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(r->finite_key.has_value());
    const qkd::FiniteKeyDecoyEstimate& f = *r->finite_key;
    EXPECT_GT(f.single_photon_events_z_lower, 0.0) << "seed " << seed << ": the bound says something";
    EXPECT_LE(f.single_photon_events_z_lower, static_cast<double>(r->single_photon_sifted_z)) << "seed " << seed;
    EXPECT_LE(f.single_photon_events_x_lower, static_cast<double>(r->single_photon_sifted_x)) << "seed " << seed;
    EXPECT_GE(f.single_photon_errors_x_upper, static_cast<double>(r->single_photon_errors_x)) << "seed " << seed;
    // The asymptotic bounds against the truth, with room for the counts'
    // own fluctuation (a few percent at these sizes).
    ASSERT_TRUE(r->asymptotic.has_value());
    EXPECT_LE(r->asymptotic->yield_single_lower, r->by_photon_number[1].yield() * 1.03) << "seed " << seed;
    EXPECT_GE(r->asymptotic->error_single_upper, r->by_photon_number[1].error_rate() * 0.9) << "seed " << seed;
  }
}

TEST(WeakCoherentBb84SimTest, AsymptoticKeyRateMatchesGllpOnTheSameLinkAtThreeDistances) {
  // Within 5% and within 5 standard errors of the rate (0.4% to 1.7% here).
  for (double km : {0.0, 15.0, 30.0}) {
    WeakCoherentBb84Options options;
    options.pulses = 20'000'000;
    options.intensities.probability = {0.6, 0.3, 0.1};
    options.seed = 11;
    auto r = RunWeakCoherentBb84(Link(km), options);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(r->asymptotic.has_value());
    ASSERT_GT(r->analytic_rate, 0.0);
    const double sigma = r->asymptotic_standard_error;
    ASSERT_LT(sigma, 0.025 * r->analytic_rate) << km << " km: too few pulses for a few-percent comparison";
    EXPECT_NEAR(r->asymptotic->key_rate_per_pulse, r->analytic_rate, std::min(0.05 * r->analytic_rate, 5 * sigma))
        << km << " km (standard error " << sigma << ")";
    // The estimate never beats infinitely many decoys by more than the
    // statistics, nor the PLOB bound at all.
    EXPECT_LT(r->asymptotic->key_rate_per_pulse, r->infinite_decoy_rate + 5 * sigma) << km << " km";
    if (std::isfinite(r->plob_bound)) {
      EXPECT_LT(r->asymptotic->key_rate_per_pulse, r->plob_bound) << km << " km";
    }
  }
}

TEST(WeakCoherentBb84SimTest, PhotonNumberSplittingReadsBb84WithoutDecoysAndDecoysCatchIt) {
  // A bright laser (mu 0.8) over 50 km: Eve blocks single photons, keeps a
  // photon of the rest and forwards enough of them to keep Bob's click rate.
  WeakCoherentBb84Options plain;
  plain.decoys = false;
  plain.intensities.mean_photon_number = {0.8, 0.1, 0.0};
  plain.pulses = 4'000'000;
  plain.photon_number_splitting = true;
  plain.seed = 5;
  auto attacked = RunWeakCoherentBb84(Link(50), plain);
  ASSERT_TRUE(attacked.ok()) << attacked.status();
  const qkd::ExpectedCounts honest = qkd::ExpectedWeakCoherent(attacked->link_model, 0.8);
  const qkd::IntensityCounts& signal = attacked->counts[0];
  EXPECT_NEAR(signal.gain() / honest.gain, 1.0, 0.03) << "the attack keeps the click rate";
  EXPECT_LT(signal.error_rate(), 0.03) << "and adds no errors";
  EXPECT_GT(attacked->single_photon_assumption_rate, 0.0) << "BB84 without decoys claims a secret key";
  ASSERT_GT(attacked->sifted_signal_bits, 10000u);
  const double known =
      static_cast<double>(attacked->eavesdropper_known_bits) / static_cast<double>(attacked->sifted_signal_bits);
  EXPECT_GT(known, 0.99) << "Eve holds every sifted bit but dark counts' (" << attacked->eavesdropper_known_bits
                         << " of " << attacked->sifted_signal_bits << ")";

  WeakCoherentBb84Options decoy = plain;
  decoy.decoys = true;
  decoy.intensities.probability = {0.6, 0.3, 0.1};
  auto caught = RunWeakCoherentBb84(Link(50), decoy);
  ASSERT_TRUE(caught.ok()) << caught.status();
  ASSERT_TRUE(caught->asymptotic.has_value() && caught->finite_key.has_value());
  EXPECT_LT(caught->asymptotic->yield_single_lower, 0.1 * caught->by_photon_number[1].yield() + 1e-9)
      << "the single-photon yield bound collapses";
  EXPECT_LE(caught->asymptotic->key_rate_per_pulse, 0.0);
  EXPECT_EQ(caught->finite_key->key_bits, 0u) << "decoy BB84 aborts";

  decoy.photon_number_splitting = false;
  auto honest_run = RunWeakCoherentBb84(Link(50), decoy);
  ASSERT_TRUE(honest_run.ok());
  EXPECT_GT(honest_run->asymptotic->key_rate_per_pulse, 0.0) << "without the attack the same settings give key";
  EXPECT_EQ(honest_run->eavesdropper_known_bits, 0u);
}

TEST(WeakCoherentBb84SimTest, SameSeedSameCounts) {
  WeakCoherentBb84Options options;
  options.pulses = 200'000;
  auto a = RunWeakCoherentBb84(Link(20), options);
  auto b = RunWeakCoherentBb84(Link(20), options);
  ASSERT_TRUE(a.ok() && b.ok());
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(a->counts[k].detections, b->counts[k].detections);
    EXPECT_EQ(a->counts[k].errors_z + a->counts[k].errors_x, b->counts[k].errors_z + b->counts[k].errors_x);
  }
  options.pulses = 0;
  EXPECT_FALSE(RunWeakCoherentBb84(Link(20), options).ok());
}

}  // namespace
}  // namespace qnet::netsim
