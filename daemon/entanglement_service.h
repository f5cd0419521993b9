// The daemon's entanglement front end over the link and network layers, run
// on the event loop: it turns a client's Entangle call into a link-layer
// CREATE (a neighbour) or a network-layer request (any other node, across
// repeaters) and streams the request's events back, and it is every node's
// receiver for the default purpose id in both layers, so requests from
// neighbours and from far nodes are accepted. It owns the
// KEEP pairs it is handed (at either end) for the hold time after delivery,
// so that a client can measure them (MeasureQubit: on the device, in a basis
// it chooses; the slot is freed at once), then frees them - a request for
// more pairs than memory slots waits in the link layer for that memory. It
// keeps the MEASURE outcomes it recorded as the far end (a bounded ring) for
// GetOutcomes, so a client can compare both ends.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/lifetime.h"
#include "core/node_context.h"
#include "daemon/lag_monitor.h"
#include "daemon/log.h"
#include "daemon/topology.h"
#include "link/link_layer.h"
#include "network/network_layer.h"
#include "physical/quantum_device.h"
#include "qnet/v1/node_service.pb.h"

namespace qnet::daemon {

// The purpose id every daemon accepts requests for (and Entangle uses).
inline constexpr uint32_t kDefaultPurposeId = 0;
// Limits enforced at the edge.
inline constexpr uint32_t kMaxPairsPerRequest = 100000;
inline constexpr size_t kOutcomeRingCapacity = 200000;
// One request's pairs: what qnetctl asks for after an Entangle call.
inline constexpr uint32_t kMaxOutcomeIdsPerRequest = kMaxPairsPerRequest;
// How long a KEEP pair stays in memory for a client at most (simulated),
// unless qnetd --keep-hold says otherwise.
inline constexpr Duration kDefaultKeepHold = std::chrono::seconds(10);
// Ids of pairs no longer held, remembered (bounded) to say why.
inline constexpr size_t kGonePairMemory = 65536;

class EntanglementService {
 public:
  // A request's stream: events as they happen, then exactly one `end`
  // (OK after the summary event, else the link error as a status).
  struct Stream {
    std::function<void(v1::EntangleEvent)> event;
    std::function<void(absl::Status)> end;
  };

  using MeasureDone = std::function<void(absl::StatusOr<v1::MeasureQubitResponse>)>;

  // `keep_hold` (>= 0): how long each KEEP pair is held after delivery.
  // `network` may be null (then only neighbours can be asked).
  EntanglementService(NodeContext& context, link::LinkLayer& link, network::NetworkLayer* network,
                      physical::QuantumDevice& device, const DaemonTopology& topology, const LagMonitor& lag,
                      const Logger& log, Duration keep_hold = kDefaultKeepHold);
  EntanglementService(const EntanglementService&) = delete;
  EntanglementService& operator=(const EntanglementService&) = delete;

  // Registers the receivers for kDefaultPurposeId.
  absl::Status Start();

  // This service's handle for a client's request (link- and network-layer
  // requests alike).
  using RequestHandle = uint64_t;

  // Validates (InvalidArgument with a message naming the field) and starts
  // the request; link- or network-layer refusals come back as their status
  // (e.g. NOT_FOUND "NO_ROUTE: ..." for an unreachable node).
  absl::StatusOr<RequestHandle> Entangle(const v1::EntangleRequest& request, Stream stream);
  // The client went away: cancels the request if it is still running.
  void Cancel(RequestHandle request);

  // InvalidArgument for more than kMaxOutcomeIdsPerRequest ids.
  absl::StatusOr<v1::GetOutcomesResponse> Outcomes(const v1::GetOutcomesRequest& request) const;

  // Measures the held KEEP qubit named by the request's entanglement id and
  // frees its slot; `done` runs once, on the loop, never inside this call.
  // Errors as Node.MeasureQubit documents (NotFound, InvalidArgument,
  // FailedPrecondition, Unavailable).
  void MeasureQubit(const v1::MeasureQubitRequest& request, MeasureDone done);

