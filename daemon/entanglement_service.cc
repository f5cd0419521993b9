#include "daemon/entanglement_service.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"

namespace qnet::daemon {
namespace {

link::BasisChoice ToBasisChoice(v1::EntangleRequest::Basis basis) {
  switch (basis) {
    case v1::EntangleRequest::X: return link::BasisChoice::kX;
    case v1::EntangleRequest::Y: return link::BasisChoice::kY;
    case v1::EntangleRequest::BB84: return link::BasisChoice::kBb84;
    case v1::EntangleRequest::SIX_STATE: return link::BasisChoice::kSixState;
    case v1::EntangleRequest::CHSH: return link::BasisChoice::kChsh;
    default: return link::BasisChoice::kZ;
  }
}

// What a delivered pair is called, whichever layer delivered it.
struct PairName {
  std::string id;  // "alice-bob#17"
  const std::string& node_a;  // the Bell state's first qubit
  const std::string& node_b;
  uint64_t sequence = 0;
};
PairName NameOf(const link::PairDelivered& pair) {
  const link::EntanglementId& id = pair.entanglement_id;
  return {id.ToString(), id.node_a, id.node_b, id.sequence};
}
PairName NameOf(const network::PairDelivered& pair) {
  return {pair.id.ToString(), pair.id.head, pair.id.tail, pair.id.sequence};
}

// The nodes a pair spans, in order (empty for a link's pair: just its two ends).
std::vector<std::string> PathOf(const link::PairDelivered&) { return {}; }
const std::vector<std::string>& PathOf(const network::PairDelivered& pair) { return pair.path; }

std::string_view ErrorName(link::LinkError error) { return link::LinkErrorName(error); }
std::string_view ErrorName(network::NetworkError error) { return network::NetworkErrorName(error); }

// A failed request's status for the client (link::ToStatus or network::ToStatus).
template <typename Failed>
absl::Status FailureStatus(const Failed& failed) {
  return ToStatus(failed.error, absl::StrCat(failed.message, " (after ", failed.pairs_delivered, " pairs)"));
}

// The PairEvent for a pair the link or the network layer delivered (latency
// measured from `started`).
template <typename Delivered>
v1::PairEvent ToPairEvent(const Delivered& pair, TimePoint started) {
  const PairName name = NameOf(pair);
  v1::PairEvent out;
  out.set_entanglement_id(name.id);
  out.set_node_a(name.node_a);
  out.set_node_b(name.node_b);
  out.set_sequence(name.sequence);
  out.set_bell_state(std::string(quantum::BellName(pair.bell_state)));
  out.set_fidelity_estimate(pair.fidelity_estimate);
  out.set_latency_s(ToSeconds(pair.estimate_time - started));
  out.set_pair_index(pair.pair_index);
  if (pair.type == link::RequestType::kMeasure) {
    out.set_outcome(pair.outcome);
    out.set_basis(std::string(link::MeasurementBasisName(pair.basis)));
  } else {
    out.set_outcome(-1);
  }
  for (const std::string& n : PathOf(pair)) out.add_path(n);
  return out;
}

}  // namespace

EntanglementService::EntanglementService(NodeContext& context, link::LinkLayer& link, network::NetworkLayer* network,
                                         physical::QuantumDevice& device, const DaemonTopology& topology,
                                         const LagMonitor& lag, const Logger& log, Duration keep_hold)
    : context_(context),
      link_(link),
      network_(network),
      device_(device),
      topology_(topology),
      lag_(lag),
      log_(log),
      keep_hold_(std::max(keep_hold, Duration{0})) {}

absl::Status EntanglementService::Start() {
  QNET_RETURN_IF_ERROR(
      link_.RegisterReceiver(kDefaultPurposeId, [this](const link::LinkEvent& e) { OnReceiverEvent(e); }));
  if (network_ == nullptr) return absl::OkStatus();
  return network_->RegisterReceiver(kDefaultPurposeId,
                                    [this](const network::NetworkEvent& e) { OnNetworkReceiverEvent(e); });
}

absl::StatusOr<EntanglementService::RequestHandle> EntanglementService::Entangle(const v1::EntangleRequest& request,
                                                                               Stream stream) {
  const std::string& remote = request.remote_node();
  if (remote.empty()) return absl::InvalidArgumentError("remote_node is required (the node to entangle with)");
  if (!topology_.IndexOf(remote).has_value()) {
    // The names, so that a misspelling is seen at once (the first few of a large network).
    const size_t shown = std::min<size_t>(topology_.nodes.size(), 12);
    std::vector<std::string> names(topology_.nodes.begin(), topology_.nodes.begin() + static_cast<long>(shown));
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown node '", remote, "' (not in network ", topology_.network, "; nodes: ", absl::StrJoin(names, ", "),
        shown < topology_.nodes.size() ? absl::StrCat(", ... (", topology_.nodes.size(), " in all)") : "", ")"));
  }
  if (remote == topology_.self) {
    return absl::InvalidArgumentError(absl::StrCat("remote_node '", remote, "' is this node itself"));
  }
  const bool neighbour = topology_.FindNeighbour(remote) != nullptr;
  if (!neighbour && network_ == nullptr) {
    std::vector<std::string> names;
    for (const NeighbourLink& n : topology_.neighbours) names.push_back(n.neighbour);
    return absl::InvalidArgumentError(absl::StrCat("node '", remote, "' is not a neighbour of ", topology_.self,
                                                   " (neighbours: ", absl::StrJoin(names, ", "), ")"));
  }
  if (request.pairs() == 0 || request.pairs() > kMaxPairsPerRequest) {
    return absl::InvalidArgumentError(
        absl::StrCat("pairs must be between 1 and ", kMaxPairsPerRequest, ", got ", request.pairs()));
  }
  if (!(request.min_fidelity() >= 0.0 && request.min_fidelity() <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("min_fidelity must be in [0, 1], got ", request.min_fidelity()));
  }
  if (!(request.timeout_s() >= 0.0 && request.timeout_s() <= kMaxRequestTimeoutS)) {
    return absl::InvalidArgumentError(absl::StrCat("timeout must be a number of seconds in [0, ", kMaxRequestTimeoutS,
                                                   "] (0 = none), got ", request.timeout_s()));
  }
  const link::RequestType type =
      request.type() == v1::EntangleRequest::MEASURE ? link::RequestType::kMeasure : link::RequestType::kKeep;
  // The id is known only after Create returns; events never run inside it.
  auto id_cell = std::make_shared<RequestHandle>(0);
  // The same request for either layer.
  const auto fill = [&](auto& req) {
    req.remote_node = remote;
    req.number = request.pairs();
    req.type = type;
    req.basis = ToBasisChoice(request.basis());
    req.min_fidelity = request.min_fidelity();
    req.max_time = FromSeconds(request.timeout_s());
    req.purpose_id = kDefaultPurposeId;
  };
  if (!neighbour) {
    network::EndToEndRequest req;
    fill(req);
    absl::StatusOr<network::RequestId> id = network_->Create(
        req, [this, id_cell](const network::NetworkEvent& e) { OnNetworkOriginEvent(*id_cell, e); });
    if (!id.ok()) return id.status();
    *id_cell = *id | kNetworkHandle;
    origins_.emplace(*id_cell, NewOrigin(std::move(stream), remote, request.pairs()));
    ScheduleProgress(*id_cell);
    QNET_LOG_WITH(log_, kInfo, (LogFields{{"layer", "network"}, {"circuit", network_->CircuitId(*id)}}),
                  "end-to-end request %d: %d pairs with %s", *id, req.number, remote);
    return *id_cell;
  }
  link::EntanglementRequest req;
  fill(req);
  absl::StatusOr<link::RequestId> id =
      link_.Create(req, [this, id_cell](const link::LinkEvent& e) { OnOriginEvent(*id_cell, e); });
  if (!id.ok()) return id.status();
  *id_cell = *id;
  origins_.emplace(*id, NewOrigin(std::move(stream), remote, request.pairs()));
  ScheduleProgress(*id);
  QNET_LOG(log_, kInfo, "entangle request %d: %d pairs with %s", *id, req.number, remote);
  return *id;
}

