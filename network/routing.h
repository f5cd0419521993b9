// Link-state routing for the network layer: every node floods an advert of
// its links (up or down, best fidelity, pair rate, classical delay) and of
// its device; each node keeps the newest advert per origin and computes
// shortest paths over the links that both ends advertise as up. The cost of
// a link is a small per-hop constant plus -ln(w), w = (4F-1)/3 the Werner
// parameter at the link's best fidelity F: Werner parameters multiply under
// ideal swapping, so the cheapest path is the one that can deliver the
// highest end-to-end fidelity (fewer hops breaking ties).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "qnet/v1/network_messages.pb.h"

namespace qnet::network {

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
