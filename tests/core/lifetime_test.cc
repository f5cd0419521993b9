#include "core/lifetime.h"

#include <functional>
#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace qnet {
namespace {

TEST(LifetimeTest, GuardedCallbackRunsWhileAlive) {
  Lifetime lifetime;
  int calls = 0;
  std::string seen;
  std::function<void(const std::string&)> fn = lifetime.Guard([&](const std::string& s) {
    ++calls;
    seen = s;
  });
  fn("a");
  fn("b");
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(seen, "b");
}

TEST(LifetimeTest, EndStopsEveryGuardedCallback) {
  Lifetime lifetime;
  int calls = 0;
  std::function<void()> first = lifetime.Guard([&] { ++calls; });
  std::function<void(int)> second = lifetime.Guard([&](int n) { calls += n; });
  EXPECT_FALSE(lifetime.ended());
  lifetime.End();
  lifetime.End();  // idempotent
  EXPECT_TRUE(lifetime.ended());
  first();
  second(5);
  EXPECT_EQ(calls, 0);
}

TEST(LifetimeTest, CallbackOutlivesItsOwner) {
  int calls = 0;
  std::function<void()> fn;
  {
    auto owner = std::make_unique<Lifetime>();
    fn = owner->Guard([&] { ++calls; });
    fn();
  }
  fn();  // the owner is gone: nothing runs, nothing dangles
  EXPECT_EQ(calls, 1);
}

TEST(LifetimeTest, MoveOnlyArgumentsAreForwarded) {
  Lifetime lifetime;
  int got = 0;
  auto fn = lifetime.Guard([&](std::unique_ptr<int> p) { got = *p; });
  fn(std::make_unique<int>(7));
  EXPECT_EQ(got, 7);
}

}  // namespace
}  // namespace qnet
