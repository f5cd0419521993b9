#include "config/topology_generator.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <numeric>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "config/network_config.h"
#include "core/rng.h"
#include "physical/presets.h"

namespace qnet::config {
namespace {

constexpr std::pair<TopologyKind, const char*> kKindNames[] = {
    {TopologyKind::kChain, "chain"}, {TopologyKind::kRing, "ring"},           {TopologyKind::kGrid, "grid"},
    {TopologyKind::kTorus, "torus"}, {TopologyKind::kStar, "star"},           {TopologyKind::kRandomGeometric, "geometric"},
    {TopologyKind::kWaxman, "waxman"}};

// Two nodes at the same point still get a link of one metre: a network file
// link is fibre, and the physical layer's delays want a length.
constexpr double kMinRandomLinkKm = 0.001;
constexpr double kMaxAreaKm = kMaxLengthKm / 2;  // so the square's diagonal is a valid length

bool IsRandom(TopologyKind kind) { return kind == TopologyKind::kRandomGeometric || kind == TopologyKind::kWaxman; }

// The shortest text that reads back as the same double.
std::string Number(double value) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, end);
}

class DisjointSets {
 public:
  explicit DisjointSets(size_t n) : parent_(n) { std::iota(parent_.begin(), parent_.end(), 0u); }
  uint32_t Find(uint32_t x) {
    while (parent_[x] != x) x = parent_[x] = parent_[parent_[x]];
    return x;
  }
  void Join(uint32_t a, uint32_t b) { parent_[Find(a)] = Find(b); }

 private:
  std::vector<uint32_t> parent_;
};

double Distance(const GeneratedNode& a, const GeneratedNode& b) { return std::hypot(a.x_km - b.x_km, a.y_km - b.y_km); }

// A cheap test before Distance's exact one: std::hypot was 80% of a
// 20,000-node graph's time, and most pairs are far beyond any bound that
// matters. The margin (far above rounding) leaves every decision to Distance,
// so the graphs are the same as without this test.
bool MaybeCloserThan(const GeneratedNode& a, const GeneratedNode& b, double bound) {
  const double dx = a.x_km - b.x_km, dy = a.y_km - b.y_km;
  return dx * dx + dy * dy <= bound * bound * (1 + 1e-9);
}

double RandomLinkKm(const GeneratedNode& a, const GeneratedNode& b) {
  return std::max(kMinRandomLinkKm, std::round(Distance(a, b) * 1000.0) / 1000.0);
}

absl::Status AddLink(GeneratedTopology& t, uint32_t a, uint32_t b, double length_km) {
  if (t.links.size() >= kMaxLinks) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the graph has more than %d links, the most a network file may hold: lower the radius, alpha or beta",
        kMaxLinks));
  }
  t.links.push_back({std::min(a, b), std::max(a, b), length_km});
  return absl::OkStatus();
}

// Prim's algorithm on the complete graph of distances in which a component's
// own nodes cost nothing to reach: each step adds the shortest link from the
// part already joined to a node outside it, then that node's whole
// component. O(n^2) time, O(n) memory.
void JoinComponents(GeneratedTopology& t) {
  const uint32_t n = static_cast<uint32_t>(t.nodes.size());
  DisjointSets sets(n);
  for (const GeneratedLink& l : t.links) sets.Join(l.a, l.b);
  std::vector<std::vector<uint32_t>> members(n);
  for (uint32_t v = 0; v < n; ++v) members[sets.Find(v)].push_back(v);
  std::vector<bool> joined(n, false);
  std::vector<double> nearest(n, std::numeric_limits<double>::infinity());
  std::vector<uint32_t> from(n, 0);
  uint32_t remaining = n;
  auto take_component = [&](uint32_t v) {
    for (uint32_t m : members[sets.Find(v)]) {
      joined[m] = true;
      --remaining;
    }
    for (uint32_t m : members[sets.Find(v)]) {
      for (uint32_t u = 0; u < n; ++u) {
        if (joined[u] || !MaybeCloserThan(t.nodes[m], t.nodes[u], nearest[u])) continue;
        const double d = Distance(t.nodes[m], t.nodes[u]);
        if (d < nearest[u]) {
          nearest[u] = d;
          from[u] = m;
        }
      }
    }
  };
  take_component(0);
  while (remaining > 0) {
    uint32_t best = n;
    for (uint32_t u = 0; u < n; ++u) {
      if (!joined[u] && (best == n || nearest[u] < nearest[best])) best = u;
    }
    t.links.push_back({std::min(from[best], best), std::max(from[best], best),
                       RandomLinkKm(t.nodes[from[best]], t.nodes[best])});
    ++t.joining_links;
    take_component(best);
  }
}

