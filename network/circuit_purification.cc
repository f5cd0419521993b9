// NetworkLayer: DEJMPS purification on each link of a circuit (the upstream
// end starts a round, the downstream end completes and decides it).
#include "network/network_layer.h"

#include <cmath>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace qnet::network {
namespace {

using StepDone = std::function<void(absl::StatusOr<int>)>;
using DeviceStep = std::function<void(StepDone)>;

// Runs device operations one after another; `done` gets the first error or
// the last measurement outcome.
void RunSteps(std::vector<DeviceStep> steps, StepDone done) {
  struct Run {
    std::vector<DeviceStep> steps;
    size_t next = 0;
    StepDone done;
    StepDone advance;
  };
  auto run = std::make_shared<Run>();
  run->steps = std::move(steps);
  run->done = std::move(done);
  std::weak_ptr<Run> weak = run;
  run->advance = [weak](absl::StatusOr<int> result) {
    std::shared_ptr<Run> r = weak.lock();
    if (r == nullptr) return;
    if (!result.ok() || r->next == r->steps.size()) {
      // `advance` holds `r` only weakly, so the run ends with the last step's callback.
      auto finish = std::move(r->done);
      finish(std::move(result));
      return;
    }
    DeviceStep step = r->steps[r->next++];
    step([r](absl::StatusOr<int> next) { r->advance(std::move(next)); });
  };
  run->advance(0);
}

// A device operation's status as a step result.
std::function<void(absl::Status)> StatusDone(StepDone next) {
  return [next](absl::Status s) { next(s.ok() ? absl::StatusOr<int>(0) : absl::StatusOr<int>(s)); };
}

// One end's part of a DEJMPS round on two PHI+ pairs: Rx(angle) on both
// qubits, CNOT kept -> sacrificed, the sacrificed qubit measured in Z.
void AppendDejmpsSteps(physical::QuantumDevice* device, int keep_slot, int sacrifice_slot, double angle,
                       std::vector<DeviceStep>& steps) {
  steps.push_back([=](StepDone next) { device->ApplyGate(keep_slot, physical::Gate::Rx(angle), StatusDone(next)); });
  steps.push_back(
      [=](StepDone next) { device->ApplyGate(sacrifice_slot, physical::Gate::Rx(angle), StatusDone(next)); });
  steps.push_back([=](StepDone next) {
    device->ApplyTwoQubitGate(keep_slot, sacrifice_slot, physical::TwoQubitGate::kCnot, StatusDone(next));
  });
  steps.push_back([=](StepDone next) { device->Measure(sacrifice_slot, quantum::Basis::Z(), next); });
}

}  // namespace

bool NetworkLayer::IsNodeA(const std::string& neighbour) const {
  for (const physical::PhysicalLink& l : links_) {
    if (l.physics.node_b == neighbour && l.physics.node_a == Where()) return true;
  }
  return false;
}

