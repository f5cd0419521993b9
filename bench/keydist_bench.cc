// End-to-end QKD in the simulator: the secret key rate the whole stack
// reaches - entangled pairs (or photons), the classical post-processing over
// network datagrams, and the finite-key length - per simulated second (what
// the modelled hardware would give) and per wall second (what it costs the
// host), on chains of ideal nodes with 1 km links of visibility 0.97.
#include <benchmark/benchmark.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "config/network_config.h"
#include "keydist/key_distribution.h"
#include "netsim/simulated_network.h"

namespace qnet {
namespace {

std::string Chain(int hops) {
  std::string yaml = absl::StrCat("network: bench-qkd\nnodes:\n");
  for (int i = 0; i <= hops; ++i) absl::StrAppend(&yaml, "  - {name: n", i, ", hardware: ideal}\n");
  absl::StrAppend(&yaml, "links:\n");
  for (int i = 0; i < hops; ++i) {
    absl::StrAppend(&yaml, "  - {between: [n", i, ", n", i + 1, "], length_km: 1, visibility: 0.97}\n");
  }
  return yaml;
}

// One session of range(1) raw pairs (per hop for the relay) from n0 to
// n<range(0)> per iteration.
void RunKeyDistribution(benchmark::State& state, keydist::QkdProtocol protocol) {
  const int hops = static_cast<int>(state.range(0));
  auto config = config::ParseNetworkConfig(Chain(hops), "bench");
  if (!config.ok()) return state.SkipWithError("config does not parse");
  auto net = netsim::SimulatedNetwork::Create(*config, 1);
  if (!net.ok()) return state.SkipWithError(std::string(net.status().message()).c_str());
  // Every node's stack runs key distribution; n0 starts the sessions.
  keydist::KeyDistribution* initiator = (*net)->node("n0")->key_distribution();
  (*net)->RunFor(std::chrono::milliseconds(1));
  keydist::QkdSessionOptions options;
  options.protocol = protocol;
  options.pairs = static_cast<uint32_t>(state.range(1));
  options.timeout = std::chrono::hours(1);
  uint64_t key_bits = 0;
  double simulated_s = 0.0, qber = 0.0;
  for (auto _ : state) {
    std::optional<absl::StatusOr<keydist::QkdResult>> result;
    const TimePoint start = (*net)->Now();
    auto id = initiator->StartSession(absl::StrCat("n", hops), options, nullptr,
                                        [&](keydist::SessionId, absl::StatusOr<keydist::QkdResult> r) {
                                          result = std::move(r);
                                        });
    if (!id.ok()) return state.SkipWithError(std::string(id.status().message()).c_str());
    if (!(*net)->RunUntil([&] { return result.has_value(); }, std::chrono::hours(1))) {
      return state.SkipWithError("stuck");
    }
    if (!result->ok()) return state.SkipWithError(std::string(result->status().message()).c_str());
    simulated_s += ToSeconds((*net)->Now() - start);
    key_bits += (*result)->key.size();
    qber = (*result)->report.qber.overall.rate();
    (*net)->RunFor(std::chrono::milliseconds(10));  // the far end finishes too
  }
  state.counters["key_bits_per_wall_s"] = benchmark::Counter(static_cast<double>(key_bits), benchmark::Counter::kIsRate);
  state.counters["key_bits_per_sim_s"] = simulated_s > 0 ? static_cast<double>(key_bits) / simulated_s : 0.0;
  state.counters["key_bits"] = static_cast<double>(key_bits) / static_cast<double>(state.iterations());
  state.counters["qber"] = qber;
}

void BM_KeyDistributionBbm92(benchmark::State& state) { RunKeyDistribution(state, keydist::QkdProtocol::kBbm92); }
void BM_KeyDistributionE91(benchmark::State& state) { RunKeyDistribution(state, keydist::QkdProtocol::kE91); }
void BM_KeyDistributionRelay(benchmark::State& state) { RunKeyDistribution(state, keydist::QkdProtocol::kRelay); }

BENCHMARK(BM_KeyDistributionBbm92)
    ->Args({1, 100000})
    ->Args({2, 100000})
    ->Args({4, 100000})
    ->Unit(benchmark::kSecond)
    ->Iterations(1);
BENCHMARK(BM_KeyDistributionE91)->Args({2, 100000})->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK(BM_KeyDistributionRelay)->Args({2, 100000})->Args({4, 100000})->Unit(benchmark::kSecond)->Iterations(1);

}  // namespace
}  // namespace qnet
