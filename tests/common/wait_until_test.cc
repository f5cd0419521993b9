// WaitUntil and the timeout factor (tests/common/wait_until.h).
#include "tests/common/wait_until.h"

#include <chrono>

#include "gtest/gtest.h"

namespace qnet::testing {
namespace {

TEST(WaitUntilTest, HoldsAtOnceOrAfterAFewPolls) {
  EXPECT_TRUE(WaitUntil("nothing", [] { return true; }));
  int polls = 0;
  EXPECT_TRUE(WaitUntil("the third poll", [&] { return ++polls == 3; }, std::chrono::seconds(5),
                        std::chrono::milliseconds(1)));
  EXPECT_EQ(polls, 3);
}

TEST(WaitUntilTest, GivingUpSaysWhatWasAwaitedAndForHowLong) {
  const auto start = std::chrono::steady_clock::now();
  ::testing::AssertionResult result =
      WaitUntil("a condition that never holds", [] { return false; }, std::chrono::milliseconds(40),
                std::chrono::milliseconds(5));
  EXPECT_FALSE(result);
  EXPECT_GE(std::chrono::steady_clock::now() - start, Scaled(std::chrono::milliseconds(40)));
  const std::string message = result.message();
  EXPECT_NE(message.find("gave up waiting for a condition that never holds after "), std::string::npos) << message;
  EXPECT_NE(message.find(absl::FormatDuration(Scaled(absl::Milliseconds(40)))), std::string::npos) << message;
}

TEST(WaitUntilTest, TimeoutsAreStretchedByTheFactor) {
  EXPECT_GE(TimeoutFactor(), 1.0);
  EXPECT_EQ(Scaled(std::chrono::milliseconds(1000)).count(), static_cast<int64_t>(1000 * TimeoutFactor()));
  EXPECT_EQ(Scaled(absl::Seconds(2)), absl::Seconds(2) * TimeoutFactor());
}

}  // namespace
}  // namespace qnet::testing
