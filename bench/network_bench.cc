// End-to-end pairs across repeater chains in the simulator: what it costs the
// host to produce one delivered end-to-end MEASURE pair as the chain grows
// (routing, circuit set-up, link-layer generation on every link, swaps on
// every repeater's simulated device, tracking to the tail and back), and the
// simulated pair rate the protocol reaches on ideal 1 km links.
#include <benchmark/benchmark.h>

#include <cmath>
#include <memory>
#include <numbers>
#include <string>

#include "absl/strings/str_cat.h"
#include "config/network_config.h"
#include "config/topology_generator.h"
#include "netsim/simulated_network.h"
#include "network/network_layer.h"

namespace qnet {
namespace {

std::string Chain(int hops) {
  std::string yaml = absl::StrCat("network: bench-chain\nnodes:\n");
  for (int i = 0; i <= hops; ++i) absl::StrAppend(&yaml, "  - {name: n", i, ", hardware: ideal}\n");
  absl::StrAppend(&yaml, "links:\n");
  for (int i = 0; i < hops; ++i) absl::StrAppend(&yaml, "  - {between: [n", i, ", n", i + 1, "], length_km: 1}\n");
  return yaml;
}

// One request for range(1) pairs from n0 to n<hops> per iteration.
void BM_NetworkChainMeasurePairs(benchmark::State& state) {
  const int hops = static_cast<int>(state.range(0));
  const uint32_t pairs = static_cast<uint32_t>(state.range(1));
  auto config = config::ParseNetworkConfig(Chain(hops), "bench");
  if (!config.ok()) return state.SkipWithError("config does not parse");
  auto net = netsim::SimulatedNetwork::Create(*config, 1);
  if (!net.ok()) return state.SkipWithError(std::string(net.status().message()).c_str());
  const std::string tail = absl::StrCat("n", hops);
  if (!(*net)->node(tail)->network().RegisterReceiver(0, [](const network::NetworkEvent&) {}).ok()) {
    return state.SkipWithError("receiver");
  }
  (*net)->RunFor(std::chrono::milliseconds(1));
  uint64_t delivered = 0;
  double simulated_s = 0.0;
  for (auto _ : state) {
    bool done = false;
    network::EndToEndRequest r;
    r.remote_node = tail;
    r.number = pairs;
    r.type = link::RequestType::kMeasure;
    r.basis = link::BasisChoice::kBb84;
    const TimePoint start = (*net)->Now();
    TimePoint end = start;
    auto id = (*net)->node("n0")->network().Create(r, [&](const network::NetworkEvent& e) {
      if (std::holds_alternative<network::PairDelivered>(e)) ++delivered;
      if (std::holds_alternative<network::RequestCompleted>(e) || std::holds_alternative<network::RequestFailed>(e)) {
        done = true;
        end = (*net)->Now();
      }
    });
    if (!id.ok()) return state.SkipWithError("request");
    if (!(*net)->RunUntil([&] { return done; }, std::chrono::hours(1))) return state.SkipWithError("stuck");
    simulated_s += ToSeconds(end - start);
    (*net)->RunFor(std::chrono::milliseconds(1));  // teardown
  }
  state.SetItemsProcessed(static_cast<int64_t>(delivered));
  state.counters["simulated_pairs_per_s"] = static_cast<double>(delivered) / simulated_s;
}
BENCHMARK(BM_NetworkChainMeasurePairs)
    ->ArgsProduct({{1, 2, 4, 8, 16}, {1000}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace qnet

namespace qnet {
namespace {

// The yardstick: 10^5 end-to-end pairs on a 16-hop chain, once.
void BM_Network16Hops100kPairs(benchmark::State& state) { BM_NetworkChainMeasurePairs(state); }
BENCHMARK(BM_Network16Hops100kPairs)
    ->Args({16, 100000})
    ->Iterations(1)
    ->Repetitions(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();

// Link-state routing converging on a random geometric graph of N ideal
// nodes (qnetctl gen geometric, mean degree ~8 in a 100 km square): from
// every link coming up to every node holding every node's advert. Flooding
// delivers each advert over every link, so the work grows as N x links.
void BM_RoutesConvergeOnGeometricGraph(benchmark::State& state) {
  const uint32_t n = static_cast<uint32_t>(state.range(0));
  config::TopologySpec spec;
  spec.kind = config::TopologyKind::kRandomGeometric;
  spec.nodes = n;
  spec.area_km = 100;
  spec.radius_km = 100 * std::sqrt(8.0 / (std::numbers::pi * n));
  spec.seed = 7;
  auto topology = config::GenerateTopology(spec);
  if (!topology.ok()) return state.SkipWithError(std::string(topology.status().message()).c_str());
  auto config = config::ParseNetworkConfig(config::NetworkFileText(*topology, "bench"), "bench");
  if (!config.ok()) return state.SkipWithError("config does not parse");
  uint64_t adverts = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto net = netsim::SimulatedNetwork::Create(*config, 1);
    state.ResumeTiming();
    if (!net.ok()) return state.SkipWithError(std::string(net.status().message()).c_str());
    // Converged: every node holds every origin's current advert.
    auto converged = [&] {
      for (const config::NodeConfig& origin : config->nodes) {
        const uint64_t current = (*net)->node(origin.name)->network().advert_sequence();
        for (const config::NodeConfig& node : config->nodes) {
          const v1::LinkStateAdvert* held = (*net)->node(node.name)->network().routes().Find(origin.name);
          if (held == nullptr || held->sequence() != current) return false;
        }
      }
      return true;
    };
    // Checked every simulated 50 us: the check itself is N^2 lookups.
    for (int step = 0; step < 2000 && !converged(); ++step) (*net)->RunFor(std::chrono::microseconds(50));
    if (!converged()) return state.SkipWithError("routes did not converge in 100 ms (simulated)");
    for (const config::NodeConfig& node : config->nodes) {
      adverts += (*net)->node(node.name)->network().stats().adverts_received;
    }
    state.PauseTiming();
    net->reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(adverts));  // items: adverts received
  state.counters["links"] = static_cast<double>(topology->links.size());
}
BENCHMARK(BM_RoutesConvergeOnGeometricGraph)
    ->Arg(100)
    ->Arg(200)
    ->Arg(400)
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();

}  // namespace
}  // namespace qnet
