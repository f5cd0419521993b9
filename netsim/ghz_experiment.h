// Runs a GHZ request across nodes of a simulated network (fusion at the
// first node, transport/ghz_distribution.h) and turns its per-setting
// outcome tallies into the state's fidelity and Mermin value
// (apps/ghz_statistics.h). What `qnetsim --ghz a,b,c` runs.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "apps/ghz_statistics.h"
#include "core/time.h"
#include "netsim/simulated_network.h"
#include "transport/ghz_distribution.h"

namespace qnet::netsim {

struct GhzExperiment {
  std::vector<std::string> nodes;  // the root first; 3 to transport::kMaxGhzNodes nodes
  uint32_t shots = 1000;
  double min_fidelity = 0.0;
};

struct GhzExperimentResult {
  transport::GhzReport report;
  apps::GhzEstimate estimate;
  uint64_t events = 0;
};

// Lets the routing adverts spread first; fails with the request's error, or
// DeadlineExceeded after `simulated_limit`.
absl::StatusOr<GhzExperimentResult> RunGhzExperiment(SimulatedNetwork& network, const GhzExperiment& experiment,
                                                     Duration simulated_limit);

}  // namespace qnet::netsim