EntanglementService::Origin EntanglementService::NewOrigin(Stream stream, const std::string& remote,
                                                          uint32_t pairs) const {
  const LagMonitor::Clock::time_point now = LagMonitor::Clock::now();
  Origin origin{std::move(stream), context_.Now(), {}, lag_.Begin(now)};
  origin.remote = remote;
  origin.pairs_requested = pairs;
  origin.last_pair_wall = now;
  return origin;
}

void EntanglementService::EnableProgress(WallTimerStarter start_timer, double time_scale,
                                         std::chrono::milliseconds every) {
  start_wall_timer_ = std::move(start_timer);
  time_scale_ = time_scale > 0 ? time_scale : 1.0;
  progress_every_ = every;
}

void EntanglementService::ScheduleProgress(RequestHandle handle) {
  if (!start_wall_timer_) return;
  // Ticks at half the period, so a silence is reported within 1-1.5 periods.
  start_wall_timer_(progress_every_ / 2, lifetime_.Guard([this, handle] {
    auto it = origins_.find(handle);
    if (it == origins_.end()) return;  // ended: no more ticks
    Origin& origin = it->second;
    const LagMonitor::Clock::time_point now = LagMonitor::Clock::now();
    if (origin.stream.event && now - origin.last_pair_wall >= progress_every_ &&
        now - origin.last_progress_wall >= progress_every_) {
      origin.last_progress_wall = now;
      if (std::optional<v1::EntangleProgress> progress = Progress(handle)) {
        v1::EntangleEvent out;
        *out.mutable_progress() = *std::move(progress);
        origin.stream.event(std::move(out));
      }
    }
    ScheduleProgress(handle);
  }));
}

