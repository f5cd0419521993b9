// The satellite downlink's channel and pass (physical/satellite_channel.h)
// against hand computations, and the sparse sampler of weak coherent pulses
// through a lossy channel (prepare_measure.h) against the per-pulse law.
#include "physical/satellite_channel.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "physical/prepare_measure.h"

namespace qnet::physical {
namespace {

using ::testing::HasSubstr;

TEST(SatelliteChannelTest, SlantRangeGeometryAndAtmosphereByHand) {
  // Overhead: the altitude. On the horizon: sqrt((R + h)^2 - R^2) =
  // sqrt(6871^2 - 6371^2) = 2573.13 km.
  EXPECT_NEAR(SlantRangeKm(500, 90), 500.0, 1e-9);
  EXPECT_NEAR(SlantRangeKm(500, 0), 2573.13, 0.01);
  SatelliteLinkParams p;
  p.beam_divergence_urad = 10;  // w = 5 urad x 1000 km = 5 m
  p.receiver_aperture_m = 1.0;  // a = 0.5 m
  p.pointing_error_urad = 0.0;
  EXPECT_NEAR(GeometricTransmittance(p, 1000), 1 - std::exp(-2 * 0.25 / 25), 1e-12);
  // Jitter of 2 urad per axis at 1000 km adds 4 (2 m)^2 to w^2.
  p.pointing_error_urad = 2.0;
  EXPECT_NEAR(GeometricTransmittance(p, 1000), 1 - std::exp(-2 * 0.25 / (25 + 16)), 1e-12);
  p.zenith_transmission = 0.5;
  EXPECT_NEAR(AtmosphericTransmittance(p, 90), 0.5, 1e-12);
  EXPECT_NEAR(AtmosphericTransmittance(p, 30), 0.25, 1e-12) << "two air masses at 30 degrees";
  EXPECT_EQ(AtmosphericTransmittance(p, -1), 0.0);
  p.optics_efficiency = 0.4;
  const double range = SlantRangeKm(p.altitude_km, 45);
  EXPECT_NEAR(SatelliteChannelTransmittance(p, 45),
              GeometricTransmittance(p, range) * std::pow(0.5, std::sqrt(2.0)) * 0.4, 1e-15);
}

TEST(SatelliteChannelTest, APassRisesCulminatesAndSetsOnKeplersClock) {
  SatelliteLinkParams p;  // 500 km, overhead
  p.max_elevation_deg = 90;
  auto pass = SatellitePass::Create(p);
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_NEAR(pass->ElevationDeg(0), 90.0, 1e-6);
  EXPECT_NEAR(pass->ElevationDeg(-100), pass->ElevationDeg(100), 1e-9);
  // Zenith to horizon: central angle acos(6371/6871) = 0.383848 rad at the
  // orbital rate sqrt(GM / 6871^3) = 1.108508e-3 rad/s: 346.27 s.
  EXPECT_NEAR(pass->SecondsAbove(0), 346.27, 0.05);
  EXPECT_NEAR(pass->ElevationDeg(pass->SecondsAbove(10)), 10.0, 1e-6);
  EXPECT_NEAR(pass->SlantRangeKmAt(pass->SecondsAbove(30)), SlantRangeKm(500, 30), 1e-6);
  // A lower culmination: the same orbit passes to the side.
  p.max_elevation_deg = 40;
  auto side = SatellitePass::Create(p);
  ASSERT_TRUE(side.ok());
  EXPECT_NEAR(side->ElevationDeg(0), 40.0, 1e-6);
  EXPECT_LT(side->SecondsAbove(10), pass->SecondsAbove(10));
  EXPECT_EQ(side->SecondsAbove(45), 0.0) << "never that high";
}

TEST(SatelliteChannelTest, RejectsParametersOutsideTheirRanges) {
  SatelliteLinkParams p;
  p.min_elevation_deg = 50;
  p.max_elevation_deg = 40;
  EXPECT_THAT(ValidateSatelliteLink(p, "link s-g").message(), HasSubstr("would never come up"));
  p = {};
  p.zenith_transmission = 1.5;
  EXPECT_THAT(ValidateSatelliteLink(p, "link s-g").message(), HasSubstr("zenith_transmission = 1.5"));
  p = {};
  p.altitude_km = 10;
  EXPECT_THAT(SatellitePass::Create(p).status().message(), HasSubstr("altitude_km"));
  EXPECT_THAT(SatelliteLinkPreset("sputnik").status().message(), HasSubstr("known: micius"));
}

TEST(SatelliteChannelTest, TheMiciusPresetGivesTheReportedLossAt645Km) {
  // Liao et al. 2017 report 22 dB of channel loss at 645 km; the preset's
  // free parameters were chosen for it (the header says which).
  auto micius = SatelliteLinkPreset("micius");
  ASSERT_TRUE(micius.ok());
  // Elevation at 645 km: sin e = ((R + h)^2 - R^2 - d^2) / (2 R d).
  const double r = kEarthRadiusKm, h = 500, d = 645;
  const double elevation = std::asin(((r + h) * (r + h) - r * r - d * d) / (2 * r * d)) * 180 / M_PI;
  EXPECT_NEAR(SlantRangeKm(h, elevation), d, 1e-6);
  EXPECT_NEAR(-10 * std::log10(SatelliteChannelTransmittance(micius->channel, elevation)), 22.0, 0.1);
}

TEST(LossyChannelSampleTest, MatchesThePerPulseLaw) {
  // 10^7 pulses at T = 10^-3 (30 dB): intensity k delivers a photon with
  // probability 1 - e^(-mu_k T); the split of pulses follows p_k.
  const std::vector<PulseIntensity> intensities = {{0.8, 0.5}, {0.1, 0.25}, {0.0, 0.25}};
  const double t = 1e-3;
  const uint64_t pulses = 10'000'000;
  Rng rng(17);
  auto sample = SampleWeakCoherentThroughLoss(intensities, 1000, pulses, t, 0.0, rng);
  ASSERT_TRUE(sample.ok()) << sample.status();
  uint64_t total = 0;
  for (uint64_t n : sample->pulses_per_intensity) total += n;
  EXPECT_EQ(total, pulses);
  uint64_t delivered[3] = {0, 0, 0};
  for (const PreparedPulse& p : sample->delivering) {
    ++delivered[p.intensity];
    ASSERT_GE(p.pulse_id, 1000u);
    ASSERT_LT(p.pulse_id, 1000 + pulses);
  }
  EXPECT_EQ(delivered[2], 0u) << "vacuum delivers nothing";
  ASSERT_EQ(sample->to_receiver.photons.size(), sample->delivering.size());
  for (size_t i = 1; i < sample->delivering.size(); ++i) {
    ASSERT_LT(sample->delivering[i - 1].pulse_id, sample->delivering[i].pulse_id);
  }
  for (int k = 0; k < 3; ++k) {
    const double n = static_cast<double>(sample->pulses_per_intensity[k]);
    const double p = intensities[k].probability;
    EXPECT_NEAR(n / pulses, p, 5 * std::sqrt(p * (1 - p) / pulses)) << "share of intensity " << k;
    const double a = -std::expm1(-intensities[k].mean_photon_number * t);
    EXPECT_NEAR(delivered[k] / n, a, 5 * std::sqrt(a / n) + 1e-12) << "delivery at intensity " << k;
  }
  // Photons per delivering pulse of the signal: Poisson(mu T) given >= 1,
  // mean mu T / (1 - e^(-mu T)) = 1.0004.
  double photons = 0;
  for (const auto& photon : sample->to_receiver.photons) photons += photon.count;
  EXPECT_NEAR(photons / sample->to_receiver.photons.size(), 1.0004, 0.002);
}

TEST(LossyChannelSampleTest, PhotonNumbersPolarisationsAndChoicesOfTheDeliveringPulses) {
  // A brighter channel (T = 0.2) so multi-photon arrivals are common: given
  // >= 1 photon arrives, >= 2 do with probability
  // (1 - e^-l (1 + l)) / (1 - e^-l), l = mu T; the photons lost on the way
  // are Poisson(mu (1 - T)) on their own; misalignment shrinks the Bloch
  // vector to 1 - 2 e_d; bases and bits are uniform.
  const double mu = 0.8, t = 0.2, ed = 0.05;
  Rng rng(29);
  auto sample = SampleWeakCoherentThroughLoss({{mu, 1.0}}, 0, 1'000'000, t, ed, rng);
  ASSERT_TRUE(sample.ok()) << sample.status();
  const double n = static_cast<double>(sample->delivering.size());
  ASSERT_GT(n, 100000);
  uint64_t multi = 0, x_basis = 0, ones = 0;
  double lost = 0;
  for (size_t i = 0; i < sample->delivering.size(); ++i) {
    const PreparedPulse& p = sample->delivering[i];
    const auto& photon = sample->to_receiver.photons[i];
    ASSERT_EQ(photon.pulse_id, p.pulse_id);
    ASSERT_GE(p.photon_number, photon.count);
    multi += photon.count >= 2 ? 1 : 0;
    lost += p.photon_number - photon.count;
    x_basis += p.basis;
    ones += p.bit;
    const BlochVector& r = photon.polarisation;
    ASSERT_NEAR(std::sqrt(r.x * r.x + r.y * r.y + r.z * r.z), 1 - 2 * ed, 1e-12);
    ASSERT_NEAR(p.basis == kPolarisationBasisZ ? r.z : r.x, (p.bit == 0 ? 1 : -1) * (1 - 2 * ed), 1e-12);
  }
  const double l = mu * t;
  const double p_multi = (1 - std::exp(-l) * (1 + l)) / (1 - std::exp(-l));
  EXPECT_NEAR(multi / n, p_multi, 5 * std::sqrt(p_multi * (1 - p_multi) / n));
  EXPECT_NEAR(lost / n, mu * (1 - t), 5 * std::sqrt(mu * (1 - t) / n));
  EXPECT_NEAR(x_basis / n, 0.5, 5 * std::sqrt(0.25 / n));
  EXPECT_NEAR(ones / n, 0.5, 5 * std::sqrt(0.25 / n));
  EXPECT_NEAR(n / 1e6, 1 - std::exp(-l), 5 * std::sqrt((1 - std::exp(-l)) / 1e6));
}

TEST(LossyChannelSampleTest, BinomialSamplesHaveTheBinomialsMeanAndSpreadInBothRegimes) {
  Rng rng(3);
  for (auto [n, p] : {std::pair<uint64_t, double>{2000, 0.01}, {1'000'000'000, 0.3}}) {
    const int kDraws = 4000;
    double sum = 0, sum2 = 0;
    for (int i = 0; i < kDraws; ++i) {
      const double x = static_cast<double>(SampleBinomial(n, p, rng));
      sum += x;
      sum2 += x * x;
    }
    const double mean = sum / kDraws, var = sum2 / kDraws - mean * mean;
    const double expected_var = n * p * (1 - p);
    EXPECT_NEAR(mean, n * p, 5 * std::sqrt(expected_var / kDraws)) << n << " trials";
    EXPECT_NEAR(var / expected_var, 1.0, 0.12) << n << " trials";
  }
  EXPECT_EQ(SampleBinomial(10, 1.0, rng), 10u);
  EXPECT_EQ(SampleBinomial(10, 0.0, rng), 0u);
}

}  // namespace
}  // namespace qnet::physical
