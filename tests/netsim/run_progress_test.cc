// qnetsim's progress reporter: lines about once a period while a run lasts,
// the simulator's time and events in them, nothing when quiet, and a
// watched run identical to an unwatched one.
#include "netsim/run_progress.h"

#include <chrono>
#include <optional>
#include <thread>

#include "gtest/gtest.h"
#include "config/network_config.h"
#include "netsim/link_experiment.h"
#include "netsim/simulated_network.h"
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

// The same network file and seed, with and without a reporter watching
// (every 1 ms of wall, the observer every 1024 events): the same pairs, the
// same outcomes, the same events.
TEST(RunProgressTest, AWatchedRunIsTheSameRun) {
  auto config = config::ParseNetworkConfig(
      "network: pair\nnodes:\n  - {name: a, hardware: ideal}\n  - {name: b, hardware: ideal}\n"
      "links:\n  - {between: [a, b], length_km: 1}\n",
      "test.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  auto run = [&](bool watched) -> absl::StatusOr<LinkExperimentResult> {
    auto network = SimulatedNetwork::Create(*config, 11);
    if (!network.ok()) return network.status();
    std::optional<RunProgress> progress;
    if (watched) {
      progress.emplace(true, milliseconds(1));
      progress->Watch((*network)->simulator());
    }
    LinkExperiment experiment;
    experiment.origin = "a";
    experiment.remote = "b";
    experiment.pairs = 300;
    return RunLinkExperiment(**network, experiment, std::chrono::seconds(100));
  };
  auto plain = run(false);
  ::testing::internal::CaptureStderr();
  auto watched = run(true);
  (void)::testing::internal::GetCapturedStderr();  // the lines are the first test's subject
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_TRUE(watched.ok()) << watched.status();
  EXPECT_GT(plain->events, 1024u) << "the observer never ran: this test would show nothing";
  EXPECT_EQ(watched->events, plain->events);
  EXPECT_EQ(watched->simulated_time, plain->simulated_time);
  ASSERT_EQ(watched->pairs.size(), plain->pairs.size());
  for (size_t i = 0; i < plain->pairs.size(); ++i) {
    EXPECT_EQ(watched->pairs[i].outcome_a, plain->pairs[i].outcome_a) << i;
    EXPECT_EQ(watched->pairs[i].outcome_b, plain->pairs[i].outcome_b) << i;
  }
}

}  // namespace
}  // namespace qnet::netsim
