// Node.Entangle across real qnetd processes (launcher, gRPC only): MEASURE
// statistics from both ends, validation at the edge, and a far daemon that
// dies mid-request.
#include <signal.h>

#include <atomic>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "apps/pair_statistics.h"
#include "cli/entangle_client.h"
#include "cli/launcher.h"
#include "gtest/gtest.h"
#include "qnet/v1/node_service.grpc.pb.h"
#include "tests/common/multiprocess_test.h"
#include "tests/daemon/node_queries.h"

namespace qnet::daemon {
namespace {

using cli::LocalNetwork;
using qnet::testing::Scaled;
using qnet::testing::WaitUntil;
using testing::GetStatus;
using testing::MemoryFree;
using testing::WaitConnected;

class EntangleMpTest : public qnet::testing::MultiProcessTest {
 protected:
  std::unique_ptr<LocalNetwork> Launch(const std::string& example, double time_scale,
                                       std::vector<std::string> extra_args = {}) {
    cli::LaunchOptions o = LaunchOptionsFor(Example(example), time_scale);
    o.extra_args = std::move(extra_args);
    return StartNetwork(o);
  }
};

TEST_F(EntangleMpTest, IdealPairMeasureInRandomZXBasesHasNoErrors) {
  auto net = Launch("ideal-pair.yaml", 10.0);
  ASSERT_NE(net, nullptr);
  const std::string alice = *net->Address("alice");
  const std::string bob = *net->Address("bob");
  ASSERT_TRUE(WaitConnected(alice));

  v1::EntangleRequest request;
  request.set_remote_node("bob");
  request.set_pairs(2000);
  request.set_type(v1::EntangleRequest::MEASURE);
  request.set_basis(v1::EntangleRequest::BB84);
  auto result = cli::RunEntangle(alice, request, Scaled(absl::Seconds(60)));
  ASSERT_TRUE(result.ok()) << result.status() << "\n" << net->LogTail("alice");
  ASSERT_EQ(result->pairs.size(), 2000u);
  EXPECT_EQ(result->summary.pairs(), 2000u);

  auto far = cli::FetchOutcomes(bob, "alice", result->pairs);
  ASSERT_TRUE(far.ok()) << far.status();
  ASSERT_EQ(far->size(), 2000u);
  std::vector<apps::MeasuredPair> matched = cli::MatchPairs("alice", result->pairs, *far);
  ASSERT_EQ(matched.size(), 2000u);
  apps::PairStatistics stats = apps::AnalysePairs(matched);
  // BB84 bases chosen independently: about half the pairs share a basis
  // (1000 +- 5 sigma = 5 x sqrt(2000 / 4) ~ 112).
  EXPECT_NEAR(static_cast<double>(stats.z.pairs + stats.x.pairs), 1000.0, 112.0);
  EXPECT_GT(stats.z.pairs, 300u);
  EXPECT_GT(stats.x.pairs, 300u);
  // Ideal hardware, double-click heralding: exact Bell states, no readout
  // error, so no errors at all.
  EXPECT_EQ(stats.z.errors, 0u);
  EXPECT_EQ(stats.x.errors, 0u);
  for (const v1::PairEvent& p : result->pairs) EXPECT_NEAR(p.fidelity_estimate(), 1.0, 1e-9);

  // MEASURE pairs leave no memory in use at either end.
  for (const std::string& address : {alice, bob}) {
    auto status = GetStatus(address);
    ASSERT_TRUE(status.ok());
    EXPECT_EQ(status->memory_qubits_in_use(), 0u) << status->node();
  }
  EXPECT_TRUE(net->StopAll().ok());
}

TEST_F(EntangleMpTest, MalformedRequestsAreInvalidArgumentAndTheDaemonKeepsServing) {
  auto net = Launch("chain3.yaml", 10.0);
  ASSERT_NE(net, nullptr);
  const std::string alice = *net->Address("alice");
  ASSERT_TRUE(WaitConnected(alice));

  auto expect_invalid = [&](v1::EntangleRequest request, const std::string& says) {
    auto result = cli::RunEntangle(alice, request, Scaled(absl::Seconds(10)));
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
    EXPECT_NE(result.status().message().find(says), std::string::npos) << result.status();
  };
  v1::EntangleRequest good;
  good.set_remote_node("bob");
  good.set_pairs(5);
  good.set_type(v1::EntangleRequest::MEASURE);

  v1::EntangleRequest r = good;
  r.set_remote_node("mallory");
  expect_invalid(r, "unknown node 'mallory' (not in network chain3; nodes: alice, bob, charlie)");
  r = good;
  r.set_remote_node("alice");
  expect_invalid(r, "is this node itself");
  r = good;
  r.set_pairs(0);
  expect_invalid(r, "pairs must be between 1 and 100000");
  r.set_pairs(100001);
  expect_invalid(r, "pairs must be between 1 and 100000");
  r = good;
  r.set_min_fidelity(1.5);
  expect_invalid(r, "min_fidelity must be in [0, 1]");
  r.set_min_fidelity(-0.1);
  expect_invalid(r, "min_fidelity must be in [0, 1]");
  r = good;
  r.set_timeout_s(-1);
  expect_invalid(r, "timeout must be a number of seconds in [0, ");

  // Still serving: a good request completes.
  auto result = cli::RunEntangle(alice, good, Scaled(absl::Seconds(30)));
  ASSERT_TRUE(result.ok()) << result.status() << "\n" << net->LogTail("alice");
  EXPECT_EQ(result->pairs.size(), 5u);
  EXPECT_TRUE(net->StopAll().ok());
}

TEST_F(EntangleMpTest, FarDaemonKilledMidRequestFailsThenRestartServes) {
  // Slow enough (time scale 1) that the request is still running when bob
  // dies. KEEP pairs are held 2 s (simulated = wall here) for MeasureQubit.
  auto net = Launch("ideal-pair.yaml", 1.0, {"--keep-hold", "2"});
  ASSERT_NE(net, nullptr);
  const std::string alice = *net->Address("alice");
  ASSERT_TRUE(WaitConnected(alice));

  v1::EntangleRequest request;
  request.set_remote_node("bob");
  request.set_pairs(100000);
  request.set_type(v1::EntangleRequest::MEASURE);
  request.set_timeout_s(30);
  std::atomic<int> seen{0};
  std::thread killer([&] {
    EXPECT_TRUE(WaitUntil("a first pair before killing bob", [&] { return seen.load() > 0; }, std::chrono::seconds(5)));
    EXPECT_TRUE(net->StopNode("bob", SIGKILL).ok());
  });
  auto result = cli::RunEntangle(alice, request, Scaled(absl::Seconds(60)), [&](const v1::PairEvent&) { ++seen; });
  killer.join();
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(result.status().code() == absl::StatusCode::kUnavailable ||
              result.status().code() == absl::StatusCode::kDeadlineExceeded)
      << result.status();
  EXPECT_GT(seen.load(), 0);
  // The request's memory was freed when it failed.
  EXPECT_TRUE(WaitUntil("alice's memory freed after the failure", [&] { return MemoryFree(alice); },
                        std::chrono::seconds(5), std::chrono::milliseconds(100)));

  ASSERT_TRUE(net->StartNode("bob").ok());
  ASSERT_TRUE(WaitConnected(alice));
  // KEEP, as many pairs as alice's two memory slots: both are held at both
  // ends. The first is measured at once (freeing its slots); the second is
  // left alone and freed when its hold passes.
  request.set_type(v1::EntangleRequest::KEEP);
  request.set_pairs(2);
  auto again = cli::RunEntangle(alice, request, Scaled(absl::Seconds(30)));
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << net->LogTail("alice");
  ASSERT_EQ(again->pairs.size(), 2u);
  for (const v1::PairEvent& p : again->pairs) EXPECT_EQ(p.outcome(), -1);
  const std::string bob = *net->Address("bob");
  const std::string& measured = again->pairs[0].entanglement_id();
  for (const std::string& address : {alice, bob}) {
    auto outcome = cli::MeasureQubit(address, *cli::MeasureRequest(measured, "z"), Scaled(absl::Seconds(1)));
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    EXPECT_EQ(outcome->entanglement_id(), measured);
    EXPECT_EQ(outcome->bell_state(), again->pairs[0].bell_state());
  }
  for (const std::string& address : {alice, bob}) {
    auto status = GetStatus(address);
    ASSERT_TRUE(status.ok());
    EXPECT_EQ(status->memory_qubits_in_use(), 1u) << status->node() << ": the measured pair's slot is free at once";
  }
  EXPECT_TRUE(WaitUntil("alice to free the unmeasured KEEP pair after its hold time", [&] { return MemoryFree(alice); },
                        std::chrono::seconds(5), std::chrono::milliseconds(100)));
  auto late = cli::MeasureQubit(bob, *cli::MeasureRequest(again->pairs[1].entanglement_id(), "x"));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kNotFound) << late.status();
  EXPECT_NE(late.status().message().find("hold"), std::string::npos) << late.status();
  EXPECT_TRUE(net->StopAll().ok());
}

}  // namespace
}  // namespace qnet::daemon
