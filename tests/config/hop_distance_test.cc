// Which node lies a given number of hops from another (the far end of each
// point of a hop sweep).
#include "config/hop_distance.h"

#include "gtest/gtest.h"

namespace qnet::config {
namespace {

constexpr char kRing[] = R"(network: ring
nodes:
  - {name: a, hardware: ideal}
  - {name: b, hardware: ideal}
  - {name: c, hardware: ideal}
  - {name: d, hardware: ideal}
  - {name: e, hardware: ideal}
links:
  - {between: [a, b], length_km: 1}
  - {between: [b, c], length_km: 2}
  - {between: [c, d], length_km: 3}
  - {between: [d, e], length_km: 4}
  - {between: [e, a], length_km: 5}
)";

TEST(SweepNetworkTest, NodeAtHopsTakesTheShortestPathAndFileOrder) {
  auto config = ParseNetworkConfig(kRing, "ring.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  // From a: b and e are 1 hop away (b first in the file), c and d 2 hops.
  EXPECT_EQ(*NodeAtHops(*config, "a", 1), "b");
  EXPECT_EQ(*NodeAtHops(*config, "a", 2), "c");
  EXPECT_EQ(*NodeAtHops(*config, "c", 2), "a");
  auto far = NodeAtHops(*config, "a", 3);
  EXPECT_EQ(far.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(far.status().message().find("the farthest is 2 hops away"), std::string::npos) << far.status();
  EXPECT_EQ(NodeAtHops(*config, "z", 1).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace qnet::config