std::optional<v1::EntangleProgress> EntanglementService::Progress(RequestHandle handle) const {
  auto it = origins_.find(handle);
  if (it == origins_.end()) return std::nullopt;
  const Origin& origin = it->second;
  const LagMonitor::Clock::time_point wall_now = LagMonitor::Clock::now();
  const TimePoint now = context_.Now();
  v1::EntangleProgress p;
  p.set_pairs_delivered(origin.pairs_delivered);
  p.set_pairs_requested(origin.pairs_requested);
  p.set_elapsed_s(ToSeconds(now - origin.started));
  p.set_wall_since_last_pair_s(std::chrono::duration<double>(wall_now - origin.last_pair_wall).count());
  const int slots = device_.num_slots();
  const int in_use = physical::AllocatedSlots(device_);
  p.set_memory_qubits(static_cast<uint32_t>(slots));
  p.set_memory_qubits_in_use(static_cast<uint32_t>(in_use));
  p.set_held_keep_pairs(static_cast<uint32_t>(held_.size()));
  p.set_keep_hold_s(ToSeconds(keep_hold_));
  double next_free = -1;
  for (const auto& [id, held] : held_) {
    if (held.measuring) continue;
    const double left = std::max(0.0, ToSeconds(held.delivered_at + keep_hold_ - now)) / time_scale_;
    if (next_free < 0 || left < next_free) next_free = left;
  }
  p.set_next_free_wall_s(next_free);
  const std::string& self = topology_.self;
  std::string waiting;
  if (slots > 0 && in_use >= slots && !held_.empty()) {
    waiting = absl::StrCat("free memory: all ", slots, " memory qubits at ", self, " are in use, ", held_.size(),
                           " by KEEP pairs held for clients (each is freed when measured with `qnetctl measure`, or "
                           "when its ", FormatDuration(keep_hold_), " hold passes)");
  } else if (slots > 0 && in_use >= slots) {
    waiting = absl::StrCat("free memory: all ", slots, " memory qubits at ", self, " are in use by pairs under way");
  } else {
    const bool neighbour = topology_.FindNeighbour(origin.remote) != nullptr;
    waiting = absl::StrCat(neighbour ? "the next pair from the link to " : "the next pair along the path to ",
                           origin.remote, " (", in_use, " of ", slots, " memory qubits in use at ", self,
                           held_.empty() ? "" : absl::StrCat(", ", held_.size(), " holding KEEP pairs"),
                           "; a far node's memory may be full)");
  }
  if (lag_.Since(origin.lag_mark, wall_now).behind()) {
    absl::StrAppend(&waiting, "; the daemons run behind the physics (software speed), so this takes longer than "
                              "the model says");
  }
  p.set_waiting_for(std::move(waiting));
  return p;
}

