#include "sim/simulator.h"

#include <algorithm>
#include <string>
#include <vector>

#include "core/rng.h"
#include "gtest/gtest.h"

namespace qnet::sim {
namespace {

using std::chrono::microseconds;
using std::chrono::nanoseconds;

TimePoint At(int64_t ns) { return TimePoint(nanoseconds(ns)); }

TEST(SimulatorTest, RunsEventsInTimeOrderAndAdvancesTheClock) {
  Simulator sim;
  std::vector<std::pair<int, int64_t>> seen;
  auto record = [&](int tag) { return [&, tag] { seen.emplace_back(tag, sim.Now().time_since_epoch().count()); }; };
  sim.ScheduleAt(At(30), record(3));
  sim.ScheduleAt(At(10), record(1));
  sim.ScheduleAt(At(20), record(2));
  EXPECT_EQ(sim.pending(), 3u);
  EXPECT_EQ(sim.RunUntilIdle(), 3u);
  EXPECT_EQ(seen, (std::vector<std::pair<int, int64_t>>{{1, 10}, {2, 20}, {3, 30}}));
  EXPECT_EQ(sim.Now(), At(30));
  EXPECT_EQ(sim.pending(), 0u);
  EXPECT_EQ(sim.events_run(), 3u);
}

TEST(SimulatorTest, EqualTimesRunInSchedulingOrder) {
  Simulator sim;
  std::vector<int> seen;
  for (int i = 0; i < 100; ++i) sim.ScheduleAt(At(5), [&, i] { seen.push_back(i); });
  // An event scheduled for "now" from inside an event goes after those already queued for now.
  sim.ScheduleAt(At(5), [&] { sim.ScheduleAfter(nanoseconds(0), [&] { seen.push_back(1000); }); });
  sim.ScheduleAt(At(5), [&] { seen.push_back(100); });
  sim.RunUntilIdle();
  ASSERT_EQ(seen.size(), 102u);
  for (int i = 0; i <= 100; ++i) EXPECT_EQ(seen[i], i);
  EXPECT_EQ(seen.back(), 1000);
}

TEST(SimulatorTest, PastTimesMeanNow) {
  Simulator sim(At(100));
  TimePoint ran_at;
  sim.ScheduleAt(At(7), [&] { ran_at = sim.Now(); });
  sim.ScheduleAfter(nanoseconds(-5), [] {});
  sim.RunUntilIdle();
  EXPECT_EQ(ran_at, At(100));
}

TEST(SimulatorTest, RunUntilStopsAtTheDeadlineAndMovesTheClockThere) {
  Simulator sim;
  int ran = 0;
  sim.ScheduleAt(At(10), [&] { ++ran; });
  sim.ScheduleAt(At(20), [&] { ++ran; });  // exactly at the deadline: runs
  sim.ScheduleAt(At(21), [&] { ++ran; });
  EXPECT_EQ(sim.RunUntil(At(20)), 2u);
  EXPECT_EQ(ran, 2);
  EXPECT_EQ(sim.Now(), At(20));
  EXPECT_EQ(sim.RunFor(nanoseconds(100)), 1u);
  EXPECT_EQ(sim.Now(), At(120));  // idle time passes too
  EXPECT_EQ(sim.NextEventTime(), TimePoint::max());
}

TEST(SimulatorTest, CancelledEventsNeverRun) {
  Simulator sim;
  std::vector<int> seen;
  const EventId a = sim.ScheduleAt(At(1), [&] { seen.push_back(1); });
  const EventId b = sim.ScheduleAt(At(2), [&] { seen.push_back(2); });
  const EventId c = sim.ScheduleAt(At(3), [&] { seen.push_back(3); });
  EXPECT_NE(a, kNoEvent);
  EXPECT_TRUE(sim.Cancel(b));
  EXPECT_FALSE(sim.Cancel(b));  // already cancelled
  EXPECT_FALSE(sim.Cancel(kNoEvent));
  EXPECT_FALSE(sim.Cancel(0xdeadbeef00000001ULL));  // never existed
  EXPECT_EQ(sim.pending(), 2u);
  ASSERT_TRUE(sim.Step());
  EXPECT_FALSE(sim.Cancel(a));  // already ran
  // Cancelling from inside an event.
  sim.ScheduleAt(At(2), [&] { EXPECT_TRUE(sim.Cancel(c)); });
  sim.RunUntilIdle();
  EXPECT_EQ(seen, std::vector<int>{1});
  EXPECT_FALSE(sim.Step());
}

TEST(SimulatorTest, ARecycledSlotDoesNotHonourAStaleId) {
  Simulator sim;
  const EventId first = sim.ScheduleAt(At(1), [] {});
  ASSERT_TRUE(sim.Cancel(first));
  bool ran = false;
  const EventId second = sim.ScheduleAt(At(1), [&] { ran = true; });  // reuses the slot
  EXPECT_NE(first, second);
  EXPECT_FALSE(sim.Cancel(first));
  sim.RunUntilIdle();
  EXPECT_TRUE(ran);
}

TEST(SimulatorTest, AnOwnedEventRunsOnlyWhileItsOwnerIsAliveInItsStamp) {
  struct Owner final : EventOwner {
    uint64_t current = 1;
    bool Alive(uint64_t stamp) const override { return stamp == current; }
  } owner;
  Simulator sim;
  std::vector<int> seen;
  sim.ScheduleAfter(nanoseconds(1), [&] { seen.push_back(1); }, &owner, 1);
  sim.ScheduleAfter(nanoseconds(3), [&] { seen.push_back(3); }, &owner, 1);
  sim.ScheduleAfter(nanoseconds(4), [&] { seen.push_back(4); }, &owner, 2);
  sim.ScheduleAfter(nanoseconds(2), [&] { owner.current = 2; });  // e.g. the node restarted
  EXPECT_EQ(sim.RunUntilIdle(), 4u);  // a silenced event still counts as run
  EXPECT_EQ(seen, (std::vector<int>{1, 4}));
  // A slot reused by a plain event forgets the owner (whose stamps are all
  // stale now).
  owner.current = 3;
  sim.ScheduleAfter(nanoseconds(1), [&] { seen.push_back(5); });
  sim.RunUntilIdle();
  EXPECT_EQ(seen, (std::vector<int>{1, 4, 5}));
}

TEST(SimulatorTest, StopReturnsAfterTheCurrentEvent) {
  Simulator sim;
  int ran = 0;
  sim.ScheduleAt(At(1), [&] { ++ran; sim.Stop(); });
  sim.ScheduleAt(At(2), [&] { ++ran; });
  EXPECT_EQ(sim.RunUntil(At(1000)), 1u);
  EXPECT_EQ(sim.Now(), At(1));  // a stopped run does not jump to the deadline
  EXPECT_EQ(sim.RunUntilIdle(), 1u);
  EXPECT_EQ(ran, 2);
}

TEST(SimulatorTest, RunUntilPredicate) {
  Simulator sim;
  int count = 0;
  for (int i = 1; i <= 10; ++i) sim.ScheduleAt(At(i * 100), [&] { ++count; });
  EXPECT_TRUE(sim.RunUntil([&] { return count == 4; }, At(10'000)));
  EXPECT_EQ(sim.Now(), At(400));
  EXPECT_FALSE(sim.RunUntil([&] { return count == 100; }, At(750)));
  EXPECT_EQ(count, 7);
  EXPECT_EQ(sim.Now(), At(750));
  EXPECT_TRUE(sim.RunUntil([] { return true; }, At(0)));  // already true: runs nothing
  EXPECT_EQ(count, 7);
}

// Against a reference model: the run order must equal the (time, scheduling
// order) sort of the events not cancelled, with many cancellations (enough to
// trigger the heap's compaction) and events scheduled from inside events.
TEST(SimulatorTest, MatchesReferenceOrderUnderRandomCancellation) {
  Rng rng(7);
  Simulator sim;
  struct Planned {
    int64_t time;
    int tag;
    EventId id;
    bool cancelled;
  };
  std::vector<Planned> planned;
  std::vector<int> ran;
  for (int i = 0; i < 20000; ++i) {
    const int64_t t = static_cast<int64_t>(rng.UniformInt(5000));
    planned.push_back({t, i, sim.ScheduleAt(At(t), [&ran, i] { ran.push_back(i); }), false});
  }
  for (auto& p : planned) {
    if (rng.Bernoulli(0.7)) {
      ASSERT_TRUE(sim.Cancel(p.id));
      p.cancelled = true;
    }
  }
  std::vector<Planned> expected;
  for (const auto& p : planned) {
    if (!p.cancelled) expected.push_back(p);
  }
  std::stable_sort(expected.begin(), expected.end(),
                   [](const Planned& x, const Planned& y) { return x.time < y.time; });
  EXPECT_EQ(sim.pending(), expected.size());
  sim.RunUntilIdle();
  ASSERT_EQ(ran.size(), expected.size());
  for (size_t i = 0; i < ran.size(); ++i) ASSERT_EQ(ran[i], expected[i].tag) << "at position " << i;
}

// A self-scheduling random process: the same seed gives the same trace.
std::vector<std::string> RandomProcessTrace(uint64_t seed) {
  Simulator sim;
  Rng rng(seed);
  std::vector<std::string> trace;
  std::vector<EventId> ids;
  std::function<void(int)> spawn = [&](int depth) {
    trace.push_back(std::to_string(sim.Now().time_since_epoch().count()) + ":" + std::to_string(depth));
    if (depth >= 12) return;
    for (int k = 0; k < 2; ++k) {
      ids.push_back(sim.ScheduleAfter(nanoseconds(rng.UniformInt(50)), [&, depth] { spawn(depth + 1); }));
    }
    if (rng.Bernoulli(0.3)) sim.Cancel(ids[rng.UniformInt(ids.size())]);
  };
  sim.ScheduleAt(At(0), [&] { spawn(0); });
  sim.RunUntilIdle();
  return trace;
}

TEST(SimulatorTest, SameSeedSameTrace) {
  const auto a = RandomProcessTrace(42);
  EXPECT_GT(a.size(), 100u);
  EXPECT_EQ(a, RandomProcessTrace(42));
  EXPECT_NE(a, RandomProcessTrace(43));
}

}  // namespace
}  // namespace qnet::sim
