// BBM92 between the ends of a 3-daemon chain (real qnetd processes, gRPC
// only): both ends hold the same key (each fetched from its own daemon by key
// id), the measured QBER matches the links' physics, and an intercept-resend
// eavesdropper on one link makes the session abort with an error naming the
// QBER.
#include "security/client_endpoints.h"
#include "tests/daemon/qkd_chain.h"

namespace qnet::daemon {
namespace {

// Pairs per block: enough that the key of one block pays for its 256 bits of
// authentication with room for the sample's fluctuations (6500 pairs over
// two links of V = 0.99 left 245 bits once in a CI run).
constexpr uint32_t kPairs = 8000;

TEST_F(QkdMpTest, Bbm92KeyAcrossTheChainAndAnEavesdropperMakesItAbort) {
  auto summary = cli::RunQkd(n0_, Request(v1::QkdRequest::BBM92, kPairs), ClientDeadline());
  ASSERT_TRUE(summary.ok()) << summary.status() << "\n" << net_->LogTail("n0");
  EXPECT_EQ(summary->protocol(), "BBM92");
  EXPECT_EQ(summary->path_size(), 3);
  ASSERT_EQ(summary->blocks_size(), 1);
  EXPECT_GT(summary->final_key_bits(), 0u);
  EXPECT_EQ(summary->raw_pairs(), kPairs);
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
    auto stub = v1::Node::NewStub(security::ClientChannel(*net_->Address("n1")));
    grpc::ClientContext context;
    v1::EavesdropRequest eve;
    eve.set_neighbour("n2");
    eve.set_set(true);
    eve.set_fraction(1.0);
    v1::EavesdropResponse response;
    ASSERT_TRUE(stub->Eavesdrop(&context, eve, &response).ok());
    ASSERT_TRUE(response.station_here());  // n1 is the link's first node
  }
  auto tapped = cli::RunQkd(n0_, Request(v1::QkdRequest::BBM92, 600), ClientDeadline());
  ASSERT_FALSE(tapped.ok());
  EXPECT_EQ(tapped.status().code(), absl::StatusCode::kAborted) << tapped.status();
  EXPECT_NE(tapped.status().message().find("QBER"), std::string::npos) << tapped.status();
}

}  // namespace
}  // namespace qnet::daemon
