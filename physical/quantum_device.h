// A node's quantum device as the protocol layers see it: a few memory slots
// and asynchronous operations on them (gates, measurement, Bell-state
// measurement) that complete on the node's event loop after the hardware's
// operation time. Protocol code names *slots*, never simulated qubit ids, and
// never reads quantum state, so a real device could stand behind this
// interface. SimulatedDevice is the one implementation: an exact
// density-matrix model with gate, readout and memory (T1/T2) noise.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/lifetime.h"
#include "core/node_context.h"
#include "core/rng.h"
#include "core/time.h"
#include "physical/params.h"
#include "physical/state_backend.h"
#include "quantum/bell.h"
#include "quantum/quantum_system.h"

namespace qnet::physical {

// A named single-qubit gate; rotations carry an angle (radians).
struct Gate {
  enum class Kind : uint8_t { kX, kY, kZ, kH, kS, kSdg, kT, kRx, kRy, kRz };
  Kind kind = Kind::kX;
  double angle = 0.0;  // kRx/kRy/kRz only

  static Gate X() { return {Kind::kX}; }
  static Gate Y() { return {Kind::kY}; }
  static Gate Z() { return {Kind::kZ}; }
  static Gate H() { return {Kind::kH}; }
  static Gate S() { return {Kind::kS}; }
  static Gate Sdg() { return {Kind::kSdg}; }
  static Gate T() { return {Kind::kT}; }
  static Gate Rx(double theta) { return {Kind::kRx, theta}; }
  static Gate Ry(double theta) { return {Kind::kRy, theta}; }
  static Gate Rz(double theta) { return {Kind::kRz, theta}; }
};

enum class TwoQubitGate : uint8_t { kCnot, kCz };  // (control, target)

class QuantumDevice {
 public:
  using Done = std::function<void(absl::Status)>;
  using MeasureDone = std::function<void(absl::StatusOr<int>)>;
  using BellDone = std::function<void(absl::StatusOr<quantum::BellState>)>;

  virtual ~QuantumDevice() = default;

  virtual int num_slots() const = 0;
  virtual bool IsAllocated(int slot) const = 0;

  // Reserves a free memory slot (initialised to |0>). ResourceExhausted when
  // every slot is in use.
  virtual absl::StatusOr<int> Allocate() = 0;
  // Releases the slot and discards whatever it held. Operations still running
  // on it complete with Cancelled.
  virtual absl::Status Free(int slot) = 0;

  // Every operation below completes by running its callback on the node's
  // event loop, never inside the call: after the operation's duration, or at
  // once with an error (bad or unallocated slot, a slot busy with another
  // operation or waiting for a herald, the slot freed meanwhile).

  // Projective measurement along `basis`; the reported outcome (0 = +1
  // eigenstate) includes the device's readout error. The qubit stays in the
  // slot, collapsed.
  virtual void Measure(int slot, const quantum::Basis& basis, MeasureDone done) = 0;
  virtual void ApplyGate(int slot, const Gate& gate, Done done) = 0;
  // The Pauli correction X^x Z^z (one gate; x = z = 0 is free and instant).
  virtual void ApplyPauli(int slot, int x, int z, Done done) = 0;
  virtual void ApplyTwoQubitGate(int control, int target, TwoQubitGate gate, Done done) = 0;
  // Bell-state measurement of two local slots (CNOT a->b, H a, measure both
  // in Z): which Bell state of quantum/bell.h the pair was found in. Gate and
  // readout noise make a noisy device mislabel sometimes.
  virtual void BellMeasure(int slot_a, int slot_b, BellDone done) = 0;

  // Heralded entanglement, for the physical layer only. A real device would
  // arm its emitter here; the simulation names the memory qubit that the
  // heralding station will entangle.
  //
  // Readies an allocated, idle slot to receive a heralded qubit: whatever it
  // held is discarded and a fresh memory qubit takes its place. Returns the
  // id the heralding station uses for that qubit.
  virtual absl::StatusOr<quantum::QubitId> AwaitHerald(int slot) = 0;
  // The station heralded `qubit` (from AwaitHerald) into `slot`; the qubit
  // has been entangled (and decohering) since `emitted_at`.
  virtual absl::Status BindHerald(int slot, quantum::QubitId qubit, TimePoint emitted_at) = 0;
  // The generation failed or was aborted: any state of the awaited qubit is
  // discarded and the slot is idle again (still allocated). Does nothing if
  // the slot no longer awaits `qubit` (it was freed or bound meanwhile).
  virtual void CancelHerald(int slot, quantum::QubitId qubit) = 0;
  // The physical layer's report of a run of entanglement attempts on `slot`
  // (the first began at `first`, the last at `last`), whatever their end: a
  // device whose memory dephases while it tries (NodeHardware::
  // attempt_dephasing_n) charges them to the other qubits it stores.
  virtual void RecordEntanglementAttempts(int /*slot*/, uint64_t /*attempts*/, TimePoint /*first*/,
                                          TimePoint /*last*/) {}
};

// Memory slots in use now (status, metrics, what a request waits for).
int AllocatedSlots(const QuantumDevice& device);

class SimulatedDevice final : public QuantumDevice {
 public:
  // `node_index` is the node's position in the network file, for globally
  // unique qubit ids. Randomness is forked once from context.rng().
  SimulatedDevice(NodeContext& context, StateBackend& backend, NodeHardware hardware,
                  uint32_t node_index);
  SimulatedDevice(const SimulatedDevice&) = delete;
  SimulatedDevice& operator=(const SimulatedDevice&) = delete;

