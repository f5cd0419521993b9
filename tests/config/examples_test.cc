// Every network file shipped in examples/ must load; the named ones must
// have the shape their names promise.
#include <filesystem>
#include <set>
#include <string>

#include "config/network_config.h"
#include "physical/heralding_model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qnet::config {
namespace {

const std::filesystem::path kExamples = std::filesystem::path(QNET_SOURCE_DIR) / "examples";

NetworkConfig Load(const std::string& file) {
  auto c = LoadNetworkFile((kExamples / file).string());
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *std::move(c) : NetworkConfig{};
}

TEST(ExamplesTest, EveryExampleLoads) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kExamples)) {
    if (entry.path().extension() != ".yaml") continue;
    ++count;
    auto c = LoadNetworkFile(entry.path().string());
    EXPECT_TRUE(c.ok()) << c.status();
    if (!c.ok()) continue;
    EXPECT_TRUE(c->seed.has_value()) << entry.path() << ": examples should pin a seed";
    // Connected: a walk from the first node reaches every node.
    std::set<std::string> seen{c->nodes[0].name};
    std::vector<std::string> frontier{c->nodes[0].name};
    while (!frontier.empty()) {
      const std::string n = frontier.back();
      frontier.pop_back();
      std::vector<std::string> next = c->Neighbours(n);
      for (const physical::SatelliteLink& s : c->satellite_links) {  // a relay's downlinks join it too
        if (s.satellite == n) next.push_back(s.ground);
        if (s.ground == n) next.push_back(s.satellite);
      }
      for (const std::string& m : next) {
        if (seen.insert(m).second) frontier.push_back(m);
      }
    }
    EXPECT_EQ(seen.size(), c->nodes.size()) << entry.path() << " is not connected";
    // Every link must be one the heralding model accepts and can succeed on.
    for (const physical::LinkPhysics& link : c->links) {
      auto model = physical::ComputeAttemptModel(c->FindNode(link.node_a)->hardware,
                                                 c->FindNode(link.node_b)->hardware, link, /*alpha=*/0.1);
      ASSERT_TRUE(model.ok()) << entry.path() << ": " << model.status();
      EXPECT_GT(model->success_probability, 0.0) << entry.path() << " " << link.name;
    }
  }
  EXPECT_GE(count, 4);
}

TEST(ExamplesTest, ShapesMatchTheirNames) {
  const NetworkConfig two = Load("two-node.yaml");
  EXPECT_EQ(two.nodes.size(), 2u);
  EXPECT_EQ(two.links.size(), 1u);

  const NetworkConfig chain = Load("chain3.yaml");
  ASSERT_EQ(chain.nodes.size(), 3u);
  EXPECT_EQ(chain.links.size(), 2u);
  EXPECT_EQ(chain.Neighbours(chain.nodes[1].name).size(), 2u);  // the middle node

  const NetworkConfig ring = Load("ring6.yaml");
  ASSERT_EQ(ring.nodes.size(), 6u);
  EXPECT_EQ(ring.links.size(), 6u);
  for (const NodeConfig& n : ring.nodes) EXPECT_EQ(ring.Neighbours(n.name).size(), 2u) << n.name;

  const NetworkConfig ideal = Load("ideal-pair.yaml");
  ASSERT_EQ(ideal.nodes.size(), 2u);
  for (const NodeConfig& n : ideal.nodes) EXPECT_EQ(n.hardware.preset, "ideal");
  ASSERT_EQ(ideal.links.size(), 1u);
  EXPECT_LE(ideal.links[0].length_km, 5.0);
}

}  // namespace
}  // namespace qnet::config
