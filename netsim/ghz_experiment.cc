#include "netsim/ghz_experiment.h"

#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"

namespace qnet::netsim {

absl::StatusOr<GhzExperimentResult> RunGhzExperiment(SimulatedNetwork& network, const GhzExperiment& experiment,
                                                     Duration simulated_limit) {
  if (experiment.nodes.size() < 3) {
    return absl::InvalidArgumentError("a GHZ state needs at least 3 nodes (the first is the root)");
  }
  for (const std::string& n : experiment.nodes) {
    if (network.node(n) == nullptr) return absl::NotFoundError(absl::StrCat("no running node '", n, "'"));
  }
  stack::NodeStack* root = network.node(experiment.nodes.front());
  // Routing adverts cross the network in a few link delays.
  network.RunFor(std::chrono::milliseconds(10));
  transport::GhzRequest request;
  request.members.assign(experiment.nodes.begin() + 1, experiment.nodes.end());
  request.shots = experiment.shots;
  request.min_fidelity = experiment.min_fidelity;
  request.timeout = simulated_limit;
  // Shared with the handler, which may run after this function returned
  // (only if the network outlives it; RunUntil below waits for it).
  auto outcome = std::make_shared<std::optional<absl::StatusOr<transport::GhzReport>>>();
  const uint64_t events_before = network.simulator().events_run();
  absl::StatusOr<transport::GhzRunId> id =
      root->ghz().Run(request, [outcome](transport::GhzRunId, absl::StatusOr<transport::GhzReport> r) {
        *outcome = std::move(r);
      });
  if (!id.ok()) return id.status();
  // The request's own timeout ends it; the margin lets its handler run.
  network.RunUntil([&] { return outcome->has_value(); }, simulated_limit + std::chrono::seconds(1));
  if (!outcome->has_value()) {
    return absl::DeadlineExceededError("the GHZ request did not end within its time limit");
  }
  if (!(*outcome)->ok()) return (*outcome)->status();
  GhzExperimentResult result;
  result.report = std::move(***outcome);
  result.events = network.simulator().events_run() - events_before;
  std::vector<apps::GhzSettingTally> tallies;
  for (const auto& s : result.report.settings) {
    if (s.shots > 0) tallies.push_back(apps::GhzSettingTally{s.bases, s.counts});
  }
  absl::StatusOr<apps::GhzEstimate> estimate = apps::EstimateGhz(tallies);
  if (!estimate.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("too few shots to estimate the GHZ state: ", estimate.status().message(),
                     " (ask for at least as many shots as settings: 2^(N-1) + 1)"));
  }
  result.estimate = *std::move(estimate);
  return result;
}

}  // namespace qnet::netsim
