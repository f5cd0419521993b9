#include "physical/quantum_device.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "physical/memory_noise.h"
#include "quantum/channels.h"
#include "quantum/gates.h"

namespace qnet::physical {

int AllocatedSlots(const QuantumDevice& device) {
  int in_use = 0;
  for (int slot = 0; slot < device.num_slots(); ++slot) in_use += device.IsAllocated(slot) ? 1 : 0;
  return in_use;
}
namespace {

using quantum::QubitId;

quantum::Matrix GateMatrix(const Gate& gate) {
  switch (gate.kind) {
    case Gate::Kind::kX: return quantum::gates::X();
    case Gate::Kind::kY: return quantum::gates::Y();
    case Gate::Kind::kZ: return quantum::gates::Z();
    case Gate::Kind::kH: return quantum::gates::H();
    case Gate::Kind::kS: return quantum::gates::S();
    case Gate::Kind::kSdg: return quantum::gates::Sdg();
    case Gate::Kind::kT: return quantum::gates::T();
    case Gate::Kind::kRx: return quantum::gates::Rx(gate.angle);
    case Gate::Kind::kRy: return quantum::gates::Ry(gate.angle);
    case Gate::Kind::kRz: return quantum::gates::Rz(gate.angle);
  }
  return quantum::gates::I();
}

}  // namespace

SimulatedDevice::SimulatedDevice(NodeContext& context, StateBackend& backend, NodeHardware hardware,
                                 uint32_t node_index)
    : context_(context),
      backend_(backend),
      hardware_(std::move(hardware)),
      node_index_(node_index),
      rng_(context.rng().Fork("device")),
      slots_(static_cast<size_t>(std::max(0, hardware_.num_qubits))) {
  if (hardware_.single_qubit_gate_error > 0.0) {
    single_qubit_noise_ = quantum::channels::Depolarizing(hardware_.single_qubit_gate_error);
  }
  if (hardware_.two_qubit_gate_error > 0.0) {
    two_qubit_noise_ = quantum::channels::TwoQubitDepolarizing(hardware_.two_qubit_gate_error);
  }
}

QubitId SimulatedDevice::FreshQubitId() { return MakeQubitId(node_index_, next_qubit_counter_++); }

bool SimulatedDevice::IsAllocated(int slot) const {
  return slot >= 0 && slot < num_slots() && slots_[static_cast<size_t>(slot)].allocated;
}

absl::StatusOr<int> SimulatedDevice::Allocate() {
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (s.allocated) continue;
    AccountOccupancy();
    ++in_use_;
    peak_in_use_ = std::max(peak_in_use_, in_use_);
    s.allocated = true;
    s.busy = false;
    s.awaiting_herald = false;
    s.qubit = FreshQubitId();
    s.state_time = context_.Now();
    s.stored_since = s.state_time;
    s.pending_attempts = 0.0;
    return static_cast<int>(i);
  }
  return absl::ResourceExhaustedError(absl::StrCat("all ", slots_.size(), " memory qubits of node ",
                                                   context_.node_name(),
                                                   " are in use (a KEEP pair held for a client frees its qubit when "
                                                   "measured or when its hold passes; the node's `qubits` in the "
                                                   "network file sets how many there are)"));
}

void SimulatedDevice::AccountOccupancy() {
  const TimePoint now = context_.Now();
  if (now > occupancy_time_) qubit_seconds_ += in_use_ * ToSeconds(now - occupancy_time_);
  occupancy_time_ = now;
}

SimulatedDevice::Occupancy SimulatedDevice::occupancy() const {
  const TimePoint now = context_.Now();
  const double since = now > occupancy_time_ ? in_use_ * ToSeconds(now - occupancy_time_) : 0.0;
  return Occupancy{qubit_seconds_ + since, in_use_, peak_in_use_};
}

absl::Status SimulatedDevice::Free(int slot) {
  if (!IsAllocated(slot)) {
    return absl::FailedPreconditionError(
        absl::StrCat("Free: memory slot ", slot, " of node ", context_.node_name(), " is not allocated"));
  }
  Slot& s = slots_[static_cast<size_t>(slot)];
  AccountOccupancy();
  --in_use_;
  backend_.Discard(s.qubit);
  const uint64_t epoch = s.epoch + 1;
  s = Slot{};
  s.epoch = epoch;
  return absl::OkStatus();
}

