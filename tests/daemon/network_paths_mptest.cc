// End-to-end pairs across repeater chains of real qnetd processes (launcher,
// gRPC only): the error rates both ends measure match the closed form for
// the links' states, the routing table is visible over gRPC, and a repeater
// killed mid-request fails it with UNAVAILABLE (PEER_DOWN) while the next
// request goes the other way round a ring.
#include <signal.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
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
using testing::MemoryFree;
using testing::WaitRoute;
namespace fs = std::filesystem;

class NetworkPathsMpTest : public qnet::testing::MultiProcessTest {
 protected:
  std::unique_ptr<LocalNetwork> Launch(const std::string& file, double time_scale) {
    // A state directory per network: each gets its own PKI.
    cli::LaunchOptions options = LaunchOptionsFor(file, time_scale);
    options.state_dir = (state_dir_ / std::filesystem::path(file).stem()).string();
    return StartNetwork(options);
  }
  // A chain n0 - ... - n<hops> of ideal nodes on 1 km double-click links of visibility `v`.
  std::string ChainFile(int hops, double v) {
    std::string yaml = absl::StrCat("network: chain", hops + 1, "\nseed: 3\nnodes:\n");
    for (int i = 0; i <= hops; ++i) absl::StrAppend(&yaml, "  - {name: n", i, ", hardware: ideal}\n");
    absl::StrAppend(&yaml, "links:\n");
    for (int i = 0; i < hops; ++i) {
      absl::StrAppend(&yaml, "  - {between: [n", i, ", n", i + 1, "], length_km: 1, visibility: ", v, "}\n");
    }
    const fs::path path = state_dir_ / absl::StrCat("chain", hops + 1, ".yaml");
    std::ofstream(path) << yaml;
    return path.string();
  }
};

// Visibility V per link: Z-type frame errors with (1-V)/2 per link, so the
// end-to-end X-basis error rate is (1 - V^k)/2 and the Z-basis one 0.
TEST_F(NetworkPathsMpTest, ChainsOfThreeAndFiveDaemonsMatchTheClosedForm) {
  const double v = 0.9;
  for (int hops : {2, 4}) {
    SCOPED_TRACE(absl::StrCat(hops, " hops"));
    auto net = Launch(ChainFile(hops, v), 10.0);
    ASSERT_NE(net, nullptr);
    const std::string head = *net->Address("n0");
    const std::string tail_name = absl::StrCat("n", hops);
    auto route = WaitRoute(head, tail_name, static_cast<size_t>(hops));
    ASSERT_TRUE(route.ok()) << route.status();
    EXPECT_EQ(route->path_size(), hops + 1);

    v1::EntangleRequest request;
    request.set_remote_node(tail_name);
    request.set_pairs(800);
    request.set_type(v1::EntangleRequest::MEASURE);
    request.set_basis(v1::EntangleRequest::BB84);
    auto result = cli::RunEntangle(head, request, Scaled(absl::Seconds(120)));
    ASSERT_TRUE(result.ok()) << result.status() << "\n" << net->LogTail("n0");
    ASSERT_EQ(result->pairs.size(), 800u);
    EXPECT_EQ(result->summary.path_size(), hops + 1);
    auto far = cli::FetchOutcomes(*net->Address(tail_name), "n0", result->pairs);
    ASSERT_TRUE(far.ok()) << far.status();
    auto matched = cli::MatchPairs("n0", result->pairs, *far);
    ASSERT_EQ(matched.size(), 800u);
    apps::PairStatistics stats = apps::AnalysePairs(matched);
    EXPECT_EQ(stats.z.errors, 0u);
    const double expected = (1 - std::pow(v, hops)) / 2;
    const double sigma = std::sqrt(expected * (1 - expected) / static_cast<double>(stats.x.pairs));
    EXPECT_NEAR(stats.x.rate(), expected, 5 * sigma) << stats.x.pairs << " X pairs";

    if (hops == 2) {
      // A CHSH test end to end (what `qnetctl bell-test` runs): settings 0,
      // pi/2 at the head and +-pi/4 at the tail in the X-Z plane give
      // S = sqrt(2) (<ZZ> + <XX>) in the pairs' frame, with <ZZ> = 1 and
      // <XX> = V^k here: sqrt(2) (1 + 0.81) = 2.560.
      request.set_pairs(1200);
      request.set_basis(v1::EntangleRequest::CHSH);
      auto chsh = cli::RunEntangle(head, request, Scaled(absl::Seconds(120)));
      ASSERT_TRUE(chsh.ok()) << chsh.status();
      auto chsh_far = cli::FetchOutcomes(*net->Address(tail_name), "n0", chsh->pairs);
      ASSERT_TRUE(chsh_far.ok()) << chsh_far.status();
      apps::PairStatistics bell = apps::AnalysePairs(cli::MatchPairs("n0", chsh->pairs, *chsh_far));
      ASSERT_TRUE(bell.chsh.has_value());
      EXPECT_NEAR(bell.chsh->value, std::sqrt(2.0) * (1 + v * v), 5 * bell.chsh->standard_error);
      EXPECT_GT(bell.chsh->value - 2.0, 3 * bell.chsh->standard_error);
    }
    EXPECT_TRUE(net->StopAll().ok());
  }
}

