// Client side of a daemon's Node.Entangle / GetOutcomes / MeasureQubit,
// shared by qnetctl and the multi-process tests: runs one request, collects
// its pairs, fetches the far end's MEASURE outcomes, measures held KEEP
// qubits, and pairs both ends' results up for apps::AnalysePairs.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "apps/pair_statistics.h"
#include "security/client_endpoints.h"
#include "qnet/v1/node_service.grpc.pb.h"

namespace qnet::cli {

struct EntangleResult {
  std::vector<v1::PairEvent> pairs;  // as the origin reported them, in order
  v1::EntangleSummary summary;
};

// The daemon's Node.GetStatus (3 s deadline); Unavailable naming the address.
absl::StatusOr<v1::GetStatusResponse> GetStatus(const std::string& address);

// Streams one Entangle request to the daemon at `address`; `on_pair` sees
// each pair as it arrives. The status is the call's (INVALID_ARGUMENT,
// UNAVAILABLE for PEER_DOWN, DEADLINE_EXCEEDED, ...), with `partial` holding
// the pairs that came before a failure. `deadline` bounds the call (wall).
// `on_progress` sees what the request waits for while no pair comes.
absl::StatusOr<EntangleResult> RunEntangle(const std::string& address, const v1::EntangleRequest& request,
                                           absl::Duration deadline,
                                           const std::function<void(const v1::PairEvent&)>& on_pair = nullptr,
                                           EntangleResult* partial = nullptr,
                                           const std::function<void(const v1::EntangleProgress&)>& on_progress = nullptr);

// The far end's records of `pairs` (asked of the daemon at `far_address`),
// retried for up to `wait` while some are still missing (the far end may
// deliver a little after the origin).
absl::StatusOr<std::vector<v1::PairEvent>> FetchOutcomes(const std::string& far_address, const std::string& origin,
                                                         const std::vector<v1::PairEvent>& pairs,
                                                         absl::Duration wait = absl::Seconds(3));

// Matches both ends' MEASURE records by entanglement id (`origin` names the
// origin node, to place each outcome on the Bell state's first or second
// qubit); pairs missing at the far end are left out.
std::vector<apps::MeasuredPair> MatchPairs(const std::string& origin, const std::vector<v1::PairEvent>& near,
                                           const std::vector<v1::PairEvent>& far);

// A MeasureQubit request for `entanglement_id` in the basis `basis`: "z",
// "x", "y" (any case) or an angle in radians in the X-Z plane
// (cos(a) Z + sin(a) X). InvalidArgument names what is wrong.
absl::StatusOr<v1::MeasureQubitRequest> MeasureRequest(const std::string& entanglement_id, std::string_view basis);
v1::MeasureQubitRequest MeasureRequest(const std::string& entanglement_id, double xz_angle);

// One daemon's held KEEP qubits, measured over one channel (Node.MeasureQubit).
class HeldPairClient {
 public:
  explicit HeldPairClient(const std::string& address);
  ~HeldPairClient();
  // NOT_FOUND is retried for up to `not_found_wait` (the far end of a
  // request delivers a pair a little after the origin; 0: no retry).
  absl::StatusOr<v1::MeasureQubitResponse> Measure(const v1::MeasureQubitRequest& request,
                                                   absl::Duration not_found_wait = absl::ZeroDuration());

 private:
  std::unique_ptr<v1::Node::Stub> stub_;
};

// One call of HeldPairClient(address).Measure(...).
absl::StatusOr<v1::MeasureQubitResponse> MeasureQubit(const std::string& address,
                                                      const v1::MeasureQubitRequest& request,
                                                      absl::Duration not_found_wait = absl::ZeroDuration());

// Measures several held qubits at one daemon, one call each (in order), with
// MeasureQubit's retry; each result is that pair's response or error.
std::vector<absl::StatusOr<v1::MeasureQubitResponse>> MeasureHeldPairs(
    const std::string& address, const std::vector<v1::MeasureQubitRequest>& requests,
    absl::Duration not_found_wait = absl::Seconds(3));

// Pairs both ends' measurements of held KEEP qubits by entanglement id for
// apps::AnalysePairs (outcomes placed on the Bell state's node_a / node_b
// qubit). Same-axis Z, X or Y pairs count as such; node_a at X-Z angle 0 or
// pi/2 with node_b at pi/4 or -pi/4 as the CHSH settings A0/A1 x B0/B1
// (link::BasisChoice::kChsh). Pairs measured at one end only, or in other
// combinations, are left out.
std::vector<apps::MeasuredPair> MatchMeasuredQubits(const std::vector<v1::MeasureQubitResponse>& one_end,
                                                    const std::vector<v1::MeasureQubitResponse>& other_end);

// Streams one Teleport call to the daemon at `address` (the source);
// `on_shot` sees each shot as its outcome arrives, `on_progress` what the
// call waits for while none does. The status is the call's.
absl::StatusOr<v1::TeleportSummary> RunTeleport(const std::string& address, const v1::TeleportRequest& request,
                                                absl::Duration deadline,
                                                const std::function<void(const v1::TeleportShot&)>& on_shot = nullptr,
                                                const std::function<void(const v1::TeleportProgress&)>& on_progress =
                                                    nullptr);

// Runs one Ghz call at the daemon at `address` (the root); the status is
// the call's.
absl::StatusOr<v1::GhzSummary> RunGhz(const std::string& address, const v1::GhzRequest& request,
                                      absl::Duration deadline,
                                      const std::function<void(const v1::ShotProgress&)>& on_progress = nullptr);

// Runs one RunCircuit call at the daemon at `address` (the coordinator).
absl::StatusOr<v1::RunCircuitSummary> RunCircuit(const std::string& address, const v1::RunCircuitRequest& request,
                                                 absl::Duration deadline,
                                                 const std::function<void(const v1::ShotProgress&)>& on_progress =
                                                     nullptr);

// A TeleportRequest's state from text: a named state ("0", "1", "+", "-",
// "+i", "-i", with or without |...>) or Bloch angles "THETA,PHI" in radians.
absl::Status SetTeleportState(std::string_view text, v1::TeleportRequest& request);

// Streams one Qkd call to the daemon at `address` (the initiator);
// `on_progress` sees each progress event. The status is the call's.
absl::StatusOr<v1::QkdSummary> RunQkd(const std::string& address, const v1::QkdRequest& request,
                                      absl::Duration deadline,
                                      const std::function<void(const v1::QkdProgress&)>& on_progress = nullptr);

// The key the daemon at `address` holds under `key_id` (Node.GetKey).
// NOT_FOUND is retried for up to `not_found_wait`: the initiator's run ends
// when it sends the last post-processing message, so the far end stores the
// key a classical delay (and its loop's backlog) later.
absl::StatusOr<v1::GetKeyResponse> FetchKey(const std::string& address, const std::string& key_id,
                                            absl::Duration not_found_wait = absl::ZeroDuration());

}  // namespace qnet::cli
