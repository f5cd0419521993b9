// BBM92 over the network layer in the simulator, on chains of double-click
// links with two-photon visibility V: the heralded pair is the announced Bell
// state mixed with a Z-type (phase) error of weight (1 - V)/2, and such
// errors compose across k links, so the end-to-end pair has error rate 0 in
// Z and (1 - V^k)/2 in X (tests/network/network_chain_simtest.cc). Checked:
// both ends' keys are bit-identical with the same key id; the measured QBER
// per basis matches those closed forms (5 sigma, binomial on the sample);
// the errors Cascade corrected in the rest of the key match them too; the
// final length is exactly the privacy-amplification bound recomputed here
// from the report; the key fraction stays below the asymptotic
// Shor-Preskill rate, and the gap is the finite-size terms (the fraction
// predicted from the true error rates and the Serfling margins matches within
// the sampling error); above the abort threshold both ends fail naming the
// QBER; nothing is left allocated.
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

void ExpectBinomial(const qkd::ErrorRateBound& b, double p, const char* what) {
  ASSERT_GT(b.sampled, 0u) << what;
  const double sigma = std::sqrt(p * (1 - p) / static_cast<double>(b.sampled));
  EXPECT_NEAR(b.rate(), p, 5 * sigma + 1e-12) << what << ": " << b.errors << " of " << b.sampled;
}