absl::Status SimulatedDevice::CheckIdle(int slot) const {
  if (slot < 0 || slot >= num_slots()) {
    return absl::InvalidArgumentError(absl::StrCat("memory slot ", slot, " does not exist on node ",
                                                   context_.node_name(), " (it has ", num_slots(),
                                                   ")"));
  }
  const Slot& s = slots_[static_cast<size_t>(slot)];
  if (!s.allocated) {
    return absl::FailedPreconditionError(
        absl::StrCat("memory slot ", slot, " of node ", context_.node_name(), " is not allocated"));
  }
  if (s.awaiting_herald) {
    return absl::FailedPreconditionError(absl::StrCat("memory slot ", slot, " of node ",
                                                      context_.node_name(),
                                                      " is waiting for a heralded qubit"));
  }
  if (s.busy) {
    return absl::FailedPreconditionError(absl::StrCat("memory slot ", slot, " of node ",
                                                      context_.node_name(),
                                                      " is busy with another operation"));
  }
  return absl::OkStatus();
}

void SimulatedDevice::Post(absl::Status status, std::function<void(absl::Status)> then) {
  context_.StartTimer(Duration{0},
                      lifetime_.Guard([status = std::move(status), then = std::move(then)] { then(status); }));
}

void SimulatedDevice::Run(std::vector<int> slots, Duration duration, Body body,
                          std::function<void(absl::Status)> fail) {
  for (size_t i = 0; i < slots.size(); ++i) {
    absl::Status idle = CheckIdle(slots[i]);
    if (!idle.ok()) return Post(std::move(idle), std::move(fail));
    for (size_t j = 0; j < i; ++j) {
      if (slots[j] == slots[i]) {
        return Post(absl::InvalidArgumentError(absl::StrCat(
                             "a two-qubit operation needs two different slots (got ", slots[i], " twice)")),
                         std::move(fail));
      }
    }
  }
  auto op = std::make_shared<Operation>();
  op->slots = std::move(slots);
  op->body = std::move(body);
  op->fail = std::move(fail);
  for (int s : op->slots) {
    slots_[static_cast<size_t>(s)].busy = true;
    op->epochs.push_back(slots_[static_cast<size_t>(s)].epoch);
  }
  // The operation acts at its end: decay up to then (including its own
  // duration) is applied first, then the gate and its noise.
  context_.StartTimer(duration, lifetime_.Guard([this, op] {
    for (int s : op->slots) op->ids.push_back(slots_[static_cast<size_t>(s)].qubit);
    backend_.WithLocalQubits(op->ids, lifetime_.Guard([this, op](absl::StatusOr<quantum::QuantumSystem*> system) {
      if (absl::Status freed = EndOperation(*op); !freed.ok()) return op->fail(freed);
      if (!system.ok()) {
        return op->fail(absl::UnavailableError(absl::StrCat("the state of node ", context_.node_name(),
                                                            "'s memory is unreachable: ",
                                                            system.status().message())));
      }
      for (int s : op->slots) {
        if (absl::Status st = BringUpToDate(**system, slots_[static_cast<size_t>(s)]); !st.ok()) {
          return op->fail(st);
        }
      }
      op->body(**system, op->ids);
    }));
  }));
}

absl::Status SimulatedDevice::EndOperation(const Operation& op) {
  absl::Status freed;
  for (size_t i = 0; i < op.slots.size(); ++i) {
    Slot& s = slots_[static_cast<size_t>(op.slots[i])];
    if (s.epoch == op.epochs[i]) {
      s.busy = false;
    } else if (freed.ok()) {
      freed = absl::CancelledError(absl::StrCat("memory slot ", op.slots[i], " of node ", context_.node_name(),
                                                " was freed during the operation"));
    }
  }
  return freed;
}

absl::Status SimulatedDevice::BringUpToDate(quantum::QuantumSystem& system, Slot& slot) {
  const TimePoint now = context_.Now();
  if (!system.Exists(slot.qubit)) {
    // A memory qubit nobody has touched yet is freshly initialised.
    QNET_RETURN_IF_ERROR(system.Create(slot.qubit));
    slot.state_time = now;
    return absl::OkStatus();
  }
  if (now > slot.state_time && HasIdleNoise(hardware_)) {
    const auto kraus = IdleNoise(hardware_, ToSeconds(now - slot.state_time));
    const QubitId target[1] = {slot.qubit};
    QNET_RETURN_IF_ERROR(system.ApplyChannel(kraus, target));
  }
  slot.state_time = std::max(slot.state_time, now);
  if (slot.pending_attempts > 0.0) {
    // Coherence x exp(-n / N): a phase flip with p = (1 - exp(-n/N)) / 2.
    // Dephasing commutes with the idle noise above, so the order is free.
    const double p = -std::expm1(-slot.pending_attempts / hardware_.attempt_dephasing_n) / 2.0;
    slot.pending_attempts = 0.0;
    const QubitId target[1] = {slot.qubit};
    QNET_RETURN_IF_ERROR(system.ApplyChannel(quantum::channels::Dephasing(p), target));
  }
  return absl::OkStatus();
}

