// The range a user writes after --sweep, and the points it names.
#include "plot/sweep_range.h"

#include "gtest/gtest.h"

namespace qnet::plot {
namespace {

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

}  // namespace
}  // namespace qnet::plot