void NetworkLayer::TryPurify(Circuit& c) {
  // Upstream end of the link: two idle pairs of the same unfinished level.
  HeldPair* keep = nullptr;
  HeldPair* sacrifice = nullptr;
  for (uint32_t level = 0; level < c.rounds && sacrifice == nullptr; ++level) {
    keep = sacrifice = nullptr;
    for (HeldPair& p : c.down_pairs) {
      if (p.busy || p.slot < 0 || p.level != level) continue;
      if (keep == nullptr) {
        keep = &p;
      } else {
        sacrifice = &p;
        break;
      }
    }
  }
  if (keep == nullptr || sacrifice == nullptr) return;
  keep->busy = sacrifice->busy = true;
  const CircuitKey key = c.key;
  const uint64_t keep_sequence = keep->sequence, sacrifice_sequence = sacrifice->sequence;
  const int keep_slot = keep->slot, sacrifice_slot = sacrifice->slot;
  const quantum::BellState keep_label = keep->label, sacrifice_label = sacrifice->label;
  const double angle = IsNodeA(c.down) ? M_PI / 2 : -M_PI / 2;
  physical::QuantumDevice* device = &device_;
  std::vector<DeviceStep> steps = {
      // Both pairs to PHI+ first: DEJMPS is defined in that frame.
      [=](StepDone next) {
        device->ApplyPauli(keep_slot, quantum::XBit(keep_label), quantum::ZBit(keep_label), StatusDone(next));
      },
      [=](StepDone next) {
        device->ApplyPauli(sacrifice_slot, quantum::XBit(sacrifice_label), quantum::ZBit(sacrifice_label),
                           StatusDone(next));
      },
  };
  AppendDejmpsSteps(device, keep_slot, sacrifice_slot, angle, steps);
  RunSteps(std::move(steps), lifetime_.Guard([this, key, keep_sequence,
                                              sacrifice_sequence](absl::StatusOr<int> outcome) {
    Circuit* circuit = CircuitAfterPurifySteps(key, outcome.status());
    if (circuit == nullptr) return;
    if (HeldPair* sacrificed = FindPair(*circuit, false, sacrifice_sequence)) FreePair(*sacrificed);
    ErasePair(*circuit, false, sacrifice_sequence);
    v1::NetworkMessage m;
    v1::CircuitPurify* p = m.mutable_purify();
    KeyToWire(key, p->mutable_circuit());
    p->set_keep_sequence(keep_sequence);
    p->set_sacrifice_sequence(sacrifice_sequence);
    p->set_outcome(*outcome);
    Send(circuit->down, std::move(m));
    RequestLinkPair(*circuit);
  }));
}

void NetworkLayer::OnPurify(const std::string& from, const v1::CircuitPurify& purify) {
  Circuit* c = FindCircuit(KeyFromWire(purify.circuit()));
  if (c == nullptr || c->up != from) return;
  if (!StartPurifyHere(*c, purify)) c->pending_purify.push_back(purify);
}

void NetworkLayer::ServePendingPurify(Circuit& c) {
  std::vector<v1::CircuitPurify> pending = std::move(c.pending_purify);
  c.pending_purify.clear();
  const CircuitKey key = c.key;
  for (const v1::CircuitPurify& p : pending) {
    Circuit* circuit = FindCircuit(key);
    if (circuit == nullptr) return;
    if (!StartPurifyHere(*circuit, p)) circuit->pending_purify.push_back(p);
  }
}