  // Starts wall-clock timers (the daemon's loop; not physics, so they count
  // for no lag).
  using WallTimerStarter = std::function<void(std::chrono::milliseconds after, std::function<void()> fire)>;
  // From now on each request's stream gets an EntangleProgress event about
  // every `every` of wall time while no pair comes (`time_scale`: simulated
  // seconds per wall second, to give waits in wall time).
  void EnableProgress(WallTimerStarter start_timer, double time_scale,
                      std::chrono::milliseconds every = std::chrono::seconds(1));
  // What the request waits for now; nullopt once it has ended.
  std::optional<v1::EntangleProgress> Progress(RequestHandle request) const;

  // Slots holding KEEP pairs this service owns now.
  size_t held_pairs() const { return held_.size(); }
  Duration keep_hold() const { return keep_hold_; }

 private:
  struct Origin {
    Stream stream;
    TimePoint started;
    std::vector<std::string> path;  // end-to-end requests: the route of the last pair
    LagMonitor::Mark lag_mark;
    std::string remote;
    uint32_t pairs_requested = 0;
    uint32_t pairs_delivered = 0;
    LagMonitor::Clock::time_point last_pair_wall;  // or the start
    LagMonitor::Clock::time_point last_progress_wall;
  };
  // A KEEP pair's qubit at this end, held for a client.
  struct HeldPair {
    int slot = -1;
    std::string node_a, node_b;  // the pair's ends (node_a: the Bell state's first qubit)
    quantum::BellState bell_state = quantum::BellState::kPhiPlus;
    TimePoint delivered_at;
    TimerId hold_timer = kNoTimer;
    bool measuring = false;
  };
  void OnOriginEvent(link::RequestId id, const link::LinkEvent& event);
  void OnReceiverEvent(const link::LinkEvent& event);
  void OnNetworkOriginEvent(RequestHandle handle, const network::NetworkEvent& event);
  void OnNetworkReceiverEvent(const network::NetworkEvent& event);
  // A pair delivered (by either layer) for a request made here / by a far node.
  template <typename Delivered>
  void OnOriginPair(Origin& origin, const Delivered& pair);
  template <typename Delivered>
  void OnReceivedPair(const Delivered& pair);
  void Hold(const std::string& key, int slot, const std::string& node_a, const std::string& node_b,
            quantum::BellState bell_state);
  void EndOrigin(RequestHandle handle, absl::Status status, uint32_t pairs);
  Origin NewOrigin(Stream stream, const std::string& remote, uint32_t pairs) const;
  // Frees a held pair's slot (if still held) and remembers why it is gone.
  void Release(const std::string& id, const std::string& why);
  void OnMeasured(const std::string& id, const quantum::Basis& basis, const std::string& basis_name,
                  absl::StatusOr<int> outcome, const MeasureDone& done);
  void NoteGone(const std::string& id, std::string why);
  // Progress for one request, then again `progress_every_` later, until it ends.
  void ScheduleProgress(RequestHandle handle);
  void Record(const std::string& origin, const v1::PairEvent& pair);

  NodeContext& context_;
  link::LinkLayer& link_;
  network::NetworkLayer* network_;
  physical::QuantumDevice& device_;
  const DaemonTopology& topology_;
  const LagMonitor& lag_;
  const Logger& log_;
  Duration keep_hold_;
  WallTimerStarter start_wall_timer_;  // empty: no progress events
  double time_scale_ = 1.0;
  std::chrono::milliseconds progress_every_{1000};
  // By handle: a link request's id, or a network request's id | kNetworkHandle.
  static constexpr RequestHandle kNetworkHandle = RequestHandle{1} << 63;
  absl::flat_hash_map<RequestHandle, Origin> origins_;
  absl::flat_hash_map<std::string, HeldPair> held_;  // KEEP pairs by entanglement id (either end)
  absl::flat_hash_map<std::string, std::string> gone_;  // id -> why it is no longer held
  std::deque<std::string> gone_order_;
  struct Recorded {
    std::string origin;
    v1::PairEvent pair;
  };
  absl::flat_hash_map<std::string, Recorded> outcomes_;
  std::deque<std::string> outcome_order_;  // oldest first
  // Timers and device callbacks may outlive the service (shutdown). Last:
  // it ends before the members its callbacks use.
  Lifetime lifetime_;
};

}  // namespace qnet::daemon
