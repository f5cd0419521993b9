// GHZ states across nodes, built from end-to-end pairs by fusion at one
// node, and measured shot by shot so their fidelity and Mermin value come
// from outcomes.
//
// The root (the node that runs the request) asks the network layer for one
// KEEP pair with each of its k members, all at once. When it holds all k
// halves h1..hk it fuses them: CNOT h1 -> hj and a Z measurement of hj
// (outcome mj) for j = 2..k, which leaves (|0...0> + |1...1>)/sqrt(2) on h1
// and the k far halves, up to Pauli corrections that the root tracks instead
// of applying: member j's qubit carries X^(xj ^ mj) Z^zj, with (xj, zj) its
// pair's Bell-state frame (m1 = 0). Why fusion at the root and not growth
// along a path: every member's pair comes straight from the network layer
// (routing and swapping as for any pair), the state exists only once all k
// pairs do, so no qubit waits on a chain of other fusions, and the closed
// form on Werner pairs is short (docs/architecture.md, "GHZ states").
//
// Each shot is measured in one setting (a basis per node, root first): all
// Z, or one of the 2^(N-1) strings of X and Y with an even number of Y, in
// turn. The root measures h1 and tells each member its basis and Pauli frame
// (MEASURE); the member measures its half on its device, corrects the
// outcome by the frame (a Pauli that anticommutes with the basis flips it)
// and answers (OUTCOME). Settings and outcomes are what apps/ghz_statistics
// turns into a fidelity and a Mermin value. Memory: the root holds k halves
// at once (plus what the network layer reserves for its circuits).
//
// Failures lose nothing: a pair below the minimum fidelity is freed at both
// ends (DISCARD) and asked for again; a network error, a member's refusal or
// the request's timeout ends the request at every node (ABORT) and frees its
// qubits; a member that hears nothing by the deadline frees what it holds.
// Messages are network-layer datagrams, one text line each (ghz_distribution.cc).
#pragma once

#include <cstdint>
#include <functional>
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
#include "quantum/bell.h"

namespace qnet::transport {

// (0x3F000001 is the transport layer's, 0x3F000002 key distribution's, 0x3F000010
// the daemon's teleport reports, 0x3F000100 up key sessions'.)
inline constexpr uint32_t kGhzPurposeId = 0x3F000003;
// Nodes in one GHZ state (root included): 2^(N-1) + 1 settings and 2^N
// outcome patterns each stay small.
inline constexpr int kMaxGhzNodes = 8;
// GHZ requests a member keeps open per root at once (BEGIN beyond it is dropped).
inline constexpr int kMaxOpenRunsPerPeer = 16;

// The settings a GHZ request measures in turn, as one basis letter per node
// (root first): "ZZ..Z", then every X/Y string with an even number of Y.
std::vector<std::string> GhzSettings(int nodes);

// The outcome flip a Pauli frame X^x Z^z causes when measuring along
// `basis` ('X', 'Y' or 'Z'): 1 when the Pauli anticommutes with it.
int FrameFlip(int x, int z, char basis);

using GhzRunId = uint64_t;  // unique per root node

struct GhzRequest {
  std::vector<std::string> members;  // the other nodes, >= 2 distinct, not the root
  uint32_t shots = 1000;             // >= 1
  double min_fidelity = 0.0;         // of each end-to-end pair (network-layer estimate), in [0, 1]
  Duration timeout = std::chrono::seconds(60);  // the whole request; > 0
};

// Outcome tallies of one setting: counts[pattern], bit i of pattern = node
// i's frame-corrected outcome (0 = +1 eigenstate), node 0 the root.
struct GhzSettingCounts {
  std::string bases;
  uint64_t shots = 0;
  std::vector<uint64_t> counts;
};

struct GhzReport {
  GhzRunId id = 0;
  std::vector<std::string> nodes;  // root, then the members
  std::vector<GhzSettingCounts> settings;
  uint32_t shots = 0;
  uint64_t pairs_used = 0;       // fused into a GHZ state (k per shot)
  uint64_t pairs_discarded = 0;  // below min_fidelity
  double mean_pair_fidelity_estimate = 0.0;  // network layer's, over used pairs
  Duration simulated_time{0};    // from the request to the last outcome
};
// Runs on the event loop, never inside a call to the object. Errors:
// the network layer's (network::ToStatus), DeadlineExceeded "TIMEOUT: ...",
// a member's REFUSE (e.g. Internal "DEVICE_ERROR: ...").
using GhzHandler = std::function<void(GhzRunId, absl::StatusOr<GhzReport>)>;

struct GhzDistributionStats {
  uint64_t runs_done = 0;    // as the root
  uint64_t runs_failed = 0;  // at this node, either role
  uint64_t shots_measured = 0;  // as a member
};

class GhzDistribution {
 public:
  // Registers the network and datagram receivers for kGhzPurposeId.
  static absl::StatusOr<std::unique_ptr<GhzDistribution>> Build(NodeContext& context,
                                                                physical::QuantumDevice& device,
                                                                network::NetworkLayer& network);
  ~GhzDistribution();
  GhzDistribution(const GhzDistribution&) = delete;
  GhzDistribution& operator=(const GhzDistribution&) = delete;

