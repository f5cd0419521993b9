// A satellite pass simulated photon by photon (netsim/decoy_experiment.h):
// the link is up, and key comes, only above the minimum elevation, and the
// loss the ground station measures in each segment (from its signal gain)
// is the channel formula's at that elevation, within statistics.
#include <cmath>
#include <cstdint>

#include "gtest/gtest.h"
#include "netsim/decoy_experiment.h"
#include "physical/satellite_channel.h"
#include "qkd/decoy_state.h"

namespace qnet::netsim {
namespace {

physical::SatelliteLink TestLink() {
  auto link = physical::SatelliteLinkPreset("micius");
  EXPECT_TRUE(link.ok());
  link->name = "sat-ground";
  link->satellite = "sat";
  link->ground = "ground";
  link->source_rate_hz = 1e7;  // a tenth of Micius's: the same physics, fewer photons to draw
  return *link;
}

SatellitePassOptions Options() {
  SatellitePassOptions options;
  options.bb84.intensities.mean_photon_number = {0.8, 0.1, 0.0};
  options.bb84.intensities.probability = {0.5, 0.25, 0.25};
  options.bb84.seed = 5;
  options.segment_s = 2.0;
  return options;
}

TEST(SatellitePassSimTest, KeyOnlyAboveTheMinimumElevationAndLossAsTheChannelFormulaSays) {
  const physical::SatelliteLink link = TestLink();
  auto pass = RunSatellitePass(link, Options());
  ASSERT_TRUE(pass.ok()) << pass.status();
  const double mu = 0.8;
  const double dark = pass->dark_count_probability;
  int up = 0, down = 0;
  for (const PassSegment& seg : pass->segments) {
    if (seg.elevation_deg < link.channel.min_elevation_deg) {
      ++down;
      EXPECT_FALSE(seg.link_up);
      EXPECT_EQ(seg.pulses, 0u) << "below " << link.channel.min_elevation_deg << " degrees the link is down";
      EXPECT_EQ(seg.sifted, 0u);
      continue;
    }
    ++up;
    ASSERT_TRUE(seg.link_up);
    EXPECT_GT(seg.sifted, 0u) << "at " << seg.elevation_deg << " degrees";
    // Invert the signal gain Q = 1 - (1 - p_d)^2 exp(-mu eta_d T) for T.
    const double n = static_cast<double>(seg.pulses_per_intensity[0]);
    const double q = static_cast<double>(seg.detections[0]) / n;
    const double measured = -std::log((1 - q) / ((1 - dark) * (1 - dark))) / (mu * link.detector_efficiency);
    const double sigma = std::sqrt(q * (1 - q) / n) / ((1 - q) * mu * link.detector_efficiency);
    EXPECT_NEAR(measured, seg.transmittance, 5 * sigma) << "at " << seg.elevation_deg << " degrees";
    EXPECT_NEAR(seg.transmittance, physical::SatelliteChannelTransmittance(link.channel, seg.elevation_deg), 1e-15);
  }
  EXPECT_GT(up, 100);
  EXPECT_GT(down, 20) << "the timeline runs from horizon to horizon";
  // The decoy's and the vacuum's detections over the whole pass against the
  // closed form segment by segment (dark counts and background land on
  // every intensity; the vacuum sees nothing else, and its bits are random).
  for (int k : {1, 2}) {
    const double nu = k == 1 ? 0.1 : 0.0;
    double expected = 0, variance = 0, seen = 0;
    for (const PassSegment& seg : pass->segments) {
      const double n = static_cast<double>(seg.pulses_per_intensity[k]);
      const double p = 1 - (1 - dark) * (1 - dark) * std::exp(-nu * link.detector_efficiency * seg.transmittance);
      expected += n * p;
      variance += n * p * (1 - p);
      seen += static_cast<double>(seg.detections[k]);
    }
    EXPECT_NEAR(seen, expected, 5 * std::sqrt(variance)) << "detections at intensity " << k;
  }
  const qkd::IntensityCounts& vacuum = pass->counts[2];
  const double vacuum_sifted = static_cast<double>(vacuum.sifted_z + vacuum.sifted_x);
  ASSERT_GT(vacuum_sifted, 100);
  EXPECT_NEAR(vacuum.error_rate(), 0.5, 5 * std::sqrt(0.25 / vacuum_sifted)) << "a dark count's bit is random";
  ASSERT_TRUE(pass->asymptotic.has_value());
  EXPECT_GT(pass->asymptotic->key_rate_per_pulse, 5 * pass->asymptotic_standard_error);
  ASSERT_TRUE(pass->finite_key.has_value());
  EXPECT_GT(pass->finite_key->key_bits, 0u) << "a pass at a tenth of Micius's rate still yields a finite key";

  // A higher threshold: a shorter window, less key, none from below it.
  physical::SatelliteLink high = link;
  high.channel.min_elevation_deg = 40;
  auto short_pass = RunSatellitePass(high, Options());
  ASSERT_TRUE(short_pass.ok());
  EXPECT_LT(short_pass->seconds_up, 0.5 * pass->seconds_up);
  EXPECT_LT(short_pass->sifted_bits, pass->sifted_bits);
  for (const PassSegment& seg : short_pass->segments) {
    if (seg.sifted > 0) {
      EXPECT_GE(seg.elevation_deg, 40.0);
    }
  }
}

TEST(SatellitePassSimTest, RefusesBadSegmentsAndIntensities) {
  SatellitePassOptions options = Options();
  options.segment_s = 0;
  EXPECT_FALSE(RunSatellitePass(TestLink(), options).ok());
  options = Options();
  options.bb84.intensities.mean_photon_number = {0.1, 0.8, 0.0};
  EXPECT_FALSE(RunSatellitePass(TestLink(), options).ok());
}

}  // namespace
}  // namespace qnet::netsim
