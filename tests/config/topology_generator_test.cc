// Generated network files: each kind's node and link counts and degrees,
// random graphs against counts recomputed from the placed nodes (geometric:
// exactly; Waxman: the expected link count within 5 standard errors), the
// components joined by a minimum spanning tree (checked against Kruskal's
// algorithm), determinism by seed, and every file loading as a network file.
#include "config/topology_generator.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <numeric>

#include "config/hop_distance.h"
#include "config/network_config.h"
#include "gtest/gtest.h"

namespace qnet::config {
namespace {

std::vector<size_t> Degrees(const GeneratedTopology& t) {
  std::vector<size_t> degree(t.nodes.size(), 0);
  for (const GeneratedLink& l : t.links) {
    ++degree[l.a];
    ++degree[l.b];
  }
  return degree;
}

size_t Reachable(const GeneratedTopology& t) {
  std::vector<std::vector<uint32_t>> next(t.nodes.size());
  for (const GeneratedLink& l : t.links) {
    next[l.a].push_back(l.b);
    next[l.b].push_back(l.a);
  }
  std::vector<bool> seen(t.nodes.size(), false);
  std::deque<uint32_t> queue{0};
  seen[0] = true;
  size_t count = 1;
  while (!queue.empty()) {
    const uint32_t v = queue.front();
    queue.pop_front();
    for (uint32_t u : next[v]) {
      if (!seen[u]) {
        seen[u] = true;
        ++count;
        queue.push_back(u);
      }
    }
  }
  return count;
}

double Distance(const GeneratedTopology& t, uint32_t a, uint32_t b) {
  return std::hypot(t.nodes[a].x_km - t.nodes[b].x_km, t.nodes[a].y_km - t.nodes[b].y_km);
}

// The file it writes loads as a network file with the same nodes and links.
void ExpectLoadsBack(const GeneratedTopology& t) {
  auto config = ParseNetworkConfig(NetworkFileText(t, "test"), "generated.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->name, t.name);
  EXPECT_EQ(config->seed, t.seed);
  ASSERT_EQ(config->nodes.size(), t.nodes.size());
  ASSERT_EQ(config->links.size(), t.links.size());
  for (size_t i = 0; i < t.links.size(); ++i) {
    EXPECT_EQ(config->links[i].node_a, t.nodes[t.links[i].a].name);
    EXPECT_EQ(config->links[i].node_b, t.nodes[t.links[i].b].name);
    EXPECT_EQ(config->links[i].length_km, t.links[i].length_km);  // shortest round-trip text
  }
}

TopologySpec Spec(TopologyKind kind, uint32_t nodes) {
  TopologySpec s;
  s.kind = kind;
  s.nodes = nodes;
  return s;
}

TEST(TopologyGeneratorTest, ChainRingAndStarHaveTheirLinksAndDegrees) {
  TopologySpec chain = Spec(TopologyKind::kChain, 17);
  chain.length_km = 2.5;
  auto c = GenerateTopology(chain);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->name, "chain-17");
  EXPECT_EQ(c->links.size(), 16u);
  for (const GeneratedLink& l : c->links) EXPECT_EQ(l.length_km, 2.5);
  ExpectLoadsBack(*c);
  auto loaded = ParseNetworkConfig(NetworkFileText(*c, "test"), "chain.yaml");
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(*NodeAtHops(*loaded, "n0", 16), "n16");

  auto ring = GenerateTopology(Spec(TopologyKind::kRing, 6));
  ASSERT_TRUE(ring.ok());
  EXPECT_EQ(ring->links.size(), 6u);
  for (size_t d : Degrees(*ring)) EXPECT_EQ(d, 2u);
  ExpectLoadsBack(*ring);

  auto star = GenerateTopology(Spec(TopologyKind::kStar, 9));
  ASSERT_TRUE(star.ok());
  std::vector<size_t> degree = Degrees(*star);
  EXPECT_EQ(degree[0], 8u);
  EXPECT_EQ(std::count(degree.begin(), degree.end(), 1u), 8);
  ExpectLoadsBack(*star);
}

TEST(TopologyGeneratorTest, GridAndTorusHaveTheirLinksAndDegrees) {
  TopologySpec grid;
  grid.kind = TopologyKind::kGrid;
  grid.rows = 4;
  grid.cols = 5;
  auto g = GenerateTopology(grid);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->name, "grid-4x5");
  EXPECT_EQ(g->links.size(), 4u * 4 + 5u * 3);  // rows x (cols-1) + cols x (rows-1)
  std::vector<size_t> degree = Degrees(*g);
  EXPECT_EQ(std::count(degree.begin(), degree.end(), 2u), 4);           // corners
  EXPECT_EQ(std::count(degree.begin(), degree.end(), 3u), 2 * 3 + 2 * 2);  // edges
  EXPECT_EQ(std::count(degree.begin(), degree.end(), 4u), 3 * 2);        // inside
  ExpectLoadsBack(*g);

