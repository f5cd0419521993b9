// Abstract Werner links (scheme: werner), the link model of SeQUeNCe, QuISP
// and most papers, through the whole stack: each link heralds with its
// stated probability per attempt, and over a chain of ideal repeaters the
// end-to-end pair is the Werner composition, Werner parameter w^hops with
// w = (4F - 1)/3, so the Z and X error rates are both (1 - w^hops)/2. A
// dephasing-only state (no Z errors), a composition of fidelities instead of
// Werner parameters (w -> F: 0.075 instead of 0.1 on one hop, 0.14 instead
// of 0.18 on two) or a wrong success probability misses by more than five
// standard errors at these counts (6,000 pairs per basis: sigma <= 0.005). Also: qnetsim's memory report.
#include <cmath>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/status/statusor.h"
#include "config/network_config.h"
#include "core/status.h"
#include "gtest/gtest.h"
#include "netsim/path_experiment.h"
#include "netsim/simulated_network.h"

namespace qnet::netsim {
namespace {

std::string WernerChain(int hops, double fidelity, double p, int qubits, const std::string& link_extra = "") {
  std::string yaml = absl::StrCat("network: werner-chain\nnodes:\n");
  for (int i = 0; i <= hops; ++i) absl::StrAppend(&yaml, "  - {name: n", i, ", hardware: ideal, qubits: ", qubits, "}\n");
  absl::StrAppend(&yaml, "links:\n");
  for (int i = 0; i < hops; ++i) {
    absl::StrAppend(&yaml, "  - between: [n", i, ", n", i + 1, "]\n    length_km: 1\n    scheme: werner\n",
                    "    werner_fidelity: ", fidelity, "\n    success_probability: ", p, "\n", link_extra);
  }
  return yaml;
}

// Builds the network of `yaml` with `seed` and runs `experiment` on it.
absl::StatusOr<PathExperimentResult> RunOnChain(const std::string& yaml, uint64_t seed,
                                                const PathExperiment& experiment) {
  QNET_ASSIGN_OR_RETURN(config::NetworkConfig config, config::ParseNetworkConfig(yaml, "werner-chain.yaml"));
  QNET_ASSIGN_OR_RETURN(std::unique_ptr<SimulatedNetwork> network, SimulatedNetwork::Create(config, seed));
  return RunPathExperiment(*network, experiment, FromSeconds(3600));
}

TEST(WernerChainSimTest, EndToEndErrorRatesFollowTheWernerComposition) {
  const double f = 0.85;
  const double p = 0.3;
  const double w = (4 * f - 1) / 3;
  for (int hops : {1, 2}) {
    const double expected = (1 - std::pow(w, hops)) / 2;
    // Each basis on its own: every pair counts (BB84 would keep a quarter per basis).
    for (link::BasisChoice basis : {link::BasisChoice::kZ, link::BasisChoice::kX}) {
      SCOPED_TRACE(absl::StrCat(hops, " hops, basis ", basis == link::BasisChoice::kZ ? "Z" : "X"));
      auto config = config::ParseNetworkConfig(WernerChain(hops, f, p, 4), "werner-chain.yaml");
      ASSERT_TRUE(config.ok()) << config.status();
      auto network = SimulatedNetwork::Create(*config, 40 + hops);
      ASSERT_TRUE(network.ok()) << network.status();
      PathExperiment experiment;
      experiment.origin = "n0";
      experiment.remote = absl::StrCat("n", hops);
      experiment.pairs = 6000;
      experiment.basis = basis;
      auto result = RunPathExperiment(**network, experiment, FromSeconds(3600));
      ASSERT_TRUE(result.ok()) << result.status();
      const apps::ErrorRate& e = basis == link::BasisChoice::kZ ? result->statistics.z : result->statistics.x;
      ASSERT_EQ(e.pairs, experiment.pairs);
      const double sigma = std::sqrt(expected * (1 - expected) / static_cast<double>(e.pairs));
      EXPECT_NEAR(e.rate(), expected, 5 * sigma) << e.errors << " errors in " << e.pairs;
      // Each attempt heralds with the stated probability (binomial, 5 sigma).
      auto stats = (*network)->node("n0")->physical().HeraldStats("n1");
      ASSERT_TRUE(stats.ok()) << stats.status();
      const double attempts = static_cast<double>(stats->attempts);
      ASSERT_GE(stats->heralded, experiment.pairs);
      EXPECT_NEAR(static_cast<double>(stats->heralded) / attempts, p, 5 * std::sqrt(p * (1 - p) / attempts));
    }
  }
}

// With p = 1 and 1 ms attempts every link pair holds a memory qubit at each
// of its ends for at least one attempt, so a node's allocated qubit-time over
// the request is at least pairs x 1 ms per link it serves: the report must
// count at least that, and never more than all its qubits all the time.
TEST(WernerChainSimTest, MemoryUtilisationIsReportedForEveryNodeOfThePath) {
  const int hops = 2;
  const int qubits = 4;
  PathExperiment experiment;
  experiment.origin = "n0";
  experiment.remote = "n2";
  experiment.pairs = 200;
  experiment.basis = link::BasisChoice::kBb84;
  auto result = RunOnChain(WernerChain(hops, 0.95, 1.0, qubits, "    attempt_duration_us: 1000\n"), 5, experiment);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->memory.size(), 3u);
  const double window = ToSeconds(result->simulated_time);
  ASSERT_GT(window, 0.0);
  for (size_t i = 0; i < result->memory.size(); ++i) {
    const NodeMemoryUse& m = result->memory[i];
    SCOPED_TRACE(m.node);
    EXPECT_EQ(m.node, absl::StrCat("n", i));
    EXPECT_EQ(m.qubits, qubits);
    const double links = i == 1 ? 2 : 1;
    EXPECT_GE(m.allocated_qubit_seconds, links * experiment.pairs * 1e-3 * (1 - 1e-9));
    EXPECT_GT(m.utilisation, 0.0);
    EXPECT_LE(m.utilisation, 1.0 + 1e-9);
    EXPECT_GE(m.peak_in_use, 1);
    EXPECT_LE(m.peak_in_use, qubits);
  }
}

// The statistics are tallied as the two halves of each pair meet (nothing
// is kept per pair unless asked): with the same seed, a run that keeps the
// pairs gets the same figures, and they are those of its pairs.
TEST(WernerChainSimTest, StreamedStatisticsAreThoseOfThePairsKept) {
  auto run = [](bool keep) {
    PathExperiment experiment;
    experiment.origin = "n0";
    experiment.remote = "n2";
    experiment.pairs = 600;
    experiment.basis = link::BasisChoice::kSixState;
    experiment.keep_pairs = keep;
    return RunOnChain(WernerChain(2, 0.9, 0.5, 2), 11, experiment);
  };
  auto streamed = run(false);
  auto kept = run(true);
  ASSERT_TRUE(streamed.ok()) << streamed.status();
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_TRUE(streamed->pairs.empty());
  ASSERT_EQ(kept->pairs.size(), 600u);
  const apps::PairStatistics recount = apps::AnalysePairs(kept->pairs);
  for (const apps::PairStatistics* s : {&streamed->statistics, &kept->statistics}) {
    EXPECT_EQ(s->pairs, recount.pairs);
    EXPECT_EQ(s->z.pairs, recount.z.pairs);
    EXPECT_EQ(s->z.errors, recount.z.errors);
    EXPECT_EQ(s->x.pairs, recount.x.pairs);
    EXPECT_EQ(s->x.errors, recount.x.errors);
    EXPECT_EQ(s->y.pairs, recount.y.pairs);
    EXPECT_EQ(s->y.errors, recount.y.errors);
  }
  // Six-state over noisy links: errors in every basis, so a mismatch shows.
  EXPECT_GT(recount.z.errors + recount.x.errors + recount.y.errors, 0u);
}

}  // namespace
}  // namespace qnet::netsim
