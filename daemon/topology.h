// What a daemon needs to know about its network, taken from the network
// file: the network's name, every node in file order (a node's position is
// the node index inside its qubit ids), and this node's links.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "config/network_config.h"
#include "core/time.h"

namespace qnet::daemon {

struct NeighbourLink {
  std::string neighbour;  // node name at the other end
  std::string link;       // link name from the network file
  double length_km = 0.0;
  // One-way classical delay of the link, in simulated time.
  Duration classical_delay() const { return FibreDelay(length_km); }
};

struct DaemonTopology {
  std::string network;
  std::vector<std::string> nodes;  // network-file order
  std::string self;
  std::vector<NeighbourLink> neighbours;
  uint32_t memory_qubits = 0;  // of this node's device

  // Position of `node` in `nodes`, if present.
  std::optional<uint32_t> IndexOf(const std::string& node) const;
  const NeighbourLink* FindNeighbour(const std::string& node) const;
  // InvalidArgument naming the problem (self not a node, a neighbour not a
  // node, duplicates, a negative length).
  absl::Status Validate() const;
};

// This node's view of a parsed network file; NotFound if `node` is not in it.
absl::StatusOr<DaemonTopology> TopologyFromConfig(const config::NetworkConfig& network, const std::string& node);

}  // namespace qnet::daemon
