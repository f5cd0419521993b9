// Runs a circuit across nodes of a simulated network
// (transport/distributed_circuit.h), coordinated by a node of the program,
// shot by shot. What `qnetsim --circuit FILE` runs.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "core/time.h"
#include "netsim/simulated_network.h"
#include "transport/distributed_circuit.h"

namespace qnet::netsim {

struct CircuitExperiment {
  transport::CircuitProgram program;
  std::string coordinator;  // empty: the first node the program names
  uint32_t shots = 100;
  double min_fidelity = 0.0;
};

struct CircuitExperimentResult {
  std::string coordinator;
  transport::CircuitReport report;
  uint64_t events = 0;
};

// Lets the routing adverts spread first; fails with the request's error.
absl::StatusOr<CircuitExperimentResult> RunCircuitExperiment(SimulatedNetwork& network,
                                                             const CircuitExperiment& experiment,
                                                             Duration simulated_limit);

}  // namespace qnet::netsim
