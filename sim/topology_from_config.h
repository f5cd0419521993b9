// Turns a parsed network file into the simulator's topology (node names in
// file order, links with their lengths). Header-only so that qnet_sim itself
// depends on nothing above core; code including this links qnet_config.
#pragma once

#include "config/network_config.h"
#include "sim/sim_network.h"

namespace qnet::sim {

inline SimTopology TopologyFromConfig(const config::NetworkConfig& config) {
  SimTopology topology;
  topology.nodes.reserve(config.nodes.size());
  for (const config::NodeConfig& node : config.nodes) topology.nodes.push_back(node.name);
  topology.links.reserve(config.links.size());
  for (const physical::LinkPhysics& link : config.links) {
    topology.links.push_back(SimLink{link.name, link.node_a, link.node_b, link.length_km});
  }
  return topology;
}

}  // namespace qnet::sim