  grid.kind = TopologyKind::kTorus;
  auto t = GenerateTopology(grid);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->links.size(), 2u * 20);
  for (size_t d : Degrees(*t)) EXPECT_EQ(d, 4u);
  ExpectLoadsBack(*t);  // and no duplicate link (the parser refuses one)
}

TEST(TopologyGeneratorTest, GeometricLinksAreExactlyThePairsWithinTheRadiusPlusTheJoins) {
  TopologySpec spec = Spec(TopologyKind::kRandomGeometric, 300);
  spec.area_km = 100;
  spec.radius_km = 12;
  spec.seed = 11;
  auto t = GenerateTopology(spec);
  ASSERT_TRUE(t.ok()) << t.status();
  size_t within = 0;
  for (uint32_t a = 0; a < t->nodes.size(); ++a) {
    EXPECT_GE(t->nodes[a].x_km, 0);
    EXPECT_LT(t->nodes[a].x_km, 100);
    EXPECT_GE(t->nodes[a].y_km, 0);
    EXPECT_LT(t->nodes[a].y_km, 100);
    for (uint32_t b = a + 1; b < t->nodes.size(); ++b) within += Distance(*t, a, b) < 12 ? 1 : 0;
  }
  EXPECT_EQ(t->links.size(), within + t->joining_links);
  for (const GeneratedLink& l : t->links) {
    EXPECT_NEAR(l.length_km, Distance(*t, l.a, l.b), 0.0005 + 1e-9);
  }
  EXPECT_EQ(Reachable(*t), t->nodes.size());
  ExpectLoadsBack(*t);
}

// With no link inside the radius every link is a join: the generator then
// gives the Euclidean minimum spanning tree, which Kruskal's algorithm
// (another algorithm entirely) must match in total length.
TEST(TopologyGeneratorTest, AGraphOfIsolatedNodesIsJoinedByItsMinimumSpanningTree) {
  TopologySpec spec = Spec(TopologyKind::kRandomGeometric, 60);
  spec.radius_km = 1e-9;
  spec.seed = 5;
  auto t = GenerateTopology(spec);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->links.size(), 59u);
  EXPECT_EQ(t->joining_links, 59u);
  EXPECT_EQ(Reachable(*t), 60u);
  std::vector<std::tuple<double, uint32_t, uint32_t>> pairs;
  for (uint32_t a = 0; a < 60; ++a) {
    for (uint32_t b = a + 1; b < 60; ++b) pairs.emplace_back(Distance(*t, a, b), a, b);
  }
  std::sort(pairs.begin(), pairs.end());
  std::vector<uint32_t> root(60);
  std::iota(root.begin(), root.end(), 0u);
  auto find = [&](uint32_t x) {
    while (root[x] != x) x = root[x];
    return x;
  };
  double kruskal = 0;
  for (auto [d, a, b] : pairs) {
    if (find(a) != find(b)) {
      root[find(a)] = find(b);
      kruskal += d;
    }
  }
  double generated = 0;
  for (const GeneratedLink& l : t->links) generated += Distance(*t, l.a, l.b);
  EXPECT_NEAR(generated, kruskal, 1e-9 * kruskal);
}

