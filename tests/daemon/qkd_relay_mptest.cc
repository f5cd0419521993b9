// Trusted-node relay across a 3-daemon chain and BB84 between neighbours
// (real qnetd processes, gRPC only): both ends hold the same key, fetched
// from each daemon by key id.
#include "tests/daemon/qkd_chain.h"

namespace qnet::daemon {
namespace {

TEST_F(QkdMpTest, TrustedNodeRelayGivesBothEndsTheSameKey) {
  auto summary = cli::RunQkd(n0_, Request(v1::QkdRequest::RELAY, 6500), ClientDeadline());
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


// BB84 with single photons over one link (n0 -> n1): the photons cross
// between the daemons as the simulated quantum channel, Bob's detections and
// the post-processing run at n1. A non-neighbour is refused.
TEST_F(QkdMpTest, Bb84BetweenNeighbours) {
  v1::QkdRequest request = Request(v1::QkdRequest::BB84, 40000);
  request.set_peer("n1");
  auto summary = cli::RunQkd(n0_, request, ClientDeadline());
  ASSERT_TRUE(summary.ok()) << summary.status() << "\n" << net_->LogTail("n0") << net_->LogTail("n1");
  EXPECT_EQ(summary->protocol(), "BB84");
  ASSERT_EQ(summary->path_size(), 2);
  EXPECT_EQ(summary->path(1), "n1");
  EXPECT_GT(summary->final_key_bits(), 0u);
  ASSERT_EQ(summary->blocks_size(), 1);
  const auto at_n0 = cli::FetchKey(n0_, summary->key_id(), absl::Seconds(10));
  const auto at_n1 = cli::FetchKey(*net_->Address("n1"), summary->key_id(), absl::Seconds(10));
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

}  // namespace
}  // namespace qnet::daemon
