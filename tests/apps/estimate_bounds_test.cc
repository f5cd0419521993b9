// The note a report adds to an estimate above its physical bound.
#include "apps/estimate_bounds.h"

#include "gtest/gtest.h"

namespace qnet::apps {
namespace {

TEST(EstimateBoundsTest, NothingWithinTheBound) {
  EXPECT_EQ(AboveBoundNote(2.7, 0.1, kTsirelsonBound, "quantum bound"), "");
  EXPECT_EQ(AboveBoundNote(1.0, 0.0, 1.0, "largest possible fidelity"), "");
}

TEST(EstimateBoundsTest, AboveTheBoundSaysByHowManyStandardErrors) {
  // The CHSH S = 3.06 +- 0.13 a user saw: 1.8 standard errors above 2.828.
  EXPECT_EQ(AboveBoundNote(3.06, 0.13, kTsirelsonBound, "quantum bound"),
            " - above the quantum bound 2.828 by 1.8 standard errors: a statistical fluctuation");
  EXPECT_EQ(AboveBoundNote(1.112, 0.01, 1.0, "largest possible fidelity"),
            " - above the largest possible fidelity 1 by 11.2 standard errors: unlikely by chance; please report it");
  EXPECT_NEAR(kTsirelsonBound, 2 * std::sqrt(2.0), 1e-15);
}

}  // namespace
}  // namespace qnet::apps