absl::Status SimulatedDevice::GateNoise(quantum::QuantumSystem& system, std::span<const QubitId> qubits) {
  const std::vector<quantum::Matrix>& kraus = qubits.size() == 1 ? single_qubit_noise_ : two_qubit_noise_;
  if (kraus.empty()) return absl::OkStatus();
  return system.ApplyChannel(kraus, qubits);
}

int SimulatedDevice::ReadOut(int ideal) {
  const double flip = ideal == 0 ? hardware_.readout_error_0 : hardware_.readout_error_1;
  if (flip > 0.0 && rng_.Bernoulli(flip)) return 1 - ideal;
  return ideal;
}

void SimulatedDevice::Measure(int slot, const quantum::Basis& basis, MeasureDone done) {
  Run(
      {slot}, hardware_.measurement_time,
      [this, basis, done](quantum::QuantumSystem& system, std::span<const QubitId> ids) {
        absl::StatusOr<int> outcome = system.Measure(ids[0], basis, rng_);
        if (!outcome.ok()) return done(outcome.status());
        done(ReadOut(*outcome));
      },
      [done](absl::Status s) { done(std::move(s)); });
}

void SimulatedDevice::ApplyGate(int slot, const Gate& gate, Done done) {
  Run(
      {slot}, hardware_.single_qubit_gate_time,
      [this, u = GateMatrix(gate), done](quantum::QuantumSystem& system, std::span<const QubitId> ids) {
        absl::Status st = system.ApplyUnitary(u, ids);
        if (st.ok()) st = GateNoise(system, ids);
        done(st);
      },
      done);
}

void SimulatedDevice::ApplyPauli(int slot, int x, int z, Done done) {
  if ((x & 1) == 0 && (z & 1) == 0) {
    // The identity needs no gate (nothing to wait for, no noise).
    return Post(CheckIdle(slot), std::move(done));
  }
  Run(
      {slot}, hardware_.single_qubit_gate_time,
      [this, u = quantum::gates::Pauli(x & 1, z & 1), done](quantum::QuantumSystem& system,
                                                          std::span<const QubitId> ids) {
        absl::Status st = system.ApplyUnitary(u, ids);
        if (st.ok()) st = GateNoise(system, ids);
        done(st);
      },
      done);
}

void SimulatedDevice::ApplyTwoQubitGate(int control, int target, TwoQubitGate gate, Done done) {
  quantum::Matrix u = gate == TwoQubitGate::kCnot ? quantum::gates::CNOT() : quantum::gates::CZ();
  Run(
      {control, target}, hardware_.two_qubit_gate_time,
      [this, u = std::move(u), done](quantum::QuantumSystem& system, std::span<const QubitId> ids) {
        absl::Status st = system.ApplyUnitary(u, ids);
        if (st.ok()) st = GateNoise(system, ids);
        done(st);
      },
      done);
}

void SimulatedDevice::BellMeasure(int slot_a, int slot_b, BellDone done) {
  const Duration duration =
      hardware_.two_qubit_gate_time + hardware_.single_qubit_gate_time + hardware_.measurement_time;
  Run(
      {slot_a, slot_b}, duration,
      [this, done](quantum::QuantumSystem& system, std::span<const QubitId> ids) {
        // CNOT then H rotates |B(x,z)> onto |z x>; each gate carries its
        // depolarising noise and each readout its error.
        static const quantum::Matrix kCnot = quantum::gates::CNOT(), kH = quantum::gates::H();
        const auto step = [&]() -> absl::StatusOr<quantum::BellState> {
          QNET_RETURN_IF_ERROR(system.ApplyUnitary(kCnot, ids));
          QNET_RETURN_IF_ERROR(GateNoise(system, ids));
          QNET_RETURN_IF_ERROR(system.ApplyUnitary(kH, ids.first(1)));
          QNET_RETURN_IF_ERROR(GateNoise(system, ids.first(1)));
          QNET_ASSIGN_OR_RETURN(const int z, system.Measure(ids[0], quantum::Basis::Z(), rng_));
          QNET_ASSIGN_OR_RETURN(const int x, system.Measure(ids[1], quantum::Basis::Z(), rng_));
          const int read_z = ReadOut(z);  // sequenced: the rng draws must keep their order
          const int read_x = ReadOut(x);
          return quantum::FromBits(read_x, read_z);
        };
        done(step());
      },
      [done](absl::Status s) { done(std::move(s)); });
}

