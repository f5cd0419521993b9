// Runs an end-to-end MEASURE request between any two nodes of a simulated
// network through the network layer (routing, swapping across repeaters)
// and gathers both ends' outcomes, matched by end-to-end id, for analysis
// (apps/pair_statistics.h). What `qnetsim --from A --to B` runs. Two
// neighbours are served by their link layer directly, as qnetd serves an
// Entangle to a neighbour, so that the simulator and the daemons give the
// same figures for the same request (the network layer keeps a memory
// qubit per side free for other circuits, which halves a 2-qubit link).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "apps/pair_statistics.h"
#include "link/link_service.h"
#include "netsim/simulated_network.h"

namespace qnet::netsim {

struct PathExperiment {
  std::string origin;
  std::string remote;  // any other node
  uint32_t pairs = 1000;
  link::BasisChoice basis = link::BasisChoice::kSixState;
  double min_fidelity = 0.0;
  uint32_t purpose_id = 1;
  // Also return every pair's outcomes (memory then grows with the pairs;
  // the statistics never need them).
  bool keep_pairs = false;
};

// One node's memory over a request: how much of it was allocated.
struct NodeMemoryUse {
  std::string node;
  int qubits = 0;
  double allocated_qubit_seconds = 0.0;  // over the request
  // Allocated qubit-seconds / (qubits x the request's simulated time), from
  // the request until both ends were done.
  double utilisation = 0.0;
  int peak_in_use = 0;  // most qubits allocated at once (since the run began)
};

struct PathExperimentResult {
  enum class Layer { kNetwork, kLink };
  Layer layer = Layer::kNetwork;          // kLink: the two are neighbours
  std::vector<std::string> path;          // the route the network layer chose
  std::vector<apps::MeasuredPair> pairs;  // keep_pairs only; basis_a/outcome_a are the origin's
  apps::PairStatistics statistics;
  double mean_fidelity_estimate = 0.0;  // the network layer's own estimate, averaged over pairs
  Duration simulated_time{0};           // from request to the last pair
  uint64_t events = 0;
  uint64_t swaps = 0;                   // Bell-state measurements at the repeaters
  uint64_t discarded = 0;               // link pairs dropped by cutoffs or rejected at the tail
  std::vector<NodeMemoryUse> memory;    // each node of the path, in path order
};

// Memory occupancy readings of every node, and each listed node's use
// between such a reading and now (utilisation over `window`).
using Occupancies = std::map<std::string, physical::SimulatedDevice::Occupancy>;
Occupancies ReadOccupancies(SimulatedNetwork& network);
std::vector<NodeMemoryUse> MemoryUse(SimulatedNetwork& network, const std::vector<std::string>& nodes,
                                     const Occupancies& before, Duration window);

// Lets the routing adverts spread first; fails with the network layer's
// error, or DeadlineExceeded after `simulated_limit`.
absl::StatusOr<PathExperimentResult> RunPathExperiment(SimulatedNetwork& network, const PathExperiment& experiment,
                                                       Duration simulated_limit);

}  // namespace qnet::netsim