void CheckBbm92(int hops, double v, uint32_t pairs, uint64_t seed) {
  SCOPED_TRACE(absl::StrCat(hops, " hops, V = ", v));
  KeyNetwork kn(VisibilityChain(hops, v), seed);
  const std::string tail = absl::StrCat("n", hops);
  const QkdSessionOptions options = qnet::testing::TestOptions(pairs);
  SessionRecord run;
  kn.Run("n0", tail, options, run);
  ASSERT_TRUE(run.result->ok()) << run.result->status();
  ASSERT_EQ(kn.responded(tail).size(), 1u);
  const qnet::testing::ResponderRecord& b = kn.responded(tail)[0];
  ASSERT_TRUE(b.result.ok()) << b.result.status();
  const QkdResult& alice = **run.result;
  const QkdResult& bob = *b.result;
  EXPECT_EQ(b.initiator, "n0");
  EXPECT_EQ(b.id, run.id);

  // Identical keys, the same id, both ends' view of the same session.
  EXPECT_GT(alice.key.size(), 0u);
  EXPECT_EQ(alice.key, bob.key);
  EXPECT_EQ(alice.key_id, bob.key_id);
  EXPECT_EQ(alice.peer, tail);
  EXPECT_EQ(bob.peer, "n0");
  EXPECT_EQ(alice.path.size(), static_cast<size_t>(hops + 1));
  EXPECT_EQ(alice.path, bob.path);
  EXPECT_EQ(alice.protocol, QkdProtocol::kBbm92);
  EXPECT_FALSE(alice.chsh_s.has_value());
  EXPECT_EQ(alice.report.raw_detections, pairs);
  EXPECT_EQ(bob.report.raw_detections, pairs);
  EXPECT_GT(alice.simulated_duration, Duration(0));

  // Sifting keeps the pairs measured in the same basis: binomial(pairs, 1/2).
  const qkd::PostProcessingReport& r = alice.report;
  EXPECT_NEAR(static_cast<double>(r.sifted_bits), pairs / 2.0, 5 * std::sqrt(pairs * 0.25));
  // QBER per basis vs the closed forms.
  const double e_x = (1 - std::pow(v, hops)) / 2;
  EXPECT_EQ(r.qber.z.errors, 0u);
  ExpectBinomial(r.qber.z, 0.0, "Z sample");
  ExpectBinomial(r.qber.x, e_x, "X sample");
  // The rest of the key: the X key bits (z.population of them) carry
  // errors at e_x, the Z key bits none; Cascade corrected exactly those
  // (verification passed).
  const double n_x_key = static_cast<double>(r.qber.z.population);
  EXPECT_NEAR(static_cast<double>(r.corrected_bits), n_x_key * e_x, 5 * std::sqrt(n_x_key * e_x * (1 - e_x)));

  // The final length is the bound recomputed from the report, exactly.
  const double bound = qnet::testing::ReferenceKeyBound(r);
  EXPECT_NEAR(r.key_length.bound, bound, 1e-6 * std::abs(bound));
  EXPECT_EQ(static_cast<double>(alice.key.size() + alice.auth_bits_consumed), std::floor(bound));  // the rest refilled the authentication pool
  EXPECT_LE(static_cast<double>(alice.key.size()), bound);
  EXPECT_EQ(bob.report.key_length.bits, r.key_length.bits);

  // Asymptotically (Shor-Preskill with the measured reconciliation
  // efficiency f) the fraction of reconciled bits kept would be
  //   r_inf = (n_Z (1 - h(e_X)) + n_X (1 - h(e_Z))) / n - f h(e_bit),
  // with the true rates e_Z = 0, e_X and e_bit = n_X e_X / n. The finite
  // key pays for the statistical margins of the phase error bounds, the
  // verification tag and 2 log2(1/eps_PA) on top, so it must stay below
  // r_inf; how far below is the exact bound checked above.
  const double n = static_cast<double>(r.reconciled_bits);
  const double n_z_key = static_cast<double>(r.qber.x.population);
  const double e_bit = n_x_key * e_x / n;
  const double f = r.error_correction_efficiency > 0 ? r.error_correction_efficiency : 1.0;
  const double r_inf = (n_z_key * (1 - qkd::BinaryEntropy(e_x)) + n_x_key) / n - f * qkd::BinaryEntropy(e_bit);
  const double fraction = static_cast<double>(alice.key.size() + alice.auth_bits_consumed) / n;  // privacy amplification output, as the closed form
  EXPECT_LT(fraction, r_inf) << "finite-key fraction " << fraction << " vs asymptotic " << r_inf;
  EXPECT_GT(fraction, 0.0);
  // The gap is the finite-size terms: with the true rates in place of the
  // sampled ones (plus the Serfling margins d_b for the sample sizes used)
  // the bound predicts the fraction to within the sampling error of e_X,
  // 5 sigma carried through h (slope log2((1-p)/p)).
  const double eps = qnet::testing::kTestEpsilon;
  auto margin = [eps](const qkd::ErrorRateBound& s) {
    const double k = static_cast<double>(s.sampled), m = static_cast<double>(s.population);
    return std::sqrt((m + k) * (k + 1) * std::log(2 / eps) / (2 * m * k * k));
  };
  const double u_x = e_x + margin(r.qber.x), u_z = margin(r.qber.z);
  const double predicted =
      (n_z_key * (1 - qkd::BinaryEntropy(u_x)) + n_x_key * (1 - qkd::BinaryEntropy(u_z)) -
       static_cast<double>(r.leaked_error_correction_bits + r.leaked_error_count_bits) - 64 - 2 * std::log2(1 / eps)) /
      n;
  const double sigma_x = std::sqrt(e_x * (1 - e_x) / static_cast<double>(r.qber.x.sampled));
  const double tolerance = 5 * (n_z_key / n) * std::log2((1 - u_x) / u_x) * sigma_x + 1 / n;
  EXPECT_NEAR(fraction, predicted, tolerance);
  ::testing::Test::RecordProperty("key_fraction", absl::StrCat(fraction));
  ::testing::Test::RecordProperty("asymptotic_fraction", absl::StrCat(r_inf));
  ::testing::Test::RecordProperty("finite_size_prediction", absl::StrCat(predicted, " +- ", tolerance));

  // Stages in order, ending with the key.
  ASSERT_FALSE(run.progress.empty());
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
  EXPECT_THAT(stages, ::testing::ElementsAre("offered", "measuring", "measured", "sifted", "estimated", "reconciled",
                                             "done"));
  EXPECT_EQ(run.progress.back().final_key_bits, alice.key.size() + alice.auth_bits_consumed);
  EXPECT_EQ(run.progress.back().raw_pairs, pairs);

  EXPECT_EQ(kn.kd("n0").stats().sessions_succeeded, 1u);
  EXPECT_EQ(kn.kd(tail).stats().sessions_succeeded, 1u);
  EXPECT_EQ(kn.kd(tail).stats().malformed_messages, 0u);
  kn.ExpectClean();
}