  const NodeHardware& hardware() const { return hardware_; }

  // How the memory has been used since the device was built: qubit-seconds
  // of allocated slots (up to now), and the most slots allocated at once. A
  // real device knows this too (it is bookkeeping, not simulated state); a
  // study divides the difference of two readings by qubits x time to get
  // the memory utilisation.
  struct Occupancy {
    double allocated_qubit_seconds = 0.0;
    int in_use = 0;
    int peak_in_use = 0;
  };
  Occupancy occupancy() const;

  int num_slots() const override { return static_cast<int>(slots_.size()); }
  bool IsAllocated(int slot) const override;
  absl::StatusOr<int> Allocate() override;
  absl::Status Free(int slot) override;
  void Measure(int slot, const quantum::Basis& basis, MeasureDone done) override;
  void ApplyGate(int slot, const Gate& gate, Done done) override;
  void ApplyPauli(int slot, int x, int z, Done done) override;
  void ApplyTwoQubitGate(int control, int target, TwoQubitGate gate, Done done) override;
  void BellMeasure(int slot_a, int slot_b, BellDone done) override;
  absl::StatusOr<quantum::QubitId> AwaitHerald(int slot) override;
  absl::Status BindHerald(int slot, quantum::QubitId qubit, TimePoint emitted_at) override;
  void CancelHerald(int slot, quantum::QubitId qubit) override;
  void RecordEntanglementAttempts(int slot, uint64_t attempts, TimePoint first, TimePoint last) override;

  // --- Simulation-only ground truth (tests, simulator reports). Protocol
  // layers must never call these: a real device could not answer them.

  // The simulated qubit currently in `slot`; NotFound if it is not allocated.
  absl::StatusOr<quantum::QubitId> SimulationOnlyQubitId(int slot) const;
  // The true joint density matrix of the given (device, slot) qubits, in that
  // order, after applying each qubit's pending memory decay up to now. Runs
  // `done` once the state is reachable (at once where state is shared).
  static void SimulationOnlyTrueState(std::vector<std::pair<SimulatedDevice*, int>> slots,
                                      std::function<void(absl::StatusOr<quantum::Matrix>)> done);

 private:
  struct Slot {
    bool allocated = false;
    bool busy = false;             // an operation is running on it
    bool awaiting_herald = false;  // its qubit is promised to a heralding station
    uint64_t epoch = 0;            // bumped by Free, so stale completions notice
    quantum::QubitId qubit = 0;
    TimePoint state_time;    // memory decay has been applied up to here
    TimePoint stored_since;  // the current state's beginning (allocation or emission)
    // Other slots' entanglement attempts since the state was last brought up
    // to date (fractional: a run that began before this state counts pro rata).
    double pending_attempts = 0.0;
  };
  // Applied to the slots' qubits (in order) once they are local and up to date.
  using Body = std::function<void(quantum::QuantumSystem&, std::span<const quantum::QubitId>)>;

  quantum::QubitId FreshQubitId();
  absl::Status CheckIdle(int slot) const;
  // Posts `then(status)` to the event loop.
  void Post(absl::Status status, std::function<void(absl::Status)> then);
  // One operation in flight, shared by its timer and its access to the state
  // (nested captures of each part cost about ten allocations per operation).
  struct Operation {
    std::vector<int> slots;
    absl::InlinedVector<uint64_t, 2> epochs;  // the slots' epochs when it began
    std::vector<quantum::QubitId> ids;
    Body body;
    std::function<void(absl::Status)> fail;
  };
  // Runs `body` on `slots` after `duration`, or `fail` with why it could not.
  void Run(std::vector<int> slots, Duration duration, Body body, std::function<void(absl::Status)> fail);
  // Marks the operation's slots idle again; Cancelled if one was freed meanwhile.
  absl::Status EndOperation(const Operation& op);
  // Creates the qubit if absent (fresh memory is |0>) and applies its memory
  // decay from state_time to now.
  absl::Status BringUpToDate(quantum::QuantumSystem& system, Slot& slot);
  absl::Status GateNoise(quantum::QuantumSystem& system, std::span<const quantum::QubitId> qubits);
  // Flips an ideal outcome with the hardware's readout error.
  int ReadOut(int ideal);
  // Adds the allocated slots' qubit-seconds since the last change; call before
  // a slot is allocated or freed.
  void AccountOccupancy();

  NodeContext& context_;
  StateBackend& backend_;
  NodeHardware hardware_;
  uint32_t node_index_;
  Rng rng_;
  // Gate noise as Kraus sets, built once (empty: noiseless).
  std::vector<quantum::Matrix> single_qubit_noise_;
  std::vector<quantum::Matrix> two_qubit_noise_;
  uint64_t next_qubit_counter_ = 0;
  std::vector<Slot> slots_;
  int in_use_ = 0;
  int peak_in_use_ = 0;
  double qubit_seconds_ = 0.0;
  TimePoint occupancy_time_{};
  // Lets callbacks that outlive the device (timers, backend completions) notice.
  Lifetime lifetime_;  // last: ends before the members its callbacks use
};

}  // namespace qnet::physical
