// Many requests at once (netsim/traffic_experiment.h) against what can be
// counted by hand: on a 3-node chain of ideal nodes, requests a -> c of k
// pairs each are all served over 2 hops, every delivered pair is measured
// at both ends with no error, the head's link heralds one link pair per
// end-to-end pair (the repeater's link a few more, started before a
// circuit's end reached it) and b swaps once per pair; the Poisson arrivals have the
// asked-for mean gap; random endpoints cover every ordered pair; the same
// seed gives the same run.
#include <cmath>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "config/network_config.h"
#include "gtest/gtest.h"
#include "netsim/simulated_network.h"
#include "netsim/traffic_experiment.h"

namespace qnet::netsim {
namespace {

constexpr char kChain[] = R"(network: traffic-chain
nodes:
  - {name: a, hardware: ideal, qubits: 4}
  - {name: b, hardware: ideal, qubits: 4}
  - {name: c, hardware: ideal, qubits: 4}
links:
  - {between: [a, b], length_km: 1}
  - {between: [b, c], length_km: 1}
)";

constexpr char kRing[] = R"(network: traffic-ring
nodes:
  - {name: a, hardware: ideal, qubits: 4}
  - {name: b, hardware: ideal, qubits: 4}
  - {name: c, hardware: ideal, qubits: 4}
  - {name: d, hardware: ideal, qubits: 4}
links:
  - {between: [a, b], length_km: 1}
  - {between: [b, c], length_km: 1}
  - {between: [c, d], length_km: 1}
  - {between: [d, a], length_km: 1}
)";

std::unique_ptr<SimulatedNetwork> Network(const char* yaml, uint64_t seed) {
  auto config = config::ParseNetworkConfig(yaml, "traffic.yaml");
  EXPECT_TRUE(config.ok()) << config.status();
  auto network = SimulatedNetwork::Create(*config, seed);
  EXPECT_TRUE(network.ok()) << network.status();
  return std::move(*network);
}

TEST(TrafficSimTest, RequestsAlongAChainAreCountedAsByHand) {
  auto network = Network(kChain, 3);
  TrafficExperiment t;
  t.requests = 10;
  t.pairs_per_request = 5;
  t.arrival_rate_hz = 2000;
  t.basis = link::BasisChoice::kZ;
  t.endpoints = {{"a", "c"}};
  auto result = RunTraffic(*network, t, FromSeconds(60));
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->requests.size(), 10u);
  double previous = -1;
  for (const TrafficRequest& r : result->requests) {
    EXPECT_TRUE(r.served) << r.error;
    EXPECT_EQ(r.from, "a");
    EXPECT_EQ(r.to, "c");
    EXPECT_EQ(r.pairs, 5u);
    EXPECT_EQ(r.hops, 2);
    EXPECT_GT(r.latency_s, 0.0);
    EXPECT_NEAR(r.pairs_per_second, 5 / r.latency_s, 1e-9);
    EXPECT_GT(r.arrival_s, previous);
    previous = r.arrival_s;
  }
  EXPECT_EQ(result->requests[0].arrival_s, 0.0);
  // Ideal hardware in the Z basis: every pair measured at both ends, no error.
  EXPECT_EQ(result->statistics.z.pairs, 50u);
  EXPECT_EQ(result->statistics.z.errors, 0u);
  ASSERT_EQ(result->links.size(), 2u);
  // The head asks its link for one pair per end-to-end pair it still
  // needs. The repeater asks as far as its downstream credits go; pairs it
  // started before the circuit's end reached it are heralded and dropped,
  // at most its qubits per side (4 qubits, 2 sides) per request.
  for (const LinkUse& l : result->links) {
    if (l.link == "a-b") {
      EXPECT_EQ(l.heralded, 50u) << l.link;
    } else {
      EXPECT_GE(l.heralded, 50u) << l.link;
      EXPECT_LE(l.heralded, 50u + 10 * 2) << l.link;
    }
  }
  EXPECT_EQ(network->node("b")->network().stats().swaps, 50u);
  ASSERT_EQ(result->memory.size(), 3u);
  for (const NodeMemoryUse& m : result->memory) {
    EXPECT_GT(m.utilisation, 0.0) << m.node;
    EXPECT_LE(m.utilisation, 1.0) << m.node;
    EXPECT_LE(m.peak_in_use, 4) << m.node;
  }
}

