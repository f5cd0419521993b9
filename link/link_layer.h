// The link layer of one node: the entanglement-generation service over each
// of its links (see link_service.h for the service itself), modelled on the
// QIA link layer (Dahlberg et al., SIGCOMM 2019).
//
// Protocol, per link:
// - Distributed queue with one master, the link's node_a (which also hosts
//   the heralding station). A request made at either end is first submitted
//   to the other end, which accepts it (it has a receiver for the purpose id)
//   or refuses it; only then does the master queue it. The master serves the
//   queue by priority (larger first), FIFO within a priority, alternating
//   between the two ends' requests at equal priority.
// - For each generation the master allocates a memory slot, picks a fresh
//   generation id and the bright-state parameter (the largest alpha whose
//   calibrated fidelity at delivery meets min_fidelity), starts it on the
//   physical layer and assigns it to the other end, which allocates a slot
//   (or answers that it has none free now) and starts it too. Several
//   generations run at once, up to the smaller end's memory.
// - Memory held by the layer above (KEEP pairs it has not freed yet) comes
//   back: a request for more pairs than memory slots waits for it. The
//   master retries when the layer above says it freed memory (OnMemoryFreed)
//   and polls every retransmission timeout when its own or the far end's
//   slots are all in use; only max_time (TIMEOUT, naming the memory wait) or
//   a cancel ends such a request. A node without memory qubits at all
//   refuses at once (NO_RESOURCES).
// - Each end tells the other how its generation ended; a pair is delivered
//   (OK at both ends, same entanglement id) only once both ends succeeded,
//   so the ends agree on every pair even when heralds are lost. MEASURE pairs
//   are measured as soon as the herald arrives and handed up once confirmed.
// - Every protocol message is resent until acknowledged and handled once
//   (ReliableChannel); a generation whose herald went missing is abandoned
//   by a watchdog at the master and retried. A request ended at one end
//   (cancel, timeout, error) is ended at the other with the same error; a
//   pair one end delivered and the other dropped in that race is EXPIRED.
// - A neighbour going down fails its requests with PEER_DOWN at this end; a
//   neighbour seen with a new incarnation restarted, and the KEEP pairs
//   delivered with it earlier are EXPIRED.
// Memory: a slot belongs to the link layer from allocation until it is freed
// or handed up in a KEEP delivery; every other path frees it. A request
// waiting for memory holds none.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/lifetime.h"
#include "core/node_context.h"
#include "core/recent_id_map.h"
#include "core/rng.h"
#include "link/bounded_map.h"
#include "link/fidelity_table.h"
#include "link/link_event_queue.h"
#include "link/link_service.h"
#include "link/reliable_channel.h"
#include "physical/physical_layer.h"
#include "physical/quantum_device.h"
#include "qnet/v1/link_messages.pb.h"