void EntanglementService::Cancel(RequestHandle request) {
  auto it = origins_.find(request);
  if (it == origins_.end()) return;
  // The client is gone: nothing more goes to its stream.
  it->second.stream = Stream{};
  const absl::Status s = (request & kNetworkHandle) != 0 && network_ != nullptr
                             ? network_->Cancel(request & ~kNetworkHandle)
                             : link_.Cancel(request);
  if (!s.ok()) QNET_LOG(log_, kDebug, "cancel of request %d: %s", request, s.ToString());
}

void EntanglementService::EndOrigin(RequestHandle handle, absl::Status status, uint32_t pairs) {
  auto it = origins_.find(handle);
  if (it == origins_.end()) return;
  Stream stream = std::move(it->second.stream);
  const double duration = ToSeconds(context_.Now() - it->second.started);
  std::vector<std::string> path = std::move(it->second.path);
  const v1::SoftwareLag lag = lag_.Since(it->second.lag_mark, LagMonitor::Clock::now());
  origins_.erase(it);
  if (lag.behind()) {
    QNET_LOG(log_, kInfo, "%s request %d: %s", (handle & kNetworkHandle) != 0 ? "end-to-end" : "entangle",
             handle & ~kNetworkHandle, DescribeLag(lag));
  }
  if (status.ok() && stream.event) {
    v1::EntangleEvent out;
    out.mutable_summary()->set_pairs(pairs);
    out.mutable_summary()->set_duration_s(duration);
    for (const std::string& n : path) out.mutable_summary()->add_path(n);
    *out.mutable_summary()->mutable_lag() = lag;
    stream.event(std::move(out));
  }
  if (stream.end) stream.end(WithLagNote(std::move(status), lag));
}

template <typename Delivered>
void EntanglementService::OnOriginPair(Origin& origin, const Delivered& pair) {
  const PairName name = NameOf(pair);
  if (pair.type == link::RequestType::kKeep && pair.slot >= 0) {
    Hold(name.id, pair.slot, name.node_a, name.node_b, pair.bell_state);
  }
  origin.path = PathOf(pair);
  ++origin.pairs_delivered;
  origin.last_pair_wall = LagMonitor::Clock::now();
  if (origin.stream.event) {
    v1::EntangleEvent out;
    *out.mutable_pair() = ToPairEvent(pair, origin.started);
    origin.stream.event(std::move(out));
  }
}

template <typename Delivered>
void EntanglementService::OnReceivedPair(const Delivered& pair) {
  if (pair.type == link::RequestType::kKeep) {
    const PairName name = NameOf(pair);
    if (pair.slot >= 0) Hold(name.id, pair.slot, name.node_a, name.node_b, pair.bell_state);
  } else {
    Record(pair.remote_node, ToPairEvent(pair, pair.estimate_time));
  }
}

