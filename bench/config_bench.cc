// Loading a network file: parsing a generated chain of range(0) ideal nodes
// (node list, then one link per neighbouring pair) into a NetworkConfig, as
// every runtime does at start-up. Loading must be linear in the file's size
// (issue 14: node lookups were a linear search per link, so 10^5 nodes took
// minutes); the time per node should stay flat from 10^3 to 10^5 nodes.
#include <benchmark/benchmark.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "config/network_config.h"

namespace qnet {
namespace {

std::string ChainFile(int nodes) {
  std::string yaml = "network: bench-chain\nnodes:\n";
  for (int i = 0; i < nodes; ++i) absl::StrAppend(&yaml, "  - {name: n", i, ", hardware: ideal}\n");
  absl::StrAppend(&yaml, "links:\n");
  for (int i = 0; i + 1 < nodes; ++i) {
    absl::StrAppend(&yaml, "  - {between: [n", i, ", n", i + 1, "], length_km: 1}\n");
  }
  return yaml;
}

void BM_LoadChainFile(benchmark::State& state) {
  const int nodes = static_cast<int>(state.range(0));
  const std::string text = ChainFile(nodes);
  for (auto _ : state) {
    auto config = config::ParseNetworkConfig(text, "bench-chain.yaml");
    if (!config.ok()) return state.SkipWithError(std::string(config.status().message()).c_str());
    benchmark::DoNotOptimize(config->links.size());
  }
  state.counters["file_MB"] = static_cast<double>(text.size()) / 1e6;
  state.counters["us_per_node"] = benchmark::Counter(static_cast<double>(nodes) * 1e-6,
                                                     benchmark::Counter::kIsIterationInvariantRate |
                                                         benchmark::Counter::kInvert);
}
BENCHMARK(BM_LoadChainFile)->Arg(1000)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace qnet
