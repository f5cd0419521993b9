// Generated network files for studies too big to write by hand: chains,
// rings, grids, tori and stars of equal links, and random geometric and
// Waxman graphs whose link lengths are the distances between nodes placed
// in a square. `qnetctl gen` writes them; the same spec and seed give the
// same file, byte for byte (with the same build: a last-bit difference in
// another libm's hypot or exp could flip a pair at the threshold).
//
// A random graph that comes out disconnected is joined by the shortest
// links between its components (a minimum spanning tree over the
// components), so every node can reach every other; the file says how many
// links were added that way.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace qnet::config {

enum class TopologyKind { kChain, kRing, kGrid, kTorus, kStar, kRandomGeometric, kWaxman };

// The largest random graph: placing and linking is quadratic in the nodes
// (every pair is looked at): seconds at this size.
inline constexpr uint32_t kMaxRandomTopologyNodes = 20'000;

struct TopologySpec {
  TopologyKind kind = TopologyKind::kChain;
  std::string name;               // the network's name; empty: the kind and size
  uint32_t nodes = 0;             // chain, ring, star, random kinds (star: the hub is n0)
  uint32_t rows = 0, cols = 0;    // grid and torus (nodes = rows x cols)
  double length_km = 1.0;         // each link of the regular kinds
  double area_km = 100.0;         // random kinds: nodes uniform in an area_km x area_km square
  double radius_km = 0.0;         // random geometric: nodes closer than this are linked
  double waxman_alpha = 0.4;      // Waxman: P(link) = beta exp(-d / (alpha L)), L the square's diagonal
  double waxman_beta = 0.4;
  std::string hardware = "ideal"; // every node's preset (physical/presets.h)
  uint64_t seed = 1;              // placement and links; also the file's seed
};

struct GeneratedNode {
  std::string name;
  double x_km = 0, y_km = 0;  // where it was placed (random kinds; 0 for the others)
};
struct GeneratedLink {
  uint32_t a = 0, b = 0;  // indexes into nodes, a < b
  double length_km = 0;
};
struct GeneratedTopology {
  std::string name;
  uint64_t seed = 0;
  std::string hardware;
  TopologyKind kind = TopologyKind::kChain;
  std::vector<GeneratedNode> nodes;
  std::vector<GeneratedLink> links;
  uint32_t joining_links = 0;  // links added to connect a random graph's components
};

// "chain", "ring", "grid", "torus", "star", "geometric", "waxman".
absl::StatusOr<TopologyKind> ParseTopologyKind(const std::string& kind);
const char* TopologyKindName(TopologyKind kind);

// InvalidArgument naming the field and its range for a spec that makes no
// network: fewer than 2 nodes (3 for a ring, 2x2 for a grid, 3x3 for a
// torus), more than kMaxNodes (kMaxRandomTopologyNodes for random kinds), a
// length outside (0, kMaxLengthKm], a Waxman alpha or beta outside (0, 1],
// a random geometric graph without a radius.
absl::StatusOr<GeneratedTopology> GenerateTopology(const TopologySpec& spec);

// The topology as a network file (README, "Network file"): a header
// comment with how it was made, every node with the preset, every link with
// its length (to the metre). Random kinds note each node's position.
std::string NetworkFileText(const GeneratedTopology& topology, const std::string& command_line);

}  // namespace qnet::config
