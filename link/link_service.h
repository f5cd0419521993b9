// The link layer's service vocabulary: what the layer above (and, through the
// daemon, a client) asks for - "n entangled pairs with neighbour B, fidelity
// >= F, within T" - and the events it gets back. Modelled on the QIA link
// layer (Dahlberg et al., SIGCOMM 2019): CREATE with KEEP (the pair stays in
// memory) or MEASURE (measured at once, e.g. for QKD), OK per pair with an
// entanglement id both ends share, and errors that reach both ends.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "absl/status/status.h"
#include "core/time.h"
#include "quantum/bell.h"
#include "quantum/quantum_system.h"

namespace qnet::link {

// Why a request (or a delivered pair) failed. Every failure of a request
// reaches both ends' requesters as a RequestFailed event.
enum class LinkError : uint8_t {
  kUnsupported,  // the hardware cannot reach min_fidelity with any parameter
  kTimeout,      // max_time passed before all pairs were delivered (e.g. waiting for memory)
  kNoResources,  // an end has no memory qubits at all (busy memory is waited for, not an error)
  kRejected,     // the other end has no receiver for the purpose id
  kExpired,      // a delivered pair is no longer valid (the far half was lost)
  kPeerDown,     // the neighbour went down or restarted
  kCancelled,    // either end cancelled the request
  kDeviceError,  // the device or physical layer failed unexpectedly (a bug or a broken device)
};
// "UNSUPPORTED", "TIMEOUT", ...
std::string_view LinkErrorName(LinkError error);
// UNSUPPORTED FailedPrecondition, TIMEOUT DeadlineExceeded, NO_RESOURCES
// ResourceExhausted, REJECTED PermissionDenied, EXPIRED Aborted, PEER_DOWN
// Unavailable, CANCELLED Cancelled, DEVICE_ERROR Internal.
absl::StatusCode ToStatusCode(LinkError error);
absl::Status ToStatus(LinkError error, std::string_view message);
// The inverse of ToStatusCode (nullopt for other codes).
std::optional<LinkError> LinkErrorFromStatusCode(absl::StatusCode code);

enum class RequestType : uint8_t { kKeep, kMeasure };

// How a MEASURE request picks each pair's basis (independently at each end,
// from that end's seeded randomness).
enum class BasisChoice : uint8_t {
  kZ,
  kX,
  kY,
  kBb84,      // Z or X, uniformly
  kSixState,  // Z, X or Y, uniformly
  kChsh,      // origin: A's settings {0, pi/2}; other end: B's {pi/4, -pi/4}, in the X-Z plane
  // Ekert 1991 with BBM92 key bases: origin Z or X; other end Z, X, B0 or B1
  // (pi/4, -pi/4 in the X-Z plane), uniformly. Z-Z and X-X pairs make key,
  // origin {Z, X} x other {B0, B1} pairs a CHSH test. Network layer only:
  // the link wire has no value for it yet (a link request is refused).
  kE91,
};

// The basis one end measured a MEASURE pair in.
enum class MeasurementBasis : uint8_t { kZ, kX, kY, kChshA0, kChshA1, kChshB0, kChshB1 };
quantum::Basis ToQuantumBasis(MeasurementBasis basis);
std::string_view MeasurementBasisName(MeasurementBasis basis);  // "Z", "X", "Y", "A0", ...

// This node's handle for a request, unique within the node's link layer
// (requests originated here and those accepted from a neighbour alike).
using RequestId = uint64_t;

struct EntanglementRequest {
  std::string remote_node;  // a neighbour of this node
  uint32_t number = 1;      // pairs wanted, >= 1
  RequestType type = RequestType::kKeep;
  BasisChoice basis = BasisChoice::kZ;  // MEASURE only
  double min_fidelity = 0.0;            // in [0, 1]; judged at delivery
  // 0 = no limit (a request waiting for memory that is never freed then
  // waits until cancelled); counted from Create at the origin.
  Duration max_time{0};
  uint32_t priority = 0;                // larger is served first
  uint32_t purpose_id = 0;              // the remote end must have a receiver for it
  // Stays open once `number` pairs are delivered (no RequestCompleted):
  // LinkLayer::Extend asks for more, and only Cancel or a failure ends it.
  // For a layer above that asks for pairs a few at a time on one link, so
  // each batch costs one message instead of a request's submission,
  // acceptance and ending.
  bool open = false;
};

// Names one delivered pair identically at both ends: the link's two nodes
// and a per-link sequence number (the generation id the link's master
// assigned; unique on the link, increasing within the master's incarnation).
struct EntanglementId {
  std::string node_a;
  std::string node_b;
  uint64_t sequence = 0;

  bool operator==(const EntanglementId&) const = default;
  std::string ToString() const;  // "alice-bob#17"
};

// Delivered to the remote end's receiver when it accepts a request.
struct IncomingRequest {
  RequestId request_id = 0;  // this node's handle (for Cancel)
  std::string origin;        // the neighbour that asked
  EntanglementRequest request;  // remote_node = origin; basis as the origin asked
};

// One pair, at one end.
struct PairDelivered {
  RequestId request_id = 0;
  EntanglementId entanglement_id;
  std::string remote_node;
  uint32_t purpose_id = 0;
  uint32_t pair_index = 0;  // 0, 1, ... in delivery order at this end
  RequestType type = RequestType::kKeep;
  quantum::BellState bell_state = quantum::BellState::kPhiPlus;  // the heralded state (same at both ends)
  // Estimated fidelity with bell_state at estimate_time, from the hardware's
  // calibration and the memories' waiting times (never from simulated state).
  // KEEP: at delivery. MEASURE: of the state the two qubits were measured in.
  double fidelity_estimate = 0.0;
  TimePoint estimate_time;
  // KEEP: the memory slot holding this end's qubit; the receiver of the
  // event owns it and must Free it.
  int slot = -1;
  // MEASURE: the outcome (0 = +1 eigenstate, raw: not corrected for the
  // Bell state's Pauli frame) and the basis; the slot is already free.
  int outcome = -1;
  MeasurementBasis basis = MeasurementBasis::kZ;
};

// A pair delivered earlier is lost (the far end never delivered it, or the
// peer restarted): discard it. For KEEP, `slot` is the slot it was delivered
// in (still owned by the layer above, which frees it).
struct PairExpired {
  RequestId request_id = 0;
  EntanglementId entanglement_id;
  int slot = -1;
  std::string message;
};

// All pairs delivered at this end.
struct RequestCompleted {
  RequestId request_id = 0;
  uint32_t pairs = 0;
};

struct RequestFailed {
  RequestId request_id = 0;
  LinkError error = LinkError::kCancelled;
  std::string message;
  uint32_t pairs_delivered = 0;  // delivered (OK events) before the failure
};

using LinkEvent = std::variant<IncomingRequest, PairDelivered, PairExpired, RequestCompleted, RequestFailed>;
// Runs on the node's event loop, never inside a call to the link layer.
using LinkEventHandler = std::function<void(const LinkEvent&)>;

}  // namespace qnet::link