namespace qnet::link {

struct LinkLayerOptions {
  // Single-click bright-state parameters to choose from.
  std::vector<double> alpha_grid = DefaultAlphaGrid();
  // Floor of the retransmission timeout (it adapts to measured round trips).
  Duration min_retransmit_timeout = std::chrono::microseconds(100);
  // How long an ack waits for a message to ride on before it goes alone, as
  // a fraction of min_retransmit_timeout (the peer's timeout measures it,
  // so it stays well below 1). Half lets the far end's report, which leaves
  // with the herald, carry the ack of an assignment on short links.
  double ack_delay_fraction = 0.5;
  // A request whose generations fail this many times in a row (lost heralds,
  // device errors) fails with DEVICE_ERROR instead of retrying forever.
  uint32_t max_consecutive_failures = 64;
};

// Counters over the link layer's life (all links), for tests and status.
// Pairs delivered on one link at this end.
struct LinkPairStats {
  std::string link;  // the link's name
  uint64_t delivered_keep = 0;
  uint64_t delivered_measure = 0;
  // Sum and count of the delivered pairs' fidelity estimates (the mean is
  // their ratio; pairs delivered without an estimate are not counted).
  double fidelity_estimate_sum = 0.0;
  uint64_t fidelity_estimates = 0;
};

struct LinkLayerStats {
  uint64_t generations_started = 0;  // physical generations started at this end
  uint64_t generations_failed = 0;   // ended without a pair (either end failed, or abandoned)
  uint64_t lost_heralds = 0;         // abandoned by the watchdog or the grace timer
  uint64_t pairs_delivered = 0;
  uint64_t pairs_expired = 0;
  uint64_t far_memory_waits = 0;     // master: the far end had no free slot for a generation
  uint64_t memory_waits = 0;         // master: this end had no free slot for a generation
};

class LinkLayer {
 public:
  // `links`: this node's links with the far ends' hardware (as for the
  // physical layer). InvalidArgument if a link does not have this node as an
  // end or two links lead to the same neighbour.
  static absl::StatusOr<std::unique_ptr<LinkLayer>> Build(NodeContext& context, physical::QuantumDevice& device,
                                                          physical::PhysicalLayer& physical,
                                                          physical::NodeHardware hardware,
                                                          std::vector<physical::PhysicalLink> links,
                                                          LinkLayerOptions options = {});
  ~LinkLayer();
  LinkLayer(const LinkLayer&) = delete;
  LinkLayer& operator=(const LinkLayer&) = delete;

  // --- The service.

  // Accepts requests from neighbours that carry `purpose_id`; their events
  // (IncomingRequest, PairDelivered, ...) go to `handler`. AlreadyExists if
  // the purpose id has a receiver; InvalidArgument for an empty handler.
  absl::Status RegisterReceiver(uint32_t purpose_id, LinkEventHandler handler);
  // Later requests for the purpose id are REJECTED; accepted ones go on
  // reporting to the handler they were accepted with. NotFound if none.
  absl::Status UnregisterReceiver(uint32_t purpose_id);

  // Asks for entanglement with a neighbour; `handler` gets this request's
  // events (PairDelivered, PairExpired, then one RequestCompleted or
  // RequestFailed). Immediate errors: InvalidArgument (not a neighbour,
  // number 0, min_fidelity outside [0, 1], negative max_time, empty
  // handler), FailedPrecondition "UNSUPPORTED: ..." (no parameter reaches
  // min_fidelity), ResourceExhausted "NO_RESOURCES: ..." (an end has no
  // memory at all), Unavailable "PEER_DOWN: ..." (the neighbour is down).
  absl::StatusOr<RequestId> Create(const EntanglementRequest& request, LinkEventHandler handler);
  // Ends a request (originated here or accepted from a neighbour): both
  // ends' handlers get RequestFailed CANCELLED. NotFound if it is not active.
  absl::Status Cancel(RequestId request_id);
  // Asks an open request (originated here) for `more` pairs beyond those
  // asked so far; the request queues again behind the link's other waiting
  // requests. The far end hears of it only if it is the link's master (its
  // `number` is otherwise the one submitted), and only once it has
  // accepted the request. NotFound if it is not
  // active here; FailedPrecondition if it is not open or not originated
  // here; InvalidArgument for 0 or a total beyond 2^32 - 1.
  absl::Status Extend(RequestId request_id, uint32_t more);
  // The layer above freed memory slots (e.g. KEEP pairs it was done with):
  // generations waiting for this end's memory start now instead of at the
  // next poll. Optional: without it the master polls.
  void OnMemoryFreed();

  // The calibration table of the link to `neighbour` (built on first use),
  // for the layer above's planning and adverts. InvalidArgument if it is not
  // a neighbour; FailedPrecondition (UNSUPPORTED) if the link cannot work.
  absl::StatusOr<const FidelityTable*> FidelityTableFor(const std::string& neighbour);

  // --- Entry points for the node's stack.
  void OnLinkMessage(const std::string& from, const v1::LinkMessage& message);
  void OnNeighbourUp(const std::string& neighbour);
  // Call before the physical layer's OnNeighbourDown.
  void OnNeighbourDown(const std::string& neighbour);

