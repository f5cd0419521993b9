#include "netsim/circuit_experiment.h"

#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"

namespace qnet::netsim {

absl::StatusOr<CircuitExperimentResult> RunCircuitExperiment(SimulatedNetwork& network,
                                                             const CircuitExperiment& experiment,
                                                             Duration simulated_limit) {
  for (const std::string& n : experiment.program.nodes) {
    if (network.node(n) == nullptr) return absl::NotFoundError(absl::StrCat("the circuit names node '", n, "', which is not running"));
  }
  const std::string coordinator =
      experiment.coordinator.empty() ? experiment.program.nodes.front() : experiment.coordinator;
  stack::NodeStack* node = network.node(coordinator);
  if (node == nullptr) return absl::NotFoundError(absl::StrCat("no running node '", coordinator, "'"));
  network.RunFor(std::chrono::milliseconds(10));  // routing adverts spread
  transport::CircuitRequest request;
  request.program = experiment.program;
  request.shots = experiment.shots;
  request.min_fidelity = experiment.min_fidelity;
  request.timeout = simulated_limit;
  auto outcome = std::make_shared<std::optional<absl::StatusOr<transport::CircuitReport>>>();
  const uint64_t events_before = network.simulator().events_run();
  absl::StatusOr<transport::CircuitRunId> id = node->circuits().Run(
      request, [outcome](transport::CircuitRunId, absl::StatusOr<transport::CircuitReport> r) { *outcome = std::move(r); });
  if (!id.ok()) return id.status();
  network.RunUntil([&] { return outcome->has_value(); }, simulated_limit + std::chrono::seconds(1));
  if (!outcome->has_value()) return absl::DeadlineExceededError("the circuit request did not end within its time limit");
  if (!(*outcome)->ok()) return (*outcome)->status();
  CircuitExperimentResult result;
  result.coordinator = coordinator;
  result.report = std::move(***outcome);
  result.events = network.simulator().events_run() - events_before;
  return result;
}

}  // namespace qnet::netsim