bool NetworkLayer::StartPurifyHere(Circuit& c, const v1::CircuitPurify& purify) {
  const uint64_t keep_sequence = purify.keep_sequence(), sacrifice_sequence = purify.sacrifice_sequence();
  const bool keep_gone = c.discarded_up.contains(keep_sequence);
  const bool sacrifice_gone = c.discarded_up.contains(sacrifice_sequence);
  HeldPair* keep = FindPair(c, true, keep_sequence);
  HeldPair* sacrifice = FindPair(c, true, sacrifice_sequence);
  if (keep_gone || sacrifice_gone) {
    // This end dropped one of them (cutoff): the round fails.
    c.discarded_up.erase(keep_sequence);
    c.discarded_up.erase(sacrifice_sequence);
    for (uint64_t s : {keep_sequence, sacrifice_sequence}) {
      if (HeldPair* p = FindPair(c, true, s); p != nullptr && !p->busy) {
        if (p->slot >= 0) SendCredit(c);
        FreePair(*p);
        ErasePair(c, true, s);
      }
    }
    SendPurifyResult(c, keep_sequence, false, 0.0, absl::StrCat("a pair of the round was discarded at ", Where()));
    return true;
  }
  if (keep == nullptr || sacrifice == nullptr || keep->busy || sacrifice->busy) return false;  // not here yet
  keep->busy = sacrifice->busy = true;
  const int keep_slot = keep->slot, sacrifice_slot = sacrifice->slot;
  const double angle = IsNodeA(c.up) ? M_PI / 2 : -M_PI / 2;
  std::vector<DeviceStep> steps;
  AppendDejmpsSteps(&device_, keep_slot, sacrifice_slot, angle, steps);
  const CircuitKey key = c.key;
  const int far_outcome = purify.outcome();
  RunSteps(std::move(steps), lifetime_.Guard([this, key, keep_sequence, sacrifice_sequence, far_outcome](
                                                 absl::StatusOr<int> outcome) {
    Circuit* circuit = CircuitAfterPurifySteps(key, outcome.status());
    if (circuit == nullptr) return;
    HeldPair* kept = FindPair(*circuit, true, keep_sequence);
    HeldPair* sacrificed = FindPair(*circuit, true, sacrifice_sequence);
    if (kept == nullptr || sacrificed == nullptr) return;
    // The model of the round, from both pairs' estimates at this moment.
    const TimePoint now = context_.Now();
    auto state_now = [&](const HeldPair& p) {
      return Decay(BellDiagonal::Werner(p.fidelity), now - p.estimate_time, NeighbourRates(*circuit, circuit->up),
                   now - p.estimate_time, OwnRates(*circuit));
    };
    const double fidelity = BellDiagonal::Dejmps(state_now(*kept), state_now(*sacrificed)).first.fidelity();
    FreePair(*sacrificed);
    ErasePair(*circuit, true, sacrifice_sequence);
    SendCredit(*circuit);
    kept = FindPair(*circuit, true, keep_sequence);
    const bool success = *outcome == far_outcome;
    SendPurifyResult(*circuit, keep_sequence, success, fidelity, "");
    if (!success) {
      ++stats_.purification_failures;
      FreePair(*kept);
      ErasePair(*circuit, true, keep_sequence);
      SendCredit(*circuit);
      return;
    }
    ++stats_.purifications;
    kept->busy = false;
    kept->level += 1;
    kept->label = quantum::BellState::kPhiPlus;
    kept->fidelity = fidelity;
    kept->estimate_time = now;
    if (kept->level == circuit->rounds) PairReady(*circuit, true, *kept);
  }));
  return true;
}

NetworkLayer::Circuit* NetworkLayer::CircuitAfterPurifySteps(const CircuitKey& key, const absl::Status& status) {
  Circuit* circuit = FindCircuit(key);
  if (circuit == nullptr) return nullptr;
  if (!status.ok()) {
    EndCircuit(key, NetworkError::kDeviceError,
               absl::StrCat("purification at ", Where(), " failed: ", status.message()), "");
    return nullptr;
  }
  return circuit;
}

void NetworkLayer::SendPurifyResult(const Circuit& c, uint64_t keep_sequence, bool success, double fidelity,
                                    const std::string& message) {
  v1::NetworkMessage m;
  v1::CircuitPurifyResult* r = m.mutable_purify_result();
  KeyToWire(c.key, r->mutable_circuit());
  r->set_keep_sequence(keep_sequence);
  r->set_success(success);
  r->set_fidelity(fidelity);
  r->set_message(message);
  Send(c.up, std::move(m));
}

void NetworkLayer::OnPurifyResult(const std::string& from, const v1::CircuitPurifyResult& result) {
  Circuit* c = FindCircuit(KeyFromWire(result.circuit()));
  if (c == nullptr || c->down != from) return;
  HeldPair* kept = FindPair(*c, false, result.keep_sequence());
  if (kept == nullptr) return;
  kept->busy = false;
  if (!result.success()) {
    if (c->head()) ++stats_.purification_failures;
    FreePair(*kept);
    ErasePair(*c, false, result.keep_sequence());
    RequestLinkPair(*c);
    TryPurify(*c);
    return;
  }
  kept->level += 1;
  kept->label = quantum::BellState::kPhiPlus;
  kept->fidelity = result.fidelity();
  kept->estimate_time = context_.Now();
  if (kept->level == c->rounds) {
    PairReady(*c, false, *kept);
  } else {
    TryPurify(*c);
  }
}

}  // namespace qnet::network
