// The network layer of one node: end-to-end entanglement between any two
// nodes over a path of repeaters (see network_service.h for the service),
// modelled on the QIA network protocol (Kozlowski et al., CoNEXT 2020).
//
// Routing: link-state adverts flooded over the peer links (AdvertFlooding,
// routing_adverts.h; the database and paths in routing.h).
// Datagrams: classical messages to any node, forwarded hop by hop
// (DatagramService, datagrams.h).
// Circuits: the head (the requesting node) picks the cheapest path, plans
// per-link fidelity targets and a cutoff (path_plan.h) and installs a
// virtual circuit hop by hop (CircuitSetup); every node reserves the memory
// the circuit needs (1 qubit at an end, 2 at a repeater) or refuses with
// NO_RESOURCES, and each node registers a link-layer receiver on a fresh
// label (purpose id) for the circuit's link from its upstream neighbour.
// Generation: the upstream end of each link asks its link layer for one KEEP
// pair at a time, when the downstream end has granted a credit (it has a
// reserved qubit free) - so memory is never over-committed.
// Swapping: a repeater holding a pair on both sides performs a Bell-state
// measurement at once (swap-ASAP) and frees both qubits; a pair waiting
// longer than the cutoff is discarded.
// Tracking: for every link pair the head gets, it sends a track downstream;
// each repeater forwards it across its swap, composing the Pauli frame and a
// Bell-diagonal fidelity estimate (bell_diagonal.h); a discarded segment
// travels as a dead track (or bounces back to the head). The tail decides:
// it delivers the pair if the estimate (at the time the head will learn of
// it) meets min_fidelity, and tells the head with a verdict; both ends hand
// up the same end-to-end id and Bell state. MEASURE ends measure their qubit
// as soon as it arrives (it stops decaying) and report the raw outcome.
// Teardown: on completion, cancel, timeout or a link/node failure, a
// teardown travels along the circuit; every node frees its qubits, cancels
// its link requests and releases its reservation.
// Messages are assumed delivered in order on an up link (the daemon's peer
// streams); a link that goes down tears its circuits down.
//
// NetworkLayer's own definitions are split by concern: network_layer.cc (the
// service, dispatch, neighbour events), circuit_setup.cc, circuit_pairs.cc,
// circuit_purification.cc, circuit_swapping.cc, circuit_tracking.cc.
#pragma once

#include <cstdint>
#include <functional>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/lifetime.h"
#include "core/node_context.h"
#include "link/link_layer.h"
#include "network/bell_diagonal.h"
#include "network/datagrams.h"
#include "network/network_service.h"
#include "network/path_plan.h"
#include "network/routing.h"
#include "network/routing_adverts.h"
#include "physical/physical_layer.h"
#include "physical/quantum_device.h"
#include "qnet/v1/network_messages.pb.h"

namespace qnet::network {

// A circuit installed at this node, or ended here: what the daemon logs so
// that one end-to-end request can be followed across every node of its path
// (the id is the same at each).
struct CircuitRecord {
  std::string id;  // "<head>#<number>"
  bool ended = false;
  std::vector<std::string> path;
  size_t position = 0;     // 0: the head (requester); path.size() - 1: the far end
  uint32_t pairs = 0;      // requested
  uint32_t delivered = 0;  // at this node (ends), when ended
  std::string outcome;     // when ended: "completed", or the error's name and message
  RequestId request_id = 0;  // the request at this end (0 at a repeater)
};

struct NetworkLayerOptions {
  // Link-state adverts are re-flooded this often even without a change.
  Duration advert_refresh = std::chrono::seconds(30);
  // A circuit refused for lack of memory is retried after this, until the
  // request's max_time.
  Duration setup_retry = std::chrono::milliseconds(5);
  double hop_cost = 1e-3;
  // Link-layer purpose ids from here up are the network layer's circuit labels.
  uint32_t first_label = 0x40000000;
  // End-to-end pairs a circuit without purification keeps in flight at most:
  // the head plans what the path's memories allow leaving one qubit per side
  // for another circuit (PathPlan), each node reserves that many qubits per
  // circuit side or what it has free (at least one; the path agrees on the
  // smallest), so every link generates that many pairs in parallel and the
  // repeaters swap them as they come.
  uint32_t max_pairs_in_flight = 8;
  // Checking and numbering of link-state adverts: the network file's
  // topology, the authenticator, the sequence clock (routing_adverts.h).
  AdvertOptions adverts;
  // Told of every circuit installed or ended here (may be empty).
  std::function<void(const CircuitRecord&)> on_circuit;
};

struct NetworkLayerStats {
  uint64_t circuits_set_up = 0;     // installed at this node (any role)
  uint64_t swaps = 0;               // Bell-state measurements performed here
  uint64_t discarded_pairs = 0;     // link pairs dropped by the cutoff (or a dead track) here
  uint64_t rejected_pairs = 0;      // tail: estimate below min_fidelity
  uint64_t purifications = 0;       // DEJMPS rounds that succeeded (counted at the downstream end)
  uint64_t purification_failures = 0;
  uint64_t pairs_delivered = 0;     // end-to-end, at this end
  uint64_t adverts_received = 0;
  uint64_t adverts_stale = 0;            // copies not newer than the one held: dropped unchecked
  uint64_t adverts_refused = 0;          // impossible (unknown names or links, NaN, ...)
  uint64_t adverts_unauthenticated = 0;  // not signed by their origin
};

class NetworkLayer {
 public:
  // `links` as for the link layer (this node's links and far ends' hardware).
  static absl::StatusOr<std::unique_ptr<NetworkLayer>> Build(NodeContext& context, physical::QuantumDevice& device,
                                                             link::LinkLayer& link, physical::NodeHardware hardware,
                                                             std::vector<physical::PhysicalLink> links,
                                                             NetworkLayerOptions options = {});
  ~NetworkLayer();
  NetworkLayer(const NetworkLayer&) = delete;
  NetworkLayer& operator=(const NetworkLayer&) = delete;

