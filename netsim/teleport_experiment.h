// Teleports one state many times from a node to another through the stack of
// a simulated network (transport/transport_layer.h) and estimates what
// arrived from the destination's X, Y and Z outcomes alone, as `qnetctl
// teleport` does through the daemons; beside it, the true fidelity of the
// simulated qubits. What `qnetsim --teleport` runs.
#pragma once

#include <array>
#include <string>

#include "absl/status/statusor.h"
#include "core/time.h"
#include "netsim/simulated_network.h"
#include "transport/qubit_state.h"

namespace qnet::netsim {

struct TeleportExperiment {
  std::string from;
  std::string to;
  transport::BlochAngles state;
  uint32_t shots = 1000;
  double min_fidelity = 0.0;
};

struct TeleportExperimentResult {
  uint32_t shots = 0;                            // qubits that arrived and were measured
  std::array<transport::AxisCounts, 3> counts;   // X, Y, Z: shot i is measured on axis (its transfer id) % 3,
                                                 // the daemons' rule
  transport::BlochEstimate estimate;             // from the counts alone
  double true_fidelity = 0.0;                    // simulation only: mean over the shots of <psi|rho|psi>
  double pair_fidelity_estimate = 0.0;           // mean of the network layer's estimates for the pairs used
  uint64_t pairs_discarded = 0;                  // below min_fidelity
  double simulated_seconds = 0.0;                // from the first submission to the last outcome
  uint64_t events = 0;
};

// Shots go two at a time (as the daemons' Teleport does). Lets the routing
// adverts spread first; fails with the first shot's error, or
// DeadlineExceeded when the shots do not finish within `simulated_limit`.
absl::StatusOr<TeleportExperimentResult> RunTeleportExperiment(SimulatedNetwork& network,
                                                               const TeleportExperiment& experiment,
                                                               Duration simulated_limit);

}  // namespace qnet::netsim
