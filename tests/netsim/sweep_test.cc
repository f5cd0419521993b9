// The sweep's parts: the range a user writes, each point's network, the node
// a hop count names, and the PLOB bound the key rate is drawn against.
#include "netsim/sweep.h"

#include <cmath>

#include "config/network_config.h"
#include "gtest/gtest.h"

namespace qnet::netsim {
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

TEST(SweepRangeTest, ParsesAndCountsThePoints) {
  auto range = ParseSweep("length_km=0:1:0.1");
  ASSERT_TRUE(range.ok()) << range.status();
  EXPECT_EQ(range->parameter, "length_km");
  const std::vector<double> values = range->Values();
  ASSERT_EQ(values.size(), 11u);
  EXPECT_DOUBLE_EQ(values.front(), 0.0);
  EXPECT_NEAR(values.back(), 1.0, 1e-12);
  auto hops = ParseSweep("hops=2:5");
  ASSERT_TRUE(hops.ok()) << hops.status();
  EXPECT_EQ(hops->Values(), (std::vector<double>{2, 3, 4, 5}));
  auto uneven = ParseSweep("length_km=10:35:10");
  ASSERT_TRUE(uneven.ok());
  EXPECT_EQ(uneven->Values(), (std::vector<double>{10, 20, 30}));
}

TEST(SweepRangeTest, RefusesWhatCannotBeSwept) {
  for (const char* bad : {"length_km", "length_km=", "width=0:1:1", "length_km=5:1:1", "length_km=0:1:0",
                          "length_km=0:1:-1", "length_km=-5:1:1", "length_km=0:1000:1", "hops=0:3",
                          "hops=1.5:3", "hops=1:3:0.5", "length_km=a:b", "length_km=0:1:1:1", "length_km=0:inf:1"}) {
    auto range = ParseSweep(bad);
    EXPECT_EQ(range.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(range.status().message().find("--sweep"), std::string::npos) << range.status();
  }
}

TEST(SweepNetworkTest, WithLinkLengthSetsTheNamedLinkOrEvery) {
  auto config = config::ParseNetworkConfig(kRing, "ring.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  auto one = WithLinkLength(*config, "b-c", 42);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->FindLinkByName("b-c")->length_km, 42);
  EXPECT_EQ(one->FindLinkByName("a-b")->length_km, 1);
  auto all = WithLinkLength(*config, "all", 7);
  ASSERT_TRUE(all.ok());
  for (const auto& link : all->links) EXPECT_EQ(link.length_km, 7) << link.name;
  EXPECT_EQ(WithLinkLength(*config, "a-c", 1).status().code(), absl::StatusCode::kNotFound);
}

TEST(SweepNetworkTest, NodeAtHopsTakesTheShortestPathAndFileOrder) {
  auto config = config::ParseNetworkConfig(kRing, "ring.yaml");
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

TEST(PlobBoundTest, MatchesTheClosedForm) {
  EXPECT_DOUBLE_EQ(PlobBoundBitsPerUse(0.5), 1.0);
  EXPECT_DOUBLE_EQ(PlobBoundBitsPerUse(0.75), 2.0);
  // For small eta the bound is eta / ln 2 (1.44 eta).
  EXPECT_NEAR(PlobBoundBitsPerUse(1e-4) / 1e-4, 1.0 / std::log(2.0), 1e-3);
  EXPECT_TRUE(std::isinf(PlobBoundBitsPerUse(1.0)));
  physical::LinkPhysics link;
  link.length_km = 50;
  link.attenuation_db_per_km = 0.2;
  EXPECT_NEAR(FibreTransmittance(link), 0.1, 1e-12);  // 10 dB
}

}  // namespace
}  // namespace qnet::netsim
