// QKD between the ends of a 3-daemon chain (real qnetd processes, gRPC
// only): BBM92 over end-to-end pairs and a trusted-node relay give both ends
// the same key (each fetched from its own daemon by key id), the measured
// QBER matches the links' physics, and an intercept-resend eavesdropper on
// one link makes the session abort with an error naming the QBER.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "cli/entangle_client.h"
#include "cli/launcher.h"
#include "gtest/gtest.h"
#include "qnet/v1/node_service.grpc.pb.h"

namespace qnet::daemon {
namespace {

namespace fs = std::filesystem;

constexpr double kVisibility = 0.98;

class QkdMpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    state_dir_ = fs::path(::testing::TempDir()) / absl::StrCat("qnet-", getpid(), "-", info->name());
    fs::create_directories(state_dir_);
    // Ideal nodes, 1 km double-click links of visibility V: each link's
    // pairs carry a Z error with probability (1-V)/2, so end-to-end pairs
    // over k links show X-basis errors (1 - V^k)/2 and no Z-basis errors.
    const fs::path file = state_dir_ / "chain.yaml";
    std::ofstream(file) << "network: qkdchain\nseed: 11\nnodes:\n"
                           "  - {name: n0, hardware: ideal}\n  - {name: n1, hardware: ideal}\n"
                           "  - {name: n2, hardware: ideal}\nlinks:\n"
                        << "  - {between: [n0, n1], length_km: 1, visibility: " << kVisibility << "}\n"
                        << "  - {between: [n1, n2], length_km: 1, visibility: " << kVisibility << "}\n";
    cli::LaunchOptions o;
    o.qnetd_path = QNETD_PATH;
    o.network_file = file.string();
    o.state_dir = (state_dir_ / "net").string();
    o.time_scale = 10.0;
    o.ready_timeout = absl::Seconds(20);
    o.stop_grace = absl::Seconds(5);
    auto net = cli::LocalNetwork::Start(o);
    ASSERT_TRUE(net.ok()) << net.status();
    net_ = *std::move(net);
    n0_ = *net_->Address("n0");
    n2_ = *net_->Address("n2");
    ASSERT_TRUE(WaitTwoHopRoute()) << "n0 never learned a route to n2";
  }
  void TearDown() override {
    net_.reset();
    std::error_code ec;
    if (!HasFailure()) fs::remove_all(state_dir_, ec);
  }
  bool WaitTwoHopRoute() {
    auto stub = v1::Node::NewStub(grpc::CreateChannel(n0_, grpc::InsecureChannelCredentials()));
    for (int i = 0; i < 150; ++i) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      v1::GetRoutesResponse routes;
      if (stub->GetRoutes(&context, v1::GetRoutesRequest(), &routes).ok()) {
        for (const auto& r : routes.routes()) {
          if (r.destination() == "n2" && r.path_size() == 3) return true;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  // Short blocks need a large sample for the finite-size bounds to leave a key.
  static v1::QkdRequest Request(v1::QkdRequest::Protocol protocol, uint32_t pairs) {
    v1::QkdRequest r;
    r.set_peer("n2");
    r.set_protocol(protocol);
    r.set_bits(1);
    r.set_pairs_per_block(pairs);
    r.set_sample_fraction(0.5);
    // A block whose verification finds a residual Cascade error is
    // discarded and rerun (a few per cent of short blocks).
    r.set_max_blocks(3);
    r.set_show_key(true);
    return r;
  }
  // Both ends' copies of every block's key, fetched by id, are the same and
  // the initiator's summary shows the same bits.
  void ExpectSameKeyAtBothEnds(const v1::QkdSummary& summary) {
    std::string concatenated_bits;
    for (const v1::QkdBlock& block : summary.blocks()) {
      auto at_n0 = cli::FetchKey(n0_, block.key_id());
      auto at_n2 = cli::FetchKey(n2_, block.key_id());
      ASSERT_TRUE(at_n0.ok()) << at_n0.status();
      ASSERT_TRUE(at_n2.ok()) << at_n2.status();
      EXPECT_EQ(at_n0->key_hex(), at_n2->key_hex());
      EXPECT_EQ(at_n0->bits(), block.final_key_bits());
      EXPECT_EQ(at_n2->bits(), block.final_key_bits());
      EXPECT_EQ(at_n0->peer(), "n2");
      EXPECT_EQ(at_n2->peer(), "n0");
    }
    if (summary.blocks_size() == 1) {
      EXPECT_EQ(summary.key_hex(), cli::FetchKey(n2_, summary.key_id())->key_hex());
    }
    std::cout << summary.protocol() << ": " << summary.final_key_bits() << " key bits from " << summary.raw_pairs()
              << " pairs, QBER Z " << summary.qber_z() << " X " << summary.qber_x() << "\n";
  }

  fs::path state_dir_;
  std::unique_ptr<cli::LocalNetwork> net_;
  std::string n0_, n2_;
};

TEST_F(QkdMpTest, Bbm92KeyAcrossTheChainAndAnEavesdropperMakesItAbort) {
  auto summary = cli::RunQkd(n0_, Request(v1::QkdRequest::BBM92, 6000), absl::Seconds(240));
  ASSERT_TRUE(summary.ok()) << summary.status() << "\n" << net_->LogTail("n0");
  EXPECT_EQ(summary->protocol(), "BBM92");
  EXPECT_EQ(summary->path_size(), 3);
  ASSERT_EQ(summary->blocks_size(), 1);
  EXPECT_GT(summary->final_key_bits(), 0u);
  EXPECT_EQ(summary->raw_pairs(), 6000u);
  // The sample's error rates against the links' physics (5 sigma of the
  // binomial on the sampled bits: about a quarter of the raw pairs per basis).
  const double expected_x = (1 - kVisibility * kVisibility) / 2;
  const double sampled_x = summary->sifted_bits() * 0.5 / 2;
  EXPECT_NEAR(summary->qber_x(), expected_x, 5 * std::sqrt(expected_x * (1 - expected_x) / sampled_x));
  EXPECT_EQ(summary->qber_z(), 0.0);
  EXPECT_GT(summary->error_correction_efficiency(), 1.0);
  ExpectSameKeyAtBothEnds(*summary);

  // Eve on n1-n2 measuring every pair: QBER about 1/4 per basis, far above
  // the 11% threshold, so the session aborts and says why.
  {
    auto stub = v1::Node::NewStub(grpc::CreateChannel(*net_->Address("n1"), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    v1::EavesdropRequest eve;
    eve.set_neighbour("n2");
    eve.set_set(true);
    eve.set_fraction(1.0);
    v1::EavesdropResponse response;
    ASSERT_TRUE(stub->Eavesdrop(&context, eve, &response).ok());
    ASSERT_TRUE(response.station_here());  // n1 is the link's first node
  }
  auto tapped = cli::RunQkd(n0_, Request(v1::QkdRequest::BBM92, 1000), absl::Seconds(120));
  ASSERT_FALSE(tapped.ok());
  EXPECT_EQ(tapped.status().code(), absl::StatusCode::kAborted) << tapped.status();
  EXPECT_NE(tapped.status().message().find("QBER"), std::string::npos) << tapped.status();
}

// BB84 with single photons over one link (n0 -> n1): the photons cross
// between the daemons as the simulated quantum channel, Bob's detections and
// the post-processing run at n1. A non-neighbour is refused.
TEST_F(QkdMpTest, Bb84BetweenNeighbours) {
  v1::QkdRequest request = Request(v1::QkdRequest::BB84, 40000);
  request.set_peer("n1");
  auto summary = cli::RunQkd(n0_, request, absl::Seconds(120));
  ASSERT_TRUE(summary.ok()) << summary.status() << "\n" << net_->LogTail("n0") << net_->LogTail("n1");
  EXPECT_EQ(summary->protocol(), "BB84");
  EXPECT_GT(summary->final_key_bits(), 0u);
  ASSERT_EQ(summary->blocks_size(), 1);
  const auto at_n0 = cli::FetchKey(n0_, summary->key_id());
  const auto at_n1 = cli::FetchKey(*net_->Address("n1"), summary->key_id());
  ASSERT_TRUE(at_n0.ok()) << at_n0.status();
  ASSERT_TRUE(at_n1.ok()) << at_n1.status();
  EXPECT_EQ(at_n0->key_hex(), at_n1->key_hex());
  EXPECT_EQ(at_n0->key_hex(), summary->key_hex());
  std::cout << "BB84: " << summary->final_key_bits() << " key bits from " << summary->raw_pairs()
            << " pulses, QBER Z " << summary->qber_z() << " X " << summary->qber_x() << "\n";

  request.set_peer("n2");
  auto far = cli::RunQkd(n0_, request, absl::Seconds(30));
  EXPECT_EQ(far.status().code(), absl::StatusCode::kInvalidArgument) << far.status();
  EXPECT_NE(far.status().message().find("not a neighbour"), std::string::npos) << far.status();
}

TEST_F(QkdMpTest, TrustedNodeRelayGivesBothEndsTheSameKey) {
  auto summary = cli::RunQkd(n0_, Request(v1::QkdRequest::RELAY, 5000), absl::Seconds(240));
  ASSERT_TRUE(summary.ok()) << summary.status() << "\n" << net_->LogTail("n0") << net_->LogTail("n1");
  EXPECT_EQ(summary->protocol(), "relay");
  ASSERT_EQ(summary->relay_nodes_size(), 1);
  EXPECT_EQ(summary->relay_nodes(0), "n1");
  EXPECT_GT(summary->final_key_bits(), 0u);
  // Each hop is one link: X errors (1 - V)/2.
  const double expected_x = (1 - kVisibility) / 2;
  const double sampled_x = summary->sifted_bits() * 0.5 / 2;
  EXPECT_NEAR(summary->qber_x(), expected_x, 5 * std::sqrt(expected_x * (1 - expected_x) / sampled_x) + 1e-3);
  ExpectSameKeyAtBothEnds(*summary);
}

}  // namespace
}  // namespace qnet::daemon
