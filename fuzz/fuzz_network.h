// The 3-node chain (kFuzzChainYaml) that the stack-level targets
// (peer_frames, node_requests) build afresh for every input, so that every
// input starts from the same state. What is the same for every input and
// never changes once made - the parsed network file, the file's topology
// the adverts are checked against - is made once and shared.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "config/network_config.h"
#include "fuzz/fuzz_common.h"
#include "netsim/simulated_network.h"
#include "stack/node_stack.h"

namespace qnet::fuzz {

inline std::unique_ptr<netsim::SimulatedNetwork> BuildFuzzNetwork() {
  static const config::NetworkConfig config = *config::ParseNetworkConfig(kFuzzChainYaml, "fuzz-chain");
  static const stack::NodeStackOptions options = [] {
    stack::NodeStackOptions o;
    o.network.adverts.topology = stack::KnownTopologyOf(config);  // immutable: safe to share
    return o;
  }();
  auto net = netsim::SimulatedNetwork::Create(config, kFuzzNetworkSeed, {}, options);
  if (!net.ok()) {
    std::fprintf(stderr, "cannot build the fuzz network: %s\n", net.status().ToString().c_str());
    std::abort();
  }
  return *std::move(net);
}

}  // namespace qnet::fuzz