absl::Status CheckSpec(const TopologySpec& spec) {
  auto bad = [](auto&&... parts) { return absl::InvalidArgumentError(absl::StrCat(parts...)); };
  if (!physical::FindPreset(spec.hardware).ok()) {
    return bad("unknown hardware preset '", spec.hardware, "' (presets: ", absl::StrJoin(physical::PresetNames(), ", "),
               ")");
  }
  const bool name_ok = std::all_of(spec.name.begin(), spec.name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
  if (!name_ok || (!spec.name.empty() && !absl::ascii_isalnum(static_cast<unsigned char>(spec.name[0])))) {
    return bad("the network name '", spec.name,
               "' is not a valid name (letters, digits, '_', '-', '.'; starting with a letter or digit)");
  }
  const bool grid = spec.kind == TopologyKind::kGrid || spec.kind == TopologyKind::kTorus;
  if (grid) {
    const uint32_t least = spec.kind == TopologyKind::kTorus ? 3 : 2;
    if (spec.rows < least || spec.cols < least || uint64_t{spec.rows} * spec.cols > kMaxNodes) {
      return bad("a ", TopologyKindName(spec.kind), " needs rows and columns of at least ", least,
                 " and at most ", kMaxNodes, " nodes in all, got ", spec.rows, "x", spec.cols,
                 spec.kind == TopologyKind::kTorus ? " (fewer than 3 would wrap onto the same neighbour)" : "");
    }
  } else {
    const uint32_t least = spec.kind == TopologyKind::kRing ? 3 : 2;
    const uint32_t most = IsRandom(spec.kind) ? kMaxRandomTopologyNodes : static_cast<uint32_t>(kMaxNodes);
    if (spec.nodes < least || spec.nodes > most) {
      return bad("a ", TopologyKindName(spec.kind), " needs ", least, " to ", most, " nodes, got ", spec.nodes);
    }
  }
  if (IsRandom(spec.kind)) {
    if (!(spec.area_km > 0 && spec.area_km <= kMaxAreaKm)) {
      return bad("the square's side must be in (0, ", kMaxAreaKm, "] km, got ", spec.area_km);
    }
    if (spec.kind == TopologyKind::kRandomGeometric && !(spec.radius_km > 0 && spec.radius_km <= kMaxLengthKm)) {
      return bad("a random geometric graph needs a link radius in (0, ", kMaxLengthKm, "] km, got ", spec.radius_km);
    }
    if (spec.kind == TopologyKind::kWaxman &&
        !(spec.waxman_alpha > 0 && spec.waxman_alpha <= 1 && spec.waxman_beta > 0 && spec.waxman_beta <= 1)) {
      return bad("Waxman's alpha and beta must be in (0, 1], got alpha ", spec.waxman_alpha, ", beta ",
                 spec.waxman_beta);
    }
  } else if (!(spec.length_km > 0 && spec.length_km <= kMaxLengthKm)) {
    return bad("the link length must be in (0, ", kMaxLengthKm, "] km, got ", spec.length_km);
  }
  return absl::OkStatus();
}

std::string DefaultName(const TopologySpec& spec) {
  if (spec.kind == TopologyKind::kGrid || spec.kind == TopologyKind::kTorus) {
    return absl::StrCat(TopologyKindName(spec.kind), "-", spec.rows, "x", spec.cols);
  }
  return absl::StrCat(TopologyKindName(spec.kind), "-", spec.nodes);
}

}  // namespace

