// The trusted-node relay: a key between two nodes that share no link, made
// of BBM92 hop keys along the network layer's route, with the nodes between
// them trusted (they learn the key).
//
// A relay session from A to B over the path A - R1 - ... - Rk - B: A sends
// RELAY_START to every other node of the path; each node but B starts a
// BBM92 hop session with its right neighbour, tagged with the relay session.
// Each Ri, holding its left and right hop keys, sends K_left XOR K_right
// (truncated to the shorter) to B; B recovers K_A = K_last XOR (all
// announcements), truncated to the shortest, and tells A the length and key
// id (RELAY_DONE). Any failure on the path is sent to A and B (RELAY_ABORT),
// A tells the rest.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/node_context.h"
#include "core/time.h"
#include "keydist/key_distribution.h"
#include "qkd/bit_string.h"
#include "qkd/post_processing.h"
#include "qnet/v1/qkd_messages.pb.h"

namespace qnet::keydist {

// The relay sessions one node takes part in (at any position on the path).
// Part of that node's KeyDistribution: its hops are sessions there, its
// messages travel as its datagrams, its results reach its handlers.
class TrustedRelays {
 public:
  using SessionKey = KeyDistribution::SessionKey;  // the origin and its relay session id
  using HopOf = KeyDistribution::HopOf;

  // A hop session's key, as this node holds it.
  struct HopKey {
    qkd::BitString bits;
    std::string key_id;
    qkd::PostProcessingReport report;
    uint64_t auth_bits_consumed = 0;  // this hop's, off its key into the pair's pool
  };

  explicit TrustedRelays(KeyDistribution& kd);
  ~TrustedRelays();  // cancels the deadlines; no handler runs
  TrustedRelays(const TrustedRelays&) = delete;
  TrustedRelays& operator=(const TrustedRelays&) = delete;

  // A relay session to `peer` from this node (KeyDistribution::StartSession).
  absl::StatusOr<SessionId> Start(const std::string& peer, const QkdSessionOptions& options, ProgressHandler progress,
                                  DoneHandler done);
  // Cancels the relay session `key` if this node started it; false if not.
  bool Cancel(const SessionKey& key);
  // A RELAY_START, RELAY_ANNOUNCEMENT, RELAY_DONE or RELAY_ABORT datagram.
  void OnMessage(const std::string& source, const SessionKey& key, const v1::KeyDistributionMessage& m);
  // A hop offer from the left neighbour came first: the relay session
  // starts here (RELAY_START fills in the rest). No-op if it runs already.
  void Join(const SessionKey& key, std::vector<std::string> path, size_t index, Duration timeout);
  // The path of a relay session running here (its hop offers carry it); nullptr if none.
  const std::vector<std::string>* PathOf(const SessionKey& key) const;

  // From the relay's hop sessions here.
  void OnHopKey(const HopOf& hop, HopKey key);
  // The origin's first hop is the relay session's visible progress.
  void OnHopProgress(const SessionKey& key, const QkdProgress& progress);
  // Ends the relay session here; tells the origin and destination (all
  // other nodes, at the origin) unless `tell` is false.
  void Fail(const SessionKey& key, absl::Status status, bool tell);

  // A neighbour's link went down: a relay session whose path has that
  // neighbour next to this node has lost the hop key held there (or its
  // announcement), so it fails now with PEER_DOWN instead of at its deadline.
  void OnNeighbourDown(const std::string& neighbour);

  size_t size() const { return relays_.size(); }

 private:
  struct Announcement {
    std::string left_key_id, right_key_id;
    qkd::BitString bits;
  };

  struct Relay {
    SessionKey key;
    std::vector<std::string> path;
    size_t index = 0;         // this node's position on the path
    bool instructed = false;  // RELAY_START came (always at the origin)
    QkdSessionOptions hop_options;
    TimePoint started;
    TimePoint deadline_at;
    TimerId deadline = kNoTimer;
    std::optional<SessionKey> right_session;  // the hop this node started
    std::optional<HopKey> left, right;
    std::map<size_t, Announcement> announcements;          // destination, by relay index
    std::optional<std::pair<uint64_t, std::string>> done;  // origin: RELAY_DONE's length and key id
    ProgressHandler progress;                              // origin
    DoneHandler done_handler;                              // origin
    bool origin() const { return index == 0; }
    bool destination() const { return index + 1 == path.size(); }
  };

  Relay& Ensure(const SessionKey& key, std::vector<std::string> path, size_t index, Duration timeout);
  void OnStart(const std::string& source, const SessionKey& key, const v1::KeyDistributionRelayStart& m);
  void OnAnnouncement(const std::string& source, const SessionKey& key, const v1::KeyDistributionRelayAnnouncement& m);
  void OnDone(const std::string& source, const SessionKey& key, const v1::KeyDistributionRelayDone& m);
  void OnAbort(const std::string& source, const SessionKey& key, const v1::KeyDistributionRelayAbort& m);
  void OnDeadline(const SessionKey& key);
  absl::Status StartRightHop(const SessionKey& key);
  // Takes the relay session as far as the keys and messages here allow.
  void Advance(const SessionKey& key);
  void Erase(const SessionKey& key);

  KeyDistribution& kd_;  // the one this is part of
  NodeContext& context_;
  absl::flat_hash_map<SessionKey, Relay> relays_;
};

}  // namespace qnet::keydist