absl::StatusOr<QubitId> SimulatedDevice::AwaitHerald(int slot) {
  QNET_RETURN_IF_ERROR(CheckIdle(slot));
  Slot& s = slots_[static_cast<size_t>(slot)];
  backend_.Discard(s.qubit);
  s.qubit = FreshQubitId();
  s.awaiting_herald = true;
  s.pending_attempts = 0.0;
  return s.qubit;
}

absl::Status SimulatedDevice::BindHerald(int slot, QubitId qubit, TimePoint emitted_at) {
  if (!IsAllocated(slot) || !slots_[static_cast<size_t>(slot)].awaiting_herald ||
      slots_[static_cast<size_t>(slot)].qubit != qubit) {
    return absl::FailedPreconditionError(absl::StrCat("memory slot ", slot, " of node ",
                                                      context_.node_name(), " is not waiting for qubit ",
                                                      qubit));
  }
  Slot& s = slots_[static_cast<size_t>(slot)];
  s.awaiting_herald = false;
  s.state_time = emitted_at;
  s.stored_since = emitted_at;
  s.pending_attempts = 0.0;
  return absl::OkStatus();
}

void SimulatedDevice::CancelHerald(int slot, QubitId qubit) {
  if (!IsAllocated(slot) || !slots_[static_cast<size_t>(slot)].awaiting_herald ||
      slots_[static_cast<size_t>(slot)].qubit != qubit) {
    return;
  }
  Slot& s = slots_[static_cast<size_t>(slot)];
  backend_.Discard(s.qubit);
  s.qubit = FreshQubitId();
  s.awaiting_herald = false;
  s.state_time = context_.Now();
  s.stored_since = s.state_time;
  s.pending_attempts = 0.0;
}

void SimulatedDevice::RecordEntanglementAttempts(int slot, uint64_t attempts, TimePoint first, TimePoint last) {
  if (attempts == 0 || !std::isfinite(hardware_.attempt_dephasing_n)) return;
  const double span = ToSeconds(last - first);
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (static_cast<int>(i) == slot || !s.allocated || s.awaiting_herald) continue;
    // Attempts while this state existed: all of them if it was stored before
    // the run began, a share in proportion to time if during it.
    double share = 1.0;
    if (s.stored_since > first) share = span > 0.0 ? std::max(0.0, ToSeconds(last - s.stored_since)) / span : 0.0;
    s.pending_attempts += static_cast<double>(attempts) * std::min(1.0, share);
  }
}

absl::StatusOr<QubitId> SimulatedDevice::SimulationOnlyQubitId(int slot) const {
  if (!IsAllocated(slot)) {
    return absl::NotFoundError(absl::StrCat("memory slot ", slot, " of node ", context_.node_name(),
                                            " is not allocated"));
  }
  return slots_[static_cast<size_t>(slot)].qubit;
}

void SimulatedDevice::SimulationOnlyTrueState(
    std::vector<std::pair<SimulatedDevice*, int>> slots,
    std::function<void(absl::StatusOr<quantum::Matrix>)> done) {
  if (slots.empty()) return done(absl::InvalidArgumentError("SimulationOnlyTrueState: no slots given"));
  std::vector<QubitId> ids;
  for (const auto& [device, slot] : slots) {
    absl::StatusOr<QubitId> id = device->SimulationOnlyQubitId(slot);
    if (!id.ok()) return done(id.status());
    if (device->slots_[static_cast<size_t>(slot)].awaiting_herald) {
      return done(absl::FailedPreconditionError(
          absl::StrCat("memory slot ", slot, " of node ", device->context_.node_name(),
                       " is still waiting for its heralded qubit")));
    }
    ids.push_back(*id);
  }
  slots.front().first->backend_.WithLocalQubits(
      ids, [slots, ids, done](absl::StatusOr<quantum::QuantumSystem*> system) {
        if (!system.ok()) return done(system.status());
        for (const auto& [device, slot] : slots) {
          absl::Status st = device->BringUpToDate(**system, device->slots_[static_cast<size_t>(slot)]);
          if (!st.ok()) return done(st);
        }
        done((*system)->ReducedState(ids));
      });
}

}  // namespace qnet::physical
