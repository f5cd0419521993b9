// Runs MEASURE requests between two neighbours of a simulated network and
// gathers both ends' outcomes, matched by entanglement id, for analysis
// (apps/pair_statistics.h). What `qnetsim` and the link benchmarks run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "apps/pair_statistics.h"
#include "link/link_service.h"
#include "netsim/simulated_network.h"

namespace qnet::netsim {

struct LinkExperiment {
  std::string origin;  // the requesting node
  std::string remote;  // a neighbour of origin
  uint32_t pairs = 1000;
  link::BasisChoice basis = link::BasisChoice::kSixState;
  double min_fidelity = 0.0;
  Duration max_time{0};  // simulated; 0 = none
  uint32_t purpose_id = 1;
};

struct LinkExperimentResult {
  std::vector<apps::MeasuredPair> pairs;  // basis_a/outcome_a are the origin's
  apps::PairStatistics statistics;
  double mean_fidelity_estimate = 0.0;  // the link layer's own estimate, averaged over pairs
  Duration simulated_time{0};           // from request to the last pair
  uint64_t events = 0;                  // simulator events run
};

// Fails with the link layer's error if the request fails, or DeadlineExceeded
// if it has not completed after `simulated_limit`.
absl::StatusOr<LinkExperimentResult> RunLinkExperiment(SimulatedNetwork& network, const LinkExperiment& experiment,
                                                       Duration simulated_limit);

}  // namespace qnet::netsim
