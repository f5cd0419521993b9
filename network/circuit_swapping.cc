// NetworkLayer: swap-ASAP at repeaters (Bell-state measurement of a pair on
// each side) and measurement of the qubit at MEASURE ends.
#include "network/network_layer.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace qnet::network {

using quantum::BellState;

void NetworkLayer::TrySwap(Circuit& c) {
  if (c.swapping) return;  // one swap at a time
  HeldPair* up = nullptr;
  HeldPair* down = nullptr;
  for (HeldPair& p : c.up_pairs) {
    if (up == nullptr && !p.busy && p.slot >= 0 && p.level == c.rounds) up = &p;
  }
  for (HeldPair& p : c.down_pairs) {
    if (down == nullptr && !p.busy && p.slot >= 0 && p.level == c.rounds) down = &p;
  }
  if (up == nullptr || down == nullptr) return;
  up->busy = down->busy = true;
  c.swapping = true;
  const CircuitKey key = c.key;
  const uint64_t up_sequence = up->sequence;
  const uint64_t down_sequence = down->sequence;
  device_.BellMeasure(up->slot, down->slot,
                      lifetime_.Guard([this, key, up_sequence, down_sequence](absl::StatusOr<BellState> outcome) {
                        OnSwapped(key, up_sequence, down_sequence, std::move(outcome));
                      }));
}

void NetworkLayer::OnSwapped(const CircuitKey& key, uint64_t up_sequence, uint64_t down_sequence,
                             absl::StatusOr<BellState> outcome) {
  Circuit* c = FindCircuit(key);
  if (c == nullptr) return;
  c->swapping = false;
  HeldPair* up = FindPair(*c, true, up_sequence);
  HeldPair* down = FindPair(*c, false, down_sequence);
  if (up == nullptr || down == nullptr) return;
  up->busy = down->busy = false;
  if (!outcome.ok()) {
    Discard(*c, true, up_sequence, absl::StrCat("the Bell-state measurement failed: ", outcome.status().message()));
    Discard(*c, false, down_sequence, "the Bell-state measurement failed");
    return;
  }
  ++stats_.swaps;
  const TimePoint now = context_.Now();
  SwapRecord record;
  record.down_sequence = down_sequence;
  record.outcome = *outcome;
  record.down_label = down->label;
  record.time = now;
  record.down_state = Decay(BellDiagonal::Werner(down->fidelity), now - down->estimate_time, OwnRates(*c),
                            now - down->estimate_time, NeighbourRates(*c, c->down));
  std::optional<v1::CircuitTrack> pending = std::move(up->pending_track);
  FreePair(*up);
  FreePair(*down);
  ErasePair(*c, true, up_sequence);
  ErasePair(*c, false, down_sequence);
  c->swaps[up_sequence] = record;
  SendCredit(*c);
  if (pending.has_value()) HandleTrack(*c, *pending);
  if ((c = FindCircuit(key)) == nullptr) return;
  RequestLinkPair(*c);
  TrySwap(*c);
}

void NetworkLayer::Measure(Circuit& c, bool upstream, uint64_t sequence) {
  HeldPair* p = FindPair(c, upstream, sequence);
  if (p == nullptr) return;
  // Each end picks its basis on its own (the head is CHSH's A, the tail B).
  const bool first = rng_.UniformInt(2) == 0;
  switch (c.basis) {
    case link::BasisChoice::kZ: p->basis = link::MeasurementBasis::kZ; break;
    case link::BasisChoice::kX: p->basis = link::MeasurementBasis::kX; break;
    case link::BasisChoice::kY: p->basis = link::MeasurementBasis::kY; break;
    case link::BasisChoice::kBb84: p->basis = first ? link::MeasurementBasis::kZ : link::MeasurementBasis::kX; break;
    case link::BasisChoice::kSixState: {
      const uint64_t k = rng_.UniformInt(3);
      p->basis = k == 0 ? link::MeasurementBasis::kZ : (k == 1 ? link::MeasurementBasis::kX : link::MeasurementBasis::kY);
      break;
    }
    case link::BasisChoice::kChsh:
      p->basis = c.head() ? (first ? link::MeasurementBasis::kChshA0 : link::MeasurementBasis::kChshA1)
                          : (first ? link::MeasurementBasis::kChshB0 : link::MeasurementBasis::kChshB1);
      break;
    case link::BasisChoice::kE91: {
      // The head picks a key basis; the tail adds the CHSH settings B0, B1.
      constexpr link::MeasurementBasis kTail[] = {link::MeasurementBasis::kZ, link::MeasurementBasis::kX,
                                                  link::MeasurementBasis::kChshB0, link::MeasurementBasis::kChshB1};
      p->basis = c.head() ? (first ? link::MeasurementBasis::kZ : link::MeasurementBasis::kX)
                          : kTail[rng_.UniformInt(4)];
      break;
    }
  }
  p->busy = true;
  const CircuitKey key = c.key;
  device_.Measure(p->slot, link::ToQuantumBasis(p->basis),
                  lifetime_.Guard([this, key, upstream, sequence](absl::StatusOr<int> outcome) {
                    OnMeasured(key, upstream, sequence, std::move(outcome));
                  }));
}

void NetworkLayer::OnMeasured(const CircuitKey& key, bool upstream, uint64_t sequence, absl::StatusOr<int> outcome) {
  Circuit* c = FindCircuit(key);
  if (c == nullptr) return;
  HeldPair* p = FindPair(*c, upstream, sequence);
  if (p == nullptr) return;
  p->busy = false;
  if (!outcome.ok()) {
    EndCircuit(key, NetworkError::kDeviceError,
               absl::StrCat("measuring a qubit at ", Where(), " failed: ", outcome.status().message()), "");
    return;
  }
  p->measured = true;
  p->outcome = *outcome;
  p->measured_at = context_.Now();
  FreePair(*p);
  if (c->head()) {
    HeadTrack(*c, *p);
    RequestLinkPair(*c);
    return;
  }
  SendCredit(*c);
  if (p->pending_track.has_value()) {
    v1::CircuitTrack track = *std::move(p->pending_track);
    p->pending_track.reset();
    HandleTrack(*c, track);
  }
}

}  // namespace qnet::network
