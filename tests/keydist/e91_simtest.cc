// E91 over the network layer in the simulator: the initiator measures Z or
// X, the responder Z, X, B0 or B1 (+-pi/4 in the X-Z plane); Z-Z and X-X
// pairs make the key, the Z/X x B0/B1 pairs the CHSH test.
// By hand: on a chain of k double-click links with visibility V the pair
// (in its Bell frame) is p PHI+ + (1 - p) PHI-, p = (1 + V^k)/2, so
// <ZZ> = 1, <XX> = V^k, <ZX> = <XZ> = 0, and for axes at angles a, b in the
// X-Z plane E(a, b) = cos a cos b <ZZ> + sin a sin b <XX>. Then
//   S = E(0, pi/4) + E(0, -pi/4) + E(pi/2, pi/4) - E(pi/2, -pi/4)
//     = sqrt(2) (<ZZ> + <XX>) = sqrt(2) (1 + V^k),
// 2.828 for ideal pairs. The measured S must match this within 5 sigma
// (sigma from the four correlators' binomial errors with n = pairs/8 each),
// and also sqrt(2) (E_ZZ + E_XX) from the key pairs' own error rates
// (E = 1 - 2 QBER). Both ends report the same S and identical keys; below
// e91_min_chsh both ends abort naming S and its error.
#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/keydist/keydist_harness.h"

namespace qnet::keydist {
namespace {

using qnet::testing::ChainYaml;
using qnet::testing::KeyNetwork;
using qnet::testing::SessionRecord;
using qnet::testing::VisibilityChain;
using ::testing::HasSubstr;

void CheckE91(int hops, double v, uint32_t pairs, uint64_t seed) {
  SCOPED_TRACE(absl::StrCat(hops, " hops, V = ", v));
  KeyNetwork kn(VisibilityChain(hops, v), seed);
  const std::string tail = absl::StrCat("n", hops);
  const QkdSessionOptions options = qnet::testing::TestOptions(pairs, QkdProtocol::kE91);
  SessionRecord run;
  kn.Run("n0", tail, options, run);
  ASSERT_TRUE(run.result->ok()) << run.result->status();
  ASSERT_EQ(kn.responded(tail).size(), 1u);
  ASSERT_TRUE(kn.responded(tail)[0].result.ok()) << kn.responded(tail)[0].result.status();
  const QkdResult& alice = **run.result;
  const QkdResult& bob = *kn.responded(tail)[0].result;
  EXPECT_EQ(alice.protocol, QkdProtocol::kE91);

  // Keys.
  EXPECT_GT(alice.key.size(), 0u);
  EXPECT_EQ(alice.key, bob.key);
  EXPECT_EQ(alice.key_id, bob.key_id);
  // Key pairs: the responder picks Z or X half the time, and matches the
  // initiator's basis half of that: sifted ~ pairs/4.
  const double sifted = static_cast<double>(alice.report.sifted_bits);
  EXPECT_NEAR(sifted, pairs / 4.0, 5 * std::sqrt(pairs * 0.25 * 0.75));

  // CHSH: the same value at both ends, vs the closed form.
  ASSERT_TRUE(alice.chsh_s.has_value() && bob.chsh_s.has_value());
  EXPECT_EQ(*alice.chsh_s, *bob.chsh_s);
  EXPECT_EQ(*alice.chsh_s_stderr, *bob.chsh_s_stderr);
  const double vk = std::pow(v, hops);
  const double expected = std::sqrt(2.0) * (1 + vk);
  const double e[4] = {1 / std::sqrt(2.0), 1 / std::sqrt(2.0), vk / std::sqrt(2.0), -vk / std::sqrt(2.0)};
  double variance = 0;
  for (double x : e) variance += (1 - x * x) / (pairs / 8.0);
  const double sigma = std::sqrt(variance);
  EXPECT_NEAR(*alice.chsh_s, expected, 5 * sigma) << "S = " << *alice.chsh_s << " +- " << *alice.chsh_s_stderr;
  // The session's own error estimate is the same binomial error.
  EXPECT_NEAR(*alice.chsh_s_stderr, sigma, 0.2 * sigma);
  // ... and S is sqrt(2) times the sum of the key pairs' correlations.
  const qkd::ErrorEstimate& q = alice.report.qber;
  const double from_key = std::sqrt(2.0) * ((1 - 2 * q.z.rate()) + (1 - 2 * q.x.rate()));
  const double key_sigma = std::sqrt(2.0) * 2 * std::sqrt((1 - vk * vk) / 4 / static_cast<double>(q.x.sampled));
  EXPECT_NEAR(*alice.chsh_s, from_key, 5 * std::hypot(sigma, key_sigma));
  EXPECT_EQ(q.z.errors, 0u);

  // Each stage once, except that measuring repeats every 1% of the pairs
  // with the count so far.
  std::vector<std::string> stages;
  std::vector<uint64_t> measuring;
  for (const QkdProgress& p : run.progress) {
    if (!stages.empty() && p.stage == stages.back() && p.stage == "measuring") {
      measuring.push_back(p.raw_pairs);
      continue;
    }
    stages.push_back(p.stage);
  }
  ASSERT_EQ(measuring.size(), 99u);
  for (size_t i = 0; i < measuring.size(); ++i) EXPECT_EQ(measuring[i], (i + 1) * (pairs / 100)) << i;
  EXPECT_THAT(stages, ::testing::ElementsAre("offered", "measuring", "measured", "chsh", "sifted", "estimated",
                                             "reconciled", "done"));
  kn.ExpectClean();
}

TEST(E91SimTest, OneHopViolatesChshAsPredictedAndKeysAgree) { CheckE91(1, 0.9, 16000, 1); }

// V = 1: S = 2 sqrt(2) exactly in expectation; the Bell frames of two links
// and a swap compose before the tail's correction (a wrong one shows at once).
TEST(E91SimTest, TwoHopViolatesChshAsPredictedAndKeysAgree) { CheckE91(2, 1.0, 12000, 2); }

// V = 0.1: S = sqrt(2) * 1.1 = 1.56, about 6 sigma below 2 with 4000 pairs.
TEST(E91SimTest, BelowTheChshMinimumBothEndsAbortNamingS) {
  KeyNetwork kn(VisibilityChain(1, 0.1), 3);
  const QkdSessionOptions options = qnet::testing::TestOptions(4000, QkdProtocol::kE91);
  SessionRecord run;
  kn.Run("n0", "n1", options, run);
  ASSERT_FALSE(run.result->ok());
  EXPECT_EQ(run.result->status().code(), absl::StatusCode::kAborted) << run.result->status();
  EXPECT_THAT(run.result->status().message(), HasSubstr("CHSH value S = "));
  EXPECT_THAT(run.result->status().message(), HasSubstr(" +- "));
  ASSERT_EQ(kn.responded("n1").size(), 1u);
  const absl::Status& bob = kn.responded("n1")[0].result.status();
  EXPECT_EQ(bob.code(), absl::StatusCode::kAborted) << bob;
  EXPECT_EQ(bob.message(), run.result->status().message());
  kn.ExpectClean();
}

}  // namespace
}  // namespace qnet::keydist