// Waxman: the link count is a sum of independent Bernoulli draws with
// p = beta exp(-d / (alpha L)); compare it with its mean from the placed
// nodes, within 5 standard errors. A wrong L (the side, not the diagonal) or
// a missing beta moves the mean by far more than that.
TEST(TopologyGeneratorTest, WaxmanLinkCountMatchesItsProbabilities) {
  TopologySpec spec = Spec(TopologyKind::kWaxman, 400);
  spec.waxman_alpha = 0.15;
  spec.waxman_beta = 0.2;
  spec.area_km = 50;
  spec.seed = 3;
  auto t = GenerateTopology(spec);
  ASSERT_TRUE(t.ok()) << t.status();
  const double diagonal = 50 * std::sqrt(2.0);
  double mean = 0, variance = 0;
  for (uint32_t a = 0; a < 400; ++a) {
    for (uint32_t b = a + 1; b < 400; ++b) {
      const double p = 0.2 * std::exp(-Distance(*t, a, b) / (0.15 * diagonal));
      mean += p;
      variance += p * (1 - p);
    }
  }
  const double drawn = static_cast<double>(t->links.size() - t->joining_links);
  EXPECT_NEAR(drawn, mean, 5 * std::sqrt(variance)) << "mean " << mean << ", sd " << std::sqrt(variance);
  EXPECT_GT(mean, 1000);  // enough draws for the comparison to mean something
  EXPECT_EQ(Reachable(*t), 400u);
  ExpectLoadsBack(*t);
}

TEST(TopologyGeneratorTest, TheSameSeedGivesTheSameFileAndAnotherSeedAnother) {
  TopologySpec spec = Spec(TopologyKind::kWaxman, 200);
  spec.seed = 42;
  auto a = GenerateTopology(spec);
  auto b = GenerateTopology(spec);
  spec.seed = 43;
  auto c = GenerateTopology(spec);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(NetworkFileText(*a, "x"), NetworkFileText(*b, "x"));
  EXPECT_NE(NetworkFileText(*a, "x"), NetworkFileText(*c, "x"));
}

TEST(TopologyGeneratorTest, SpecsThatMakeNoNetworkAreRefusedWithTheReason) {
  auto expect_error = [](const TopologySpec& spec, std::string_view words) {
    auto t = GenerateTopology(spec);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(t.status().message()).find(words), std::string::npos) << t.status();
  };
  expect_error(Spec(TopologyKind::kRing, 2), "a ring needs 3 to");
  expect_error(Spec(TopologyKind::kChain, 1), "a chain needs 2 to");
  expect_error(Spec(TopologyKind::kWaxman, kMaxRandomTopologyNodes + 1), "a waxman needs 2 to 20000 nodes");
  TopologySpec torus;
  torus.kind = TopologyKind::kTorus;
  torus.rows = 2;
  torus.cols = 5;
  expect_error(torus, "wrap onto the same neighbour");
  expect_error(Spec(TopologyKind::kRandomGeometric, 10), "needs a link radius");
  TopologySpec waxman = Spec(TopologyKind::kWaxman, 10);
  waxman.waxman_alpha = 0;
  expect_error(waxman, "alpha and beta must be in (0, 1]");
  TopologySpec chain = Spec(TopologyKind::kChain, 4);
  chain.length_km = -1;
  expect_error(chain, "link length must be in (0,");
  chain.length_km = 1;
  chain.hardware = "tin-can";
  expect_error(chain, "unknown hardware preset 'tin-can'");
  chain.hardware = "ideal";
  chain.name = "my net";
  expect_error(chain, "not a valid name");
  TopologySpec dense = Spec(TopologyKind::kRandomGeometric, 1000);  // every pair within reach: 499500 links
  dense.radius_km = 1000;
  expect_error(dense, "more than 400000 links");
  EXPECT_FALSE(ParseTopologyKind("hypercube").ok());
  EXPECT_EQ(*ParseTopologyKind("geometric"), TopologyKind::kRandomGeometric);
}

}  // namespace
}  // namespace qnet::config
