// The network layer's service vocabulary: what the layer above (and, through
// the daemon, a client) asks for - "n entangled pairs with node C, anywhere
// in the network, fidelity >= F, within T" - and the events it gets back.
// Modelled on the QIA network protocol (Kozlowski, Dahlberg, Wehner, CoNEXT
// 2020): the same request fields as a link request, delivered end to end
// over a path of repeaters that swap entanglement, with an end-to-end id and
// Bell state both ends agree on.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "core/time.h"
#include "link/link_service.h"
#include "quantum/bell.h"

namespace qnet::network {

enum class NetworkError : uint8_t {
  kUnsupported,  // no path can reach min_fidelity (best reachable named in the message)
  kTimeout,      // max_time passed before all pairs were delivered
  kNoResources,  // a node on the path has no memory to spare for the circuit
  kRejected,     // the far end has no receiver for the purpose id
  kNoRoute,      // the far end is unknown or unreachable
  kPeerDown,     // a node or link on the path went down
  kCancelled,    // either end cancelled the request
  kDeviceError,  // a device or lower layer failed unexpectedly
};
std::string_view NetworkErrorName(NetworkError error);  // "NO_ROUTE", ...
absl::StatusCode ToStatusCode(NetworkError error);
absl::Status ToStatus(NetworkError error, std::string_view message);
// Wire form (0 = no error) and back; nullopt for unknown values.
uint32_t ToWire(std::optional<NetworkError> error);
std::optional<NetworkError> NetworkErrorFromWire(uint32_t value);

using RequestId = uint64_t;

struct EndToEndRequest {
  std::string remote_node;  // any other node of the network
  uint32_t number = 1;      // pairs wanted, >= 1
  link::RequestType type = link::RequestType::kKeep;
  link::BasisChoice basis = link::BasisChoice::kZ;  // MEASURE only; kChsh: head A, far end B
  double min_fidelity = 0.0;                        // in [0, 1], of every delivered pair
  Duration max_time{0};                             // 0 = no limit
  uint32_t priority = 0;
  uint32_t purpose_id = 0;  // the far end must have a receiver for it
};

// Names one end-to-end pair identically at both ends.
struct EndToEndId {
  std::string head;  // the node that made the request (first qubit of bell_state)
  std::string tail;
  uint64_t circuit = 0;   // the head's circuit number
  uint64_t sequence = 0;  // 0, 1, ... on the circuit
  bool operator==(const EndToEndId&) const = default;
  std::string ToString() const;  // "alice-charlie#c5.17"
};

struct IncomingRequest {
  RequestId request_id = 0;
  std::string origin;
  EndToEndRequest request;  // remote_node = origin
  std::vector<std::string> path;
};

struct PairDelivered {
  RequestId request_id = 0;
  EndToEndId id;
  std::string remote_node;
  uint32_t purpose_id = 0;
  uint32_t pair_index = 0;
  link::RequestType type = link::RequestType::kKeep;
  // The end-to-end Bell state (swap outcomes and link heralds composed).
  quantum::BellState bell_state = quantum::BellState::kPhiPlus;
  // From the links' calibrated estimates, swap noise and memory decay over
  // the actual waiting times (never from simulated state). KEEP: when the
  // head learns of the pair (the later of the two deliveries); MEASURE: of
  // the state the ends measured.
  double fidelity_estimate = 0.0;
  TimePoint estimate_time;
  int slot = -1;  // KEEP: the receiver of the event owns the slot and must Free it
  int outcome = -1;  // MEASURE: raw outcome (0 = +1 eigenstate), not frame-corrected
  link::MeasurementBasis basis = link::MeasurementBasis::kZ;
  std::vector<std::string> path;  // head ... tail
};

struct RequestCompleted {
  RequestId request_id = 0;
  uint32_t pairs = 0;
};

struct RequestFailed {
  RequestId request_id = 0;
  NetworkError error = NetworkError::kCancelled;
  std::string message;
  uint32_t pairs_delivered = 0;
};

using NetworkEvent = std::variant<IncomingRequest, PairDelivered, RequestCompleted, RequestFailed>;
// Runs on the node's event loop, never inside a call to the network layer.
using NetworkEventHandler = std::function<void(const NetworkEvent&)>;

}  // namespace qnet::network
