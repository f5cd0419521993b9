// NetworkLayer: link-pair generation under credits, link-layer events, the
// pairs a circuit holds, cutoffs and discards.
#include "network/network_layer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "network/network_wire.h"

namespace qnet::network {

void NetworkLayer::OnCredit(const std::string& from, const v1::CircuitCredit& credit) {
  Circuit* c = FindCircuit(KeyFromWire(credit.circuit()));
  if (c == nullptr || c->down != from) return;
  c->credits += credit.credits();
  RequestLinkPair(*c);
}

void NetworkLayer::SendCredit(Circuit& c) {
  if (c.up.empty()) return;
  v1::NetworkMessage m;
  KeyToWire(c.key, m.mutable_credit()->mutable_circuit());
  m.mutable_credit()->set_credits(1);
  Send(c.up, std::move(m));
}

void NetworkLayer::RequestLinkPair(Circuit& c) {
  if (!c.established || c.down.empty() || c.credits == 0) return;
  // With purification, one link pair at a time (the rounds pair them up in order).
  if (c.rounds > 0 && c.link_pairs_pending > 0) return;
  int in_use = 0, ready = 0;
  for (const HeldPair& p : c.down_pairs) {
    in_use += p.slot >= 0 ? 1 : 0;
    ready += p.level == c.rounds ? 1 : 0;
  }
  // The circuit's downstream qubits: those in use and those being generated.
  const int room = c.per_side() - in_use - static_cast<int>(c.link_pairs_pending);
  if (room <= 0) return;
  uint32_t want = std::min<uint32_t>(c.credits, static_cast<uint32_t>(room));
  if (c.rounds > 0) want = 1;
  if (c.head()) {
    const uint32_t under_way = c.delivered + static_cast<uint32_t>(ready) + c.link_pairs_pending;
    if (under_way >= c.number) return;  // enough under way
    want = std::min(want, c.number - under_way);
  }
  // One open link request per circuit, extended as credits come: a batch
  // costs one message on the link instead of a request's submission,
  // acceptance and completion.
  if (c.link_request.has_value()) {
    const absl::Status extended = link_.Extend(*c.link_request, want);
    if (extended.ok()) {
      c.credits -= want;
      c.link_pairs_pending += want;
      return;
    }
    // Ended: its RequestFailed, already queued, ends the circuit.
    if (absl::IsNotFound(extended)) return;
    // It cannot grow (2^32 pairs): a new one takes over.
    (void)link_.Cancel(*c.link_request);
    c.link_request.reset();
    c.link_pairs_pending = 0;
  }
  link::EntanglementRequest r;
  r.remote_node = c.down;
  r.number = want;
  r.type = link::RequestType::kKeep;
  r.min_fidelity = c.link_min_fidelity;
  r.priority = c.priority;
  r.purpose_id = c.down_label;
  r.open = true;
  const CircuitKey key = c.key;
  absl::StatusOr<link::RequestId> id =
      link_.Create(r, lifetime_.Guard([this, key](const link::LinkEvent& e) { OnDownstreamLinkEvent(key, e); }));
  if (!id.ok()) {
    EndCircuit(key, FromStatus(id.status()),
               absl::StrCat("the link ", Where(), "-", c.down, " refused: ", id.status().message()), "");
    return;
  }
  c.credits -= want;
  c.link_request = *id;
  c.link_pairs_pending = want;
}

void NetworkLayer::OnDownstreamLinkEvent(const CircuitKey& key, const link::LinkEvent& event) {
  Circuit* c = FindCircuit(key);
  if (c == nullptr) {
    // The circuit is gone: a pair that still arrives is nobody's.
    if (const auto* p = std::get_if<link::PairDelivered>(&event); p != nullptr && p->slot >= 0) {
      (void)device_.Free(p->slot);
    }
    return;
  }
  if (const auto* p = std::get_if<link::PairDelivered>(&event)) {
    if (c->link_request == p->request_id && c->link_pairs_pending > 0) --c->link_pairs_pending;
    AddPair(*c, false, *p);
    // The open request stays open: what completion used to prompt (the
    // next pair of a purifying circuit, one at a time) is asked for here.
    if (Circuit* still = FindCircuit(key); still != nullptr) RequestLinkPair(*still);
    return;
  }
  if (const auto* failed = std::get_if<link::RequestFailed>(&event)) {
    // A replaced request's cancellation is not news.
    if (c->link_request != failed->request_id) return;
    c->link_request.reset();
    c->link_pairs_pending = 0;
    EndCircuit(key, FromLinkError(failed->error),
               absl::StrCat("the link ", Where(), "-", c->down, " failed: ", std::string(link::LinkErrorName(failed->error)),
                            ": ", failed->message),
               "");
    return;
  }
  if (const auto* expired = std::get_if<link::PairExpired>(&event)) {
    Discard(*c, false, expired->entanglement_id.sequence, "its link pair expired");
  }
}

void NetworkLayer::OnUpstreamLinkEvent(const CircuitKey& key, const link::LinkEvent& event) {
  Circuit* c = FindCircuit(key);
  if (c == nullptr) {
    if (const auto* p = std::get_if<link::PairDelivered>(&event); p != nullptr && p->slot >= 0) {
      (void)device_.Free(p->slot);
    }
    return;
  }
  if (const auto* incoming = std::get_if<link::IncomingRequest>(&event)) {
    // Only the circuit's upstream neighbour may use its label.
    if (incoming->origin != c->up) (void)link_.Cancel(incoming->request_id);
    return;
  }
  if (const auto* p = std::get_if<link::PairDelivered>(&event)) return AddPair(*c, true, *p);
  if (const auto* expired = std::get_if<link::PairExpired>(&event)) {
    Discard(*c, true, expired->entanglement_id.sequence, "its link pair expired");
  }
}

void NetworkLayer::AddPair(Circuit& c, bool upstream, const link::PairDelivered& delivered) {
  HeldPair pair;
  pair.sequence = delivered.entanglement_id.sequence;
  pair.slot = delivered.slot;
  pair.label = delivered.bell_state;
  pair.fidelity = delivered.fidelity_estimate;
  pair.estimate_time = delivered.estimate_time;
  (upstream ? c.up_pairs : c.down_pairs).push_back(std::move(pair));
  HeldPair& stored = (upstream ? c.up_pairs : c.down_pairs).back();
  const CircuitKey key = c.key;
  const uint64_t sequence = stored.sequence;
  if (upstream) {
    if (auto early = c.early_tracks.find(sequence); early != c.early_tracks.end()) {
      stored.pending_track = std::move(early->second);
      c.early_tracks.erase(early);
    }
  }
  const bool end = upstream ? c.tail() : c.head();
  if (!end && c.cutoff > Duration(0)) {
    const Duration wait = std::max(Duration(0), stored.estimate_time + c.cutoff - context_.Now());
    stored.cutoff = context_.StartTimer(
        wait, lifetime_.Guard([this, key, upstream, sequence] { OnCutoff(key, upstream, sequence); }));
  }
  if (c.rounds > 0) {
    if (upstream && stored.pending_track.has_value() && stored.pending_track->dead()) {
      stored.pending_track.reset();
      Discard(c, true, sequence, "its link pair was discarded upstream");
      c.discarded_up.erase(sequence);
      return;
    }
    // Not usable before its purification rounds.
    return upstream ? ServePendingPurify(c) : TryPurify(c);
  }
  PairReady(c, upstream, stored);
}

void NetworkLayer::PairReady(Circuit& c, bool upstream, HeldPair& stored) {
  const uint64_t sequence = stored.sequence;
  const bool end = upstream ? c.tail() : c.head();
  if (end) {
    if (c.type == link::RequestType::kMeasure) return Measure(c, upstream, sequence);
    if (c.head()) return HeadTrack(c, stored);
    if (stored.pending_track.has_value()) {
      v1::CircuitTrack track = *std::move(stored.pending_track);
      stored.pending_track.reset();
      HandleTrack(c, track);
    }
    return;
  }
  if (upstream && stored.pending_track.has_value() && stored.pending_track->dead()) {
    stored.pending_track.reset();
    Discard(c, true, sequence, "its segment was discarded upstream");
    c.discarded_up.erase(sequence);  // the dead track was this pair's track
    return;
  }
  TrySwap(c);
}

void NetworkLayer::OnCutoff(const CircuitKey& key, bool upstream, uint64_t sequence) {
  Circuit* c = FindCircuit(key);
  if (c == nullptr) return;
  HeldPair* p = FindPair(*c, upstream, sequence);
  if (p == nullptr) return;
  p->cutoff = kNoTimer;
  if (p->busy) return;
  Discard(*c, upstream, sequence,
          absl::StrCat("it waited longer than the cutoff ", FormatDuration(c->cutoff), " at ", Where()));
}

void NetworkLayer::Discard(Circuit& c, bool upstream, uint64_t sequence, const std::string& why) {
  HeldPair* pair = FindPair(c, upstream, sequence);
  if (pair == nullptr || pair->busy) return;
  ++stats_.discarded_pairs;
  const bool had_slot = pair->slot >= 0;
  std::optional<v1::CircuitTrack> pending = std::move(pair->pending_track);
  FreePair(*pair);
  ErasePair(c, upstream, sequence);
  if (upstream) {
    if (had_slot) SendCredit(c);
    if (pending.has_value()) {
      if (!pending->dead()) {
        SendFailedVerdict(c, pending->head_pair(), absl::StrCat("a link pair was discarded at ", Where(), ": ", why));
      }
    } else {
      c.discarded_up.insert(sequence);
    }
    return;
  }
  if (c.head()) {
    RequestLinkPair(c);
    return;
  }
  // The downstream segment starting here is void: say so along the circuit.
  v1::CircuitTrack dead;
  dead.set_link_sequence(sequence);
  dead.set_dead(true);
  SendTrack(c, std::move(dead));
  RequestLinkPair(c);
}

NetworkLayer::HeldPair* NetworkLayer::FindPair(Circuit& c, bool upstream, uint64_t sequence) {
  for (HeldPair& p : upstream ? c.up_pairs : c.down_pairs) {
    if (p.sequence == sequence) return &p;
  }
  return nullptr;
}

void NetworkLayer::ErasePair(Circuit& c, bool upstream, uint64_t sequence) {
  std::deque<HeldPair>& pairs = upstream ? c.up_pairs : c.down_pairs;
  for (auto it = pairs.begin(); it != pairs.end(); ++it) {
    if (it->sequence == sequence) {
      if (it->cutoff != kNoTimer) context_.CancelTimer(it->cutoff);
      pairs.erase(it);
      return;
    }
  }
}

void NetworkLayer::FreePair(HeldPair& pair) {
  if (pair.cutoff != kNoTimer) {
    context_.CancelTimer(pair.cutoff);
    pair.cutoff = kNoTimer;
  }
  if (pair.slot >= 0) {
    (void)device_.Free(pair.slot);
    pair.slot = -1;
    link_.OnMemoryFreed();  // a link request waiting for memory may go on
  }
}

MemoryDecayRates NetworkLayer::NeighbourRates(const Circuit& /*c*/, const std::string& neighbour) const {
  for (const physical::PhysicalLink& l : links_) {
    if (l.physics.node_a == neighbour || l.physics.node_b == neighbour) return MemoryDecayRates::Of(l.far_end);
  }
  return MemoryDecayRates::None();
}

MemoryDecayRates NetworkLayer::OwnRates(const Circuit& /*c*/) const { return MemoryDecayRates::Of(hardware_); }

int NetworkLayer::held_slots() const {
  int n = 0;
  for (const auto& [key, c] : circuits_) {
    for (const HeldPair& p : c.up_pairs) n += p.slot >= 0 ? 1 : 0;
    for (const HeldPair& p : c.down_pairs) n += p.slot >= 0 ? 1 : 0;
  }
  return n;
}

}  // namespace qnet::network
