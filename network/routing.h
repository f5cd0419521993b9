// Link-state routing for the network layer: every node floods an advert of
// its links (up or down, best fidelity, pair rate, classical delay) and of
// its device; each node keeps the newest advert per origin and computes
// shortest paths over the links that both ends advertise as up. The cost of
// a link is a small per-hop constant plus -ln(w), w = (4F-1)/3 the Werner
// parameter at the link's best fidelity F: Werner parameters multiply under
// ideal swapping, so the cheapest path is the one that can deliver the
// highest end-to-end fidelity (fewer hops breaking ties).
//
// Adverts from the wire are checked first (ValidateAdvert): one naming a
// node or link the network file does not have, carrying a value no real link
// or device can have (NaN, infinities, negative or out-of-range figures), or
// a sequence number no node can have reached yet is refused, so that the
// database only ever describes the network of the file.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "qnet/v1/network_messages.pb.h"

namespace qnet::network {

// The network's nodes and links as the network file names them. Built once
// per network and shared by its nodes' stacks.
struct KnownTopology {
  absl::flat_hash_set<std::string> nodes;
  absl::flat_hash_set<std::string> links;  // LinkKey(a, b)

  static std::string LinkKey(std::string_view a, std::string_view b);
  void AddLink(std::string_view a, std::string_view b) { links.insert(LinkKey(a, b)); }
  bool HasNode(std::string_view n) const { return nodes.contains(std::string(n)); }
  bool HasLink(std::string_view a, std::string_view b) const { return links.contains(LinkKey(a, b)); }
};

// Sequence numbers are microseconds of a clock that grows across restarts
// (NetworkLayerOptions::sequence_clock), plus one per advert. An advert more
// than this far ahead of the receiver's own clock cannot come from a live
// node (~12.7 days of clock skew): it is refused, so no advert can take a
// sequence number its origin could never overtake, and 64 bits never wrap.
inline constexpr uint64_t kMaxSequenceLead = uint64_t{1} << 40;
// Upper bounds of an advert's figures (beyond them nothing real exists).
inline constexpr uint32_t kMaxAdvertQubits = 1000;  // as the network file
inline constexpr double kMaxAdvertDelayS = 1.0;     // 10^5 km of fibre is 0.5 s

// OK, or InvalidArgument saying what makes `advert` impossible: no origin, a
// sequence of 0 or above `max_sequence`, a non-finite or out-of-range figure,
// an empty, repeated or self neighbour, and (with `topology`) an origin,
// neighbour or link the network file does not have.
absl::Status ValidateAdvert(const v1::LinkStateAdvert& advert, const KnownTopology* topology, uint64_t max_sequence);

struct Route {
  std::vector<std::string> path;  // from ... to
  double cost = 0.0;
  // Per link of the path (path.size() - 1 entries): the best fidelity and
  // one-way delay its upstream end advertises.
  std::vector<double> link_fidelity;
  std::vector<double> link_delay_s;
  size_t hops() const { return path.empty() ? 0 : path.size() - 1; }
};

// One row of a node's routing table.
struct RouteEntry {
  std::string destination;
  std::string next_hop;
  Route route;
};

class LinkStateDatabase {
 public:
  explicit LinkStateDatabase(double hop_cost = 1e-3) : hop_cost_(hop_cost) {}

  // Keeps `advert` if it is newer than the one held for its origin (or the
  // first); returns whether it was kept.
  bool Update(const v1::LinkStateAdvert& advert);
  // Whether Update would keep `advert`.
  bool IsNewer(const v1::LinkStateAdvert& advert) const;
  const v1::LinkStateAdvert* Find(std::string_view origin) const;
  std::vector<const v1::LinkStateAdvert*> All() const;  // by origin name
  size_t size() const { return adverts_.size(); }

  // Cheapest path over links both ends advertise up. NotFound naming the
  // destination if it is unknown or unreachable.
  absl::StatusOr<Route> PathTo(std::string_view from, std::string_view to) const;
  // A route to every node reachable from `from` (itself excluded), by name.
  std::vector<RouteEntry> Table(std::string_view from) const;

  // Cost of a link with best fidelity `fidelity`.
  double LinkCost(double fidelity) const;

 private:
  // The advert of `a` for its link to `b` if both ends say it is up.
  const v1::LinkAdvert* UsableLink(const v1::LinkStateAdvert& a, std::string_view b) const;
  // Dijkstra from `from`: predecessor and cost per reached node.
  void ShortestPaths(std::string_view from, absl::flat_hash_map<std::string, std::string>& previous,
                     absl::flat_hash_map<std::string, double>& cost) const;
  Route BuildRoute(std::string_view from, std::string_view to,
                   const absl::flat_hash_map<std::string, std::string>& previous,
                   const absl::flat_hash_map<std::string, double>& cost) const;

  double hop_cost_;
  absl::flat_hash_map<std::string, v1::LinkStateAdvert> adverts_;
};

}  // namespace qnet::network
