// Circuits across nodes (transport/circuit_program.h), run shot by shot:
// the node that runs the request (the coordinator) steps through the
// program and has each instruction performed by the node that holds its
// qubit; a CNOT between qubits at two nodes is a remote CNOT by gate
// teleportation (Eisert, Jacobs, Papadopoulos and Plenio, PRA 62, 052317,
// 2000), consuming one end-to-end pair:
//
//   A holds the control c, B the target t; A and B get a KEEP pair (a, b)
//   from the network layer, in Bell frame X^x Z^z. A: CNOT c -> a, measures
//   a in Z (m1), frees a, sends m1 to B (RCXB). B: X^(m1 ^ x) Z^z on b, which
//   now copies c's Z value; CNOT b -> t; measures b in X (m2), frees b, sends
//   m2 to A (RCXZ). A: Z^m2 on c, done. One pair, one bit each way.
//
// Messages are network-layer datagrams, one line each (distributed_circuit.cc).
// Every node builds this object (NodeStack), so any node can coordinate and
// any node can hold qubits. Each node allocates a program qubit at its first
// use in a shot and frees every qubit of the run when the shot ends (FREE),
// the run ends (END) or fails (ABORT), or by its own deadline when the
// coordinator went silent. Failures lose nothing: an instruction's error, a
// network error or the timeout ends the run at every node with the error.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/lifetime.h"
#include "core/node_context.h"
#include "network/network_layer.h"
#include "physical/quantum_device.h"
#include "transport/circuit_program.h"

namespace qnet::transport {

inline constexpr uint32_t kCircuitPurposeId = 0x3F000004;
// Circuit runs a node keeps open per coordinator at once (BEGIN beyond it is dropped).
inline constexpr int kMaxOpenCircuitRunsPerPeer = 16;

using CircuitRunId = uint64_t;  // unique per coordinator

struct CircuitRequest {
  CircuitProgram program;
  uint32_t shots = 100;       // >= 1
  double min_fidelity = 0.0;  // of each pair a remote CNOT uses (network-layer estimate), in [0, 1]
  Duration timeout = std::chrono::seconds(60);  // the whole request; > 0
};

struct CircuitReport {
  CircuitRunId id = 0;
  std::vector<std::string> measurements;  // labels, program order ("alice.q(z)")
  // Outcome strings ('0' = +1 eigenstate, one character per measurement,
  // program order) and how many shots gave each.
  std::map<std::string, uint64_t> counts;
  uint32_t shots = 0;
  uint64_t pairs_used = 0;       // one per remote CNOT and shot
  uint64_t pairs_discarded = 0;  // below min_fidelity
  Duration simulated_time{0};
};
// Runs on the event loop, never inside a call. Errors: InvalidArgument, the
// network layer's (network::ToStatus), DeadlineExceeded "TIMEOUT: ...",
// ResourceExhausted "NO_RESOURCES: ..." (a node's memory is full), Internal
// "DEVICE_ERROR: ...", each naming the node and program line.
using CircuitHandler = std::function<void(CircuitRunId, absl::StatusOr<CircuitReport>)>;

class DistributedCircuit {
 public:
  static absl::StatusOr<std::unique_ptr<DistributedCircuit>> Build(NodeContext& context,
                                                                   physical::QuantumDevice& device,
                                                                   network::NetworkLayer& network);
  ~DistributedCircuit();
  DistributedCircuit(const DistributedCircuit&) = delete;
  DistributedCircuit& operator=(const DistributedCircuit&) = delete;

  // This node coordinates. Immediate errors: InvalidArgument (shots 0,
  // min_fidelity outside [0, 1], timeout <= 0, no handler), NotFound
  // "NO_ROUTE: ..." (a node of the program is unknown or unreachable).
  // Requests at one coordinator run one after the other.
  absl::StatusOr<CircuitRunId> Run(const CircuitRequest& request, CircuitHandler handler);
  // Ends a run at every node; its handler gets Cancelled.
  void Cancel(CircuitRunId id);

  // Shots done so far by a run this node coordinates (0 for an unknown run).
  uint32_t shots_done(CircuitRunId id) const;

  // Qubits this object holds at this node now (program qubits and pair halves).
  int held_slots() const;
  size_t active_runs() const { return runs_.size(); }
  size_t active_participations() const { return parts_.size(); }

