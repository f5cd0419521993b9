#include "netsim/link_experiment.h"

#include <map>
#include <optional>

#include "absl/strings/str_cat.h"

namespace qnet::netsim {
namespace {

struct HalfPair {
  quantum::BellState bell_state;
  link::MeasurementBasis basis;
  int outcome;
};

}  // namespace

absl::StatusOr<LinkExperimentResult> RunLinkExperiment(SimulatedNetwork& network, const LinkExperiment& experiment,
                                                       Duration simulated_limit) {
  stack::NodeStack* origin = network.node(experiment.origin);
  stack::NodeStack* remote = network.node(experiment.remote);
  if (origin == nullptr) return absl::NotFoundError(absl::StrCat("no running node '", experiment.origin, "'"));
  if (remote == nullptr) return absl::NotFoundError(absl::StrCat("no running node '", experiment.remote, "'"));

  std::map<uint64_t, HalfPair> at_origin, at_remote;
  double estimate_sum = 0.0;
  bool origin_done = false, remote_done = false;
  std::optional<absl::Status> failure;
  TimePoint last_pair = network.Now();

  auto recorder = [&](std::map<uint64_t, HalfPair>& into, bool& done, bool is_origin) {
    return [&into, &done, &failure, &estimate_sum, &last_pair, &network, is_origin](const link::LinkEvent& event) {
      if (const auto* p = std::get_if<link::PairDelivered>(&event)) {
        into[p->entanglement_id.sequence] = HalfPair{p->bell_state, p->basis, p->outcome};
        if (is_origin) estimate_sum += p->fidelity_estimate;
        last_pair = network.Now();
      } else if (std::get_if<link::RequestCompleted>(&event)) {
        done = true;
      } else if (const auto* f = std::get_if<link::RequestFailed>(&event)) {
        done = true;
        if (!failure) failure = link::ToStatus(f->error, f->message);
      }
    };
  };

  absl::Status registered = remote->link().RegisterReceiver(experiment.purpose_id, recorder(at_remote, remote_done, false));
  if (!registered.ok()) return registered;
  link::EntanglementRequest request;
  request.remote_node = experiment.remote;
  request.number = experiment.pairs;
  request.type = link::RequestType::kMeasure;
  request.basis = experiment.basis;
  request.min_fidelity = experiment.min_fidelity;
  request.max_time = experiment.max_time;
  request.purpose_id = experiment.purpose_id;

  const TimePoint start = network.Now();
  const uint64_t events_before = network.simulator().events_run();
  auto id = origin->link().Create(request, recorder(at_origin, origin_done, true));
  absl::Status outcome = id.status();
  if (outcome.ok()) {
    const bool finished = network.RunUntil([&] { return origin_done && remote_done; }, simulated_limit);
    if (failure) {
      outcome = *failure;
    } else if (!finished) {
      (void)origin->link().Cancel(*id);
      network.RunUntil([&] { return origin_done && remote_done; }, std::chrono::seconds(10));
      outcome = absl::DeadlineExceededError(absl::StrCat("the request did not complete within ",
                                                         FormatDuration(simulated_limit), " of simulated time"));
    }
  }
  (void)remote->link().UnregisterReceiver(experiment.purpose_id);
  if (!outcome.ok()) return outcome;

  LinkExperimentResult result;
  for (const auto& [sequence, a] : at_origin) {
    auto b = at_remote.find(sequence);
    if (b == at_remote.end()) continue;  // both ends deliver every pair; a miss would show in the counts
    result.pairs.push_back(apps::MeasuredPair{a.bell_state, a.basis, b->second.basis, a.outcome, b->second.outcome});
  }
  if (result.pairs.size() != at_origin.size() || at_origin.size() != at_remote.size()) {
    return absl::InternalError(absl::StrCat("the ends disagree: ", at_origin.size(), " pairs at ", experiment.origin,
                                            ", ", at_remote.size(), " at ", experiment.remote, ", ",
                                            result.pairs.size(), " matched"));
  }
  result.statistics = apps::AnalysePairs(result.pairs);
  result.mean_fidelity_estimate = result.pairs.empty() ? 0.0 : estimate_sum / static_cast<double>(result.pairs.size());
  result.simulated_time = last_pair - start;
  result.events = network.simulator().events_run() - events_before;
  return result;
}

}  // namespace qnet::netsim