  // --- Introspection (tests, status reports).
  size_t active_requests() const { return requests_.size(); }
  // Memory slots the link layer holds now (generating, measuring or awaiting
  // the far end's confirmation); KEEP pairs handed up are not counted.
  int held_slots() const;
  // Generations under way at this end.
  size_t active_generations() const;
  // Reliable messages resent, over all links.
  uint64_t retransmissions() const;
  // Messages that named an unknown link or came from the wrong neighbour.
  uint64_t ignored_messages() const { return ignored_messages_; }
  uint64_t incarnation() const { return incarnation_; }
  const LinkLayerStats& stats() const { return stats_; }
  // Pairs delivered on the link to `neighbour`; NotFound if none.
  absl::StatusOr<LinkPairStats> PairStats(const std::string& neighbour) const;

 private:
  struct RequestKey {
    std::string origin;
    uint64_t number = 0;
    bool operator==(const RequestKey&) const = default;
    template <typename H>
    friend H AbslHashValue(H h, const RequestKey& k) {
      return H::combine(std::move(h), k.origin, k.number);
    }
  };

  struct LinkState;

  struct Request {
    RequestId id = 0;
    RequestKey key;
    LinkState* link = nullptr;
    bool originated_here = false;
    bool accepted = false;  // both ends know it (the master may serve it)
    EntanglementRequest params;
    SharedLinkEventHandler handler;
    double alpha = 0.0;
    uint32_t delivered = 0;
    uint32_t in_flight = 0;  // master: generations under way for it
    uint32_t consecutive_failures = 0;
    uint64_t queue_order = 0;
    TimerId deadline = kNoTimer;
  };

  enum class Own { kRunning, kMeasuring, kReady };

  struct Generation {
    uint64_t id = 0;
    RequestId request = 0;
    int slot = -1;  // -1 once freed or handed up
    double alpha = 0.0;
    bool physical_running = false;
    Own own = Own::kRunning;
    quantum::BellState label = quantum::BellState::kPhiPlus;
    TimePoint emitted_at;
    TimePoint measured_at;
    int outcome = -1;
    MeasurementBasis basis = MeasurementBasis::kZ;
    bool peer_reported = false;
    v1::LinkGenerationReport peer;
    TimerId timer = kNoTimer;  // master: watchdog; other end: grace after the peer's success
  };

  // A delivered pair as a late RequestEnded may need it; its EntanglementId
  // follows from the link and the generation id (PairIdOf), so it is not kept.
  struct DeliveredPair {
    RequestId request = 0;
    SharedLinkEventHandler handler;
    RequestType type = RequestType::kKeep;
    int slot = -1;
  };

  // How many ended requests, early reports and delivered pairs a link remembers.
  static constexpr size_t kMemory = 4096;

  struct LinkState {
    physical::PhysicalLink link;
    std::string name;
    std::string peer;
    bool is_master = false;  // node_a
    bool peer_down = false;
    uint64_t peer_incarnation = 0;
    std::unique_ptr<ReliableChannel> channel;
    std::unique_ptr<FidelityTable> table;  // built on first use
    LinkPairStats pair_stats;
    absl::Status table_error;
    absl::flat_hash_map<RequestKey, RequestId> by_key;
    absl::flat_hash_map<uint64_t, Generation> generations;
    // Requests that ended here, for late messages, by number: those this
    // end made and those the peer made (no other node's request runs on
    // the link). Each end numbers its requests on a link densely.
    RecentIdMap<v1::LinkErrorCode> ended_here{kMemory};
    RecentIdMap<v1::LinkErrorCode> ended_there{kMemory};
    // Non-master: the master's reports that came before its assignment.
    BoundedMap<uint64_t, v1::LinkGenerationReport> early_reports{kMemory};
    // Pairs delivered on this link, by generation id (dense: the master's).
    RecentIdMap<DeliveredPair> delivered{kMemory};
    // This end's next request number on the link (a dense count per
    // link: the memory of ended requests is kept by number).
    uint64_t next_request_number = 1;
    // Master only.
    uint64_t generation_prefix = 0;
    uint64_t next_generation = 1;
    uint64_t next_queue_order = 1;
    int max_in_flight = 1;
    bool last_served_local = false;
    TimerId memory_retry = kNoTimer;
    bool memory_retry_own = false;  // the retry waits for this end's memory (not the far end's)
    // Why generations wait for memory ("" when they do not): set when an
    // end had no free slot for one, cleared by a delivery or an allocation.
    std::string memory_wait;
  };

