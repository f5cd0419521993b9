// qnetsim's progress reporter: lines about once a period while a run lasts,
// the simulator's time and events in them, nothing when quiet, and a
// watched run identical to an unwatched one.
#include "netsim/run_progress.h"

#include <chrono>
#include <thread>

#include "gtest/gtest.h"
#include "sim/simulator.h"

namespace qnet::netsim {
namespace {

using std::chrono::milliseconds;

// 3000 events 0.1 ms of wall apart (~300 ms in all), 1 us simulated apart.
uint64_t RunSlowly(sim::Simulator& simulator) {
  uint64_t sum = 0;
  for (int i = 0; i < 3000; ++i) {
    simulator.ScheduleAfter(std::chrono::microseconds(i), [&sum, i] {
      sum += static_cast<uint64_t>(i);
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    });
  }
  simulator.RunUntilIdle();
  return sum;
}

TEST(RunProgressTest, ReportsThePhaseAndTheSimulatorWhileARunLasts) {
  ::testing::internal::CaptureStderr();
  {
    RunProgress progress(true, milliseconds(20));
    progress.SetPhase("simulating the test run");
    sim::Simulator simulator;
    progress.Watch(simulator);
    EXPECT_EQ(RunSlowly(simulator), 3000u * 2999u / 2);
  }
  const std::string out = ::testing::internal::GetCapturedStderr();
  // stderr is not a terminal under ctest: plain lines.
  EXPECT_NE(out.find("qnetsim: simulating the test run, "), std::string::npos) << out;
  EXPECT_NE(out.find(" events)\n"), std::string::npos) << out;  // the observer published at 1024 and 2048
  EXPECT_NE(out.find("(simulated 0.00"), std::string::npos) << out;
}

TEST(RunProgressTest, QuietPrintsNothing) {
  ::testing::internal::CaptureStderr();
  {
    RunProgress progress(false, milliseconds(5));
    progress.SetPhase("simulating");
    sim::Simulator simulator;
    progress.Watch(simulator);
    RunSlowly(simulator);
  }
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

TEST(RunProgressTest, AWatchedRunIsTheSameRun) {
  sim::Simulator watched, plain;
  std::vector<int64_t> times_watched, times_plain;
  watched.SetObserver(7, [](const sim::Simulator&) {});
  for (auto* s : {&watched, &plain}) {
    auto& times = s == &watched ? times_watched : times_plain;
    for (int i = 0; i < 100; ++i) {
      s->ScheduleAfter(std::chrono::nanoseconds((i * 37) % 11), [s, &times] {
        times.push_back(s->Now().time_since_epoch().count());
      });
    }
    s->RunUntilIdle();
  }
  EXPECT_EQ(times_watched, times_plain);
  EXPECT_EQ(watched.events_run(), plain.events_run());
}

}  // namespace
}  // namespace qnet::netsim
