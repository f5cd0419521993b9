// The transport layer of one node: delivers a qubit state to any node by
// teleportation over an end-to-end KEEP pair from the network layer.
//
// Source: prepares the data qubit on its device (|0>, then Ry(theta),
// Rz(phi), with the device's gate noise), tells the destination the transfer
// is coming (BEGIN), asks the network layer for one KEEP pair with the
// destination on the transport's purpose id, performs the Bell-state
// measurement of the data qubit with its half of the pair, frees both and
// sends the outcome with the transfer id and the pair's end-to-end id (BITS).
// Destination: applies the Pauli correction - the outcome composed with the
// pair's Bell-state frame (TeleportCorrection) - and hands the qubit to its
// receiver, then acknowledges (ACK); the source reports success on the ACK.
// Bits and pairs are matched by the pair's end-to-end id, so several
// transfers can be in flight and bits that arrive before the pair wait for it.
// A pair whose fidelity estimate is below the transfer's minimum is freed at
// both ends (DISCARD) and another is asked for. A network failure, a refusal
// or a timeout fails the transfer at both ends (ABORT / REFUSE) and frees
// every qubit; a destination that hears nothing by the transfer's deadline
// (the source died) fails it on its own.
// Classical messages are network-layer datagrams (best effort, in order
// while routes stay put), as text: see transport_layer.cc.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/lifetime.h"
#include "core/node_context.h"
#include "network/network_layer.h"
#include "physical/quantum_device.h"
#include "quantum/bell.h"
#include "transport/qubit_state.h"

namespace qnet::transport {

// The end-to-end purpose id (network receiver and datagrams) the transport
// layer uses at every node.
inline constexpr uint32_t kTransportPurposeId = 0x3F000001;

// The Pauli correction X^x Z^z (as a BellState label) the destination applies
// after the source found (data, its half) in Bell state `measured`, when the
// pair was delivered in Bell state `pair_frame` (source = head = first qubit).
quantum::BellState TeleportCorrection(quantum::BellState measured, quantum::BellState pair_frame);

using TransferId = uint64_t;  // unique per source node

struct TeleportOptions {
  // Of the end-to-end pair (network-layer estimate), in [0, 1].
  double min_fidelity = 0.0;
  // The whole transfer, ACK included; > 0.
  Duration timeout = std::chrono::seconds(10);
};

// The source's view of a finished transfer.
struct TeleportReport {
  TransferId id = 0;
  std::string destination;
  network::EndToEndId pair;
  quantum::BellState pair_frame = quantum::BellState::kPhiPlus;
  quantum::BellState measured = quantum::BellState::kPhiPlus;  // the source's BSM outcome
  double pair_fidelity_estimate = 0.0;
  uint32_t pairs_discarded = 0;  // below min_fidelity
};
// Runs on the event loop, never inside a call to the layer. Errors:
// DeadlineExceeded "TIMEOUT: ...", Unavailable "PEER_DOWN: ..." and the
// other network-layer errors as network::ToStatus makes them, NotFound
// "NO_RECEIVER: ..." (the destination has no transport receiver), Internal
// "DEVICE_ERROR: ...".
using TeleportHandler = std::function<void(TransferId, absl::StatusOr<TeleportReport>)>;

// The destination's view: the qubit arrived (the receiver owns `slot` and
// must Free it) ...
struct QubitReceived {
  std::string source;
  TransferId id = 0;
  int slot = -1;
  network::EndToEndId pair;
  double pair_fidelity_estimate = 0.0;
};
// ... or the transfer failed (nothing is left allocated for it).
struct ReceiveFailed {
  std::string source;
  TransferId id = 0;
  absl::Status error;
};
using ReceiveEvent = std::variant<QubitReceived, ReceiveFailed>;
using ReceiveHandler = std::function<void(const ReceiveEvent&)>;

struct TransportLayerOptions {
  uint32_t purpose_id = kTransportPurposeId;
  // Transfers this node runs as the source at once, from preparing the data
  // qubit to the Bell-state measurement (each holds a data qubit and needs
  // one reserved qubit for its circuit); more wait their turn. The network
  // layer reserves circuit memory without counting the data qubits, so keep
  // 2 x this <= the node's qubits (and the destination's: a pair waits there
  // for its bits after its circuit has released the reservation).
  int max_active_transfers = 1;
};

struct TransportLayerStats {
  uint64_t sent = 0;       // succeeded as the source
  uint64_t received = 0;   // qubits handed up as the destination
  uint64_t failed = 0;     // at this node, either role
  uint64_t pairs_discarded = 0;
};

class TransportLayer {
 public:
  // Registers the network receiver and the datagram receiver for
  // options.purpose_id (errors if either is taken).
  static absl::StatusOr<std::unique_ptr<TransportLayer>> Build(NodeContext& context,
                                                               physical::QuantumDevice& device,
                                                               network::NetworkLayer& network,
                                                               TransportLayerOptions options = {});
  ~TransportLayer();
  TransportLayer(const TransportLayer&) = delete;
  TransportLayer& operator=(const TransportLayer&) = delete;

