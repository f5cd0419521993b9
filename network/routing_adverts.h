// This node's side of link-state routing: originates its own advert (its
// links up or down with best fidelity, pair rate and delay; its memory and
// error figures), floods adverts it learns to its other up neighbours, hands
// a neighbour that comes up the whole database, re-floods its advert
// periodically, and keeps the database (routing.h) that paths are computed
// from. NetworkLayer owns one and feeds it the neighbour and advert events.
//
// Every advert received is checked before it is stored or forwarded: it must
// be possible (ValidateAdvert, routing.h) and, with an authenticator, signed
// by its origin; others are refused, counted and reported (AdvertOptions::
// on_refused). Sequence numbers follow a clock that grows across restarts
// (sequence_clock), so a restarted node starts above its old adverts; if it
// meets an advert of its own with a higher number (an earlier incarnation's,
// or a forgery the authenticator let through) it jumps past it and
// re-floods, as OSPF does. Adverts more than kMaxSequenceLead ahead of the
// receiver's clock are impossible, so no advert can pin a sequence number
// its origin cannot overtake.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "core/lifetime.h"
#include "core/node_context.h"
#include "link/link_layer.h"
#include "network/advert_authenticator.h"
#include "network/routing.h"
#include "physical/physical_layer.h"
#include "qnet/v1/network_messages.pb.h"

namespace qnet::network {

// How adverts are checked and numbered (part of NetworkLayerOptions).
struct AdvertOptions {
  // The network file's nodes and links; adverts naming others are refused.
  // Null: names are not checked (a layer tested without a file).
  std::shared_ptr<const KnownTopology> topology;
  // Signs this node's adverts and verifies everyone's. Null: one trust
  // domain (the in-process simulator), every advert is accepted as its
  // origin's.
  std::shared_ptr<AdvertAuthenticator> authenticator;
  // Microseconds that grow across restarts of the node: the first sequence
  // number, and the receiver's bound on sequence numbers. The daemon gives
  // wall-clock microseconds since the Unix epoch. Null: the runtime's Now()
  // in microseconds (the simulator's clock runs on across a node's restart).
  std::function<uint64_t()> sequence_clock;
  // Told of every refused advert (who sent it, why), e.g. to log it.
  std::function<void(const std::string& from, const std::string& why)> on_refused;
};

struct AdvertStats {
  uint64_t received = 0;
  uint64_t stale = 0;                    // a copy already held (or older): dropped unchecked
  uint64_t refused_impossible = 0;       // failed ValidateAdvert
  uint64_t refused_unauthenticated = 0;  // the authenticator did not verify it
  uint64_t own_sequence_jumps = 0;       // an advert of this node's with a higher number was seen
  std::string last_refusal;              // why the last refused advert was refused
};

class AdvertFlooding {
 public:
  // `link` gives each link's best fidelity and pair rate; `links` are this
  // node's links. `refresh`: the advert is re-flooded this often even
  // without a change.
  AdvertFlooding(NodeContext& context, link::LinkLayer& link, physical::NodeHardware hardware,
                 std::vector<physical::PhysicalLink> links, Duration refresh, double hop_cost,
                 AdvertOptions options = {});
  ~AdvertFlooding();
  AdvertFlooding(const AdvertFlooding&) = delete;
  AdvertFlooding& operator=(const AdvertFlooding&) = delete;

  // Floods the first advert and starts the periodic refresh.
  void Start();
  // Floods this node's advert as it is now (its neighbours' states changed).
  void OriginateAdvert();
  void OnAdverts(const std::string& from, const v1::LinkStateAdverts& adverts);
  // A neighbour this node has no link to is ignored. The new advert goes
  // out once the neighbour-ups of this instant are in (a node whose links
  // all come up at once floods one advert, not one per link), followed by
  // the database exchange with each neighbour that came up.
  void OnNeighbourUp(const std::string& neighbour);
  // Marks `neighbour` down; false if it was not up. The caller re-originates
  // (OriginateAdvert) once it has dealt with what went over that link.
  bool MarkNeighbourDown(const std::string& neighbour);

  bool IsUp(const std::string& neighbour) const { return neighbours_up_.contains(neighbour); }
  const LinkStateDatabase& database() const { return database_; }
  const AdvertStats& stats() const { return stats_; }
  uint64_t sequence() const { return advert_sequence_; }

 private:
  uint64_t SequenceClock() const;
  // OK if `advert` may be stored and forwarded; else counts and reports it.
  bool Accept(const std::string& from, const v1::LinkStateAdvert& advert);
  void Refuse(const std::string& from, std::string why);
  void Flood(v1::LinkStateAdverts adverts, const std::string& except);
  void ScheduleRefresh();
  void ScheduleOrigination();
  // An advert of this node's that is older than its latest, or that latest
  // one itself coming back.
  bool IsEchoOfOwnAdvert(const v1::LinkStateAdvert& advert) const;
  const std::string& Where() const { return context_.node_name(); }

  NodeContext& context_;
  link::LinkLayer& link_;
  physical::NodeHardware hardware_;
  std::vector<physical::PhysicalLink> links_;
  Duration refresh_;
  AdvertOptions options_;
  LinkStateDatabase database_;
  uint64_t advert_sequence_ = 0;
  AdvertStats stats_;
  absl::flat_hash_set<std::string> neighbours_up_;
  TimerId refresh_timer_ = kNoTimer;
  TimerId origination_timer_ = kNoTimer;
  std::vector<std::string> exchanges_pending_;  // neighbours up since the last origination
  Lifetime lifetime_;
};

}  // namespace qnet::network
