// Client side of a daemon's Node.Entangle / GetOutcomes, shared by qnetctl
// and the multi-process tests: runs one request, collects its pairs, fetches
// the far end's MEASURE outcomes and pairs them up for apps::AnalysePairs.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "apps/pair_statistics.h"
#include "qnet/v1/node_service.pb.h"

namespace qnet::cli {

struct EntangleResult {
  std::vector<v1::PairEvent> pairs;  // as the origin reported them, in order
  v1::EntangleSummary summary;
};

// Streams one Entangle request to the daemon at `address`; `on_pair` sees
// each pair as it arrives. The status is the call's (INVALID_ARGUMENT,
// UNAVAILABLE for PEER_DOWN, DEADLINE_EXCEEDED, ...), with `partial` holding
// the pairs that came before a failure. `deadline` bounds the call (wall).
absl::StatusOr<EntangleResult> RunEntangle(const std::string& address, const v1::EntangleRequest& request,
                                           absl::Duration deadline,
                                           const std::function<void(const v1::PairEvent&)>& on_pair = nullptr,
                                           EntangleResult* partial = nullptr);

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

}  // namespace qnet::cli
