// Simulator runtime throughput: raw event scheduling and running, the
// timeout pattern (start a timer, cancel it), and protocol messages carried
// through SimChannel between two nodes.
#include <memory>
#include <vector>

#include "benchmark/benchmark.h"
#include "core/rng.h"
#include "sim/sim_network.h"
#include "sim/simulator.h"

namespace qnet::sim {
namespace {

// Schedule a batch of events at random times, then run them all.
void BM_SimulatorScheduleAndRun(benchmark::State& state) {
  const int64_t n = state.range(0);
  Rng rng(1);
  uint64_t sink = 0;
  for (auto _ : state) {
    Simulator sim;
    for (int64_t i = 0; i < n; ++i) {
      sim.ScheduleAfter(Duration(static_cast<int64_t>(rng.UniformInt(1'000'000))), [&sink] { ++sink; });
    }
    sim.RunUntilIdle();
  }
  benchmark::DoNotOptimize(sink);
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_SimulatorScheduleAndRun)->Arg(1 << 10)->Arg(1 << 20);

// Hold model: a queue of `pending` events, each of which schedules its
// successor at a random later time. The steady-state cost of one event.
void BM_SimulatorHold(benchmark::State& state) {
  const int64_t pending = state.range(0);
  Simulator sim;
  Rng rng(2);
  std::function<void()> hop = [&] {
    sim.ScheduleAfter(Duration(static_cast<int64_t>(1 + rng.UniformInt(1'000'000))), hop);
  };
  for (int64_t i = 0; i < pending; ++i) sim.ScheduleAfter(Duration(static_cast<int64_t>(rng.UniformInt(1'000'000))), hop);
  constexpr int kBatch = 1 << 16;
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) sim.Step();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_SimulatorHold)->Arg(1 << 4)->Arg(1 << 16);

// Protocol timeouts: most are cancelled before they fire.
void BM_SimulatorTimeoutCancelled(benchmark::State& state) {
  Simulator sim;
  std::vector<EventId> ids(1024);
  for (auto _ : state) {
    for (auto& id : ids) id = sim.ScheduleAfter(std::chrono::seconds(1), [] {});
    for (EventId id : ids) sim.Cancel(id);
    sim.RunFor(std::chrono::microseconds(1));
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(ids.size()));
}
BENCHMARK(BM_SimulatorTimeoutCancelled);

// Two nodes bounce `in_flight` messages back and forth over a 1 km channel.
class Bouncer : public PeerMessageSink {
 public:
  explicit Bouncer(SimNodeContext& ctx) : ctx_(ctx) {}
  void OnPeerMessage(const std::string& from, const v1::PeerMessage& message) override {
    ++received;
    ctx_.SendToNeighbour(from, message);
  }
  uint64_t received = 0;

 private:
  SimNodeContext& ctx_;
};

void BM_ChannelDelivery(benchmark::State& state) {
  const bool serialize = state.range(0) != 0;
  Simulator sim;
  ChannelOptions options;
  options.serialize_messages = serialize;
  auto net = SimNetwork::Create(sim, 1, SimTopology{{"a", "b"}, {{"a-b", "a", "b", 1.0}}}, options).value();
  Bouncer a(net->node(0)), b(net->node(1));
  net->node(0).SetSink(&a);
  net->node(1).SetSink(&b);
  v1::PeerMessage message;
  message.mutable_physical()->set_link("a-b");
  auto* herald = message.mutable_physical()->mutable_herald();
  herald->set_generation_id(12345);
  herald->set_success(true);
  herald->set_attempts(987654);
  for (int i = 0; i < 64; ++i) net->node(0).SendToNeighbour("b", message);
  constexpr int kBatch = 1 << 14;
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) sim.Step();
  }
  state.SetItemsProcessed(static_cast<int64_t>(a.received + b.received));
  state.SetLabel(serialize ? "serialised" : "in-memory");
}
BENCHMARK(BM_ChannelDelivery)->Arg(0)->Arg(1);

}  // namespace
}  // namespace qnet::sim
