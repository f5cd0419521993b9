// This node's side of link-state routing: originates its own advert (its
// links up or down with best fidelity, pair rate and delay; its memory and
// error figures), floods adverts it learns to its other up neighbours, hands
// a neighbour that comes up the whole database, re-floods its advert
// periodically, and keeps the database (routing.h) that paths are computed
// from. NetworkLayer owns one and feeds it the neighbour and advert events.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "core/lifetime.h"
#include "core/node_context.h"
#include "link/link_layer.h"
#include "network/routing.h"
#include "physical/physical_layer.h"
#include "qnet/v1/network_messages.pb.h"

namespace qnet::network {

class AdvertFlooding {
 public:
  // `link` gives each link's best fidelity and pair rate; `links` are this
  // node's links. `refresh`: the advert is re-flooded this often even
  // without a change.
  AdvertFlooding(NodeContext& context, link::LinkLayer& link, physical::NodeHardware hardware,
                 std::vector<physical::PhysicalLink> links, Duration refresh, double hop_cost);
  ~AdvertFlooding();
  AdvertFlooding(const AdvertFlooding&) = delete;
  AdvertFlooding& operator=(const AdvertFlooding&) = delete;

  // Floods the first advert and starts the periodic refresh.
  void Start();
  // Floods this node's advert as it is now (its neighbours' states changed).
  void OriginateAdvert();
  void OnAdverts(const std::string& from, const v1::LinkStateAdverts& adverts);
  // A neighbour this node has no link to is ignored.
  void OnNeighbourUp(const std::string& neighbour);
  // Marks `neighbour` down; false if it was not up. The caller re-originates
  // (OriginateAdvert) once it has dealt with what went over that link.
  bool MarkNeighbourDown(const std::string& neighbour);

  bool IsUp(const std::string& neighbour) const { return neighbours_up_.contains(neighbour); }
  const LinkStateDatabase& database() const { return database_; }

 private:
  void Flood(const v1::LinkStateAdverts& adverts, const std::string& except);
  void ScheduleRefresh();
  const std::string& Where() const { return context_.node_name(); }

  NodeContext& context_;
  link::LinkLayer& link_;
  physical::NodeHardware hardware_;
  std::vector<physical::PhysicalLink> links_;
  Duration refresh_;
  LinkStateDatabase database_;
  uint64_t advert_sequence_ = 0;
  absl::flat_hash_set<std::string> neighbours_up_;
  TimerId refresh_timer_ = kNoTimer;
  Lifetime lifetime_;
};

}  // namespace qnet::network
