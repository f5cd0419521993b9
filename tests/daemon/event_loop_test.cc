// The event loop's scaled clock and timers.
#include "daemon/event_loop.h"

#include <atomic>
#include <future>
#include <vector>

#include "gtest/gtest.h"

namespace qnet::daemon {
namespace {

using std::chrono::milliseconds;

TEST(EventLoopTest, NowIsWallTimeSinceStartTimesScale) {
  EventLoop loop(250.0);
  auto before = WallClock::now();
  TimePoint now = loop.Now();
  auto after = WallClock::now();
  // Bracketed exactly by the definition, whatever the machine's speed.
  EXPECT_GE(now, loop.ToSimulated(before - loop.epoch()));
  EXPECT_LE(now, loop.ToSimulated(after - loop.epoch()));
  EXPECT_EQ(loop.ToSimulated(std::chrono::seconds(2)).time_since_epoch(), std::chrono::seconds(500));
}

TEST(EventLoopTest, AGivenEpochIsTheClocksZero) {
  const int64_t unix_now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  // Five wall seconds ago at scale 2: at least ten simulated seconds now.
  EventLoop loop(2.0, unix_now - 5'000'000'000);
  EXPECT_GE(loop.Now().time_since_epoch(), std::chrono::seconds(10));
  EXPECT_LT(loop.epoch(), loop.created_at());
  EXPECT_EQ(loop.epoch_unix_ns(), unix_now - 5'000'000'000);
  // An epoch in the future is not honoured: the clock starts at zero, and
  // the epoch it reports (to its neighbours' Hello check) is its creation.
  EventLoop future(1.0, unix_now + 60'000'000'000);
  EXPECT_EQ(future.epoch(), future.created_at());
  EXPECT_GE(future.epoch_unix_ns(), unix_now);
  EXPECT_LT(future.epoch_unix_ns(), unix_now + 30'000'000'000);
}

TEST(EventLoopTest, ToWallDividesByScaleAndClamps) {
  EXPECT_EQ(EventLoop(0.5).ToWall(std::chrono::seconds(1)), std::chrono::seconds(2));
  EXPECT_EQ(EventLoop(1000.0).ToWall(std::chrono::seconds(3)), milliseconds(3));
  EXPECT_EQ(EventLoop(1.0).ToWall(Duration(-5)), WallClock::duration::zero());
  // "Never" stays finite instead of overflowing.
  EXPECT_GT(EventLoop(1e-6).ToWall(Duration::max()), std::chrono::hours(24 * 365));
}

TEST(EventLoopTest, ScaledTimerFiresNoEarlierThanItsSimulatedDelay) {
  EventLoop loop(100.0);  // 2 simulated seconds = 20 ms wall
  loop.Start();
  std::promise<std::pair<TimePoint, TimePoint>> fired;
  loop.Post([&] {
    TimePoint started = loop.Now();
    loop.StartTimer(std::chrono::seconds(2), [&, started] { fired.set_value({started, loop.Now()}); });
  });
  auto future = fired.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  auto [started, at] = future.get();
  EXPECT_GE(at - started, std::chrono::seconds(2));
}

TEST(EventLoopTest, TimersFireInDeadlineOrderOnTheLoopThread) {
  EventLoop loop(1000.0);
  loop.Start();
  std::vector<int> order;
  std::promise<void> done;
  std::atomic<bool> all_on_loop{true};
  loop.Post([&] {
    for (int i : {3, 1, 2}) {
      loop.StartTimer(std::chrono::seconds(i), [&, i] {
        if (!loop.InLoopThread()) all_on_loop = false;
        order.push_back(i);
        if (order.size() == 3) done.set_value();
      });
    }
  });
  ASSERT_EQ(done.get_future().wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(all_on_loop);
}

TEST(EventLoopTest, CancelledTimerNeverFires) {
  EventLoop loop(1000.0);
  loop.Start();
  std::atomic<bool> cancelled_fired{false};
  std::promise<void> later_fired;
  loop.Post([&] {
    TimerId doomed = loop.StartTimer(std::chrono::seconds(1), [&] { cancelled_fired = true; });
    EXPECT_NE(doomed, kNoTimer);
    EXPECT_TRUE(loop.CancelTimer(doomed));
    EXPECT_FALSE(loop.CancelTimer(doomed));
    // A later timer firing proves the loop got past the cancelled deadline.
    loop.StartTimer(std::chrono::seconds(5), [&] { later_fired.set_value(); });
  });
  ASSERT_EQ(later_fired.get_future().wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_FALSE(cancelled_fired);
  EXPECT_EQ(loop.Call([&] { return loop.pending_timers(); }), 0u);
}

TEST(EventLoopTest, TimersDueAlmostAtOnceFireInDeadlineOrderUnlessCancelled) {
  EventLoop loop(1.0);
  loop.Start();
  std::vector<int> order;
  std::promise<void> done;
  loop.Post([&] {
    using std::chrono::microseconds;
    // Started in this order, later calls have later deadlines whatever
    // the time between the calls.
    loop.StartWallTimer(microseconds(0), [&] { order.push_back(0); });
    TimerId doomed = loop.StartWallTimer(microseconds(1), [&] { order.push_back(1); });
    loop.StartWallTimer(microseconds(3), [&] { order.push_back(3); });
    loop.StartWallTimer(microseconds(8), [&] { order.push_back(8); });
    EXPECT_TRUE(loop.CancelTimer(doomed));
    loop.StartWallTimer(std::chrono::milliseconds(2), [&] { done.set_value(); });
  });
  ASSERT_EQ(done.get_future().wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_EQ(order, (std::vector<int>{0, 3, 8}));
  EXPECT_EQ(loop.Call([&] { return loop.pending_timers(); }), 0u);
}

TEST(EventLoopTest, CancelAfterFiringReturnsFalse) {
  EventLoop loop(1.0);
  loop.Start();
  std::promise<TimerId> fired;
  loop.Post([&] {
    auto id = std::make_shared<TimerId>();
    *id = loop.StartTimer(Duration(0), [&, id] { fired.set_value(*id); });
  });
  TimerId id = fired.get_future().get();
  EXPECT_FALSE(loop.Call([&] { return loop.CancelTimer(id); }));
}

TEST(EventLoopTest, PostsFromManyThreadsAllRunOnTheLoop) {
  EventLoop loop(1.0);
  loop.Start();
  int counter = 0;  // touched only on the loop thread
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) loop.Post([&] { ++counter; });
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(loop.Call([&] { return counter; }), 4000);
}

TEST(EventLoopTest, PostAfterStopIsDropped) {
  EventLoop loop(1.0);
  loop.Start();
  auto poster = loop.poster();
  loop.Stop();
  bool ran = false;
  EXPECT_FALSE(poster->Post([&] { ran = true; }));
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace qnet::daemon
