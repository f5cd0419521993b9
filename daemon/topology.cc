#include "daemon/topology.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"

namespace qnet::daemon {

std::optional<uint32_t> DaemonTopology::IndexOf(const std::string& node) const {
  for (uint32_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i] == node) return i;
  }
  return std::nullopt;
}

const NeighbourLink* DaemonTopology::FindNeighbour(const std::string& node) const {
  for (const NeighbourLink& n : neighbours) {
    if (n.neighbour == node) return &n;
  }
  return nullptr;
}

absl::Status DaemonTopology::Validate() const {
  std::set<std::string> seen;
  for (const std::string& n : nodes) {
    if (n.empty()) return absl::InvalidArgumentError("network has a node with an empty name");
    if (!seen.insert(n).second) return absl::InvalidArgumentError(absl::StrCat("node '", n, "' appears twice"));
  }
  if (!IndexOf(self)) {
    return absl::InvalidArgumentError(
        absl::StrCat("node '", self, "' is not in network '", network, "'"));
  }
  std::set<std::string> neighbour_names;
  for (const NeighbourLink& l : neighbours) {
    if (!IndexOf(l.neighbour)) {
      return absl::InvalidArgumentError(absl::StrCat("link '", l.link, "' names unknown node '", l.neighbour, "'"));
    }
    if (l.neighbour == self) return absl::InvalidArgumentError(absl::StrCat("link '", l.link, "' is a self-link"));
    if (!neighbour_names.insert(l.neighbour).second) {
      return absl::InvalidArgumentError(absl::StrCat("two links between '", self, "' and '", l.neighbour, "'"));
    }
    if (!(l.length_km >= 0) || !std::isfinite(l.length_km)) {
      return absl::InvalidArgumentError(absl::StrCat("link '", l.link, "' has invalid length ", l.length_km));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<DaemonTopology> TopologyFromConfig(const config::NetworkConfig& network, const std::string& node) {
  const config::NodeConfig* self = network.FindNode(node);
  if (self == nullptr) {
    std::string known;
    for (const config::NodeConfig& n : network.nodes) absl::StrAppend(&known, known.empty() ? "" : ", ", n.name);
    return absl::NotFoundError(absl::StrCat("node '", node, "' is not in network '", network.name, "' (",
                                            network.source, "); its nodes are: ", known));
  }
  DaemonTopology topology;
  topology.network = network.name;
  topology.self = node;
  topology.memory_qubits = static_cast<uint32_t>(std::max(0, self->hardware.num_qubits));
  for (const config::NodeConfig& n : network.nodes) topology.nodes.push_back(n.name);
  for (const physical::LinkPhysics& link : network.links) {
    if (link.node_a != node && link.node_b != node) continue;
    topology.neighbours.push_back(NeighbourLink{
        .neighbour = link.node_a == node ? link.node_b : link.node_a,
        .link = link.name,
        .length_km = link.length_km,
    });
  }
  return topology;
}

}  // namespace qnet::daemon