void EntanglementService::OnNetworkOriginEvent(RequestHandle handle, const network::NetworkEvent& event) {
  auto it = origins_.find(handle);
  if (it == origins_.end()) return;
  if (const auto* pair = std::get_if<network::PairDelivered>(&event)) {
    OnOriginPair(it->second, *pair);
  } else if (const auto* done = std::get_if<network::RequestCompleted>(&event)) {
    EndOrigin(handle, absl::OkStatus(), done->pairs);
  } else if (const auto* failed = std::get_if<network::RequestFailed>(&event)) {
    QNET_LOG(log_, kInfo, "end-to-end request %d failed: %s %s", handle & ~kNetworkHandle, ErrorName(failed->error),
             failed->message);
    EndOrigin(handle, FailureStatus(*failed), failed->pairs_delivered);
  }
}

void EntanglementService::OnNetworkReceiverEvent(const network::NetworkEvent& event) {
  if (const auto* incoming = std::get_if<network::IncomingRequest>(&event)) {
    QNET_LOG_WITH(log_, kInfo,
                  (LogFields{{"layer", "network"}, {"circuit", network_->CircuitId(incoming->request_id)}}),
                  "accepted end-to-end request from %s (%d pairs, path %s)", incoming->origin,
                  incoming->request.number, absl::StrJoin(incoming->path, "-"));
  } else if (const auto* pair = std::get_if<network::PairDelivered>(&event)) {
    OnReceivedPair(*pair);
  } else if (const auto* failed = std::get_if<network::RequestFailed>(&event)) {
    QNET_LOG(log_, kInfo, "end-to-end request from a far node failed: %s %s", ErrorName(failed->error),
             failed->message);
  }
}

void EntanglementService::OnOriginEvent(link::RequestId id, const link::LinkEvent& event) {
  auto it = origins_.find(id);
  if (it == origins_.end()) return;
  if (const auto* pair = std::get_if<link::PairDelivered>(&event)) {
    OnOriginPair(it->second, *pair);
  } else if (const auto* expired = std::get_if<link::PairExpired>(&event)) {
    Release(expired->entanglement_id.ToString(), absl::StrCat("expired: ", expired->message));
  } else if (const auto* done = std::get_if<link::RequestCompleted>(&event)) {
    // Its KEEP pairs stay held for the client (until measured or the hold passes).
    EndOrigin(id, absl::OkStatus(), done->pairs);
  } else if (const auto* failed = std::get_if<link::RequestFailed>(&event)) {
    // Pairs delivered before the failure stay valid (and held) unless expired.
    QNET_LOG(log_, kInfo, "entangle request %d failed: %s %s", id, ErrorName(failed->error), failed->message);
    EndOrigin(id, FailureStatus(*failed), failed->pairs_delivered);
  }
}

void EntanglementService::OnReceiverEvent(const link::LinkEvent& event) {
  if (const auto* incoming = std::get_if<link::IncomingRequest>(&event)) {
    QNET_LOG(log_, kInfo, "accepted request %d from %s (%d pairs)", incoming->request_id, incoming->origin,
             incoming->request.number);
  } else if (const auto* pair = std::get_if<link::PairDelivered>(&event)) {
    OnReceivedPair(*pair);
  } else if (const auto* expired = std::get_if<link::PairExpired>(&event)) {
    Release(expired->entanglement_id.ToString(), absl::StrCat("expired: ", expired->message));
  } else if (const auto* failed = std::get_if<link::RequestFailed>(&event)) {
    QNET_LOG(log_, kInfo, "request %d from a neighbour failed: %s %s", failed->request_id, ErrorName(failed->error),
             failed->message);
  }
}

