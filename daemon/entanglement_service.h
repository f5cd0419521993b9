// The daemon's entanglement front end over the link layer, run on the event
// loop: it turns a client's Entangle call into a link-layer CREATE and
// streams the request's events back, and it is every node's receiver for the
// default purpose id, so a neighbour's requests are accepted. It owns the
// KEEP pairs it is handed (at either end) until their request ends or
// kKeepHoldTime passes, then frees them (a client cannot use a qubit over
// gRPC, and a request for more pairs than memory slots needs them back), and it keeps the MEASURE outcomes it recorded as the far end
// (a bounded ring) for GetOutcomes, so a client can compare both ends.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/node_context.h"
#include "daemon/log.h"
#include "daemon/topology.h"
#include "link/link_layer.h"
#include "physical/quantum_device.h"
#include "qnet/v1/node_service.pb.h"

namespace qnet::daemon {

// The purpose id every daemon accepts requests for (and Entangle uses).
inline constexpr uint32_t kDefaultPurposeId = 0;
// Limits enforced at the edge.
inline constexpr uint32_t kMaxPairsPerRequest = 100000;
inline constexpr size_t kOutcomeRingCapacity = 200000;
// How long a KEEP pair stays in memory at most (simulated).
inline constexpr Duration kKeepHoldTime = std::chrono::milliseconds(1);

class EntanglementService {
 public:
  // A request's stream: events as they happen, then exactly one `end`
  // (OK after the summary event, else the link error as a status).
  struct Stream {
    std::function<void(v1::EntangleEvent)> event;
    std::function<void(absl::Status)> end;
  };

  EntanglementService(NodeContext& context, link::LinkLayer& link, physical::QuantumDevice& device,
                      const DaemonTopology& topology, const Logger& log);
  EntanglementService(const EntanglementService&) = delete;
  EntanglementService& operator=(const EntanglementService&) = delete;

  // Registers the receiver for kDefaultPurposeId.
  absl::Status Start();

  // Validates (InvalidArgument with a message naming the field) and starts
  // the request; link-layer refusals come back as their status.
  absl::StatusOr<link::RequestId> Entangle(const v1::EntangleRequest& request, Stream stream);
  // The client went away: cancels the request if it is still running.
  void Cancel(link::RequestId request_id);

  v1::GetOutcomesResponse Outcomes(const v1::GetOutcomesRequest& request) const;

  // Slots holding KEEP pairs this service owns now.
  size_t held_pairs() const;

 private:
  struct Origin {
    Stream stream;
    TimePoint started;
  };
  void OnOriginEvent(link::RequestId id, const link::LinkEvent& event);
  void OnReceiverEvent(const link::LinkEvent& event);
  void HoldSlot(link::RequestId id, int slot);
  void FreeSlot(link::RequestId id, int slot);
  void ReleaseRequest(link::RequestId id);
  void Record(const std::string& origin, const v1::PairEvent& pair);

  NodeContext& context_;
  link::LinkLayer& link_;
  physical::QuantumDevice& device_;
  const DaemonTopology& topology_;
  const Logger& log_;
  absl::flat_hash_map<link::RequestId, Origin> origins_;
  absl::flat_hash_map<link::RequestId, std::vector<int>> held_;  // KEEP slots per request (either end)
  struct Recorded {
    std::string origin;
    v1::PairEvent pair;
  };
  absl::flat_hash_map<std::string, Recorded> outcomes_;
  std::deque<std::string> outcome_order_;  // oldest first
};

// The PairEvent for a delivered pair (latency measured from `started`).
v1::PairEvent ToPairEvent(const link::PairDelivered& pair, TimePoint started);

}  // namespace qnet::daemon
