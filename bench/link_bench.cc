// Throughput of the whole per-node stack in the simulator: MEASURE pairs per
// wall-clock second between two NodeStacks on an ideal 1 km link (device,
// physical layer with its heralding station, link layer with its distributed
// queue and acknowledgements, simulated channels). What it costs the host to
// produce one delivered, measured pair, not a physical rate.
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "config/network_config.h"
#include "link/link_layer.h"
#include "physical/state_backend.h"
#include "quantum/quantum_system.h"
#include "sim/sim_network.h"
#include "sim/simulator.h"
#include "stack/node_stack.h"

namespace qnet {
namespace {

constexpr char kIdealPair[] = R"(
network: bench-pair
nodes:
  - name: alice
    hardware: ideal
  - name: bob
    hardware: ideal
links:
  - between: [alice, bob]
    length_km: 1
)";

void BM_LinkMeasurePairs(benchmark::State& state) {
  const uint32_t pairs = static_cast<uint32_t>(state.range(0));
  auto config = config::ParseNetworkConfig(kIdealPair, "bench");
  if (!config.ok()) return state.SkipWithError("config does not parse");
  sim::Simulator simulator;
  quantum::QuantumSystem system;
  physical::SharedStateBackend backend(system);
  sim::SimTopology topology{{"alice", "bob"}, {{"alice-bob", "alice", "bob", 1.0}}};
  auto network = sim::SimNetwork::Create(simulator, 1, topology);
  if (!network.ok()) return state.SkipWithError("network");
  std::vector<std::unique_ptr<stack::NodeStack>> stacks;
  for (size_t i = 0; i < 2; ++i) {
    auto s = stack::NodeStack::Build((*network)->node(i), backend, *config);
    if (!s.ok()) return state.SkipWithError("stack");
    (*network)->node(i).SetSink(s->get());
    stacks.push_back(*std::move(s));
  }
  uint64_t delivered = 0;
  bool done = false;
  link::LinkEventHandler count = [&](const link::LinkEvent& e) {
    if (std::holds_alternative<link::PairDelivered>(e)) ++delivered;
    if (std::holds_alternative<link::RequestCompleted>(e) || std::holds_alternative<link::RequestFailed>(e)) {
      done = true;
    }
  };
  if (!stacks[1]->link().RegisterReceiver(1, [](const link::LinkEvent&) {}).ok()) return state.SkipWithError("recv");
  for (auto _ : state) {
    done = false;
    auto id = stacks[0]->link().Create({.remote_node = "bob",
                                        .number = pairs,
                                        .type = link::RequestType::kMeasure,
                                        .basis = link::BasisChoice::kBb84,
                                        .min_fidelity = 0.9,
                                        .purpose_id = 1},
                                       count);
    if (!id.ok()) return state.SkipWithError("create");
    simulator.RunUntil([&] { return done; }, simulator.Now() + std::chrono::seconds(3600));
    if (!done) return state.SkipWithError("request did not finish");
  }
  state.SetItemsProcessed(static_cast<int64_t>(delivered));
  state.counters["sim_events_per_pair"] =
      static_cast<double>(simulator.events_run()) / static_cast<double>(std::max<uint64_t>(1, delivered));
}
BENCHMARK(BM_LinkMeasurePairs)->Arg(1000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace qnet