TEST(TrafficSimTest, ArrivalsArePoissonAndRandomEndpointsCoverEveryPair) {
  auto network = Network(kRing, 5);
  TrafficExperiment t;
  t.requests = 400;
  t.pairs_per_request = 1;
  t.arrival_rate_hz = 1000;
  t.basis = link::BasisChoice::kZ;
  t.seed = 11;
  auto result = RunTraffic(*network, t, FromSeconds(60));
  ASSERT_TRUE(result.ok()) << result.status();
  std::map<std::string, int> pairs;
  for (const TrafficRequest& r : result->requests) {
    EXPECT_NE(r.from, r.to);
    EXPECT_TRUE(r.served) << r.from << " -> " << r.to << ": " << r.error;
    ++pairs[absl::StrCat(r.from, ">", r.to)];
  }
  EXPECT_EQ(pairs.size(), 12u);  // every ordered pair of 4 nodes (~33 each)
  // 399 exponential gaps of mean 1 ms: their mean within 5 standard errors.
  const double mean_gap = result->requests.back().arrival_s / 399;
  EXPECT_NEAR(mean_gap, 1e-3, 5 * 1e-3 / std::sqrt(399.0));
  EXPECT_EQ(result->statistics.z.errors, 0u);

  // The same seeds: the same run.
  auto again_network = Network(kRing, 5);
  auto again = RunTraffic(*again_network, t, FromSeconds(60));
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(again->requests.size(), result->requests.size());
  for (size_t i = 0; i < again->requests.size(); ++i) {
    EXPECT_EQ(again->requests[i].from, result->requests[i].from);
    EXPECT_EQ(again->requests[i].to, result->requests[i].to);
    EXPECT_EQ(again->requests[i].latency_s, result->requests[i].latency_s);
  }
  EXPECT_EQ(again->events, result->events);
}

// A run cut short by its limit: requests that had not arrived never start
// (latency 0), running ones end at the limit; no latency exceeds the limit
// and every request is accounted for.
TEST(TrafficSimTest, ALimitEndsTheRunAndSaysWhichRequestsDidNotFinish) {
  auto network = Network(kChain, 3);
  TrafficExperiment t;
  t.requests = 40;
  t.pairs_per_request = 20;
  t.arrival_rate_hz = 100;  // arrivals over ~0.4 s
  t.basis = link::BasisChoice::kZ;
  t.endpoints = {{"a", "c"}};
  const double limit = 0.05;
  auto result = RunTraffic(*network, t, FromSeconds(limit));
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->requests.size(), 40u);
  int served = 0, not_started = 0, cut = 0;
  for (const TrafficRequest& r : result->requests) {
    EXPECT_GE(r.latency_s, 0.0);
    if (r.arrival_s <= limit) {
      EXPECT_LE(r.arrival_s + r.latency_s, limit + 1e-9) << r.error;
    }
    if (r.served) {
      ++served;
    } else if (r.error.rfind("not started", 0) == 0) {
      ++not_started;
      EXPECT_GT(r.arrival_s, limit - 1e-9);
      EXPECT_EQ(r.latency_s, 0.0);
    } else {
      ++cut;
      EXPECT_NE(r.error.find("not done within"), std::string::npos) << r.error;
    }
  }
  EXPECT_GT(served, 0);
  EXPECT_GT(not_started, 0);
  EXPECT_EQ(served + not_started + cut, 40);
  EXPECT_LE(ToSeconds(result->simulated_time), limit + 1e-9);
  for (const NodeMemoryUse& m : result->memory) EXPECT_LE(m.utilisation, 1.0 + 1e-9) << m.node;
}

TEST(TrafficSimTest, MistakesAreRefused) {
  auto network = Network(kChain, 1);
  TrafficExperiment t;
  t.endpoints = {{"a", "zed"}};
  EXPECT_EQ(RunTraffic(*network, t, FromSeconds(1)).status().code(), absl::StatusCode::kInvalidArgument);
  t.endpoints = {{"a", "a"}};
  EXPECT_EQ(RunTraffic(*network, t, FromSeconds(1)).status().code(), absl::StatusCode::kInvalidArgument);
  t.endpoints.clear();
  t.arrival_rate_hz = 0;
  EXPECT_EQ(RunTraffic(*network, t, FromSeconds(1)).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TrafficSimTest, QuantilesInterpolate) {
  EXPECT_EQ(Quantile({}, 0.5), 0.0);
  EXPECT_EQ(Quantile({3, 1, 2}, 0.5), 2.0);
  EXPECT_EQ(Quantile({1, 2, 3, 4}, 0.5), 2.5);
  EXPECT_EQ(Quantile({1, 2, 3, 4}, 1.0), 4.0);
  EXPECT_NEAR(Quantile({0, 10}, 0.1), 1.0, 1e-12);
}

}  // namespace
}  // namespace qnet::netsim