TEST(Bbm92SimTest, OneHopKeysAgreeAndMatchTheClosedForms) { CheckBbm92(1, 0.9, 10000, 1); }

TEST(Bbm92SimTest, TwoHopKeysAgreeAndMatchTheClosedForms) { CheckBbm92(2, 0.95, 10000, 2); }

// Sessions in both directions at once between the same two nodes: each
// responder's pair purpose id keeps the pairs apart, every key pair agrees.
TEST(Bbm92SimTest, ConcurrentSessionsInBothDirectionsKeepTheirPairsApart) {
  KeyNetwork kn(VisibilityChain(1, 1.0), 4);
  const QkdSessionOptions options = qnet::testing::TestOptions(4000);
  SessionRecord a, b, c;
  kn.Begin("n0", "n1", options, a);
  kn.Begin("n1", "n0", options, b);
  kn.Begin("n0", "n1", options, c);
  ASSERT_TRUE(kn.net().RunUntil(
      [&] {
        return a.result.has_value() && b.result.has_value() && c.result.has_value() &&
               kn.responded("n0").size() == 1 && kn.responded("n1").size() == 2;
      },
      std::chrono::seconds(60)));
  for (SessionRecord* run : {&a, &b, &c}) {
    ASSERT_TRUE(run->result->ok()) << run->result->status();
    EXPECT_EQ((*run->result)->report.raw_detections, options.pairs);
    EXPECT_EQ((*run->result)->report.qber.overall.errors, 0u);  // V = 1: a mixed-up pair would show
  }
  auto responder_key = [&](const std::string& node, SessionId id) {
    for (const auto& r : kn.responded(node)) {
      if (r.id == id && r.result.ok()) return r.result->key;
    }
    return qkd::BitString();
  };
  EXPECT_EQ((*a.result)->key, responder_key("n1", a.id));
  EXPECT_EQ((*b.result)->key, responder_key("n0", b.id));
  EXPECT_EQ((*c.result)->key, responder_key("n1", c.id));
  EXPECT_NE((*a.result)->key_id, (*c.result)->key_id);
  kn.ExpectClean();
}

// V = 0.5 on one link: X error 1/4, overall 1/8, both above 11%.
TEST(Bbm92SimTest, AboveTheThresholdBothEndsAbortNamingTheQber) {
  KeyNetwork kn(VisibilityChain(1, 0.5), 3);
  const QkdSessionOptions options = qnet::testing::TestOptions(2000);
  SessionRecord run;
  kn.Run("n0", "n1", options, run);
  ASSERT_FALSE(run.result->ok());
  EXPECT_EQ(run.result->status().code(), absl::StatusCode::kAborted) << run.result->status();
  EXPECT_THAT(run.result->status().message(), HasSubstr("QBER"));
  ASSERT_EQ(kn.responded("n1").size(), 1u);
  const absl::Status& bob = kn.responded("n1")[0].result.status();
  EXPECT_EQ(bob.code(), absl::StatusCode::kAborted) << bob;
  EXPECT_THAT(bob.message(), HasSubstr("QBER"));
  EXPECT_EQ(kn.kd("n0").stats().sessions_failed, 1u);
  kn.ExpectClean();
}

}  // namespace
}  // namespace qnet::keydist
