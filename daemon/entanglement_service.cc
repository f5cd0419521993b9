#include "daemon/entanglement_service.h"

#include <cmath>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

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

}  // namespace

v1::PairEvent ToPairEvent(const link::PairDelivered& pair, TimePoint started) {
  v1::PairEvent out;
  out.set_entanglement_id(pair.entanglement_id.ToString());
  out.set_node_a(pair.entanglement_id.node_a);
  out.set_node_b(pair.entanglement_id.node_b);
  out.set_sequence(pair.entanglement_id.sequence);
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
  return out;
}

EntanglementService::EntanglementService(NodeContext& context, link::LinkLayer& link,
                                         physical::QuantumDevice& device, const DaemonTopology& topology,
                                         const Logger& log)
    : context_(context), link_(link), device_(device), topology_(topology), log_(log) {}

absl::Status EntanglementService::Start() {
  return link_.RegisterReceiver(kDefaultPurposeId, [this](const link::LinkEvent& e) { OnReceiverEvent(e); });
}

absl::StatusOr<link::RequestId> EntanglementService::Entangle(const v1::EntangleRequest& request, Stream stream) {
  const std::string& remote = request.remote_node();
  if (remote.empty()) return absl::InvalidArgumentError("remote_node is required (the neighbour to entangle with)");
  if (topology_.FindNeighbour(remote) == nullptr) {
    std::vector<std::string> names;
    for (const NeighbourLink& n : topology_.neighbours) names.push_back(n.neighbour);
    if (!topology_.IndexOf(remote).has_value()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown node '", remote, "' (not in network ",
                                                     topology_.network, ")"));
    }
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
  if (!(request.timeout_s() >= 0.0) || !std::isfinite(request.timeout_s())) {
    return absl::InvalidArgumentError(
        absl::StrCat("timeout must be a non-negative number of seconds (0 = none), got ", request.timeout_s()));
  }
  link::EntanglementRequest req;
  req.remote_node = remote;
  req.number = request.pairs();
  req.type = request.type() == v1::EntangleRequest::MEASURE ? link::RequestType::kMeasure : link::RequestType::kKeep;
  req.basis = ToBasisChoice(request.basis());
  req.min_fidelity = request.min_fidelity();
  req.max_time = FromSeconds(request.timeout_s());
  req.purpose_id = kDefaultPurposeId;
  // The id is known only after Create returns; events never run inside it.
  auto id_cell = std::make_shared<link::RequestId>(0);
  absl::StatusOr<link::RequestId> id =
      link_.Create(req, [this, id_cell](const link::LinkEvent& e) { OnOriginEvent(*id_cell, e); });
  if (!id.ok()) return id.status();
  *id_cell = *id;
  origins_.emplace(*id, Origin{std::move(stream), context_.Now()});
  QNET_LOG(log_, kInfo, "entangle request %d: %d pairs with %s", *id, req.number, remote);
  return *id;
}

void EntanglementService::Cancel(link::RequestId request_id) {
  auto it = origins_.find(request_id);
  if (it == origins_.end()) return;
  // The client is gone: nothing more goes to its stream.
  it->second.stream = Stream{};
  if (absl::Status s = link_.Cancel(request_id); !s.ok()) {
    QNET_LOG(log_, kDebug, "cancel of request %d: %s", request_id, s.ToString());
  }
}