  // --- The service (as the link layer's, end to end).
  absl::Status RegisterReceiver(uint32_t purpose_id, NetworkEventHandler handler);
  absl::Status UnregisterReceiver(uint32_t purpose_id);
  // Immediate errors: InvalidArgument (self, number 0, min_fidelity outside
  // [0, 1], negative max_time, empty handler), NotFound "NO_ROUTE: ...",
  // FailedPrecondition "UNSUPPORTED: ...", ResourceExhausted
  // "NO_RESOURCES: ..." (this node's memory is reserved and the request has
  // no max_time to wait in).
  absl::StatusOr<RequestId> Create(const EndToEndRequest& request, NetworkEventHandler handler);
  // The id of the circuit serving a request at this end ("" if none now).
  std::string CircuitId(RequestId request) const;
  absl::Status Cancel(RequestId request_id);

  // --- Classical datagrams to any node (forwarded hop by hop along the
  // routing table; best effort, in order while routes stay put).
  using DatagramHandler = DatagramService::Handler;
  // AlreadyExists if the purpose id has a receiver; InvalidArgument for an empty handler.
  absl::Status RegisterDatagramReceiver(uint32_t purpose_id, DatagramHandler handler);
  absl::Status UnregisterDatagramReceiver(uint32_t purpose_id);
  // NotFound "NO_ROUTE: ..." if the destination cannot be reached now.
  // The handler at the destination runs on its event loop (never inside this call).
  absl::Status SendDatagram(const std::string& destination, uint32_t purpose_id, std::string payload);
  uint64_t dropped_datagrams() const { return datagrams_.dropped(); }

  // --- Entry points for the node's stack.
  void OnNetworkMessage(const std::string& from, const v1::NetworkMessage& message);
  void OnNeighbourUp(const std::string& neighbour);
  void OnNeighbourDown(const std::string& neighbour);

  // --- Introspection.
  const LinkStateDatabase& routes() const { return routing_.database(); }
  std::vector<RouteEntry> RoutingTable() const { return routing_.database().Table(context_.node_name()); }
  size_t active_circuits() const { return circuits_.size(); }
  int reserved_slots() const { return reserved_; }
  // Qubits the network layer holds now (circuit pairs; not those handed up).
  int held_slots() const;
  NetworkLayerStats stats() const;
  const AdvertStats& advert_stats() const { return routing_.stats(); }
  uint64_t advert_sequence() const { return routing_.sequence(); }  // of this node's latest advert

 private:
  struct CircuitKey {
    std::string head;
    uint64_t number = 0;
    bool operator==(const CircuitKey&) const = default;
    template <typename H>
    friend H AbslHashValue(H h, const CircuitKey& k) {
      return H::combine(std::move(h), k.head, k.number);
    }
  };

  // A link pair of a circuit held (or measured) at this node.
  struct HeldPair {
    uint64_t sequence = 0;  // link-layer entanglement id sequence
    int slot = -1;          // -1 once measured or freed
    quantum::BellState label = quantum::BellState::kPhiPlus;
    double fidelity = 0.0;
    TimePoint estimate_time;
    bool busy = false;      // a swap or measurement is running on it
    TimerId cutoff = kNoTimer;
    // MEASURE ends.
    bool measured = false;
    int outcome = -1;
    link::MeasurementBasis basis = link::MeasurementBasis::kZ;
    TimePoint measured_at;
    // Head: the track was sent; the pair waits for the verdict.
    bool tracked = false;
    // Tail / repeater: a track for it that came before it could be used.
    std::optional<v1::CircuitTrack> pending_track;
    // DEJMPS rounds it has been through; usable once it equals the circuit's.
    uint32_t level = 0;
  };

