#include "netsim/path_experiment.h"

#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "netsim/link_experiment.h"
#include "network/network_service.h"

namespace qnet::netsim {
namespace {

struct HalfPair {
  quantum::BellState bell_state;
  link::MeasurementBasis basis;
  int outcome;
};

}  // namespace

Occupancies ReadOccupancies(SimulatedNetwork& network) {
  Occupancies out;
  for (const config::NodeConfig& n : network.config().nodes) {
    if (stack::NodeStack* s = network.node(n.name)) out[n.name] = s->device().occupancy();
  }
  return out;
}

std::vector<NodeMemoryUse> MemoryUse(SimulatedNetwork& network, const std::vector<std::string>& nodes,
                                     const Occupancies& before, Duration window) {
  std::vector<NodeMemoryUse> out;
  const double seconds = ToSeconds(window);
  for (const std::string& n : nodes) {
    stack::NodeStack* s = network.node(n);
    auto was = before.find(n);
    if (s == nullptr || was == before.end()) continue;
    const physical::SimulatedDevice::Occupancy now = s->device().occupancy();
    NodeMemoryUse use;
    use.node = n;
    use.qubits = s->device().num_slots();
    use.peak_in_use = now.peak_in_use;
    use.allocated_qubit_seconds = now.allocated_qubit_seconds - was->second.allocated_qubit_seconds;
    if (seconds > 0 && use.qubits > 0) use.utilisation = use.allocated_qubit_seconds / (use.qubits * seconds);
    out.push_back(std::move(use));
  }
  return out;
}

absl::StatusOr<PathExperimentResult> RunPathExperiment(SimulatedNetwork& network, const PathExperiment& experiment,
                                                       Duration simulated_limit) {
  stack::NodeStack* origin = network.node(experiment.origin);
  stack::NodeStack* remote = network.node(experiment.remote);
  if (origin == nullptr) return absl::NotFoundError(absl::StrCat("no running node '", experiment.origin, "'"));
  if (remote == nullptr) return absl::NotFoundError(absl::StrCat("no running node '", experiment.remote, "'"));

  if (network.config().FindLink(experiment.origin, experiment.remote) != nullptr) {
    LinkExperiment link{.origin = experiment.origin,
                        .remote = experiment.remote,
                        .pairs = experiment.pairs,
                        .basis = experiment.basis,
                        .min_fidelity = experiment.min_fidelity,
                        .purpose_id = experiment.purpose_id};
    const Occupancies before = ReadOccupancies(network);
    const TimePoint begun = network.Now();
    absl::StatusOr<LinkExperimentResult> ran = RunLinkExperiment(network, link, simulated_limit);
    if (!ran.ok()) return ran.status();
    PathExperimentResult result;
    result.layer = PathExperimentResult::Layer::kLink;
    result.path = {experiment.origin, experiment.remote};
    result.pairs = std::move(ran->pairs);
    result.statistics = ran->statistics;
    result.mean_fidelity_estimate = ran->mean_fidelity_estimate;
    result.simulated_time = ran->simulated_time;
    result.events = ran->events;
    result.memory = MemoryUse(network, result.path, before, network.Now() - begun);
    return result;
  }

  std::map<uint64_t, HalfPair> at_origin, at_remote;
  double estimate_sum = 0.0;
  bool origin_done = false, remote_done = false;
  std::optional<absl::Status> failure;
  std::vector<std::string> path;
  TimePoint last_pair = network.Now();
  auto recorder = [&](std::map<uint64_t, HalfPair>& into, bool& done, bool is_origin) {
    return [&, &into = into, &done = done, is_origin](const network::NetworkEvent& event) {
      if (const auto* p = std::get_if<network::PairDelivered>(&event)) {
        into[p->id.sequence] = HalfPair{p->bell_state, p->basis, p->outcome};
        if (is_origin) {
          estimate_sum += p->fidelity_estimate;
          path = p->path;
        }
        last_pair = network.Now();
      } else if (std::get_if<network::RequestCompleted>(&event)) {
        done = true;
      } else if (const auto* f = std::get_if<network::RequestFailed>(&event)) {
        done = true;
        if (!failure) failure = network::ToStatus(f->error, f->message);
      }
    };
  };

  // Routing adverts cross the network in a few link delays.
  network.RunFor(std::chrono::milliseconds(10));
  absl::Status registered =
      remote->network().RegisterReceiver(experiment.purpose_id, recorder(at_remote, remote_done, false));
  if (!registered.ok()) return registered;
  network::EndToEndRequest request;
  request.remote_node = experiment.remote;
  request.number = experiment.pairs;
  request.type = link::RequestType::kMeasure;
  request.basis = experiment.basis;
  request.min_fidelity = experiment.min_fidelity;
  request.purpose_id = experiment.purpose_id;

  const TimePoint start = network.Now();
  const Occupancies before = ReadOccupancies(network);
  const uint64_t events_before = network.simulator().events_run();
  auto id = origin->network().Create(request, recorder(at_origin, origin_done, true));
  absl::Status outcome = id.status();
  if (outcome.ok()) {
    const bool finished = network.RunUntil([&] { return origin_done && remote_done; }, simulated_limit);
    if (failure) {
      outcome = *failure;
    } else if (!finished) {
      (void)origin->network().Cancel(*id);
      network.RunUntil([&] { return origin_done && remote_done; }, std::chrono::seconds(10));
      outcome = absl::DeadlineExceededError(absl::StrCat("the request did not complete within ",
                                                         FormatDuration(simulated_limit), " of simulated time"));
    }
  }
  (void)remote->network().UnregisterReceiver(experiment.purpose_id);
  if (!outcome.ok()) return outcome;
  const Duration window = network.Now() - start;

  PathExperimentResult result;
  result.path = path;
  for (const auto& [sequence, a] : at_origin) {
    auto b = at_remote.find(sequence);
    if (b == at_remote.end()) continue;
    result.pairs.push_back(apps::MeasuredPair{a.bell_state, a.basis, b->second.basis, a.outcome, b->second.outcome});
  }
  result.statistics = apps::AnalysePairs(result.pairs);
  result.mean_fidelity_estimate = at_origin.empty() ? 0.0 : estimate_sum / static_cast<double>(at_origin.size());
  result.simulated_time = last_pair - start;
  result.events = network.simulator().events_run() - events_before;
  for (const std::string& n : path) {
    if (stack::NodeStack* s = network.node(n)) {
      result.swaps += s->network().stats().swaps;
      result.discarded += s->network().stats().discarded_pairs + s->network().stats().rejected_pairs;
    }
  }
  result.memory = MemoryUse(network, path, before, window);
  return result;
}

}  // namespace qnet::netsim
