// LagMonitor: the lag of each event, the union of the intervals the node was
// behind, neighbours' accounts, and the reports built from them. Times are
// synthetic points on the steady clock, so every figure is a hand computation.
#include "daemon/lag_monitor.h"

#include <gtest/gtest.h>

namespace qnet::daemon {
namespace {

using Clock = LagMonitor::Clock;
using std::chrono::microseconds;
using std::chrono::milliseconds;

const Clock::time_point t0 = Clock::time_point() + std::chrono::hours(1);

TEST(LagMonitorTest, EventsWithinTheBoundAreNotBehind) {
  LagMonitor lag(/*time_scale=*/1.0);
  lag.Configure("alice", microseconds(10));
  const LagMonitor::Mark mark = lag.Begin(t0);
  for (int i = 0; i < 100; ++i) lag.OnEvent(t0 + milliseconds(i), t0 + milliseconds(i) + microseconds(5));
  const v1::SoftwareLag report = lag.Since(mark, t0 + milliseconds(100));
  EXPECT_FALSE(report.behind());
  EXPECT_EQ(report.behind_fraction(), 0.0);
  EXPECT_NEAR(report.max_lag_s(), 5e-6, 1e-12);
  EXPECT_EQ(report.nodes_behind_size(), 0);
  EXPECT_EQ(lag.own_behind_ns(), 0);
}

TEST(LagMonitorTest, BehindTimeIsTheUnionOfLateIntervals) {
  LagMonitor lag(1.0);
  lag.Configure("alice", microseconds(10));
  const LagMonitor::Mark mark = lag.Begin(t0);
  // Two overlapping late events: [0, 30 ms] and [10, 40 ms] -> 40 ms behind.
  lag.OnEvent(t0, t0 + milliseconds(30));
  lag.OnEvent(t0 + milliseconds(10), t0 + milliseconds(40));
  // A disjoint one: [60, 70 ms] -> 10 ms more.
  lag.OnEvent(t0 + milliseconds(60), t0 + milliseconds(70));
  // On time (within the bound): nothing.
  lag.OnEvent(t0 + milliseconds(80), t0 + milliseconds(80) + microseconds(3));
  EXPECT_EQ(lag.own_behind_ns(), 50'000'000);
  const v1::SoftwareLag report = lag.Since(mark, t0 + milliseconds(100));
  EXPECT_TRUE(report.behind());
  EXPECT_NEAR(report.behind_fraction(), 0.5, 1e-9);
  EXPECT_NEAR(report.max_lag_s(), 0.030, 1e-9);
  ASSERT_EQ(report.nodes_behind_size(), 1);
  EXPECT_EQ(report.nodes_behind(0), "alice");
  EXPECT_NE(DescribeLag(report).find("50% of this request (at alice)"), std::string::npos) << DescribeLag(report);
}

TEST(LagMonitorTest, LagIsReportedInSimulatedTime) {
  // At time scale 100 a wall millisecond is 100 simulated milliseconds; the
  // bound is simulated too: 1 ms simulated is 10 us of wall time.
  LagMonitor lag(100.0);
  lag.Configure("bob", milliseconds(1));
  const LagMonitor::Mark mark = lag.Begin(t0);
  lag.OnEvent(t0, t0 + microseconds(8));    // 0.8 ms simulated: within the bound
  lag.OnEvent(t0 + milliseconds(1), t0 + milliseconds(2));  // 100 ms simulated: behind for 1 ms wall
  EXPECT_EQ(lag.own_behind_ns(), 100'000'000);
  const v1::SoftwareLag report = lag.Since(mark, t0 + milliseconds(4));
  EXPECT_NEAR(report.behind_fraction(), 0.25, 1e-9);
  EXPECT_NEAR(report.max_lag_s(), 0.1, 1e-9);
  EXPECT_NEAR(report.bound_s(), 1e-3, 1e-15);
  EXPECT_EQ(lag.OwnReport(t0 + milliseconds(4)).recent_max_lag_ns(), 100'000'000);
}

TEST(LagMonitorTest, ARequestCountsOnlyWhatHappenedSinceItsMark) {
  LagMonitor lag(1.0);
  lag.Configure("alice", microseconds(1));
  lag.OnEvent(t0, t0 + milliseconds(500));  // before the request
  const LagMonitor::Mark mark = lag.Begin(t0 + milliseconds(500));
  lag.OnEvent(t0 + milliseconds(600), t0 + milliseconds(610));
  const v1::SoftwareLag report = lag.Since(mark, t0 + milliseconds(1500));
  EXPECT_NEAR(report.behind_fraction(), 0.01, 1e-9);
  EXPECT_TRUE(report.behind());
}

TEST(LagMonitorTest, NeighboursAccountsCoverTheirNodes) {
  LagMonitor lag(1.0);
  lag.Configure("alice", microseconds(10));
  v1::PeerLag bob;
  bob.set_behind_ns(1'000'000'000);  // behind for a second before the request
  lag.OnNeighbourReport("bob", bob, t0);
  const LagMonitor::Mark mark = lag.Begin(t0);
  // carol is first heard from after the mark: no baseline, not counted.
  v1::PeerLag carol;
  carol.set_behind_ns(5'000'000'000);
  lag.OnNeighbourReport("carol", carol, t0 + milliseconds(1));
  bob.set_behind_ns(1'000'000'000 + 300'000'000);  // 300 ms more during the request
  bob.set_recent_max_lag_ns(2'000'000);
  lag.OnNeighbourReport("bob", bob, t0 + milliseconds(900));
  const v1::SoftwareLag report = lag.Since(mark, t0 + milliseconds(1000));
  EXPECT_NEAR(report.behind_fraction(), 0.3, 1e-9);
  EXPECT_NEAR(report.max_lag_s(), 0.002, 1e-12);
  ASSERT_EQ(report.nodes_behind_size(), 1);
  EXPECT_EQ(report.nodes_behind(0), "bob");
  // A neighbour that restarted (its counter went back) counts nothing.
  bob.set_behind_ns(0);
  lag.OnNeighbourReport("bob", bob, t0 + milliseconds(1000));
  EXPECT_EQ(lag.Since(mark, t0 + milliseconds(1000)).behind_fraction(), 0.0);
}

TEST(LagMonitorTest, RecentGivesPercentilesOverTheLastMinute) {
  LagMonitor lag(1.0);
  lag.Configure("alice", microseconds(100));
  // An old burst, more than a minute before `now`, is outside the window.
  lag.OnEvent(t0, t0 + std::chrono::seconds(1));
  const Clock::time_point start = t0 + std::chrono::seconds(100);
  // 98 events 1 us late, 2 events 10 ms late.
  for (int i = 0; i < 98; ++i) lag.OnEvent(start + milliseconds(10 * i), start + milliseconds(10 * i) + microseconds(1));
  lag.OnEvent(start + milliseconds(980), start + milliseconds(990));
  lag.OnEvent(start + milliseconds(990), start + milliseconds(1000));
  const v1::LagStatus recent = lag.Recent(start + milliseconds(1000));
  EXPECT_EQ(recent.events(), 100u);
  // Histogram bins are a quarter octave wide: within 19% above the value.
  EXPECT_GE(recent.p50_s(), 1e-6);
  EXPECT_LE(recent.p50_s(), 1.19e-6 + 1e-9);
  EXPECT_GE(recent.p99_s(), 0.010);
  EXPECT_LE(recent.p99_s(), 0.010 * 1.19);
  EXPECT_NEAR(recent.max_s(), 0.010, 1e-12);
  EXPECT_NEAR(recent.window_s(), 1.0, 1e-5);
  EXPECT_NEAR(recent.behind_fraction(), 0.02, 1e-5);
  EXPECT_TRUE(recent.behind());
  EXPECT_EQ(LagMonitor(1.0).Recent(start).events(), 0u);
}

TEST(LagMonitorTest, StatusNotesOnlyFailuresWhileBehind) {
  v1::SoftwareLag lag;
  EXPECT_EQ(WithLagNote(absl::DeadlineExceededError("timed out"), lag).message(), "timed out");
  lag.set_behind(true);
  lag.set_behind_fraction(0.9);
  lag.set_max_lag_s(0.0021);
  lag.add_nodes_behind("alice");
  const absl::Status noted = WithLagNote(absl::DeadlineExceededError("timed out"), lag);
  EXPECT_EQ(noted.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(noted.message().find("timed out; meanwhile the software fell behind the physics by up to 2.1 ms"),
            std::string::npos)
      << noted.message();
  EXPECT_TRUE(WithLagNote(absl::OkStatus(), lag).ok());
}

}  // namespace
}  // namespace qnet::daemon