TEST_F(NetworkPathsMpTest, AKilledRepeaterFailsTheRequestAndTheNextGoesTheOtherWay) {
  auto net = Launch((fs::path(QNET_SOURCE_DIR) / "examples" / "ring6.yaml").string(), 10.0);
  ASSERT_NE(net, nullptr);
  const std::string leiden = *net->Address("leiden");
  // Once every advert has arrived, the short way round (via hague) wins.
  auto route = WaitRoute(leiden, "delft", 2);
  ASSERT_TRUE(route.ok()) << route.status();
  ASSERT_EQ(route->next_hop(), "hague");

  v1::EntangleRequest request;
  request.set_remote_node("delft");
  request.set_pairs(100000);
  request.set_type(v1::EntangleRequest::MEASURE);
  std::atomic<int> seen{0};
  std::thread killer([&] {
    EXPECT_TRUE(WaitUntil("5 pairs before killing hague", [&] { return seen.load() >= 5; }, std::chrono::seconds(10)));
    EXPECT_TRUE(net->StopNode("hague", SIGKILL).ok());
  });
  auto result = cli::RunEntangle(leiden, request, Scaled(absl::Seconds(60)), [&](const v1::PairEvent& p) {
    EXPECT_EQ(p.path_size(), 3);
    ++seen;
  });
  killer.join();
  ASSERT_FALSE(result.ok());
  // Either the circuit's teardown reaches leiden first (PEER_DOWN), or a
  // pair in flight needs its state from hague's memory and the move finds
  // hague gone (DEVICE_ERROR naming hague): both say what died.
  const bool peer_down = result.status().code() == absl::StatusCode::kUnavailable &&
                         result.status().message().find("PEER_DOWN") != std::string::npos;
  const bool state_lost = result.status().code() == absl::StatusCode::kInternal &&
                          result.status().message().find("DEVICE_ERROR") != std::string::npos &&
                          result.status().message().find("'hague'") != std::string::npos;
  EXPECT_TRUE(peer_down || state_lost) << result.status();
  EXPECT_GE(seen.load(), 5);

  // The adverts route around the dead repeater within seconds.
  route = WaitRoute(leiden, "delft", 4);
  ASSERT_TRUE(route.ok()) << route.status();
  EXPECT_EQ(route->next_hop(), "amsterdam");
  request.set_pairs(20);
  auto again = cli::RunEntangle(leiden, request, Scaled(absl::Seconds(60)));
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << net->LogTail("leiden");
  ASSERT_EQ(again->pairs.size(), 20u);
  const std::vector<std::string> other_way = {"leiden", "amsterdam", "utrecht", "rotterdam", "delft"};
  EXPECT_EQ(std::vector<std::string>(again->summary.path().begin(), again->summary.path().end()), other_way);
  // Nothing is left in memory at the ends once the requests are over.
  for (const char* node : {"leiden", "delft"}) {
    const std::string address = *net->Address(node);
    EXPECT_TRUE(WaitUntil(absl::StrCat(node, "'s memory freed"), [&] { return MemoryFree(address); },
                          std::chrono::seconds(5), std::chrono::milliseconds(100)));
  }
  EXPECT_TRUE(net->StopAll().ok());
}

