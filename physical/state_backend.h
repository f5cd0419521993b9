// Where the simulated qubits' joint state lives, as a node's simulated device
// sees it. In the in-process simulator every node shares one QuantumSystem and
// access completes at once. In the daemon each entangled group has exactly one
// owning daemon; a daemon that operates on a qubit first brings the qubit's
// group to itself over the hardware plane, so access is asynchronous.
//
// Qubit ids are globally unique: MakeQubitId(node index in the network file,
// per-node counter). A memory slot that is merely reserved has no state here;
// its qubit comes into existence when a heralded pair is prepared.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quantum/quantum_system.h"

namespace qnet::physical {

inline quantum::QubitId MakeQubitId(uint32_t node_index, uint64_t counter) {
  return (static_cast<uint64_t>(node_index + 1) << 40) | (counter & ((uint64_t{1} << 40) - 1));
}

class StateBackend {
 public:
  virtual ~StateBackend() = default;

  // Calls `op` with a QuantumSystem holding every group that contains one of
  // `qubits` (qubits that exist nowhere are simply absent), after bringing
  // remote groups here. On failure (an owner unreachable) `op` receives the
  // error instead; nothing is lost or duplicated. `op` runs on the node's
  // event loop, possibly before this call returns.
  using Operation = std::function<void(absl::StatusOr<quantum::QuantumSystem*>)>;
  virtual void WithLocalQubits(std::vector<quantum::QubitId> qubits, Operation op) = 0;
  // As WithLocalQubits, for qubits the caller knows exist nowhere yet unless
  // here (fresh ids from QuantumDevice::AwaitHerald, about to be prepared):
  // they are not looked for elsewhere.
  virtual void WithFreshQubits(std::vector<quantum::QubitId> qubits, Operation op) {
    WithLocalQubits(std::move(qubits), std::move(op));
  }

  // Forgets the qubit wherever its group lives (traces it out).
  virtual void Discard(quantum::QubitId qubit) = 0;

  // Tells the backend that `qubit`, one of ours, was prepared in a group held
  // by node `holder` (e.g. the heralding station's host), so a later
  // WithLocalQubits knows where to fetch it. No-op where state is shared.
  virtual void NoteHeldBy(quantum::QubitId /*qubit*/, const std::string& /*holder*/) {}
};

// The in-process simulator's backend: one QuantumSystem shared by all nodes.
class SharedStateBackend : public StateBackend {
 public:
  explicit SharedStateBackend(quantum::QuantumSystem& system) : system_(system) {}
  void WithLocalQubits(std::vector<quantum::QubitId>, Operation op) override { op(&system_); }
  void Discard(quantum::QubitId qubit) override {
    if (system_.Exists(qubit)) (void)system_.Remove(qubit);
  }

 private:
  quantum::QuantumSystem& system_;
};

}  // namespace qnet::physical
