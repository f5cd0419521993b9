// Weak coherent pulses and the photon-number-splitting eavesdropper
// (physical/prepare_measure.h): photon statistics must come from the
// simulated source, so each test samples the components and compares with
// the Poisson closed forms, within 5 standard errors.
#include <cmath>
#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "physical/prepare_measure.h"

namespace qnet::physical {
namespace {

using ::testing::HasSubstr;

double Sigma(double p, double n) { return std::sqrt(p * (1.0 - p) / n); }

PhotonSource WeakCoherent(std::vector<PulseIntensity> intensities, uint64_t seed) {
  auto source = PhotonSource::CreateWeakCoherent(1e9, std::move(intensities), Rng(seed).Fork("source"));
  EXPECT_TRUE(source.ok()) << source.status();
  return *std::move(source);
}

TEST(WeakCoherentSourceTest, PhotonNumbersArePoissonPerIntensityAndIntensitiesFollowTheirProbabilities) {
  const std::vector<PulseIntensity> intensities = {{0.5, 0.5}, {0.1, 0.3}, {0.0, 0.2}};
  PhotonSource source = WeakCoherent(intensities, 7);
  constexpr int kPulses = 1'000'000;
  uint64_t per_intensity[3] = {0, 0, 0};
  uint64_t by_number[3][3] = {};  // [intensity][0, 1, >= 2 photons]
  double photons[3] = {0, 0, 0};
  for (const PreparedPulse& p : source.EmitBatch(kPulses)) {
    ASSERT_LT(p.intensity, 3);
    ++per_intensity[p.intensity];
    ++by_number[p.intensity][std::min<uint32_t>(p.photon_number, 2)];
    photons[p.intensity] += p.photon_number;
  }
  for (int k = 0; k < 3; ++k) {
    const double share = static_cast<double>(per_intensity[k]) / kPulses;
    EXPECT_NEAR(share, intensities[k].probability, 5 * Sigma(intensities[k].probability, kPulses)) << "intensity " << k;
    const double mu = intensities[k].mean_photon_number;
    const double n = static_cast<double>(per_intensity[k]);
    const double p0 = std::exp(-mu), p1 = mu * std::exp(-mu), p2 = 1.0 - p0 - p1;
    EXPECT_NEAR(by_number[k][0] / n, p0, 5 * Sigma(p0, n) + 1e-12) << "P(0 photons) at mu " << mu;
    EXPECT_NEAR(by_number[k][1] / n, p1, 5 * Sigma(p1, n) + 1e-12) << "P(1 photon) at mu " << mu;
    EXPECT_NEAR(by_number[k][2] / n, p2, 5 * Sigma(p2, n) + 1e-12) << "P(>= 2 photons) at mu " << mu;
    EXPECT_NEAR(photons[k] / n, mu, 5 * std::sqrt(mu / n) + 1e-12) << "mean photon number at mu " << mu;
  }
  EXPECT_EQ(by_number[2][1] + by_number[2][2], 0u) << "a vacuum pulse carries no photon";
}

TEST(WeakCoherentSourceTest, ASinglePhotonSourceSendsExactlyOnePhotonPerPulse) {
  auto source = PhotonSource::Create(1e9, Rng(3));
  ASSERT_TRUE(source.ok());
  EXPECT_TRUE(source->intensities().empty());
  for (const PreparedPulse& p : source->EmitBatch(10000)) {
    ASSERT_EQ(p.photon_number, 1u);
    ASSERT_EQ(p.intensity, 0);
  }
}

TEST(WeakCoherentSourceTest, EachPhotonIsLostIndependentlyInTheFibre) {
  // Thinning a Poisson number: photons arriving per pulse are Poisson(mu T).
  const double mu = 0.8;
  PhotonSource source = WeakCoherent({{mu, 1.0}}, 11);
  FibreChannelParams params;
  params.length_km = 25;  // T = 10^(-0.5) = 0.316
  auto fibre = FibreChannel::Create(params, Rng(11).Fork("fibre"));
  ASSERT_TRUE(fibre.ok());
  const double t = fibre->transmittance();
  constexpr int kPulses = 400'000;
  auto out = fibre->Transmit(source.EmitBatch(kPulses));
  ASSERT_TRUE(out.ok()) << out.status();
  double photons = 0;
  uint64_t two_or_more = 0;
  for (const auto& photon : out->to_receiver.photons) {
    photons += photon.count;
    if (photon.count >= 2) ++two_or_more;
  }
  const double arrive = -std::expm1(-mu * t);
  EXPECT_NEAR(static_cast<double>(out->to_receiver.photons.size()) / kPulses, arrive, 5 * Sigma(arrive, kPulses));
  EXPECT_NEAR(photons / kPulses, mu * t, 5 * std::sqrt(mu * t / kPulses));
  const double multi = 1.0 - std::exp(-mu * t) * (1.0 + mu * t);
  EXPECT_NEAR(static_cast<double>(two_or_more) / kPulses, multi, 5 * Sigma(multi, kPulses));
}

TEST(WeakCoherentSourceTest, AMultiPhotonPulseCanClickBothDetectors) {
  // Ten photons in X measured in Z: each detector sees about five, so with
  // efficiency 1 nearly every gate double-clicks (P(one side empty) = 2^-9).
  PhotonBatch batch;
  batch.first_pulse_id = 0;
  batch.num_pulses = 2000;
  for (uint64_t i = 0; i < batch.num_pulses; ++i) batch.photons.push_back({i, PreparedPolarisation(1, 0), 10});
  auto bob = PhotonDetector::Create({1.0, 0.0}, Rng(5));
  ASSERT_TRUE(bob.ok());
  auto records = bob->Detect(batch);
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(records->size(), batch.num_pulses);
  EXPECT_EQ(bob->stats().photons_arrived, 10 * batch.num_pulses);
  uint64_t z_gates = 0;
  for (const MeasuredPulse& r : *records) z_gates += r.basis == kPolarisationBasisZ ? 1 : 0;
  // Every Z gate double-clicks but for 2^-9 of them; no X gate does (all
  // ten photons go to the D detector).
  EXPECT_GT(bob->stats().double_clicks, z_gates * 0.98);
  EXPECT_LE(bob->stats().double_clicks, z_gates);
}

TEST(PhotonNumberSplittingTest, ForwardProbabilityIsTheHonestArrivalRateOverTheMultiPhotonShare) {
  // Hand computation: mu 0.5, T 0.1: honest 1 - e^-0.05 = 0.0487706,
  // multi-photon 1 - 1.5 e^-0.5 = 0.0902040.
  EXPECT_NEAR(PnsForwardProbability(0.5, 0.1, 1.0), 0.0487706 / 0.0902040, 1e-5);
  // With detectors of efficiency 0.5: 1 - e^-0.025 = 0.0246901 honest
  // clicks, 0.5 x 0.0902040 from forwarded photons.
  EXPECT_NEAR(PnsForwardProbability(0.5, 0.1, 0.5), 0.0246901 / 0.0451020, 1e-5);
  EXPECT_EQ(PnsForwardProbability(0.5, 0.9, 1.0), 1.0) << "a short fibre leaves the attacker short of photons";
}

TEST(PhotonNumberSplittingTest, BlocksSinglePhotonsSplitsTheRestAndKeepsTheHonestArrivalRate) {
  const double mu = 0.5;
  PhotonSource source = WeakCoherent({{mu, 1.0}}, 21);
  FibreChannelParams params;
  params.length_km = 50;  // T = 0.1
  params.misalignment_error = 0.02;
  params.photon_number_splitting = true;
  params.pns_forward_probability = PnsForwardProbability(mu, 0.1, 1.0);
  auto fibre = FibreChannel::Create(params, Rng(21).Fork("fibre"));
  ASSERT_TRUE(fibre.ok()) << fibre.status();
  constexpr int kPulses = 500'000;
  const std::vector<PreparedPulse> alice = source.EmitBatch(kPulses);
  auto out = fibre->Transmit(alice);
  ASSERT_TRUE(out.ok()) << out.status();

  uint64_t multi = 0;
  for (const PreparedPulse& p : alice) multi += p.photon_number >= 2 ? 1 : 0;
  EXPECT_EQ(out->intercepted.size(), multi) << "Eve keeps a photon of every multi-photon pulse";
  for (const MeasuredPulse& eve : out->intercepted) {
    const PreparedPulse& a = alice[eve.pulse_id];
    ASSERT_GE(a.photon_number, 2u);
    ASSERT_EQ(eve.basis, a.basis);
    ASSERT_EQ(eve.bit, a.bit) << "a stored photon measured in Alice's basis gives her bit";
  }
  for (const auto& photon : out->to_receiver.photons) {
    const PreparedPulse& a = alice[photon.pulse_id];
    ASSERT_GE(a.photon_number, 2u) << "single-photon pulses never reach Bob";
    ASSERT_EQ(photon.count, 1u) << "one photon goes on, over a lossless channel";
  }
  // With ideal detectors a photon arriving is a click.
  const double honest = -std::expm1(-mu * 0.1);
  EXPECT_NEAR(static_cast<double>(out->to_receiver.photons.size()) / kPulses, honest, 5 * Sigma(honest, kPulses))
      << "Bob sees the click rate the lossy fibre would give";
}

TEST(WeakCoherentSourceTest, RejectsBadIntensitiesAndAMisplacedSplittingAttack) {
  auto no_intensity = PhotonSource::CreateWeakCoherent(1e9, {}, Rng(1));
  EXPECT_THAT(no_intensity.status().message(), HasSubstr("1 to 8 intensities"));
  auto bad_sum = PhotonSource::CreateWeakCoherent(1e9, {{0.5, 0.5}, {0.1, 0.4}}, Rng(1));
  EXPECT_THAT(bad_sum.status().message(), HasSubstr("sum to 0.9"));
  auto negative = PhotonSource::CreateWeakCoherent(1e9, {{-0.5, 1.0}}, Rng(1));
  EXPECT_THAT(negative.status().message(), HasSubstr("mean_photon_number"));
  auto zero_probability = PhotonSource::CreateWeakCoherent(1e9, {{0.5, 1.0}, {0.1, 0.0}}, Rng(1));
  EXPECT_THAT(zero_probability.status().message(), HasSubstr("probability = 0"));

  FibreChannelParams params;
  params.photon_number_splitting = true;
  params.eavesdropper_position = 0.5;
  EXPECT_THAT(FibreChannel::Create(params, Rng(1)).status().message(), HasSubstr("sender's output"));
  params.eavesdropper_position = 0.0;
  params.pns_forward_probability = 1.5;
  EXPECT_THAT(FibreChannel::Create(params, Rng(1)).status().message(), HasSubstr("pns_forward_probability"));

  PhotonBatch empty_pulse;
  empty_pulse.num_pulses = 1;
  empty_pulse.photons.push_back({0, PreparedPolarisation(0, 0), 0});
  auto bob = PhotonDetector::Create({1.0, 0.0}, Rng(1));
  ASSERT_TRUE(bob.ok());
  EXPECT_THAT(bob->Detect(empty_pulse).status().message(), HasSubstr("carries 0 photons"));
}

}  // namespace
}  // namespace qnet::physical