// Teleportation across a 3-daemon chain (what `qnetctl teleport` runs).
// Ideal nodes on links of visibility V: the end-to-end pair is PHI+ with a
// Z error of probability p = (1 - V^2)/2 in its reported frame (a mixed
// state, not a sampled one), so every teleported |+i> arrives as
// (1-p)|+i><+i| + p|-i><-i|: fidelity exactly 1 - p, while |0> is untouched
// (fidelity 1). The outcomes alone must find 1 - p within their error.
TEST_F(NetworkPathsMpTest, TeleportAcrossAThreeDaemonChain) {
  const double v = 0.8;
  auto net = Launch(ChainFile(2, v), 10.0);
  ASSERT_NE(net, nullptr);
  const std::string head = *net->Address("n0");
  ASSERT_TRUE(WaitRoute(head, "n2", 2).ok());

  v1::TeleportRequest request;
  request.set_destination("n2");
  request.set_named_state("+i");
  request.set_shots(900);
  uint32_t shots_seen = 0;
  std::set<std::string> bases;
  auto summary = cli::RunTeleport(head, request, Scaled(absl::Seconds(300)), [&](const v1::TeleportShot& shot) {
    ++shots_seen;
    bases.insert(shot.basis());
    EXPECT_EQ(shot.pair_id().rfind("n0-n2#", 0), 0u) << shot.pair_id();
  });
  ASSERT_TRUE(summary.ok()) << summary.status() << "\n" << net->LogTail("n0");
  EXPECT_EQ(shots_seen, 900u);
  EXPECT_EQ(bases, (std::set<std::string>{"X", "Y", "Z"}));
  ASSERT_EQ(summary->shots(), 900u);
  ASSERT_TRUE(summary->estimate_available());
  const double p = (1 - v * v) / 2;
  // The simulated truth: the density matrix itself.
  EXPECT_NEAR(summary->simulated_mean_fidelity(), 1 - p, 1e-6);
  EXPECT_NEAR(summary->simulated_min_fidelity(), 1 - p, 1e-6);
  // From the outcomes alone (300 Y shots: standard error ~0.02, so a model
  // without the Z error, fidelity 1, fails): within 5 standard errors.
  EXPECT_NEAR(summary->fidelity(), 1 - p, 5 * summary->fidelity_standard_error());
  EXPECT_LT(summary->fidelity_ci_low(), summary->fidelity());
  EXPECT_GT(summary->fidelity_ci_high(), summary->fidelity());

  request.set_named_state("0");
  request.set_shots(30);
  auto zero = cli::RunTeleport(head, request, Scaled(absl::Seconds(120)));
  ASSERT_TRUE(zero.ok()) << zero.status();
  EXPECT_NEAR(zero->simulated_min_fidelity(), 1.0, 1e-6);
  EXPECT_EQ(zero->axes(2).plus(), zero->axes(2).shots());  // every Z outcome +1

  // Errors a user can act on.
  request.set_destination("nowhere");
  auto unknown = cli::RunTeleport(head, request, Scaled(absl::Seconds(10)));
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound) << unknown.status();
  EXPECT_NE(unknown.status().message().find("NO_ROUTE"), std::string::npos) << unknown.status();
  request.set_destination("n2");
  request.set_shots(0);
  auto no_shots = cli::RunTeleport(head, request, Scaled(absl::Seconds(10)));
  EXPECT_EQ(no_shots.status().code(), absl::StatusCode::kInvalidArgument) << no_shots.status();
}

}  // namespace
}  // namespace qnet::daemon
