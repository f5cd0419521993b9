// Many end-to-end requests at once on a simulated network: requests arrive as
// a Poisson process (seeded), between random pairs of nodes or given ones,
// each for a number of MEASURE pairs; the network layer routes, reserves and
// swaps for all of them together. The result is network-wide statistics: per
// request its latency, rate and fidelity estimate; the error rates measured
// over all delivered pairs; memory utilisation per node and pairs heralded
// per link. `qnetsim --traffic` prints them.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "apps/pair_statistics.h"
#include "core/time.h"
#include "link/link_service.h"
#include "netsim/path_experiment.h"
#include "netsim/simulated_network.h"

namespace qnet::netsim {

struct TrafficExperiment {
  uint32_t requests = 100;
  double arrival_rate_hz = 1000.0;  // Poisson arrivals per simulated second
  uint32_t pairs_per_request = 10;
  link::BasisChoice basis = link::BasisChoice::kSixState;
  double min_fidelity = 0.0;
  // How long a request may wait for memory and run (simulated); a request
  // still running then is cancelled and counted as failed.
  Duration request_timeout = std::chrono::seconds(10);
  // Empty: each request between two distinct nodes drawn uniformly. Else the
  // requests cycle through these (origin, remote) pairs.
  std::vector<std::pair<std::string, std::string>> endpoints;
  uint64_t seed = 1;  // arrivals and endpoints (the network has its own seed)
};

struct TrafficRequest {
  std::string from, to;
  double arrival_s = 0.0;  // simulated, since the first arrival
  int hops = 0;            // 0 when no pair came
  uint32_t pairs = 0;      // delivered at the origin
  bool served = false;     // completed with every pair
  std::string error;       // why not
  double latency_s = 0.0;  // arrival to completion (or failure)
  double pairs_per_second = 0.0;  // pairs / latency
  double mean_fidelity_estimate = 0.0;
};

struct LinkUse {
  std::string link;
  uint64_t heralded = 0;  // link pairs over the traffic run
  uint64_t attempts = 0;
  double pairs_per_second = 0.0;
};

struct TrafficResult {
  std::vector<TrafficRequest> requests;  // in arrival order
  // Both ends' outcomes of every delivered pair, over all requests.
  apps::PairStatistics statistics;
  // Every node and link, over all simulated since the first arrival (which
  // may run a little past the last request's end: the far ends' last news).
  std::vector<NodeMemoryUse> memory;
  std::vector<LinkUse> links;
  Duration simulated_time{0};         // first arrival to the last request's end
  uint64_t events = 0;
};

// Lets routes converge (10 ms), then runs the traffic until every request has
// ended or `simulated_limit` has passed (the rest are cancelled). InvalidArgument
// for an unknown endpoint, fewer than two nodes or a non-positive rate.
absl::StatusOr<TrafficResult> RunTraffic(SimulatedNetwork& network, const TrafficExperiment& experiment,
                                         Duration simulated_limit);

// The q-quantile (0..1) of `values` by linear interpolation; 0 for none.
double Quantile(std::vector<double> values, double q);

}  // namespace qnet::netsim
