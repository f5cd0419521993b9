// End-to-end pairs through noisy repeaters and purified links in the
// simulator: the per-basis errors a repeater's Bell-state measurement adds,
// and DEJMPS purification reaching what swapping alone cannot, both against
// hand computations. (Split from network_chain_simtest.cc so each binary
// stays well inside the test timeout under the sanitizers.)
#include <array>
#include <cmath>
#include <map>

#include "apps/pair_statistics.h"
#include "gtest/gtest.h"
#include "network/bell_diagonal.h"
#include "tests/network/network_harness.h"

namespace qnet::network {
namespace {

using qnet::testing::ChainYaml;
using qnet::testing::NetLog;
using qnet::testing::Ends;
using qnet::testing::RunRequest;
using qnet::testing::SimStackNetwork;
using std::chrono::seconds;


}  // namespace
}  // namespace qnet::network

namespace qnet::network {
namespace {

// A noisy repeater between ideal links and ideal ends: the end-to-end
// errors per basis are the ones its Bell-state measurement makes, as
// BellMeasurementErrors predicts from the device's gate and readout errors
// (Z basis: X or Y frame errors; X basis: Z or Y; Y basis: X or Z).
TEST(NetworkChainSimTest, ANoisyRepeatersSwapErrorsMatchItsDeviceErrors) {
  const char* yaml = R"(
network: noisy-repeater
nodes:
  - {name: n0, hardware: ideal}
  - {name: n1, hardware: ideal, two_qubit_gate_error: 0.06, single_qubit_gate_error: 0.04, readout_error_0: 0.03, readout_error_1: 0.05}
  - {name: n2, hardware: ideal}
links:
  - {between: [n0, n1], length_km: 1}
  - {between: [n1, n2], length_km: 1}
)";
  const BellDiagonal e = BellMeasurementErrors(0.04, 0.06, 0.03, 0.05);
  // Z basis: X or Y frame errors flip it; X basis: Z or Y; Y basis: X or Z.
  const std::vector<std::pair<link::BasisChoice, double>> bases = {
      {link::BasisChoice::kZ, e.p[1] + e.p[3]}, {link::BasisChoice::kX, e.p[2] + e.p[3]},
      {link::BasisChoice::kY, e.p[1] + e.p[2]}};
  for (const auto& [basis, expected] : bases) {
    SCOPED_TRACE(static_cast<int>(basis));
    SimStackNetwork net(yaml, 11 + static_cast<int>(basis));
    EndToEndRequest r;
    r.remote_node = "n2";
    r.number = 4000;
    r.type = link::RequestType::kMeasure;
    r.basis = basis;
    Ends run;
    RunRequest(net, 2, r, run, seconds(120));
    ASSERT_EQ(run.head.pairs.size(), 4000u);
    apps::PairStatistics stats = apps::AnalysePairs(qnet::testing::MatchEnds(run.head.pairs, run.tail.pairs));
    const apps::ErrorRate& rate = basis == link::BasisChoice::kZ ? stats.z : (basis == link::BasisChoice::kX ? stats.x : stats.y);
    ASSERT_EQ(rate.pairs, 4000u);
    // 5 sigma ~ 0.024: missing the readout or the gate term would fail.
    const double sigma = std::sqrt(expected * (1 - expected) / 4000.0);
    EXPECT_NEAR(rate.rate(), expected, 5 * sigma);
    // Each pair's estimate is the model's (the links are exact).
    EXPECT_NEAR(run.head.pairs[0].fidelity_estimate, e.fidelity(), 1e-9);
  }
}

}  // namespace
}  // namespace qnet::network

namespace qnet::network {
namespace {

// Links of visibility 0.8 herald pairs with fidelity 0.9 and only phase
// (PHI+ <-> PHI-) errors once corrected to PHI+: (0.9, 0, 0.1, 0) in the
// frame-error basis (none, X, Z, Y). Swapping two of them gives at best
// 0.9^2 + 0.1^2 = 0.82; the planner's Werner model says 0.813, below the
// 0.85 asked, so it purifies each link once. By hand, DEJMPS (Deutsch et
// al. 1996) of two such pairs succeeds with N = 0.9^2 + 0.1^2 = 0.82 and
// keeps A' = 0.81/0.82 (no error) and C' = 0.01/0.82 (an X-type error);
// swapping two purified pairs: F = A'^2 + C'^2, X-type error 2 A' C'. So
// Z- and Y-basis outcomes disagree with rate 2 A' C' and X-basis ones never.
TEST(NetworkChainSimTest, PurificationReachesWhatSwappingAloneCannot) {
  SimStackNetwork net(ChainYaml(2, "ideal", 1.0, "    qubits: 4\n", "    visibility: 0.8\n"), 21);
  net.RunFor(std::chrono::milliseconds(1));
  EndToEndRequest r;
  r.remote_node = "n2";
  r.number = 3000;
  r.type = link::RequestType::kMeasure;
  r.basis = link::BasisChoice::kSixState;
  r.min_fidelity = 0.85;
  Ends run;
  RunRequest(net, 2, r, run, seconds(120));
  ASSERT_TRUE(run.head.failed.empty()) << run.head.failed[0].message;
  ASSERT_EQ(run.head.pairs.size(), 3000u);
  apps::PairStatistics stats = apps::AnalysePairs(qnet::testing::MatchEnds(run.head.pairs, run.tail.pairs));
  const double a = 0.81 / 0.82, c = 0.01 / 0.82;
  const double x_error = 2 * a * c;  // ~0.024
  auto sigma = [](double p, uint64_t n) { return std::sqrt(std::max(p * (1 - p), 1e-4) / static_cast<double>(n)); };
  EXPECT_NEAR(stats.z.rate(), x_error, 5 * sigma(x_error, stats.z.pairs)) << stats.z.pairs;
  EXPECT_NEAR(stats.y.rate(), x_error, 5 * sigma(x_error, stats.y.pairs)) << stats.y.pairs;
  EXPECT_EQ(stats.x.errors, 0u);
  ASSERT_TRUE(stats.fidelity.has_value());
  EXPECT_NEAR(stats.fidelity->value, a * a + c * c, 5 * stats.fidelity->standard_error);
  for (const PairDelivered& p : run.head.pairs) EXPECT_GE(p.fidelity_estimate, 0.85);
  // About one round in N = 0.82 succeeds.
  const NetworkLayerStats& tail = net.node("n2").network().stats();
  const double successes = static_cast<double>(tail.purifications);
  const double rounds = successes + static_cast<double>(tail.purification_failures);
  EXPECT_NEAR(successes / rounds, 0.82, 5 * std::sqrt(0.82 * 0.18 / rounds));
  qnet::testing::ExpectNetworkClean(net);

  // Beyond what two rounds can do: refused at once.
  EndToEndRequest too_much = r;
  too_much.min_fidelity = 0.999;
  NetLog log;
  auto refused = net.node("n0").network().Create(too_much, log.Handler());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("purification"), std::string::npos) << refused.status();
}

}  // namespace
}  // namespace qnet::network