  // This node is the root. Immediate errors: InvalidArgument (fewer than 2
  // members, the root or a duplicate among them, more than kMaxGhzNodes
  // nodes, shots 0, min_fidelity outside [0, 1], timeout <= 0, no handler),
  // NotFound "NO_ROUTE: ..." (a member unknown or unreachable now). Requests
  // at one root run one after the other.
  absl::StatusOr<GhzRunId> Run(const GhzRequest& request, GhzHandler handler);
  // Ends a run at every node and frees its qubits; its handler gets
  // Cancelled. Does nothing for a run that already ended.
  void Cancel(GhzRunId id);

  // Shots measured so far by a run of this root (0 for an unknown run).
  uint32_t shots_done(GhzRunId id) const;

  // Qubits the object holds now at this node (either role).
  int held_slots() const;
  size_t active_runs() const { return runs_.size(); }
  size_t active_member_runs() const { return member_runs_.size(); }
  const GhzDistributionStats& stats() const { return stats_; }

 private:
  enum class Phase : uint8_t { kQueued, kWaitingPairs, kFusing, kWaitingOutcomes };

  struct Half {  // the root's half of one member's pair
    network::RequestId request = 0;
    int slot = -1;
    network::EndToEndId pair;
    quantum::BellState frame = quantum::BellState::kPhiPlus;
    int fusion_outcome = 0;
  };

  struct RootRun {
    GhzRunId id = 0;
    GhzRequest request;
    GhzHandler handler;
    Phase phase = Phase::kQueued;
    TimerId deadline = kNoTimer;
    TimePoint deadline_at;
    TimePoint started;
    std::vector<std::string> settings;
    std::vector<Half> halves;  // one per member
    int root_outcome = -1;
    std::vector<int> member_outcomes;  // -1 until its OUTCOME came
    double estimate_sum = 0.0;
    GhzReport report;
  };

  // A member's pair half from a root, waiting for its MEASURE.
  struct MemberHalf {
    std::string root;
    int slot = -1;
    bool measuring = false;  // its MEASURE came; a repeat is ignored
  };
  struct MeasureOrder {
    std::string root;
    GhzRunId run = 0;
    uint32_t shot = 0;
    int x = 0, z = 0;
    char basis = 'Z';
    bool discard = false;
  };
  struct MemberKey {
    std::string root;
    GhzRunId run = 0;
    bool operator==(const MemberKey&) const = default;
    template <typename H>
    friend H AbslHashValue(H h, const MemberKey& k) {
      return H::combine(std::move(h), k.root, k.run);
    }
  };
  struct MemberRun {
    TimerId deadline = kNoTimer;
  };

  GhzDistribution(NodeContext& context, physical::QuantumDevice& device, network::NetworkLayer& network);

  // Root.
  void StartNext();
  void StartShot(RootRun& run);
  void RequestPair(RootRun& run, size_t member);
  void OnNetworkEventAsRoot(GhzRunId id, size_t member, const network::NetworkEvent& event);
  void Fuse(GhzRunId id, size_t member);
  void MeasureRoot(GhzRunId id);
  void OnOutcome(const std::string& member, GhzRunId id, uint32_t shot, int bit);
  void FailRun(GhzRunId id, absl::Status error, bool tell_members);
  RootRun* FindRun(GhzRunId id);

  // Member.
  void OnNetworkEventAsMember(const network::NetworkEvent& event);
  void OnDatagram(const std::string& source, const std::string& payload);
  void OnBegin(const std::string& root, GhzRunId id, Duration timeout);
  void OnMeasureOrder(const std::string& pair_key, MeasureOrder order);
  void EndMemberRun(const MemberKey& key);
  void FreeMemberHalf(const std::string& pair_key);

  void Send(const std::string& to, std::string payload);
  void Post(std::function<void()> fn);
  void FreeSlot(int& slot);
  std::string Where() const { return context_.node_name(); }

  NodeContext& context_;
  physical::QuantumDevice& device_;
  network::NetworkLayer& network_;
  GhzRunId next_id_ = 1;
  absl::flat_hash_map<GhzRunId, RootRun> runs_;
  std::vector<GhzRunId> queue_;  // runs_ keys in arrival order; the front one is active
  absl::flat_hash_map<MemberKey, MemberRun> member_runs_;
  absl::flat_hash_map<std::string, MemberHalf> member_halves_;  // by EndToEndId::ToString()
  absl::flat_hash_map<std::string, MeasureOrder> early_orders_;  // by EndToEndId::ToString()
  GhzDistributionStats stats_;
  Lifetime lifetime_;  // last: ends before the members its callbacks use
};

}  // namespace qnet::transport
