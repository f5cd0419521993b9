#include "netsim/path_experiment.h"

#include <algorithm>
#include <optional>

#include "absl/container/flat_hash_map.h"
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
    if (experiment.keep_pairs) result.pairs = std::move(ran->pairs);
    result.statistics = ran->statistics;
    result.mean_fidelity_estimate = ran->mean_fidelity_estimate;
    result.simulated_time = ran->simulated_time;
    result.events = ran->events;
    result.memory = MemoryUse(network, result.path, before, network.Now() - begun);
    return result;
  }

  // A pair's two halves are matched as they arrive and only unmatched ones
  // are kept, so memory does not grow with the pairs (unless they are kept).
  absl::flat_hash_map<uint64_t, HalfPair> unmatched_at_origin, unmatched_at_remote;
  apps::PairTally tally;
  std::vector<std::pair<uint64_t, apps::MeasuredPair>> kept;  // by sequence
  uint64_t origin_pairs = 0;
  double estimate_sum = 0.0;
  bool origin_done = false, remote_done = false;
  std::optional<absl::Status> failure;
  std::vector<std::string> path;
  TimePoint last_pair = network.Now();
  auto recorder = [&](bool& done, bool is_origin) {
    return [&, &done = done, is_origin](const network::NetworkEvent& event) {
      if (const auto* p = std::get_if<network::PairDelivered>(&event)) {
        const HalfPair half{p->bell_state, p->basis, p->outcome};
        auto& mine = is_origin ? unmatched_at_origin : unmatched_at_remote;
        auto& theirs = is_origin ? unmatched_at_remote : unmatched_at_origin;
        if (auto other = theirs.find(p->id.sequence); other != theirs.end()) {
          const HalfPair& a = is_origin ? half : other->second;
          const HalfPair& b = is_origin ? other->second : half;
          const apps::MeasuredPair pair{a.bell_state, a.basis, b.basis, a.outcome, b.outcome};
          tally.Add(pair);
          if (experiment.keep_pairs) kept.emplace_back(p->id.sequence, pair);
          theirs.erase(other);
        } else {
          mine[p->id.sequence] = half;
        }
        if (is_origin) {
          ++origin_pairs;
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
      remote->network().RegisterReceiver(experiment.purpose_id, recorder(remote_done, false));
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
  auto id = origin->network().Create(request, recorder(origin_done, true));
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
  // Kept pairs in sequence order, as both ends numbered them.
  std::sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [sequence, pair] : kept) result.pairs.push_back(pair);
  result.statistics = tally.Statistics();
  result.mean_fidelity_estimate = origin_pairs == 0 ? 0.0 : estimate_sum / static_cast<double>(origin_pairs);
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