  // Flushes the queued events when a protocol step (message, timer,
  // callback) is over, so handlers always see consistent state.
  struct StepScope {
    explicit StepScope(LinkLayer& layer) : events(layer.events_) {}
    ~StepScope() { events.Flush(); }
    LinkEventQueue& events;
  };

  LinkLayer(NodeContext& context, physical::QuantumDevice& device, physical::PhysicalLayer& physical,
            physical::NodeHardware hardware, LinkLayerOptions options);

  // link_layer.cc: lookups and shared helpers.
  LinkState* FindLinkByPeer(const std::string& peer);
  absl::StatusOr<const FidelityTable*> Table(LinkState& link);
  Request* FindRequest(RequestId id);
  Request* FindRequest(LinkState& link, const RequestKey& key);
  // The generation `id` on the link named `link_name` (nullptr if either is gone).
  Generation* FindGeneration(const std::string& link_name, uint64_t id, LinkState** link);
  // The ids of `link`'s generations (only those serving `request`, if set), in order.
  static std::vector<uint64_t> SortedGenerations(const LinkState& link, std::optional<RequestId> request = {});
  absl::Status ValidateParams(const EntanglementRequest& request) const;
  // "all N memory slots at <node> are in use".
  std::string AllSlotsInUse() const;

  // link_requests.cc: the life of a request at both ends.
  void OnSubmit(LinkState& link, const v1::LinkRequestSubmit& submit);
  void OnAccepted(LinkState& link, const v1::LinkRequestAccepted& accepted);
  // The master has the request (its acceptance, or an assignment that
  // overtook it): the master queues it; a non-master origin of an open
  // request sends the total extended so far. False if it already had it.
  bool NoteAccepted(LinkState& link, Request& r);
  void OnExtend(LinkState& link, const v1::LinkRequestExtend& extend);
  // Raises an open request's total to `pairs` (either end).
  void ExtendTo(Request& request, uint32_t pairs);
  void OnEnded(LinkState& link, const v1::LinkRequestEnded& ended);
  void OnDeadline(RequestId id);
  void Refuse(LinkState& link, const RequestKey& key, LinkError error, const std::string& message);
  void SendEnded(LinkState& link, const RequestKey& key, LinkError error, const std::string& message,
                 const std::vector<uint64_t>& undelivered);
  void EndRequest(RequestId id, LinkError error, const std::string& message, bool notify_peer);
  void CompleteRequest(RequestId id);
  void RemoveRequest(Request& request);
  void NoteEnded(LinkState& link, const RequestKey& key, v1::LinkErrorCode why);
  // How the request ended, if the link remembers it.
  const v1::LinkErrorCode* FindEnded(LinkState& link, const RequestKey& key);
  // The memory of ended requests for `origin`'s; nullptr for a node that is
  // neither end of the link.
  RecentIdMap<v1::LinkErrorCode>* EndedBy(LinkState& link, const std::string& origin);

  // link_queue.cc: the master's distributed queue.
  void Schedule(LinkState& link);
  void ScheduleAll();
  Request* PickNext(LinkState& link);
  void StartMemoryRetry(LinkState& link, bool own_memory);
  // Why `link` waits for memory, for a TIMEOUT's message: its last shortage,
  // else this end's memory if it is all in use, else "".
  std::string MemoryWait(const LinkState& link) const;

