#include "netsim/traffic_experiment.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "core/rng.h"
#include "network/network_service.h"

namespace qnet::netsim {
namespace {

struct Half {
  quantum::BellState bell_state;
  link::MeasurementBasis basis;
  int outcome;
};

// One request's bookkeeping while the traffic runs.
struct Live {
  TrafficRequest record;
  Duration arrival{0};
  uint32_t purpose_id = 0;
  std::optional<network::RequestId> id;
  bool started = false, head_done = false, tail_done = false, registered = false;
  double estimate_sum = 0.0;
  std::map<uint64_t, Half> at_origin, at_remote;
};

// The run's requests and what their callbacks do.
struct TrafficState : std::enable_shared_from_this<TrafficState> {
  TrafficState(SimulatedNetwork& n, const TrafficExperiment& e, std::vector<std::unique_ptr<Live>> l)
      : network(n), experiment(e), live(std::move(l)) {}
  SimulatedNetwork& network;
  const TrafficExperiment experiment;
  std::vector<std::unique_ptr<Live>> live;
  TimePoint start, last_end;
  size_t ended = 0;

  bool AllDone() const {
    if (ended < live.size()) return false;
    // A served request's far end has its pairs too once it is told.
    return std::all_of(live.begin(), live.end(), [](const auto& r) { return r->tail_done || !r->record.served; });
  }

  // The request's end at `at` (default: now).
  void Finish(Live& r, bool served, std::string error, std::optional<TimePoint> at = std::nullopt) {
    if (r.head_done) return;
    r.head_done = true;
    r.record.served = served;
    r.record.error = std::move(error);
    const TimePoint end = at.value_or(network.Now());
    r.record.latency_s = r.started ? std::max(0.0, ToSeconds(end - (start + r.arrival))) : 0.0;
    r.record.pairs = static_cast<uint32_t>(r.at_origin.size());
    r.record.pairs_per_second = r.record.latency_s > 0 ? r.record.pairs / r.record.latency_s : 0.0;
    r.record.mean_fidelity_estimate =
        r.at_origin.empty() ? 0.0 : r.estimate_sum / static_cast<double>(r.at_origin.size());
    if (r.started) last_end = std::max(last_end, end);
    ++ended;
  }

  void Begin(Live& r) {
    r.started = true;
    stack::NodeStack* origin = network.node(r.record.from);
    stack::NodeStack* remote = network.node(r.record.to);
    if (origin == nullptr || remote == nullptr) return Finish(r, false, "an end node is down");
    // Each handler holds the state: it may outlive RunTraffic (see there).
    absl::Status registered = remote->network().RegisterReceiver(
        r.purpose_id, [self = shared_from_this(), live = &r](const network::NetworkEvent& e) {
          if (const auto* p = std::get_if<network::PairDelivered>(&e)) {
            live->at_remote[p->id.sequence] = Half{p->bell_state, p->basis, p->outcome};
          } else if (std::holds_alternative<network::RequestCompleted>(e) ||
                     std::holds_alternative<network::RequestFailed>(e)) {
            live->tail_done = true;
          }
        });
    if (!registered.ok()) return Finish(r, false, std::string(registered.message()));
    r.registered = true;
    network::EndToEndRequest request;
    request.remote_node = r.record.to;
    request.number = experiment.pairs_per_request;
    request.type = link::RequestType::kMeasure;
    request.basis = experiment.basis;
    request.min_fidelity = experiment.min_fidelity;
    request.max_time = experiment.request_timeout;
    request.purpose_id = r.purpose_id;
    auto id = origin->network().Create(request, [self = shared_from_this(), live = &r](const network::NetworkEvent& e) {
      if (const auto* p = std::get_if<network::PairDelivered>(&e)) {
        live->at_origin[p->id.sequence] = Half{p->bell_state, p->basis, p->outcome};
        live->estimate_sum += p->fidelity_estimate;
        live->record.hops = static_cast<int>(p->path.size()) - 1;
      } else if (std::holds_alternative<network::RequestCompleted>(e)) {
        self->Finish(*live, true, "");
      } else if (const auto* f = std::get_if<network::RequestFailed>(&e)) {
        self->Finish(*live, false, std::string(network::ToStatus(f->error, f->message).message()));
      }
    });
    if (!id.ok()) {
      r.tail_done = true;
      return Finish(r, false, std::string(id.status().message()));
    }
    r.id = *id;
  }
};

}  // namespace

double Quantile(std::vector<double> values, double q) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const double at = std::clamp(q, 0.0, 1.0) * static_cast<double>(values.size() - 1);
  const size_t low = static_cast<size_t>(std::floor(at));
  const size_t high = std::min(values.size() - 1, low + 1);
  return values[low] + (at - static_cast<double>(low)) * (values[high] - values[low]);
}

