#include "netsim/teleport_experiment.h"

#include <cmath>
#include <memory>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "physical/quantum_device.h"
#include "transport/transport_layer.h"

namespace qnet::netsim {
namespace {

// As daemon::TeleportService: two shots in flight keep the path busy while
// one qubit is measured, and each shot's budget covers the one ahead of it.
constexpr uint32_t kShotsInFlight = 2;
constexpr Duration kShotTimeout = std::chrono::seconds(10);

// <psi|rho|psi> for the pure state with these angles.
double Overlap(const quantum::Matrix& rho, const transport::BlochAngles& state) {
  const quantum::Vector psi = transport::StateVector(state);
  return (psi.adjoint() * rho * psi)(0, 0).real();
}

// A shot ends, as in the daemon's Teleport, when its outcome has been
// recorded at the destination and the source has its ACK; only then does
// the next one go.
struct Shot {
  bool measured = false;
  bool acknowledged = false;
};

struct Run {
  TeleportExperimentResult result;
  uint32_t submitted = 0;
  uint32_t done = 0;
  std::map<transport::TransferId, Shot> open;  // submitted, not ended
  uint32_t truth_shots = 0;                     // shots whose true state was read
  double fidelity_sum = 0.0;
  double pair_estimate_sum = 0.0;
  std::optional<absl::Status> error;
  TimePoint last_done{};

