// Throughput of the physical layer in the in-process simulator: heralded
// pairs per wall-clock second on one 10 km link, both ends driven through
// the sim runtime (ready message, station draw and state preparation, herald
// message, delivery, ground-truth read excluded). "ideal" is double-click on
// perfect hardware; "nv" is the NV preset's single-click link, whose tiny
// success probability still costs one draw per pair.
#include <benchmark/benchmark.h>

#include <memory>
#include <optional>
#include <string>

#include "physical/physical_layer.h"
#include "physical/presets.h"
#include "physical/quantum_device.h"
#include "physical/state_backend.h"
#include "quantum/quantum_system.h"
#include "sim/sim_network.h"
#include "sim/simulator.h"

namespace qnet::physical {
namespace {

class PhysicalOnlySink final : public PeerMessageSink {
 public:
  explicit PhysicalOnlySink(PhysicalLayer& layer) : layer_(layer) {}
  void OnPeerMessage(const std::string& from, const v1::PeerMessage& message) override {
    if (message.has_physical()) layer_.OnPhysicalMessage(from, message.physical());
  }
  void OnNeighbourDown(const std::string& neighbour) override { layer_.OnNeighbourDown(neighbour); }

 private:
  PhysicalLayer& layer_;
};

void HeraldedPairs(benchmark::State& state, const char* preset_name) {
  absl::StatusOr<HardwarePreset> preset = FindPreset(preset_name);
  if (!preset.ok()) return state.SkipWithError(std::string(preset.status().message()).c_str());
  LinkPhysics link = preset->link;
  link.name = "alice-bob";
  link.node_a = "alice";
  link.node_b = "bob";
  link.length_km = 10.0;
  link.station_fraction = 0.5;

  sim::Simulator simulator;
  absl::StatusOr<std::unique_ptr<sim::SimNetwork>> network = sim::SimNetwork::Create(
      simulator, 1, sim::SimTopology{{"alice", "bob"}, {{link.name, "alice", "bob", link.length_km}}});
  if (!network.ok()) return state.SkipWithError(std::string(network.status().message()).c_str());
  quantum::QuantumSystem system;
  SharedStateBackend backend(system);
  sim::SimNodeContext& alice = (*network)->node(0);
  sim::SimNodeContext& bob = (*network)->node(1);
  SimulatedDevice device_a(alice, backend, preset->node, alice.index());
  SimulatedDevice device_b(bob, backend, preset->node, bob.index());
  auto layer_a = PhysicalLayer::Create(alice, device_a, backend, preset->node, {{link, preset->node}});
  auto layer_b = PhysicalLayer::Create(bob, device_b, backend, preset->node, {{link, preset->node}});
  if (!layer_a.ok() || !layer_b.ok()) return state.SkipWithError("physical layer setup failed");
  PhysicalOnlySink sink_a(**layer_a), sink_b(**layer_b);
  alice.SetSink(&sink_a);
  bob.SetSink(&sink_b);
  const int slot_a = *device_a.Allocate();
  const int slot_b = *device_b.Allocate();

  const GenerationParams params{.bright_state_alpha = 0.1};
  uint64_t id = 0;
  uint64_t attempts = 0;
  for (auto _ : state) {
    ++id;
    int done = 0;
    bool ok = true;
    auto on_done = [&](const GenerationResult& r) {
      ++done;
      ok = ok && r.status.ok();
      attempts += r.attempts;
    };
    (void)(*layer_a)->StartGeneration(link.name, id, slot_a, params, on_done);
    (void)(*layer_b)->StartGeneration(link.name, id, slot_b, params, on_done);
    simulator.RunUntil([&] { return done == 2; }, TimePoint::max());
    if (!ok) return state.SkipWithError("a generation failed");
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["attempts_per_pair"] =
      benchmark::Counter(static_cast<double>(attempts) / 2.0 / static_cast<double>(id));
  state.counters["virtual_s_per_pair"] =
      benchmark::Counter(SecondsSinceEpoch(simulator.Now()) / static_cast<double>(id));
}

void BM_PhysicalLayerHeraldedPairsIdeal(benchmark::State& state) { HeraldedPairs(state, "ideal"); }
BENCHMARK(BM_PhysicalLayerHeraldedPairsIdeal);

void BM_PhysicalLayerHeraldedPairsNv(benchmark::State& state) { HeraldedPairs(state, "nv"); }
BENCHMARK(BM_PhysicalLayerHeraldedPairsNv);

}  // namespace
}  // namespace qnet::physical