void EntanglementService::Hold(const std::string& key, int slot, const std::string& node_a,
                               const std::string& node_b, quantum::BellState bell_state) {
  // Ids are unique on a link (and a circuit); a repeat would be a stale record: replace it.
  if (held_.contains(key)) Release(key, "replaced by a newer delivery with the same id");
  HeldPair& held = held_[key];
  held.slot = slot;
  held.node_a = node_a;
  held.node_b = node_b;
  held.bell_state = bell_state;
  held.delivered_at = context_.Now();
  held.hold_timer = context_.StartTimer(keep_hold_, lifetime_.Guard([this, key] {
    auto it = held_.find(key);
    if (it == held_.end()) return;
    it->second.hold_timer = kNoTimer;
    Release(key, absl::StrCat("freed after its ", FormatDuration(keep_hold_), " hold (qnetd --keep-hold)"));
  }));
}

void EntanglementService::Release(const std::string& id, const std::string& why) {
  auto it = held_.find(id);
  if (it == held_.end()) return;
  HeldPair held = it->second;
  held_.erase(it);
  if (held.hold_timer != kNoTimer) context_.CancelTimer(held.hold_timer);
  // A measurement under way completes Cancelled and reports `why`.
  if (absl::Status s = device_.Free(held.slot); !s.ok()) {
    QNET_LOG(log_, kWarn, "freeing slot %d of pair %s: %s", held.slot, id, s.ToString());
  }
  NoteGone(id, why);
  link_.OnMemoryFreed();
}

void EntanglementService::NoteGone(const std::string& id, std::string why) {
  if (!gone_.contains(id)) gone_order_.push_back(id);
  gone_[id] = std::move(why);
  while (gone_order_.size() > kGonePairMemory) {
    gone_.erase(gone_order_.front());
    gone_order_.pop_front();
  }
}

void EntanglementService::MeasureQubit(const v1::MeasureQubitRequest& request, MeasureDone done) {
  // `done` never runs inside this call.
  const auto answer = [this, done](absl::StatusOr<v1::MeasureQubitResponse> result) {
    context_.StartTimer(Duration{0}, lifetime_.Guard([done, result = std::move(result)] { done(result); }));
  };
  const std::string& id = request.entanglement_id();
  const std::string& self = topology_.self;
  if (id.empty()) return answer(absl::InvalidArgumentError("entanglement_id is required (as entangle printed it, e.g. \"alice-bob#171532610026078209\")"));
  quantum::Basis basis;
  std::string basis_name;
  switch (request.basis_case()) {
    case v1::MeasureQubitRequest::kAxis:
      switch (request.axis()) {
        case v1::MeasureQubitRequest::Z: basis = quantum::Basis::Z(), basis_name = "Z"; break;
        case v1::MeasureQubitRequest::X: basis = quantum::Basis::X(), basis_name = "X"; break;
        case v1::MeasureQubitRequest::Y: basis = quantum::Basis::Y(), basis_name = "Y"; break;
        default:
          return answer(absl::InvalidArgumentError(absl::StrCat("unknown axis ", request.axis(), " (Z, X or Y)")));
      }
      break;
    case v1::MeasureQubitRequest::kXzAngle:
      if (!std::isfinite(request.xz_angle())) {
        return answer(absl::InvalidArgumentError(
            absl::StrCat("xz_angle must be a finite number of radians, got ", request.xz_angle())));
      }
      basis = quantum::Basis::XZ(request.xz_angle());
      basis_name = absl::StrCat("XZ(", request.xz_angle(), ")");
      break;
    default:
      return answer(absl::InvalidArgumentError(
          "a basis is required: axis Z, X or Y, or xz_angle (radians, cos(a) Z + sin(a) X)"));
  }
  auto it = held_.find(id);
  if (it == held_.end()) {
    auto gone = gone_.find(id);
    if (gone != gone_.end()) {
      return answer(absl::NotFoundError(absl::StrCat("node ", self, " no longer holds pair ", id, ": ",
                                                     gone->second)));
    }
    return answer(absl::NotFoundError(absl::StrCat(
        "node ", self, " holds no KEEP pair '", id, "' (not delivered here, or forgotten long ago; ",
        held_.size(), " pairs held now)")));
  }
  HeldPair& held = it->second;
  if (held.measuring) {
    return answer(absl::FailedPreconditionError(
        absl::StrCat("pair ", id, " at ", self, " is being measured by another call")));
  }
  held.measuring = true;
  // Measured or not, the pair is not held past this call: no hold timer.
  if (held.hold_timer != kNoTimer) {
    context_.CancelTimer(held.hold_timer);
    held.hold_timer = kNoTimer;
  }
  device_.Measure(held.slot, basis, lifetime_.Guard([this, id, basis, basis_name, done](absl::StatusOr<int> outcome) {
    OnMeasured(id, basis, basis_name, std::move(outcome), done);
  }));
}