  // link_generation.cc: generations, from assignment to herald or failure.
  // Master: starts a generation for `request` in `slot` and assigns it to the far end.
  void StartGeneration(LinkState& link, Request& request, int slot);
  void OnAssign(LinkState& link, const v1::LinkGenerationAssign& assign);
  void OnReport(LinkState& link, const v1::LinkGenerationReport& report);
  // Records generation `id` in `slot` and starts it on the physical layer; on
  // a refusal frees the slot and says why.
  absl::StatusOr<Generation*> StartPhysical(LinkState& link, uint64_t id, RequestId request, int slot, double alpha);
  void OnPhysicalResult(const std::string& link_name, uint64_t generation_id,
                        const physical::GenerationResult& result);
  void OnWatchdog(const std::string& link_name, uint64_t generation_id);
  void OnGrace(const std::string& link_name, uint64_t generation_id);
  Duration WatchdogTimeout(const LinkState& link, double alpha) const;
  void SendReport(LinkState& link, const Generation& generation);  // success
  // Failure; `error` (with `transient`) when it concerns the request.
  void SendFailure(LinkState& link, uint64_t generation_id, const std::string& message,
                   v1::LinkErrorCode error = v1::LINK_ERROR_NONE, bool transient = false);
  // Aborts the physical generation, frees its slot and forgets it.
  void DropGeneration(LinkState& link, uint64_t generation_id);
  // A generation that did not produce a pair: accounting at the master
  // (retry, or end the request for a persistent error).
  void GenerationFailed(LinkState& link, uint64_t generation_id, const absl::Status& why, bool report,
                        const v1::LinkGenerationReport* peer_report);

  // link_delivery.cc: measurement, delivery and expiry of pairs.
  void OnMeasured(const std::string& link_name, uint64_t generation_id, absl::StatusOr<int> outcome);
  MeasurementBasis ChooseBasis(const Request& request);
  void TryDeliver(LinkState& link, uint64_t generation_id);
  void NoteDelivered(LinkState& link, uint64_t generation_id, DeliveredPair pair);
  static EntanglementId PairIdOf(const LinkState& link, uint64_t generation_id);
  void ForgetKeptSlot(int slot);
  // The far end dropped these generations' pairs when it ended a request.
  void ExpireUndelivered(LinkState& link, const v1::LinkRequestEnded& ended);
  // The far end restarted: its halves of the KEEP pairs still held are gone.
  void ExpireKeptPairs(LinkState& link, const std::string& message);

  // link_peers.cc: messaging with the neighbours.
  void Send(LinkState& link, v1::LinkMessage message);
  static RequestKey KeyFromWire(const v1::LinkRequestKey& key);
  static void KeyToWire(const RequestKey& key, v1::LinkRequestKey* out);
  // Ends everything on the link with PEER_DOWN; `restarted`: the peer lost
  // its state, so pairs delivered with it expire too.
  void PeerLost(LinkState& link, const std::string& message, bool restarted);

  NodeContext& context_;
  physical::QuantumDevice& device_;
  physical::PhysicalLayer& physical_;
  physical::NodeHardware hardware_;
  LinkLayerOptions options_;
  Rng rng_;
  uint64_t incarnation_ = 0;
  RequestId next_request_id_ = 1;
  std::vector<std::unique_ptr<LinkState>> links_;
  absl::flat_hash_map<std::string, LinkState*> link_by_name_;
  absl::flat_hash_map<RequestId, Request> requests_;
  absl::flat_hash_map<uint32_t, SharedLinkEventHandler> receivers_;
  // KEEP pairs handed up, by slot, until the slot is seen free or reused.
  struct KeptPair {
    std::string link;
    uint64_t generation = 0;
    DeliveredPair pair;
  };
  absl::flat_hash_map<int, KeptPair> kept_by_slot_;
  LinkEventQueue events_;
  bool scheduling_ = false;
  bool schedule_again_ = false;
  uint64_t ignored_messages_ = 0;
  LinkLayerStats stats_;
  Lifetime lifetime_;  // last: ends before the members its callbacks use
};

}  // namespace qnet::link