void EntanglementService::OnOriginEvent(link::RequestId id, const link::LinkEvent& event) {
  auto it = origins_.find(id);
  if (it == origins_.end()) return;
  Origin& origin = it->second;
  if (const auto* pair = std::get_if<link::PairDelivered>(&event)) {
    if (pair->type == link::RequestType::kKeep && pair->slot >= 0) HoldSlot(id, pair->slot);
    if (origin.stream.event) {
      v1::EntangleEvent out;
      *out.mutable_pair() = ToPairEvent(*pair, origin.started);
      origin.stream.event(std::move(out));
    }
  } else if (const auto* expired = std::get_if<link::PairExpired>(&event)) {
    if (expired->slot >= 0) FreeSlot(id, expired->slot);
  } else if (const auto* done = std::get_if<link::RequestCompleted>(&event)) {
    ReleaseRequest(id);
    Stream stream = std::move(origin.stream);
    const double duration = ToSeconds(context_.Now() - origin.started);
    origins_.erase(it);
    if (stream.event) {
      v1::EntangleEvent out;
      out.mutable_summary()->set_pairs(done->pairs);
      out.mutable_summary()->set_duration_s(duration);
      stream.event(std::move(out));
    }
    if (stream.end) stream.end(absl::OkStatus());
  } else if (const auto* failed = std::get_if<link::RequestFailed>(&event)) {
    ReleaseRequest(id);
    Stream stream = std::move(origin.stream);
    origins_.erase(it);
    QNET_LOG(log_, kInfo, "entangle request %d failed: %s %s", id, link::LinkErrorName(failed->error),
             failed->message);
    if (stream.end) {
      stream.end(link::ToStatus(failed->error, absl::StrCat(failed->message, " (after ", failed->pairs_delivered,
                                                            " pairs)")));
    }
  }
}

void EntanglementService::OnReceiverEvent(const link::LinkEvent& event) {
  if (const auto* incoming = std::get_if<link::IncomingRequest>(&event)) {
    QNET_LOG(log_, kInfo, "accepted request %d from %s (%d pairs)", incoming->request_id, incoming->origin,
             incoming->request.number);
  } else if (const auto* pair = std::get_if<link::PairDelivered>(&event)) {
    if (pair->type == link::RequestType::kKeep) {
      if (pair->slot >= 0) HoldSlot(pair->request_id, pair->slot);
    } else {
      Record(pair->remote_node, ToPairEvent(*pair, pair->estimate_time));
    }
  } else if (const auto* expired = std::get_if<link::PairExpired>(&event)) {
    if (expired->slot >= 0) FreeSlot(expired->request_id, expired->slot);
  } else if (const auto* done = std::get_if<link::RequestCompleted>(&event)) {
    ReleaseRequest(done->request_id);
  } else if (const auto* failed = std::get_if<link::RequestFailed>(&event)) {
    ReleaseRequest(failed->request_id);
  }
}

void EntanglementService::HoldSlot(link::RequestId id, int slot) {
  held_[id].push_back(slot);
  context_.StartTimer(kKeepHoldTime, [this, id, slot] { FreeSlot(id, slot); });
}

void EntanglementService::FreeSlot(link::RequestId id, int slot) {
  // Only a slot still held here is ours to free (it may have been freed and
  // reallocated since).
  auto it = held_.find(id);
  if (it == held_.end() || std::erase(it->second, slot) == 0) return;
  if (it->second.empty()) held_.erase(it);
  if (absl::Status s = device_.Free(slot); !s.ok()) {
    QNET_LOG(log_, kWarn, "freeing slot %d: %s", slot, s.ToString());
  }
}

void EntanglementService::ReleaseRequest(link::RequestId id) {
  auto it = held_.find(id);
  if (it == held_.end()) return;
  std::vector<int> slots = std::move(it->second);
  held_.erase(it);
  for (int slot : slots) {
    if (absl::Status s = device_.Free(slot); !s.ok()) {
      QNET_LOG(log_, kWarn, "freeing slot %d: %s", slot, s.ToString());
    }
  }
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

v1::GetOutcomesResponse EntanglementService::Outcomes(const v1::GetOutcomesRequest& request) const {
  v1::GetOutcomesResponse response;
  for (const std::string& id : request.entanglement_ids()) {
    auto it = outcomes_.find(id);
    if (it == outcomes_.end()) continue;
    if (!request.origin().empty() && it->second.origin != request.origin()) continue;
    *response.add_outcomes() = it->second.pair;
  }
  return response;
}

size_t EntanglementService::held_pairs() const {
  size_t n = 0;
  for (const auto& [id, slots] : held_) n += slots.size();
  return n;
}

}  // namespace qnet::daemon
