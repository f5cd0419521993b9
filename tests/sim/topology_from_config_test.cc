#include "sim/topology_from_config.h"

#include "gtest/gtest.h"

namespace qnet::sim {
namespace {

TEST(TopologyFromConfigTest, NodesAndChannelsFollowTheFile) {
  auto config = config::ParseNetworkConfig(R"(network: tri
nodes: [{name: x, hardware: ideal}, {name: y, hardware: ideal}, {name: z, hardware: nv}]
links:
  - {between: [x, y], length_km: 4}
  - {between: [z, y], length_km: 0.2}
)",
                                           "tri.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  Simulator sim;
  auto net = SimNetwork::Create(sim, 3, TopologyFromConfig(*config));
  ASSERT_TRUE(net.ok()) << net.status();
  ASSERT_EQ((*net)->num_nodes(), 3u);
  EXPECT_EQ((*net)->node(2).node_name(), "z");
  EXPECT_EQ((*net)->node(2).index(), config->nodes[2].index);
  ASSERT_EQ((*net)->channels().size(), 2u);
  SimChannel* zy = (*net)->FindChannelByName("z-y");
  ASSERT_NE(zy, nullptr);
  EXPECT_EQ(zy->node_a(), "z");
  EXPECT_EQ(zy->delay(), std::chrono::nanoseconds(1000));  // 0.2 km / 2e5 km/s
  EXPECT_EQ((*net)->FindChannel("y", "x")->delay(), std::chrono::microseconds(20));
  EXPECT_EQ((*net)->FindChannel("x", "z"), nullptr);
}

}  // namespace
}  // namespace qnet::sim