 private:
  struct CoordinatedRun;
  struct PartKey {
    std::string coordinator;
    CircuitRunId run = 0;
    bool operator==(const PartKey&) const = default;
    template <typename H>
    friend H AbslHashValue(H h, const PartKey& k) {
      return H::combine(std::move(h), k.coordinator, k.run);
    }
  };
  // This node's part in a run (any node, the coordinator included).
  struct Part {
    absl::flat_hash_map<std::string, int> qubits;  // program name -> slot
    TimerId deadline = kNoTimer;
    // A remote CNOT this node controls: its pair request and half.
    network::RequestId request = 0;
    int half = -1;
    uint64_t step = 0;  // the remote CNOT's sequence number
    bool executed = false;
    uint64_t last_seq = 0;  // the last order taken (when executed)
    std::string control, target_node, target;
    double min_fidelity = 0.0;
    TimePoint pair_deadline;
    int pairs_discarded = 0;
    quantum::BellState frame = quantum::BellState::kPhiPlus;
    network::EndToEndId pair;
    bool busy = false;  // one instruction at a time
  };
  // A pair half at the target's node, waiting for its RCXB.
  struct TargetHalf {
    std::string from;
    int slot = -1;
    bool in_use = false;   // its RCXB came; a repeat is ignored
    bool claimed = false;  // by `key`'s run
    PartKey key;
  };
  struct Order {  // an RCXB that came before its pair
    PartKey key;
    uint64_t step = 0;
    int m1 = 0, x = 0, z = 0;
    std::string target;
    std::string control_node;
  };

  DistributedCircuit(NodeContext& context, physical::QuantumDevice& device, network::NetworkLayer& network);

  // Coordinator.
  void StartNext();
  void NextStep(CircuitRunId id);
  void OnDone(const std::string& from, CircuitRunId id, uint64_t seq, int outcome, int pairs);
  // The run's sequence number of its current instruction.
  static uint64_t Sequence(const CoordinatedRun& run);
  void FailRun(CircuitRunId id, absl::Status error);
  CoordinatedRun* FindRun(CircuitRunId id);

  // Every node.
  void OnDatagram(const std::string& source, const std::string& payload);
  void Deliver(const std::string& to, std::string payload);  // to self: posted
  void OnBegin(const PartKey& key, Duration timeout);
  void OnGate(const PartKey& key, uint64_t step, const std::string& qubit, const physical::Gate& gate);
  void OnLocalCnot(const PartKey& key, uint64_t step, const std::string& control, const std::string& target);
  void OnMeasure(const PartKey& key, uint64_t step, const std::string& qubit, char basis);
  void OnRemoteCnot(const PartKey& key, uint64_t step, const std::string& control, const std::string& target_node,
                    const std::string& target, double min_fidelity, Duration max_time);
  void RequestPair(const PartKey& key);
  void OnPairAsControl(const PartKey& key, const network::NetworkEvent& event);
  void OnPairAsTarget(const network::NetworkEvent& event);
  void RunTargetSide(const std::string& pair_key, const Order& order);
  void OnRemoteCnotZ(const PartKey& key, uint64_t step, int m2);
  absl::StatusOr<int> Qubit(Part& part, const std::string& name);
  void Report(const PartKey& key, uint64_t step, absl::Status status, int outcome = -1, int pairs = 0);
  void FreeQubits(Part& part);
  void EndPart(const PartKey& key);
  void FreeTargetHalf(const std::string& pair_key);
  Part* FindPart(const PartKey& key);
  // Whether `part` takes the order numbered `seq` (and marks it taken).
  static bool Accept(Part* part, uint64_t seq);

  void Send(const std::string& to, std::string payload);
  void Post(std::function<void()> fn);
  void FreeSlot(int& slot);
  std::string Where() const { return context_.node_name(); }

  NodeContext& context_;
  physical::QuantumDevice& device_;
  network::NetworkLayer& network_;
  CircuitRunId next_id_ = 1;
  absl::flat_hash_map<CircuitRunId, std::unique_ptr<CoordinatedRun>> runs_;
  std::vector<CircuitRunId> queue_;
  absl::flat_hash_map<PartKey, Part> parts_;
  absl::flat_hash_map<std::string, TargetHalf> target_halves_;  // by EndToEndId::ToString()
  absl::flat_hash_map<std::string, Order> early_orders_;        // by EndToEndId::ToString()
  Lifetime lifetime_;  // last: ends before the members its callbacks use
};

}  // namespace qnet::transport