  struct SwapRecord {
    uint64_t down_sequence = 0;
    quantum::BellState outcome = quantum::BellState::kPhiPlus;
    quantum::BellState down_label = quantum::BellState::kPhiPlus;
    TimePoint time;
    BellDiagonal down_state;  // the downstream pair at the swap, decayed to `time`
  };

  struct Circuit {
    CircuitKey key;
    std::vector<std::string> path;
    size_t position = 0;
    std::string up, down;  // neighbours on the circuit ("" at an end)
    uint32_t number = 1;
    link::RequestType type = link::RequestType::kKeep;
    link::BasisChoice basis = link::BasisChoice::kZ;
    double min_fidelity = 0.0;
    double link_min_fidelity = 0.0;
    Duration cutoff{0};
    uint32_t rounds = 0;  // purification rounds per link
    uint32_t purpose_id = 0;
    uint32_t priority = 0;
    Duration delay_from_head{0};  // one-way, head -> this node
    Duration path_delay{0};       // one-way, head -> tail (known once set up)
    bool established = false;
    int reserved = 0;
    // Ends: the request as the user knows it.
    RequestId request_id = 0;
    NetworkEventHandler handler;
    uint32_t delivered = 0;
    TimePoint started;
    TimerId deadline = kNoTimer;
    TimerId retry = kNoTimer;
    uint32_t setup_attempts = 0;
    // Downstream link (this node originates its link requests).
    uint32_t down_label = 0;
    uint32_t credits = 0;
    // The open link request for downstream pairs (Extend asks it for more)
    // and the pairs asked of it and not delivered yet.
    std::optional<link::RequestId> link_request;
    uint32_t link_pairs_pending = 0;
    std::deque<HeldPair> down_pairs;
    // Upstream link (this node receives on up_label).
    uint32_t up_label = 0;
    std::deque<HeldPair> up_pairs;
    absl::flat_hash_map<uint64_t, SwapRecord> swaps;  // by upstream link sequence, until its track passes
    absl::flat_hash_set<uint64_t> discarded_up;
    absl::flat_hash_map<uint64_t, v1::CircuitTrack> early_tracks;  // for pairs not delivered here yet
    std::vector<v1::CircuitPurify> pending_purify;  // for pairs not delivered here yet
    bool swapping = false;
    // Pairs in flight per side (no purification; else 1), agreed along the path.
    uint32_t depth = 1;
    uint32_t planned_depth = 1;  // head: what the path's memories allow (PathPlan)
    // Qubits reserved per side of a link: the kept pair plus one per round,
    // or without purification one per pair in flight.
    int per_side() const { return rounds > 0 ? static_cast<int>(rounds) + 1 : static_cast<int>(depth); }
    bool head() const { return position == 0; }
    bool tail() const { return position + 1 == path.size(); }
  };

  NetworkLayer(NodeContext& context, physical::QuantumDevice& device, link::LinkLayer& link,
               physical::NodeHardware hardware, std::vector<physical::PhysicalLink> links,
               NetworkLayerOptions options);

  // network_layer.cc: event delivery to the layer above, helpers.
  void Emit(const NetworkEventHandler& handler, NetworkEvent event);
  void FlushEvents();
  void Send(const std::string& neighbour, v1::NetworkMessage message);
  Duration LinkDelay(const std::string& neighbour) const;
  std::string Where() const { return context_.node_name(); }

  // circuit_setup.cc: set-up, reservation and teardown.
  Circuit* FindCircuit(const CircuitKey& key);
  // Tells options_.on_circuit (if any) of `c`, installed or ended here.
  void NoteCircuit(const Circuit& c, bool ended, const std::string& outcome = "") const;
  static CircuitKey KeyFromWire(const v1::CircuitKey& key);
  static void KeyToWire(const CircuitKey& key, v1::CircuitKey* out);
  absl::Status Reserve(Circuit& c, int slots);
  // Pairs in flight this node can hold for a circuit with `sides` link sides
  // here, at most `wanted` (at least 1; Reserve says whether 1 fits).
  uint32_t AffordableDepth(const Circuit& c, int sides, uint32_t wanted) const;
  void SendSetup(Circuit& c);
  // The head (or a node waiting for its own memory) sends the set-up again later.
  void ScheduleSetupRetry(Circuit& c);
  void OnSetup(const std::string& from, const v1::CircuitSetup& setup);
  void OnSetupReply(const std::string& from, const v1::CircuitSetupReply& reply);
  void OnTeardown(const std::string& from, const v1::CircuitTeardown& teardown);
  // Ends the circuit here: tells the neighbours on it except `from`, frees
  // everything, and ends the request at an end (error nullopt = completed).
  void EndCircuit(const CircuitKey& key, std::optional<NetworkError> error, const std::string& message,
                  const std::string& from);