void EntanglementService::OnMeasured(const std::string& id, const quantum::Basis& basis,
                                     const std::string& basis_name, absl::StatusOr<int> outcome,
                                     const MeasureDone& done) {
  const std::string& self = topology_.self;
  auto it = held_.find(id);
  if (it == held_.end()) {
    // Released (expired) while the device measured it.
    auto gone = gone_.find(id);
    return done(absl::NotFoundError(absl::StrCat("node ", self, " no longer holds pair ", id, ": ",
                                                 gone == gone_.end() ? "released" : gone->second)));
  }
  const HeldPair held = it->second;
  const TimePoint now = context_.Now();
  if (!outcome.ok()) {
    Release(id, absl::StrCat("its measurement failed: ", outcome.status().message()));
    const absl::StatusCode code = outcome.status().code() == absl::StatusCode::kUnavailable
                                      ? absl::StatusCode::kUnavailable
                                      : absl::StatusCode::kInternal;
    return done(absl::Status(code, absl::StrCat("measuring pair ", id, " at ", self, " failed: ",
                                                outcome.status().message())));
  }
  Release(id, absl::StrCat("already measured (", basis_name, ") at ", FormatDuration(now - TimePoint{}),
                           " simulated"));
  v1::MeasureQubitResponse response;
  response.set_entanglement_id(id);
  response.set_node(self);
  response.set_outcome(*outcome);
  response.set_basis(basis_name);
  response.set_bell_state(std::string(quantum::BellName(held.bell_state)));
  response.set_node_a(held.node_a);
  response.set_node_b(held.node_b);
  response.set_held_s(ToSeconds(now - held.delivered_at));
  response.set_measured_at_s(SecondsSinceEpoch(now));
  response.set_theta(basis.theta);
  response.set_phi(basis.phi);
  QNET_LOG(log_, kDebug, "measured pair %s in %s: %d", id, basis_name, *outcome);
  done(std::move(response));
}

void EntanglementService::Record(const std::string& origin, const v1::PairEvent& pair) {
  const std::string& key = pair.entanglement_id();
  if (!outcomes_.contains(key)) outcome_order_.push_back(key);
  outcomes_[key] = Recorded{origin, pair};
  while (outcome_order_.size() > kOutcomeRingCapacity) {
    outcomes_.erase(outcome_order_.front());
    outcome_order_.pop_front();
  }
}

absl::StatusOr<v1::GetOutcomesResponse> EntanglementService::Outcomes(const v1::GetOutcomesRequest& request) const {
  // Each id found copies a recorded pair into the answer: bound the copies.
  if (request.entanglement_ids_size() > static_cast<int>(kMaxOutcomeIdsPerRequest)) {
    return absl::InvalidArgumentError(absl::StrCat("at most ", kMaxOutcomeIdsPerRequest,
                                                   " entanglement_ids per GetOutcomes request, got ",
                                                   request.entanglement_ids_size()));
  }
  v1::GetOutcomesResponse response;
  for (const std::string& id : request.entanglement_ids()) {
    auto it = outcomes_.find(id);
    if (it == outcomes_.end()) continue;
    if (!request.origin().empty() && it->second.origin != request.origin()) continue;
    *response.add_outcomes() = it->second.pair;
  }
  return response;
}

}  // namespace qnet::daemon
