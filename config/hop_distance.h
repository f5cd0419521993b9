// Hop counts over a network file's links: which node lies a given number of
// hops from another on a shortest path. Sweeps over hops (qnetsim --sweep
// hops, qnetctl entangle --sweep hops) pick each point's far end with it.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "config/network_config.h"

namespace qnet::config {

// The first node in file order whose shortest path from `origin` has
// exactly `hops` links; NotFound for an unknown origin, or (saying how far
// the farthest node is) if no node is that far.
absl::StatusOr<std::string> NodeAtHops(const NetworkConfig& config, const std::string& origin, int hops);

}  // namespace qnet::config
