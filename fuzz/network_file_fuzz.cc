// Fuzz target: the network file parser (config/network_config.h). Any text
// must either parse into a consistent NetworkConfig or fail with
// InvalidArgument and a message; an accepted small network must also build a
// simulated network (the same builder qnetsim uses) and run briefly, since a
// file the parser accepts is trusted by every runtime.
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "config/network_config.h"
#include "fuzz/fuzz_common.h"
#include "netsim/simulated_network.h"

namespace qnet::fuzz {

std::vector<std::string> Seeds() {
  return {
      kFuzzChainYaml,
      "network: ideal-pair\nseed: 7\nnodes:\n  - name: alice\n    hardware: ideal\n  - name: bob\n    hardware: ideal\n"
      "links:\n  - between: [alice, bob]\n    length_km: 1\n",
      "network: chain3\nseed: 42\nnodes:\n  - name: alice\n    hardware: nv\n  - name: bob\n    hardware: nv\n"
      "    qubits: 4\n  - name: charlie\n    hardware: nv\nlinks:\n  - between: [alice, bob]\n    length_km: 2\n"
      "    attenuation_db_per_km: 0.5\n  - between: [bob, charlie]\n    length_km: 2\n    attenuation_db_per_km: 0.5\n",
      "network: noisy\nnodes:\n  - name: a\n    hardware: ion\n    t1_s: 1.0\n    t2_s: 0.5\n"
      "    single_qubit_gate_error: 0.01\n  - name: b\n    hardware: nv\n    emission_efficiency: 0.5\n"
      "links:\n  - between: [a, b]\n    length_km: 10\n    scheme: single-click\n    eavesdropper_fraction: 0.2\n",
      "network: werner\nnodes:\n  - {name: a, hardware: ideal, depolarising_time_s: 0.5}\n"
      "  - {name: b, hardware: ideal, qubits: 3}\nlinks:\n  - between: [a, b]\n    length_km: 1\n"
      "    scheme: werner\n    werner_fidelity: 0.9\n    success_probability: 0.2\n    attempt_duration_us: 10\n",
      "network: x\nnodes: []\nlinks: []\n",
      "network: [\n",
      "nodes:\n  - name: a\n    hardware: nope\n",
  };
}

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

}  // namespace
}  // namespace qnet::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qnet;
  if (size > 16384) return 0;  // network files are small; yaml-cpp's cost is not ours to fuzz
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<config::NetworkConfig> parsed = config::ParseNetworkConfig(text, "fuzz.yaml");
  if (!parsed.ok()) {
    fuzz::Check(parsed.status().code() == absl::StatusCode::kInvalidArgument, "a parse error is InvalidArgument");
    fuzz::Check(!parsed.status().message().empty(), "a parse error says what is wrong");
    return 0;
  }
  const config::NetworkConfig& c = *parsed;
  absl::flat_hash_set<std::string> names;
  for (size_t i = 0; i < c.nodes.size(); ++i) {
    fuzz::Check(!c.nodes[i].name.empty(), "node names are not empty");
    fuzz::Check(names.insert(c.nodes[i].name).second, "node names are unique");
    fuzz::Check(c.nodes[i].index == i, "a node's index is its position");
    fuzz::Check(c.FindNode(c.nodes[i].name) == &c.nodes[i], "FindNode finds every node");
  }
  std::set<std::pair<std::string, std::string>> pairs;
  for (const physical::LinkPhysics& l : c.links) {
    fuzz::Check(c.FindNode(l.node_a) != nullptr && c.FindNode(l.node_b) != nullptr, "links join known nodes");
    fuzz::Check(l.node_a != l.node_b, "no self-links");
    fuzz::Check(pairs.insert(std::minmax(l.node_a, l.node_b)).second, "one link per pair of nodes");
    fuzz::Check(c.FindLink(l.node_b, l.node_a) == &l, "FindLink finds every link both ways");
  }
  // Small accepted networks must also run: build the stacks and let them
  // exchange their first messages.
  if (c.nodes.size() <= 4 && c.links.size() <= 4) {
    absl::StatusOr<std::unique_ptr<netsim::SimulatedNetwork>> net =
        netsim::SimulatedNetwork::Create(c, fuzz::kFuzzNetworkSeed);
    if (net.ok()) fuzz::RunBounded((*net)->simulator(), std::chrono::milliseconds(5), 2000);
  }
  return 0;
}