  void EndIfComplete(transport::TransferId id, TimePoint now) {
    auto it = open.find(id);
    if (it == open.end() || !it->second.measured || !it->second.acknowledged) return;
    open.erase(it);
    ++done;
    last_done = now;
  }
};

}  // namespace

absl::StatusOr<TeleportExperimentResult> RunTeleportExperiment(SimulatedNetwork& network,
                                                               const TeleportExperiment& experiment,
                                                               Duration simulated_limit) {
  if (experiment.from == experiment.to) {
    return absl::InvalidArgumentError(absl::StrCat("--from and --to are both '", experiment.from,
                                                   "': teleport to another node"));
  }
  if (experiment.shots < 1) return absl::InvalidArgumentError("shots must be at least 1");
  if (!(experiment.min_fidelity >= 0.0 && experiment.min_fidelity <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("min_fidelity must be in [0, 1], got ", experiment.min_fidelity));
  }
  if (!std::isfinite(experiment.state.theta) || !std::isfinite(experiment.state.phi)) {
    return absl::InvalidArgumentError("the state's angles must be finite numbers (radians)");
  }
  stack::NodeStack* source = network.node(experiment.from);
  stack::NodeStack* destination = network.node(experiment.to);
  if (source == nullptr) return absl::NotFoundError(absl::StrCat("no running node '", experiment.from, "'"));
  if (destination == nullptr) return absl::NotFoundError(absl::StrCat("no running node '", experiment.to, "'"));
  // Routing adverts cross the network in a few link delays.
  network.RunFor(std::chrono::milliseconds(10));

  // Shared with handlers that may outlive this call (the network may).
  auto run = std::make_shared<Run>();
  physical::SimulatedDevice* device = &destination->device();
  const transport::BlochAngles intended = experiment.state;
  sim::Simulator* simulator = &network.simulator();
  const std::string from = experiment.from;
  absl::Status registered = destination->transport().RegisterReceiver(
      [run, device, intended, simulator, from](const transport::ReceiveEvent& event) {
        const auto* qubit = std::get_if<transport::QubitReceived>(&event);
        if (qubit == nullptr) return;  // the source's handler reports the failure
        const int slot = qubit->slot;
        const transport::TransferId id = qubit->id;
        // Transfer ids are unique per source: only this run's qubits count.
        if (qubit->source != from || !run->open.contains(id)) {
          (void)device->Free(slot);
          return;
        }
        const int axis = transport::TeleportShotAxis(id);
        run->pair_estimate_sum += qubit->pair_fidelity_estimate;
        // Ground truth first (simulation only), then the measurement a real
        // receiver would make.
        physical::SimulatedDevice::SimulationOnlyTrueState({{device, slot}},
                                                           [run, intended](absl::StatusOr<quantum::Matrix> rho) {
                                                             if (!rho.ok()) return;
                                                             run->fidelity_sum += Overlap(*rho, intended);
                                                             ++run->truth_shots;
                                                           });
        device->Measure(slot, transport::AxisBasis(axis), [run, device, slot, axis, id, simulator](
                                                              absl::StatusOr<int> outcome) {
          (void)device->Free(slot);
          if (!outcome.ok()) {
            if (!run->error) run->error = outcome.status();
            return;
          }
          transport::AxisCounts& c = run->result.counts[axis];
          ++c.shots;
          if (*outcome == 0) ++c.plus;
          ++run->result.shots;
          if (auto it = run->open.find(id); it != run->open.end()) it->second.measured = true;
          run->EndIfComplete(id, simulator->Now());
        });
      });
  if (!registered.ok()) return registered;

  transport::TeleportOptions options;
  options.min_fidelity = experiment.min_fidelity;
  options.timeout = kShotTimeout * kShotsInFlight;
  transport::TransportLayer& transport = source->transport();
  // Submits shots while fewer than kShotsInFlight are out.
  auto submit_more = [&] {
    while (!run->error && run->submitted < experiment.shots && run->open.size() < kShotsInFlight) {
      absl::StatusOr<transport::TransferId> id = transport.Teleport(
          experiment.to, intended, options,
          [run, simulator](transport::TransferId transfer, absl::StatusOr<transport::TeleportReport> report) {
            // A failure at the source ends the run, as it ends the daemon's
            // call (even one whose qubit had arrived: its ACK was lost).
            if (!report.ok()) {
              if (!run->error) run->error = report.status();
              return;
            }
            run->result.pairs_discarded += report->pairs_discarded;
            if (auto it = run->open.find(transfer); it != run->open.end()) it->second.acknowledged = true;
            run->EndIfComplete(transfer, simulator->Now());
          });
      if (!id.ok()) {
        run->error = id.status();
        return;
      }
      // The handlers never run inside Teleport, so the entry is there first.
      run->open.emplace(*id, Shot{});
      ++run->submitted;
    }
  };
  const TimePoint start = network.simulator().Now();
  const uint64_t events_before = network.simulator().events_run();
  submit_more();
  // The next shot goes as soon as one ends.
  network.RunUntil(
      [&] {
        submit_more();
        return run->error.has_value() || run->done >= experiment.shots;
      },
      simulated_limit);
  (void)destination->transport().UnregisterReceiver();
  if (run->error) {
    return absl::Status(run->error->code(), absl::StrCat("shot ", run->done + 1, " of ", experiment.shots,
                                                         " failed: ", run->error->message()));
  }
  if (run->done < experiment.shots) {
    return absl::DeadlineExceededError(absl::StrCat("only ", run->done, " of ", experiment.shots,
                                                    " teleports finished within the time limit"));
  }
  TeleportExperimentResult result = run->result;
  result.true_fidelity = run->truth_shots > 0 ? run->fidelity_sum / run->truth_shots : 0.0;
  result.pair_fidelity_estimate = run->pair_estimate_sum / result.shots;
  result.simulated_seconds = ToSeconds(run->last_done - start);
  result.events = network.simulator().events_run() - events_before;
  for (const transport::AxisCounts& c : result.counts) {
    if (c.shots == 0) {
      return absl::FailedPreconditionError("too few shots to estimate the state: ask for at least 3 (X, Y and Z)");
    }
  }
  absl::StatusOr<transport::BlochEstimate> estimate =
      transport::EstimateFromOutcomes(result.counts[0], result.counts[1], result.counts[2], intended);
  if (!estimate.ok()) return estimate.status();
  result.estimate = *estimate;
  return result;
}

}  // namespace qnet::netsim