  // Immediate errors: InvalidArgument (self, non-finite angles, min_fidelity
  // outside [0, 1], timeout <= 0, empty handler), NotFound "NO_ROUTE: ..."
  // (the destination is unknown or unreachable now).
  absl::StatusOr<TransferId> Teleport(const std::string& destination, const BlochAngles& state,
                                      const TeleportOptions& options, TeleportHandler handler);
  absl::StatusOr<TransferId> Teleport(const std::string& destination, NamedState state,
                                      const TeleportOptions& options, TeleportHandler handler) {
    return Teleport(destination, ToAngles(state), options, std::move(handler));
  }

  // The application receiving qubits at this node (one at a time).
  absl::Status RegisterReceiver(ReceiveHandler handler);
  absl::Status UnregisterReceiver();

  // Introspection.
  size_t active_outgoing() const { return outgoing_.size(); }
  size_t active_incoming() const { return incoming_.size(); }
  // Qubits the layer holds now (data qubits, pair halves; not those handed up).
  int held_slots() const;
  const TransportLayerStats& stats() const { return stats_; }

 private:
  enum class Phase : uint8_t { kQueued, kPreparing, kWaitingPair, kMeasuring, kWaitingAck };

  struct Outgoing {
    TransferId id = 0;
    std::string destination;
    BlochAngles state;
    TeleportOptions options;
    TeleportHandler handler;
    Phase phase = Phase::kQueued;
    int data_slot = -1;
    int pair_slot = -1;
    network::RequestId request = 0;
    TimerId deadline = kNoTimer;
    TimePoint deadline_at;
    TeleportReport report;
  };

  // A pair half delivered here (the destination end), waiting for its bits.
  struct HeldPair {
    std::string source;
    int slot = -1;
    network::EndToEndId id;
    quantum::BellState frame = quantum::BellState::kPhiPlus;
    double fidelity_estimate = 0.0;
  };
  // Bits (or a DISCARD) that came before their pair.
  struct Bits {
    std::string source;
    TransferId transfer = 0;
    bool discard = false;
    quantum::BellState measured = quantum::BellState::kPhiPlus;
  };
  struct IncomingKey {
    std::string source;
    TransferId id = 0;
    bool operator==(const IncomingKey&) const = default;
    template <typename H>
    friend H AbslHashValue(H h, const IncomingKey& k) {
      return H::combine(std::move(h), k.source, k.id);
    }
  };
  struct Incoming {
    TimerId deadline = kNoTimer;
    bool correcting = false;
  };

  TransportLayer(NodeContext& context, physical::QuantumDevice& device, network::NetworkLayer& network,
                 TransportLayerOptions options);

  // Source.
  void StartQueued();
  void Prepare(Outgoing& t);
  void RequestPair(Outgoing& t);
  void OnNetworkEventAsSource(TransferId id, const network::NetworkEvent& event);
  void OnBellMeasured(TransferId id, absl::StatusOr<quantum::BellState> outcome);
  // Ends the transfer here (frees its qubits, cancels its request and timer)
  // and tells the handler; `tell_destination` sends an ABORT.
  void FailOutgoing(TransferId id, absl::Status error, bool tell_destination);
  void FinishOutgoing(TransferId id);
  Outgoing* FindOutgoing(TransferId id);

  // Destination.
  void OnNetworkEventAsDestination(const network::NetworkEvent& event);
  void OnDatagram(const std::string& source, const std::string& payload);
  void OnBegin(const std::string& source, TransferId id, Duration timeout);
  void OnBits(const std::string& source, TransferId id, const network::EndToEndId& pair,
              quantum::BellState measured);
  void Correct(const std::string& pair_key, Bits bits);
  void FailIncoming(const IncomingKey& key, absl::Status error);
  void EndIncoming(const IncomingKey& key);
  void FreeHeldPair(const std::string& pair_key);
  void FreeUnclaimedPairsFrom(const std::string& source);

  void SendMessage(const std::string& to, std::string payload);
  // Runs `fn` on the event loop unless the layer is gone by then.
  void Post(std::function<void()> fn);
  void FreeSlot(int& slot);
  std::string Where() const { return context_.node_name(); }

  NodeContext& context_;
  physical::QuantumDevice& device_;
  network::NetworkLayer& network_;
  TransportLayerOptions options_;
  TransferId next_id_ = 1;
  absl::flat_hash_map<TransferId, Outgoing> outgoing_;
  std::deque<TransferId> queue_;
  absl::flat_hash_map<IncomingKey, Incoming> incoming_;
  absl::flat_hash_map<std::string, HeldPair> held_pairs_;  // by EndToEndId::ToString()
  absl::flat_hash_map<std::string, Bits> early_bits_;      // by EndToEndId::ToString()
  std::optional<ReceiveHandler> receiver_;
  TransportLayerStats stats_;
  Lifetime lifetime_;  // last: ends before the members its callbacks use
};

}  // namespace qnet::transport