  // circuit_pairs.cc: link-pair generation under credits, the pairs held,
  // cutoffs and discards.
  void RequestLinkPair(Circuit& c);
  void OnCredit(const std::string& from, const v1::CircuitCredit& credit);
  void SendCredit(Circuit& c);
  void OnDownstreamLinkEvent(const CircuitKey& key, const link::LinkEvent& event);
  void OnUpstreamLinkEvent(const CircuitKey& key, const link::LinkEvent& event);
  void AddPair(Circuit& c, bool upstream, const link::PairDelivered& pair);
  // A pair that has been through the circuit's purification rounds: tracked,
  // measured, swapped or delivered as the node's role says.
  void PairReady(Circuit& c, bool upstream, HeldPair& pair);
  void OnCutoff(const CircuitKey& key, bool upstream, uint64_t sequence);
  void Discard(Circuit& c, bool upstream, uint64_t sequence, const std::string& why);
  HeldPair* FindPair(Circuit& c, bool upstream, uint64_t sequence);
  void ErasePair(Circuit& c, bool upstream, uint64_t sequence);
  void FreePair(HeldPair& pair);
  MemoryDecayRates NeighbourRates(const Circuit& c, const std::string& neighbour) const;
  MemoryDecayRates OwnRates(const Circuit& c) const;

  // circuit_purification.cc: DEJMPS per link. The upstream end starts a
  // round on two pairs of the same level; the downstream end completes it
  // and decides.
  void TryPurify(Circuit& c);
  void OnPurify(const std::string& from, const v1::CircuitPurify& purify);
  void ServePendingPurify(Circuit& c);
  bool StartPurifyHere(Circuit& c, const v1::CircuitPurify& purify);
  // The circuit a round's device steps ran for; nullptr if it is gone, or
  // if the steps failed (the circuit then ends with DEVICE_ERROR).
  Circuit* CircuitAfterPurifySteps(const CircuitKey& key, const absl::Status& status);
  void SendPurifyResult(const Circuit& c, uint64_t keep_sequence, bool success, double fidelity,
                        const std::string& message);
  void OnPurifyResult(const std::string& from, const v1::CircuitPurifyResult& result);
  // Whether this node is the first qubit (node_a) of its link to `neighbour`.
  bool IsNodeA(const std::string& neighbour) const;

  // circuit_swapping.cc: swap-ASAP at repeaters, measurement at MEASURE ends.
  void TrySwap(Circuit& c);
  void OnSwapped(const CircuitKey& key, uint64_t up_sequence, uint64_t down_sequence,
                 absl::StatusOr<quantum::BellState> outcome);
  void Measure(Circuit& c, bool upstream, uint64_t sequence);
  void OnMeasured(const CircuitKey& key, bool upstream, uint64_t sequence, absl::StatusOr<int> outcome);

  // circuit_tracking.cc: tracks (Pauli frame and estimate) and verdicts.
  void HeadTrack(Circuit& c, HeldPair& pair);
  void SendTrack(Circuit& c, v1::CircuitTrack track);
  void OnTrack(const std::string& from, const v1::CircuitTrack& track);
  // Tracks for upstream pair `sequence` at a repeater or the tail.
  void HandleTrack(Circuit& c, const v1::CircuitTrack& track);
  void Decide(Circuit& c, HeldPair& pair, const v1::CircuitTrack& track);
  // Tells the head its pair `head_pair` will not be delivered.
  void SendFailedVerdict(Circuit& c, uint64_t head_pair, const std::string& message);
  void OnVerdict(const std::string& from, const v1::CircuitVerdict& verdict);

  NodeContext& context_;
  physical::QuantumDevice& device_;
  link::LinkLayer& link_;
  physical::NodeHardware hardware_;
  std::vector<physical::PhysicalLink> links_;
  NetworkLayerOptions options_;
  Rng rng_;
  AdvertFlooding routing_;
  DatagramService datagrams_;
  uint64_t incarnation_ = 0;
  uint64_t next_circuit_ = 1;
  uint32_t next_label_ = 0;
  RequestId next_request_id_ = 1;
  int reserved_ = 0;
  absl::flat_hash_map<CircuitKey, Circuit> circuits_;
  absl::flat_hash_map<RequestId, CircuitKey> by_request_;
  absl::flat_hash_map<uint32_t, NetworkEventHandler> receivers_;
  std::deque<std::pair<NetworkEventHandler, NetworkEvent>> pending_events_;
  TimerId flush_timer_ = kNoTimer;
  NetworkLayerStats stats_;
  Lifetime lifetime_;
};

}  // namespace qnet::network