absl::StatusOr<TrafficResult> RunTraffic(SimulatedNetwork& network, const TrafficExperiment& experiment,
                                         Duration simulated_limit) {
  const auto& nodes = network.config().nodes;
  if (nodes.size() < 2) return absl::InvalidArgumentError("traffic needs a network of at least two nodes");
  if (!(experiment.arrival_rate_hz > 0) || !std::isfinite(experiment.arrival_rate_hz)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the arrival rate must be a positive number of requests per second, got ",
                     experiment.arrival_rate_hz));
  }
  if (experiment.requests == 0 || experiment.pairs_per_request == 0) {
    return absl::InvalidArgumentError("traffic needs at least one request of at least one pair");
  }
  for (const auto& [from, to] : experiment.endpoints) {
    for (const std::string& n : {from, to}) {
      if (network.node(n) == nullptr) return absl::InvalidArgumentError(absl::StrCat("no running node '", n, "'"));
    }
    if (from == to) return absl::InvalidArgumentError(absl::StrCat("a request from ", from, " to itself"));
  }

  // Arrivals and endpoints are drawn up front, so they do not depend on what
  // the network does with them.
  Rng rng = Rng(experiment.seed).Fork("traffic");
  std::vector<std::unique_ptr<Live>> live;
  double t = 0.0;
  for (uint32_t i = 0; i < experiment.requests; ++i) {
    if (i > 0) t += -std::log1p(-rng.Uniform()) / experiment.arrival_rate_hz;
    auto r = std::make_unique<Live>();
    r->record.arrival_s = t;
    r->arrival = FromSeconds(t);
    r->purpose_id = 1000 + i;
    if (experiment.endpoints.empty()) {
      const uint64_t a = rng.UniformInt(nodes.size());
      uint64_t b = rng.UniformInt(nodes.size() - 1);
      if (b >= a) ++b;
      r->record.from = nodes[a].name;
      r->record.to = nodes[b].name;
    } else {
      const auto& [from, to] = experiment.endpoints[i % experiment.endpoints.size()];
      r->record.from = from;
      r->record.to = to;
    }
    live.push_back(std::move(r));
  }

  // Routing adverts cross the network in a few link delays.
  network.RunFor(std::chrono::milliseconds(10));
  const Occupancies before = ReadOccupancies(network);
  std::map<std::string, physical::HeraldedLinkStats> links_before;
  for (const physical::LinkPhysics& l : network.config().links) {
    if (stack::NodeStack* s = network.node(l.node_a)) {
      if (auto stats = s->physical().HeraldStats(l.node_b); stats.ok()) links_before[l.name] = *stats;
    }
  }
  const uint64_t events_before = network.simulator().events_run();
  // Callbacks hold the state: a request cancelled at the end may still
  // report after this function has returned, if the caller runs on.
  auto state = std::make_shared<TrafficState>(network, experiment, std::move(live));
  state->start = network.Now();
  state->last_end = state->start;
  std::vector<sim::EventId> arrivals;
  for (size_t i = 0; i < state->live.size(); ++i) {
    arrivals.push_back(network.simulator().ScheduleAt(state->start + state->live[i]->arrival,
                                                      [state, i] { state->Begin(*state->live[i]); }));
  }
  const bool finished = network.RunUntil([&state] { return state->AllDone(); }, simulated_limit);
  const TimePoint window_end = network.Now();
  if (!finished) {
    // The limit: requests not yet arrived never start; those running are
    // cancelled and end now, whatever their cancellation takes to settle.
    for (sim::EventId id : arrivals) network.simulator().Cancel(id);
    const std::string late = absl::StrCat("not done within ", FormatDuration(simulated_limit), " of simulated time");
    for (auto& r : state->live) {
      if (!r->started) state->Finish(*r, false, absl::StrCat("not started: ", late));
    }
    for (auto& r : state->live) {
      if (r->head_done) continue;
      if (r->id.has_value()) {
        if (stack::NodeStack* origin = network.node(r->record.from)) (void)origin->network().Cancel(*r->id);
      }
      state->Finish(*r, false, late, window_end);
    }
    // Let the cancellations free the memory before the receivers go.
    network.RunFor(std::chrono::milliseconds(100));
  }
  for (auto& r : state->live) {
    if (!r->registered) continue;
    if (stack::NodeStack* remote = network.node(r->record.to)) (void)remote->network().UnregisterReceiver(r->purpose_id);
  }
  const TimePoint start = state->start;
  const TimePoint last_end = state->last_end;

  TrafficResult result;
  std::vector<apps::MeasuredPair> pairs;
  for (auto& r : state->live) {
    for (const auto& [sequence, a] : r->at_origin) {
      auto b = r->at_remote.find(sequence);
      if (b == r->at_remote.end()) continue;
      pairs.push_back(apps::MeasuredPair{a.bell_state, a.basis, b->second.basis, a.outcome, b->second.outcome});
    }
    result.requests.push_back(r->record);
  }
  result.statistics = apps::AnalysePairs(pairs);
  result.simulated_time = last_end - start;
  result.events = network.simulator().events_run() - events_before;
  std::vector<std::string> names;
  for (const config::NodeConfig& n : nodes) names.push_back(n.name);
  // Memory and links over all that was simulated since the first arrival
  // (up to now: the integrals are read now).
  const Duration observed = network.Now() - start;
  result.memory = MemoryUse(network, names, before, observed);
  const double seconds = ToSeconds(observed);
  for (const physical::LinkPhysics& l : network.config().links) {
    LinkUse use;
    use.link = l.name;
    if (stack::NodeStack* s = network.node(l.node_a)) {
      if (auto stats = s->physical().HeraldStats(l.node_b); stats.ok()) {
        const physical::HeraldedLinkStats& was = links_before[l.name];
        use.heralded = stats->heralded - was.heralded;
        use.attempts = stats->attempts - was.attempts;
      }
    }
    use.pairs_per_second = seconds > 0 ? static_cast<double>(use.heralded) / seconds : 0.0;
    result.links.push_back(std::move(use));
  }
  return result;
}

}  // namespace qnet::netsim
