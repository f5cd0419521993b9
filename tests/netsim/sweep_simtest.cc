// A length sweep in the simulator measures what the heralding model says
// each length gives: on a double-click link (no bright-state parameter to
// choose) the share of attempts that herald a pair is the calibrated success
// probability p of that length (ideal emitters, 0.8 detectors, 0.2 dB/km:
// p = eta_A eta_B / 2 falls 6.3-fold, 8 dB, from 5 to 45 km), so a sweep that did
// not change the length, or counts that did not come from the simulated
// attempts, would miss it by far more than the statistical tolerance. The
// pair rate must fall with the length too.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "config/network_config.h"
#include "gtest/gtest.h"
#include "netsim/link_experiment.h"
#include "netsim/simulated_network.h"
#include "netsim/sweep.h"
#include "physical/calibration.h"

namespace qnet::netsim {
namespace {

constexpr char kPair[] = R"(network: sweep-pair
nodes:
  - {name: a, hardware: ideal, qubits: 4}
  - {name: b, hardware: ideal, qubits: 4}
links:
  - between: [a, b]
    length_km: 1
    scheme: double-click
    detector_efficiency: 0.8
)";

TEST(SweepSimTest, PairRateAtEachLengthIsTheCalibratedSuccessRate) {
  auto base = config::ParseNetworkConfig(kPair, "sweep-pair.yaml");
  ASSERT_TRUE(base.ok()) << base.status();
  const uint32_t pairs = 2000;
  double previous_rate = INFINITY;
  for (double length : {5.0, 25.0, 45.0}) {
    SCOPED_TRACE(absl::StrCat(length, " km"));
    auto config = WithLinkLength(*base, "a-b", length);
    ASSERT_TRUE(config.ok()) << config.status();
    auto calibration = physical::Calibrate(config->nodes[0].hardware, config->nodes[1].hardware, config->links[0], 0.5);
    ASSERT_TRUE(calibration.ok()) << calibration.status();
    const double p = calibration->success_probability;
    auto network = SimulatedNetwork::Create(*config, 11);
    ASSERT_TRUE(network.ok()) << network.status();
    LinkExperiment experiment;
    experiment.origin = "a";
    experiment.remote = "b";
    experiment.pairs = pairs;
    auto result = RunLinkExperiment(**network, experiment, FromSeconds(3600));
    ASSERT_TRUE(result.ok()) << result.status();
    const double rate = static_cast<double>(result->statistics.pairs) / ToSeconds(result->simulated_time);
    auto stats = (*network)->node("a")->physical().HeraldStats("b");
    ASSERT_TRUE(stats.ok()) << stats.status();
    ASSERT_GE(stats->heralded, pairs);
    const double attempts = static_cast<double>(stats->attempts);
    const double measured_p = static_cast<double>(stats->heralded) / attempts;
    // Binomial: 5 standard errors of the success share.
    const double tolerance = 5 * std::sqrt(p * (1 - p) / attempts);
    EXPECT_NEAR(measured_p, p, tolerance) << stats->heralded << " pairs in " << stats->attempts << " attempts";
    EXPECT_LT(rate, previous_rate);
    previous_rate = rate;
  }
}

}  // namespace
}  // namespace qnet::netsim
