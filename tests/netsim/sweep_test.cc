// A length sweep's networks, and the PLOB bound the key rate is drawn against.
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
