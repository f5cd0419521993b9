#include "keydist/chsh.h"

#include <cmath>

#include "gtest/gtest.h"

namespace qnet::keydist {
namespace {

TEST(ChshTally, NeedsEveryPairOfSettings) {
  ChshTally t;
  EXPECT_FALSE(t.complete());
  t.Add(0, 0, true, true);
  t.Add(0, 1, true, true);
  t.Add(1, 0, true, true);
  EXPECT_FALSE(t.complete());
  t.Add(1, 1, true, false);
  EXPECT_TRUE(t.complete());
  EXPECT_EQ(t.pairs(), 4u);
  EXPECT_EQ(t.count(1, 1), 1u);
}

TEST(ChshTally, PerfectCorrelationsReachFourWithSamplingError) {
  ChshTally t;
  constexpr int kN = 10;
  for (int i = 0; i < kN; ++i) {
    const bool bit = i % 2 == 0;
    t.Add(0, 0, bit, bit);
    t.Add(0, 1, bit, bit);
    t.Add(1, 0, bit, bit);
    t.Add(1, 1, bit, !bit);  // X-B1 enters S with a minus sign
  }
  const ChshTally::Value v = t.Estimate();
  EXPECT_DOUBLE_EQ(v.s, 4.0);
  EXPECT_DOUBLE_EQ(v.stderr_s, std::sqrt(4.0 / (kN * kN)));  // floor 1/n^2 per term
}

TEST(ChshTally, UncorrelatedOutcomesGiveZero) {
  ChshTally t;
  constexpr int kN = 100;
  for (int i = 0; i < kN; ++i) {
    for (int a = 0; a < 2; ++a) {
      for (int b = 0; b < 2; ++b) t.Add(a, b, true, i % 2 == 0);
    }
  }
  const ChshTally::Value v = t.Estimate();
  EXPECT_DOUBLE_EQ(v.s, 0.0);
  EXPECT_DOUBLE_EQ(v.stderr_s, std::sqrt(4.0 / kN));
}

}  // namespace
}  // namespace qnet::keydist