absl::StatusOr<TopologyKind> ParseTopologyKind(const std::string& kind) {
  for (const auto& [k, name] : kKindNames) {
    if (kind == name) return k;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown topology '", kind, "' (chain, ring, grid, torus, star, geometric or waxman)"));
}

const char* TopologyKindName(TopologyKind kind) {
  for (const auto& [k, name] : kKindNames) {
    if (k == kind) return name;
  }
  return "?";
}

absl::StatusOr<GeneratedTopology> GenerateTopology(const TopologySpec& spec) {
  if (absl::Status s = CheckSpec(spec); !s.ok()) return s;
  GeneratedTopology t;
  t.name = spec.name.empty() ? DefaultName(spec) : spec.name;
  t.seed = spec.seed;
  t.hardware = spec.hardware;
  t.kind = spec.kind;
  const bool grid = spec.kind == TopologyKind::kGrid || spec.kind == TopologyKind::kTorus;
  const uint32_t n = grid ? spec.rows * spec.cols : spec.nodes;
  t.nodes.resize(n);
  for (uint32_t i = 0; i < n; ++i) t.nodes[i].name = absl::StrCat("n", i);

  switch (spec.kind) {
    case TopologyKind::kChain:
    case TopologyKind::kRing:
      for (uint32_t i = 0; i + 1 < n; ++i) t.links.push_back({i, i + 1, spec.length_km});
      if (spec.kind == TopologyKind::kRing) t.links.push_back({0, n - 1, spec.length_km});
      break;
    case TopologyKind::kStar:
      for (uint32_t i = 1; i < n; ++i) t.links.push_back({0, i, spec.length_km});
      break;
    case TopologyKind::kGrid:
    case TopologyKind::kTorus: {
      const bool wrap = spec.kind == TopologyKind::kTorus;
      auto at = [&](uint32_t r, uint32_t c) { return r * spec.cols + c; };
      for (uint32_t r = 0; r < spec.rows; ++r) {
        for (uint32_t c = 0; c < spec.cols; ++c) {
          t.nodes[at(r, c)].x_km = c * spec.length_km;
          t.nodes[at(r, c)].y_km = r * spec.length_km;
          if (c + 1 < spec.cols) t.links.push_back({at(r, c), at(r, c + 1), spec.length_km});
          if (r + 1 < spec.rows) t.links.push_back({at(r, c), at(r + 1, c), spec.length_km});
          if (wrap && c + 1 == spec.cols) t.links.push_back({at(r, 0), at(r, c), spec.length_km});
          if (wrap && r + 1 == spec.rows) t.links.push_back({at(0, c), at(r, c), spec.length_km});
        }
      }
      break;
    }
    case TopologyKind::kRandomGeometric:
    case TopologyKind::kWaxman: {
      // Separate streams: changing how links are drawn never moves a node.
      Rng placement = Rng(spec.seed).Fork("topology placement");
      Rng draws = Rng(spec.seed).Fork("topology links");
      for (GeneratedNode& node : t.nodes) {
        node.x_km = placement.Uniform() * spec.area_km;
        node.y_km = placement.Uniform() * spec.area_km;
      }
      const double diagonal = spec.area_km * std::sqrt(2.0);
      for (uint32_t a = 0; a < n; ++a) {
        for (uint32_t b = a + 1; b < n; ++b) {
          // Waxman draws for every pair (the stream must not depend on the
          // test); a geometric pair far apart is skipped at once.
          const bool geometric = spec.kind == TopologyKind::kRandomGeometric;
          if (geometric && !MaybeCloserThan(t.nodes[a], t.nodes[b], spec.radius_km)) continue;
          const double d = Distance(t.nodes[a], t.nodes[b]);
          const bool linked = geometric ? d < spec.radius_km
                                        : draws.Bernoulli(spec.waxman_beta * std::exp(-d / (spec.waxman_alpha * diagonal)));
          if (!linked) continue;
          if (absl::Status s = AddLink(t, a, b, RandomLinkKm(t.nodes[a], t.nodes[b])); !s.ok()) return s;
        }
      }
      JoinComponents(t);
      break;
    }
  }
  if (t.links.size() > kMaxLinks) {
    return absl::InvalidArgumentError(
        absl::StrFormat("the graph has %d links, more than a network file may hold (%d)", t.links.size(), kMaxLinks));
  }
  return t;
}

std::string NetworkFileText(const GeneratedTopology& t, const std::string& command_line) {
  std::string out;
  absl::StrAppend(&out, "# Generated by: ", command_line, "\n");
  absl::StrAppend(&out, "# ", TopologyKindName(t.kind), ": ", t.nodes.size(), " nodes, ", t.links.size(), " links");
  if (IsRandom(t.kind)) {
    absl::StrAppend(&out, "; link lengths are the straight-line distances between the nodes' positions (km)");
  }
  absl::StrAppend(&out, "\n");
  if (t.joining_links > 0) {
    absl::StrAppend(&out, "# ", t.joining_links,
                    " of the links join the random graph's components (the shortest links between them)\n");
  }
  // Quoted: a name such as "null" or "yes" would otherwise read as a YAML
  // null or boolean (names are letters, digits, '_', '-', '.': no quote inside).
  absl::StrAppend(&out, "network: '", t.name, "'\nseed: ", t.seed, "\nnodes:\n");
  const bool positions = t.kind != TopologyKind::kChain && t.kind != TopologyKind::kRing && t.kind != TopologyKind::kStar;
  for (const GeneratedNode& node : t.nodes) {
    absl::StrAppend(&out, "  - {name: ", node.name, ", hardware: ", t.hardware, "}");
    if (positions) absl::StrAppend(&out, absl::StrFormat("  # at (%.3f, %.3f) km", node.x_km, node.y_km));
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out, "links:\n");
  for (const GeneratedLink& link : t.links) {
    absl::StrAppend(&out, "  - {between: [", t.nodes[link.a].name, ", ", t.nodes[link.b].name,
                    "], length_km: ", Number(link.length_km), "}\n");
  }
  return out;
}

}  // namespace qnet::config
