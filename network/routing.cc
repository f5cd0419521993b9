#include "network/routing.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <queue>

#include "absl/strings/str_cat.h"

namespace qnet::network {
namespace {

// Computed figures (fidelities) may pass 1 by a rounding error. False for NaN.
bool InUnitInterval(double v) { return v >= -1e-9 && v <= 1.0 + 1e-9; }
bool FiniteNonNegative(double v) { return std::isfinite(v) && v >= 0.0; }

}  // namespace

std::string KnownTopology::LinkKey(std::string_view a, std::string_view b) {
  return a < b ? absl::StrCat(std::string(a), "\n", std::string(b)) : absl::StrCat(std::string(b), "\n", std::string(a));
}

absl::Status ValidateAdvert(const v1::LinkStateAdvert& a, const KnownTopology* topology, uint64_t max_sequence) {
  const std::string& origin = a.origin();
  if (origin.empty()) return absl::InvalidArgumentError("advert with an empty origin");
  if (topology != nullptr && !topology->HasNode(origin)) {
    return absl::InvalidArgumentError(absl::StrCat("advert from '", origin, "', which is not a node of the network file"));
  }
  // Built only for a message: most adverts are valid.
  const auto who = [&origin] { return absl::StrCat("advert of '", origin, "'"); };
  if (a.sequence() == 0 || a.sequence() > max_sequence) {
    return absl::InvalidArgumentError(absl::StrCat(who(), ": sequence ", a.sequence(), " is outside [1, ", max_sequence,
                                                   "] (no node can have reached it yet)"));
  }
  if (a.memory_qubits() > kMaxAdvertQubits) {
    return absl::InvalidArgumentError(
        absl::StrCat(who(), ": memory_qubits = ", a.memory_qubits(), " is outside [0, ", kMaxAdvertQubits, "]"));
  }
  const std::pair<const char*, double> times[] = {
      {"t1_s", a.t1_s()}, {"t2_s", a.t2_s()}, {"depolarising_time_s", a.depolarising_time_s()}};
  for (const auto& [name, v] : times) {
    if (!FiniteNonNegative(v)) {
      return absl::InvalidArgumentError(absl::StrCat(who(), ": ", name, " = ", v, " must be finite and >= 0 (0 = infinite)"));
    }
  }
  const std::pair<const char*, double> probabilities[] = {{"single_qubit_gate_error", a.single_qubit_gate_error()},
                                                          {"two_qubit_gate_error", a.two_qubit_gate_error()},
                                                          {"readout_error_0", a.readout_error_0()},
                                                          {"readout_error_1", a.readout_error_1()}};
  for (const auto& [name, v] : probabilities) {
    if (!InUnitInterval(v)) return absl::InvalidArgumentError(absl::StrCat(who(), ": ", name, " = ", v, " is outside [0, 1]"));
  }
  absl::flat_hash_set<absl::string_view> seen;
  seen.reserve(static_cast<size_t>(a.links_size()));
  for (const v1::LinkAdvert& l : a.links()) {
    const std::string& n = l.neighbour();
    if (n.empty()) return absl::InvalidArgumentError(absl::StrCat(who(), ": a link with an empty neighbour name"));
    if (n == origin) return absl::InvalidArgumentError(absl::StrCat(who(), ": a link to itself"));
    if (!seen.insert(n).second) {
      return absl::InvalidArgumentError(absl::StrCat(who(), ": link to '", n, "' advertised twice"));
    }
    if (topology != nullptr && !topology->HasLink(origin, n)) {
      return absl::InvalidArgumentError(absl::StrCat(who(), ": the network file has no link ", origin, "-", n));
    }
    if (!InUnitInterval(l.best_fidelity())) {
      return absl::InvalidArgumentError(
          absl::StrCat(who(), ": link to '", n, "': best_fidelity = ", l.best_fidelity(), " is outside [0, 1]"));
    }
    if (!FiniteNonNegative(l.pair_rate_hz())) {
      return absl::InvalidArgumentError(
          absl::StrCat(who(), ": link to '", n, "': pair_rate_hz = ", l.pair_rate_hz(), " must be finite and >= 0"));
    }
    if (!(l.delay_s() >= 0.0 && l.delay_s() <= kMaxAdvertDelayS)) {
      return absl::InvalidArgumentError(absl::StrCat(who(), ": link to '", n, "': delay_s = ", l.delay_s(),
                                                     " is outside [0, ", kMaxAdvertDelayS, "]"));
    }
  }
  return absl::OkStatus();
}

bool LinkStateDatabase::IsNewer(const v1::LinkStateAdvert& advert) const {
  auto it = adverts_.find(advert.origin());
  return it == adverts_.end() || it->second.sequence() < advert.sequence();
}

bool LinkStateDatabase::Update(const v1::LinkStateAdvert& advert) {
  auto it = adverts_.find(advert.origin());
  if (it != adverts_.end() && it->second.sequence() >= advert.sequence()) return false;
  adverts_[advert.origin()] = advert;
  return true;
}

const v1::LinkStateAdvert* LinkStateDatabase::Find(std::string_view origin) const {
  auto it = adverts_.find(std::string(origin));
  return it == adverts_.end() ? nullptr : &it->second;
}

std::vector<const v1::LinkStateAdvert*> LinkStateDatabase::All() const {
  std::vector<const v1::LinkStateAdvert*> all;
  all.reserve(adverts_.size());
  for (const auto& [name, advert] : adverts_) all.push_back(&advert);
  std::sort(all.begin(), all.end(), [](const auto* a, const auto* b) { return a->origin() < b->origin(); });
  return all;
}

double LinkStateDatabase::LinkCost(double fidelity) const {
  const double w = (4.0 * fidelity - 1.0) / 3.0;
  return hop_cost_ - std::log(std::max(w, 1e-12));
}

const v1::LinkAdvert* LinkStateDatabase::UsableLink(const v1::LinkStateAdvert& a, std::string_view b) const {
  const v1::LinkAdvert* forward = nullptr;
  for (const v1::LinkAdvert& l : a.links()) {
    if (l.neighbour() == b && l.up()) forward = &l;
  }
  if (forward == nullptr) return nullptr;
  const v1::LinkStateAdvert* other = Find(b);
  if (other == nullptr) return nullptr;
  for (const v1::LinkAdvert& l : other->links()) {
    if (l.neighbour() == a.origin() && l.up()) return forward;
  }
  return nullptr;
}

void LinkStateDatabase::ShortestPaths(std::string_view from, absl::flat_hash_map<std::string, std::string>& previous,
                                      absl::flat_hash_map<std::string, double>& cost) const {
  using Item = std::pair<double, std::string>;
  // Ties broken by name so every node computes the same paths.
  std::priority_queue<Item, std::vector<Item>, std::greater<>> queue;
  cost[std::string(from)] = 0.0;
  queue.emplace(0.0, std::string(from));
  absl::flat_hash_map<std::string, bool> done;
  while (!queue.empty()) {
    auto [c, node] = queue.top();
    queue.pop();
    if (done[node]) continue;
    done[node] = true;
    const v1::LinkStateAdvert* advert = Find(node);
    if (advert == nullptr) continue;
    for (const v1::LinkAdvert& l : advert->links()) {
      const v1::LinkAdvert* usable = UsableLink(*advert, l.neighbour());
      if (usable == nullptr || usable != &l) continue;
      const double next = c + LinkCost(l.best_fidelity());
      auto it = cost.find(l.neighbour());
      if (it == cost.end() || next < it->second - 1e-12 ||
          (std::abs(next - it->second) <= 1e-12 && node < previous[l.neighbour()])) {
        cost[l.neighbour()] = next;
        previous[l.neighbour()] = node;
        queue.emplace(next, l.neighbour());
      }
    }
  }
}

Route LinkStateDatabase::BuildRoute(std::string_view from, std::string_view to,
                                    const absl::flat_hash_map<std::string, std::string>& previous,
                                    const absl::flat_hash_map<std::string, double>& cost) const {
  Route route;
  route.cost = cost.at(std::string(to));
  for (std::string node(to); node != from; node = previous.at(node)) route.path.push_back(node);
  route.path.push_back(std::string(from));
  std::reverse(route.path.begin(), route.path.end());
  for (size_t i = 0; i + 1 < route.path.size(); ++i) {
    const v1::LinkAdvert* l = UsableLink(*Find(route.path[i]), route.path[i + 1]);
    route.link_fidelity.push_back(l->best_fidelity());
    route.link_delay_s.push_back(l->delay_s());
  }
  return route;
}

absl::StatusOr<Route> LinkStateDatabase::PathTo(std::string_view from, std::string_view to) const {
  if (Find(to) == nullptr) {
    return absl::NotFoundError(absl::StrCat("no route to '", std::string(to), "': ", std::string(from),
                                            " has no link-state advert from it (unknown node, or not heard from)"));
  }
  absl::flat_hash_map<std::string, std::string> previous;
  absl::flat_hash_map<std::string, double> cost;
  ShortestPaths(from, previous, cost);
  if (!cost.contains(std::string(to)) || from == to) {
    return absl::NotFoundError(absl::StrCat("no route from ", std::string(from), " to ", std::string(to),
                                            ": no chain of links that are up joins them"));
  }
  return BuildRoute(from, to, previous, cost);
}

std::vector<RouteEntry> LinkStateDatabase::Table(std::string_view from) const {
  absl::flat_hash_map<std::string, std::string> previous;
  absl::flat_hash_map<std::string, double> cost;
  ShortestPaths(from, previous, cost);
  std::vector<RouteEntry> table;
  for (const auto& [node, c] : cost) {
    if (node == from) continue;
    RouteEntry e;
    e.destination = node;
    e.route = BuildRoute(from, node, previous, cost);
    e.next_hop = e.route.path[1];
    table.push_back(std::move(e));
  }
  std::sort(table.begin(), table.end(), [](const auto& a, const auto& b) { return a.destination < b.destination; });
  return table;
}

}  // namespace qnet::network
