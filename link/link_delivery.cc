// Pairs: measuring MEASURE pairs as soon as the herald arrives, delivering a
// pair once both ends succeeded (with its fidelity estimate), and expiring
// delivered pairs whose far half was lost.
#include "link/link_layer.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "link/link_wire.h"

namespace qnet::link {

void LinkLayer::OnMeasured(const std::string& link_name, uint64_t generation_id, absl::StatusOr<int> outcome) {
  LinkState* link = nullptr;
  Generation* g = FindGeneration(link_name, generation_id, &link);
  if (g == nullptr) return;  // dropped meanwhile (its slot was freed)
  if (!outcome.ok()) return GenerationFailed(*link, generation_id, outcome.status(), true, nullptr);
  g->outcome = *outcome;
  g->measured_at = context_.Now();
  (void)device_.Free(g->slot);
  g->slot = -1;
  g->own = Own::kReady;
  SendReport(*link, *g);
  TryDeliver(*link, generation_id);
  ScheduleAll();  // a slot came free
}

MeasurementBasis LinkLayer::ChooseBasis(const Request& request) {
  switch (request.params.basis) {
    case BasisChoice::kZ: return MeasurementBasis::kZ;
    case BasisChoice::kX: return MeasurementBasis::kX;
    case BasisChoice::kY: return MeasurementBasis::kY;
    case BasisChoice::kBb84: return rng_.UniformInt(2) == 0 ? MeasurementBasis::kZ : MeasurementBasis::kX;
    case BasisChoice::kSixState: {
      const uint64_t k = rng_.UniformInt(3);
      return k == 0 ? MeasurementBasis::kZ : (k == 1 ? MeasurementBasis::kX : MeasurementBasis::kY);
    }
    case BasisChoice::kChsh: {
      const bool first = rng_.UniformInt(2) == 0;
      if (request.originated_here) return first ? MeasurementBasis::kChshA0 : MeasurementBasis::kChshA1;
      return first ? MeasurementBasis::kChshB0 : MeasurementBasis::kChshB1;
    }
    case BasisChoice::kE91: {
      if (request.originated_here) return rng_.UniformInt(2) == 0 ? MeasurementBasis::kZ : MeasurementBasis::kX;
      constexpr MeasurementBasis kOther[] = {MeasurementBasis::kZ, MeasurementBasis::kX, MeasurementBasis::kChshB0,
                                             MeasurementBasis::kChshB1};
      return kOther[rng_.UniformInt(4)];
    }
  }
  return MeasurementBasis::kZ;
}

void LinkLayer::TryDeliver(LinkState& link, uint64_t generation_id) {
  auto it = link.generations.find(generation_id);
  if (it == link.generations.end()) return;
  Generation& g = it->second;
  if (g.own != Own::kReady || !g.peer_reported || !g.peer.success()) return;
  Request* r = FindRequest(g.request);
  if (r == nullptr) return DropGeneration(link, generation_id);

  PairDelivered event;
  event.request_id = r->id;
  event.entanglement_id = PairIdOf(link, g.id);
  event.remote_node = link.peer;
  event.purpose_id = r->params.purpose_id;
  event.pair_index = r->delivered;
  event.type = r->params.type;
  event.bell_state = g.label;
  const TimePoint far_emitted = FromNs(g.peer.emitted_at_ns());
  Duration wait_self{0};
  Duration wait_far{0};
  if (r->params.type == RequestType::kKeep) {
    event.estimate_time = context_.Now();
    wait_self = event.estimate_time - g.emitted_at;
    wait_far = event.estimate_time - far_emitted;
    event.slot = g.slot;
  } else {
    // Each qubit decohered until its own measurement.
    event.estimate_time = g.measured_at;
    wait_self = g.measured_at - g.emitted_at;
    wait_far = FromNs(g.peer.measured_at_ns()) - far_emitted;
    event.outcome = g.outcome;
    event.basis = g.basis;
  }
  if (link.table != nullptr) {
    event.fidelity_estimate = link.is_master ? link.table->Estimate(g.alpha, wait_self, wait_far)
                                             : link.table->Estimate(g.alpha, wait_far, wait_self);
  }
  ++r->delivered;
  ++stats_.pairs_delivered;
  ++(r->params.type == RequestType::kKeep ? link.pair_stats.delivered_keep : link.pair_stats.delivered_measure);
  if (link.table != nullptr) {
    link.pair_stats.fidelity_estimate_sum += event.fidelity_estimate;
    ++link.pair_stats.fidelity_estimates;
  }
  if (link.is_master) {
    --r->in_flight;
    r->consecutive_failures = 0;
  }
  DeliveredPair record{r->id, r->handler, r->params.type, event.slot};
  if (r->params.type == RequestType::kKeep) kept_by_slot_[g.slot] = KeptPair{link.name, g.id, record};
  NoteDelivered(link, g.id, std::move(record));
  if (g.timer != kNoTimer) context_.CancelTimer(g.timer);
  link.generations.erase(it);  // the slot (KEEP) now belongs to the layer above
  link.memory_wait.clear();     // both ends had memory for this pair
  events_.Emit(r->handler, std::move(event));
  if (r->delivered >= r->params.number && !r->params.open) CompleteRequest(r->id);
  ScheduleAll();
}

void LinkLayer::NoteDelivered(LinkState& link, uint64_t generation_id, DeliveredPair pair) {
  link.delivered.Insert(generation_id, std::move(pair));
}

EntanglementId LinkLayer::PairIdOf(const LinkState& link, uint64_t generation_id) {
  return {link.link.physics.node_a, link.link.physics.node_b, generation_id};
}

void LinkLayer::ForgetKeptSlot(int slot) { kept_by_slot_.erase(slot); }

// ---------------------------------------------------------------- expiry

void LinkLayer::ExpireUndelivered(LinkState& link, const v1::LinkRequestEnded& ended) {
  std::vector<uint64_t> undelivered(ended.undelivered_generations().begin(), ended.undelivered_generations().end());
  std::sort(undelivered.begin(), undelivered.end());
  for (uint64_t gid : undelivered) {
    DeliveredPair* d = link.delivered.Find(gid);
    if (d == nullptr) continue;
    PairExpired expired;
    expired.request_id = d->request;
    expired.entanglement_id = PairIdOf(link, gid);
    expired.message = absl::StrCat(link.peer, " dropped pair ", expired.entanglement_id.ToString(),
                                   " when the request ended there: ", ended.message());
    if (d->type == RequestType::kKeep) {
      auto kept = kept_by_slot_.find(d->slot);
      if (kept != kept_by_slot_.end() && kept->second.link == link.name && kept->second.generation == gid) {
        expired.slot = d->slot;
        kept_by_slot_.erase(kept);
      }
    }
    events_.Emit(d->handler, std::move(expired));
    ++stats_.pairs_expired;
    link.delivered.Erase(gid);
  }
}

void LinkLayer::ExpireKeptPairs(LinkState& link, const std::string& message) {
  std::vector<int> slots;
  for (const auto& [slot, kept] : kept_by_slot_) {
    if (kept.link == link.name) slots.push_back(slot);
  }
  std::sort(slots.begin(), slots.end());
  for (int slot : slots) {
    KeptPair kept = std::move(kept_by_slot_[slot]);
    kept_by_slot_.erase(slot);
    if (!device_.IsAllocated(slot)) continue;  // already freed by the layer above
    events_.Emit(kept.pair.handler, PairExpired{kept.pair.request, PairIdOf(link, kept.generation), slot, message});
    ++stats_.pairs_expired;
  }
}

}  // namespace qnet::link
