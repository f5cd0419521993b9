// NetworkLayer: tracking - the head's track per link pair, its forwarding
// across swaps (Pauli frame and Bell-diagonal estimate), the tail's decision
// and the verdict back to the head.
#include "network/network_layer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "network/network_wire.h"

namespace qnet::network {

using quantum::BellState;

void NetworkLayer::SendTrack(Circuit& c, v1::CircuitTrack track) {
  KeyToWire(c.key, track.mutable_circuit());
  v1::NetworkMessage m;
  *m.mutable_track() = std::move(track);
  Send(c.down, std::move(m));
}

void NetworkLayer::HeadTrack(Circuit& c, HeldPair& pair) {
  pair.tracked = true;
  v1::CircuitTrack track;
  track.set_link_sequence(pair.sequence);
  track.set_head_pair(pair.sequence);
  track.set_frame(static_cast<uint32_t>(pair.label));
  BellDiagonal state = BellDiagonal::Werner(pair.fidelity);
  TimePoint at = pair.estimate_time;
  if (pair.measured) {
    // The head's qubit stopped decaying when it was measured.
    const Duration wait = pair.measured_at - pair.estimate_time;
    state = Decay(state, wait, OwnRates(c), wait, NeighbourRates(c, c.down));
    at = pair.measured_at;
  } else {
    track.set_head_t1_s(RateToWire(hardware_.t1_s));
    track.set_head_t2_s(RateToWire(hardware_.t2_s));
    track.set_head_depolarising_time_s(RateToWire(hardware_.depolarising_time_s));
  }
  StateToWire(state, &track);
  track.set_state_time_ns(ToNs(at));
  SendTrack(c, std::move(track));
}

void NetworkLayer::OnTrack(const std::string& from, const v1::CircuitTrack& track) {
  Circuit* c = FindCircuit(KeyFromWire(track.circuit()));
  if (c == nullptr || c->up != from) return;
  HandleTrack(*c, track);
}

void NetworkLayer::HandleTrack(Circuit& c, const v1::CircuitTrack& track) {
  const uint64_t sequence = track.link_sequence();
  if (auto swap = c.swaps.find(sequence); swap != c.swaps.end()) {
    const SwapRecord record = swap->second;
    c.swaps.erase(swap);
    v1::CircuitTrack next;
    next.set_link_sequence(record.down_sequence);
    next.set_head_pair(track.head_pair());
    next.set_dead(track.dead());
    if (!track.dead()) {
      const MemoryDecayRates head = HeadRatesFromWire(track);
      const Duration wait = record.time - FromNs(track.state_time_ns());
      const BellDiagonal segment = Decay(StateFromWire(track), wait, head, wait, OwnRates(c));
      const BellDiagonal joined =
          BellDiagonal::Swap(segment, record.down_state).With(BellMeasurementErrors(hardware_));
      const BellState frame =
          quantum::Compose(quantum::Compose(static_cast<BellState>(track.frame() & 3), record.down_label),
                           record.outcome);
      next.set_frame(static_cast<uint32_t>(frame));
      StateToWire(joined, &next);
      next.set_state_time_ns(ToNs(record.time));
      next.set_head_t1_s(track.head_t1_s());
      next.set_head_t2_s(track.head_t2_s());
      next.set_head_depolarising_time_s(track.head_depolarising_time_s());
    }
    SendTrack(c, std::move(next));
    return;
  }
  HeldPair* pair = FindPair(c, true, sequence);
  if (pair != nullptr) {
    if (track.dead()) {
      if (pair->busy) {
        pair->pending_track = track;
        return;
      }
      Discard(c, true, sequence, "its segment was discarded upstream");
      c.discarded_up.erase(sequence);  // the dead track was this pair's track
      return;
    }
    if (c.tail() && !pair->busy) return Decide(c, *pair, track);
    pair->pending_track = track;  // used once the swap (or measurement) is done
    return;
  }
  if (c.discarded_up.erase(sequence) > 0) {
    if (track.dead()) return;
    // The head's qubit is joined to a pair this node dropped: the head frees it.
    SendFailedVerdict(c, track.head_pair(), absl::StrCat("a link pair of the path was discarded at ", Where()));
    return;
  }
  c.early_tracks[sequence] = track;  // the link layer has not delivered the pair here yet
}

void NetworkLayer::Decide(Circuit& c, HeldPair& pair, const v1::CircuitTrack& track) {
  const BellDiagonal segment = StateFromWire(track);
  const TimePoint t0 = FromNs(track.state_time_ns());
  const TimePoint now = context_.Now();
  BellDiagonal estimate;
  TimePoint at;
  if (pair.measured) {
    at = std::max(t0, pair.measured_at);
    estimate = Decay(segment, Duration(0), MemoryDecayRates::None(), pair.measured_at - t0, OwnRates(c));
  } else {
    // KEEP: judged at the time the head will learn of it (both qubits wait until then).
    at = now + c.path_delay;
    estimate = Decay(segment, at - t0, HeadRatesFromWire(track), at - t0, OwnRates(c));
  }
  const double fidelity = estimate.fidelity();
  const BellState frame = static_cast<BellState>(track.frame() & 3);
  v1::NetworkMessage m;
  v1::CircuitVerdict* v = m.mutable_verdict();
  KeyToWire(c.key, v->mutable_circuit());
  v->set_head_pair(track.head_pair());
  const uint64_t sequence = pair.sequence;
  if (c.delivered < c.number && fidelity >= c.min_fidelity) {
    PairDelivered d;
    d.request_id = c.request_id;
    d.id = {c.key.head, Where(), c.key.number, c.delivered};
    d.remote_node = c.key.head;
    d.purpose_id = c.purpose_id;
    d.pair_index = c.delivered;
    d.type = c.type;
    d.bell_state = frame;
    d.fidelity_estimate = fidelity;
    d.estimate_time = at;
    d.path = c.path;
    if (pair.measured) {
      d.outcome = pair.outcome;
      d.basis = pair.basis;
    } else {
      d.slot = pair.slot;
      pair.slot = -1;  // handed up
      if (pair.cutoff != kNoTimer) context_.CancelTimer(pair.cutoff);
      pair.cutoff = kNoTimer;
      SendCredit(c);
    }
    v->set_delivered(true);
    v->set_sequence(c.delivered);
    v->set_bell_state(static_cast<uint32_t>(frame));
    v->set_fidelity(fidelity);
    v->set_estimate_time_ns(ToNs(at));
    ++c.delivered;
    ++stats_.pairs_delivered;
    Emit(c.handler, std::move(d));
    if (c.delivered == c.number) {
      Emit(c.handler, RequestCompleted{c.request_id, c.delivered});
      c.handler = nullptr;  // ended here; the head's teardown follows
    }
  } else {
    ++stats_.rejected_pairs;
    v->set_delivered(false);
    v->set_message(c.delivered >= c.number
                       ? std::string("the request is complete")
                       : absl::StrFormat("the end-to-end fidelity estimate %.4f is below min_fidelity %.4f", fidelity,
                                         c.min_fidelity));
    if (pair.slot >= 0) {
      FreePair(pair);
      SendCredit(c);
    }
  }
  ErasePair(c, true, sequence);
  Send(c.up, std::move(m));
}

void NetworkLayer::SendFailedVerdict(Circuit& c, uint64_t head_pair, const std::string& message) {
  v1::NetworkMessage m;
  v1::CircuitVerdict* v = m.mutable_verdict();
  KeyToWire(c.key, v->mutable_circuit());
  v->set_head_pair(head_pair);
  v->set_delivered(false);
  v->set_message(message);
  Send(c.up, std::move(m));
}

void NetworkLayer::OnVerdict(const std::string& from, const v1::CircuitVerdict& verdict) {
  const CircuitKey key = KeyFromWire(verdict.circuit());
  Circuit* c = FindCircuit(key);
  if (c == nullptr || c->down != from) return;
  if (!c->head()) {
    v1::NetworkMessage m;
    *m.mutable_verdict() = verdict;
    Send(c->up, std::move(m));
    return;
  }
  HeldPair* pair = FindPair(*c, false, verdict.head_pair());
  if (pair == nullptr) return;
  if (verdict.delivered() && c->delivered < c->number) {
    PairDelivered d;
    d.request_id = c->request_id;
    d.id = {c->key.head, c->path.back(), c->key.number, verdict.sequence()};
    d.remote_node = c->path.back();
    d.purpose_id = c->purpose_id;
    d.pair_index = c->delivered;
    d.type = c->type;
    d.bell_state = static_cast<BellState>(verdict.bell_state() & 3);
    d.fidelity_estimate = verdict.fidelity();
    d.estimate_time = FromNs(verdict.estimate_time_ns());
    d.path = c->path;
    if (pair->measured) {
      d.outcome = pair->outcome;
      d.basis = pair->basis;
    } else {
      d.slot = pair->slot;
      pair->slot = -1;
    }
    ++c->delivered;
    ++stats_.pairs_delivered;
    Emit(c->handler, std::move(d));
  } else {
    FreePair(*pair);
  }
  ErasePair(*c, false, verdict.head_pair());
  if (c->delivered == c->number) {
    Emit(c->handler, RequestCompleted{c->request_id, c->delivered});
    c->handler = nullptr;  // ended; the teardown must not report again
    EndCircuit(key, std::nullopt, "completed", "");
    return;
  }
  RequestLinkPair(*c);
}

}  // namespace qnet::network
