// Parameter estimation: both ends derive the same sample from Alice's seed,
// compute the same estimate, and drop the sample from the key; the QBER
// estimate agrees with the true error rate within sampling error; the
// Serfling upper bound matches its closed form and covers the unsampled
// bits' error rate at least as often as promised (a bound equal to the point
// estimate would fail about half the time); a QBER above the threshold
// becomes an Aborted error naming it.
#include "qkd/parameter_estimation.h"

#include <cmath>

#include "gtest/gtest.h"

namespace qnet::qkd {
namespace {

// Correlated sifted keys: Bob's bit differs from Alice's with probability q.
std::pair<SiftedKey, SiftedKey> MakeSifted(size_t n, double q, Rng& rng) {
  SiftedKey a, b;
  for (size_t i = 0; i < n; ++i) {
    const bool bit = rng.Bernoulli(0.5), x = rng.Bernoulli(0.5);
    a.bits.PushBack(bit);
    b.bits.PushBack(bit ^ rng.Bernoulli(q));
    a.x_basis.PushBack(x);
    b.x_basis.PushBack(x);
    a.pair_ids.push_back(i);
    b.pair_ids.push_back(i);
  }
  return {a, b};
}

TEST(ParameterEstimation, BothEndsAgreeAndTheSampleIsRemoved) {
  Rng rng(1);
  constexpr double kQ = 0.05;
  auto [ka, kb] = MakeSifted(40000, kQ, rng);
  ParameterEstimationOptions options;
  ParameterEstimationAlice alice(ka, options, 1234);
  ParameterEstimationBob bob(kb, options);
  auto announcement = alice.Announce();
  ASSERT_TRUE(announcement.ok()) << announcement.status();
  EXPECT_EQ(announcement->sample_size, 4000u);
  auto reply = bob.OnAnnouncement(*announcement);
  ASSERT_TRUE(reply.ok()) << reply.status();
  auto estimate = alice.OnReply(*reply);
  ASSERT_TRUE(estimate.ok());
  const ErrorEstimate& e = *estimate;
  EXPECT_EQ(e.overall.errors, bob.estimate().overall.errors);
  EXPECT_EQ(e.x.upper_bound, bob.estimate().x.upper_bound);
  EXPECT_EQ(e.z.sampled + e.x.sampled, 4000u);
  // Measured QBER vs the true rate: binomial, 5 sigma.
  EXPECT_NEAR(e.overall.rate(), kQ, 5 * std::sqrt(kQ * (1 - kQ) / 4000));
  EXPECT_GT(e.overall.upper_bound, e.overall.rate());
  const EstimatedKey ra = alice.TakeRemainingKey();
  const EstimatedKey rb = bob.TakeRemainingKey();
  EXPECT_EQ(ra.bits.size(), 36000u);
  EXPECT_EQ(ra.x_basis, rb.x_basis);
  EXPECT_EQ(e.x.population, ra.z_bits());
  EXPECT_EQ(e.z.population, ra.x_bits());
  // Errors left in the key: the sample took its share.
  const double rest = static_cast<double>(ra.bits.HammingDistance(rb.bits)) / 36000;
  EXPECT_NEAR(rest, kQ, 5 * std::sqrt(kQ * (1 - kQ) / 36000));
}

TEST(ParameterEstimation, SamplePositionsAreUniformAndFixedBySeed) {
  EXPECT_EQ(ChooseSamplePositions(7, 100, 10), ChooseSamplePositions(7, 100, 10));
  EXPECT_NE(ChooseSamplePositions(7, 100, 10), ChooseSamplePositions(8, 100, 10));
  constexpr int kDraws = 2000;
  std::vector<int> hits(50, 0);
  for (int d = 0; d < kDraws; ++d) {
    const auto p = ChooseSamplePositions(1000 + d, 50, 10);
    ASSERT_EQ(p.size(), 10u);
    for (size_t i = 1; i < p.size(); ++i) ASSERT_LT(p[i - 1], p[i]);
    for (uint32_t v : p) ++hits[v];
  }
  // Each position is in a sample with probability 1/5.
  const double sigma = std::sqrt(kDraws * 0.2 * 0.8);
  for (int h : hits) EXPECT_NEAR(h, kDraws * 0.2, 5 * sigma);
}

TEST(ParameterEstimation, SerflingBoundMatchesItsClosedForm) {
  // 50 errors in 1000 sampled, 9000 unsampled, eps 1e-10:
  // 0.05 + sqrt(10000 * 1001 * ln(1e10) / (2 * 9000 * 1000^2)) = 0.163159.
  EXPECT_NEAR(SamplingUpperBound(50, 1000, 9000, 1e-10), 0.163159, 1e-6);
  EXPECT_EQ(SamplingUpperBound(0, 0, 100, 0.01), 1.0);
  EXPECT_EQ(SamplingUpperBound(900, 1000, 100, 1e-10), 1.0);  // capped
  // Shrinks like 1/sqrt(k).
  const double d1 = SamplingUpperBound(0, 10000, 1000000, 1e-10);
  const double d4 = SamplingUpperBound(0, 40000, 1000000, 1e-10);
  EXPECT_NEAR(d1 / d4, 2.0, 0.05);
}

TEST(ParameterEstimation, UpperBoundCoversTheUnsampledErrorRate) {
  // Population of 2000 bits with exactly 200 errors; sample 200 without
  // replacement; how often is the unsampled bits' error rate above the bound?
  constexpr size_t kN = 2000, kK = 200, kErrors = 200;
  constexpr double kEps = 0.05;
  constexpr int kTrials = 2000;
  Rng rng(3);
  int bound_fails = 0, point_fails = 0;
  for (int t = 0; t < kTrials; ++t) {
    std::vector<bool> error(kN, false);
    for (uint32_t p : ChooseSamplePositions(rng.NextU64(), kN, kErrors)) error[p] = true;
    const auto sample = ChooseSamplePositions(rng.NextU64(), kN, kK);
    size_t in_sample = 0;
    for (uint32_t p : sample) in_sample += error[p];
    const double rest = static_cast<double>(kErrors - in_sample) / (kN - kK);
    const double point = static_cast<double>(in_sample) / kK;
    bound_fails += rest > SamplingUpperBound(in_sample, kK, kN - kK, kEps);
    point_fails += rest > point;
  }
  // At most eps (plus 5 sigma of the trial count); the point estimate fails
  // about half the time.
  EXPECT_LE(bound_fails, kEps * kTrials + 5 * std::sqrt(kEps * kTrials));
  EXPECT_GT(point_fails, kTrials / 3);
}

TEST(ParameterEstimation, AbortErrorNamesTheMeasuredQber) {
  ErrorEstimate e;
  e.overall = {.sampled = 1000, .errors = 130, .population = 9000, .upper_bound = 0.2};
  e.z = {.sampled = 500, .errors = 40, .population = 4500, .upper_bound = 0.15};
  e.x = {.sampled = 500, .errors = 90, .population = 4500, .upper_bound = 0.25};
  const absl::Status s = CheckAbortThreshold(e, 0.11);
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_NE(s.message().find("18.00% in the X basis"), std::string_view::npos) << s.message();
  EXPECT_NE(s.message().find("threshold 11.00%"), std::string_view::npos) << s.message();
  e.overall.errors = 50;
  e.z.errors = 25;
  e.x.errors = 25;
  EXPECT_TRUE(CheckAbortThreshold(e, 0.11).ok());
}

TEST(ParameterEstimation, RejectsMismatchedKeysAndBadOptions) {
  Rng rng(4);
  auto [ka, kb] = MakeSifted(1000, 0.0, rng);
  ParameterEstimationAlice alice(ka, {}, 1);
  auto announcement = alice.Announce();
  ASSERT_TRUE(announcement.ok());
  auto [shorter, unused] = MakeSifted(999, 0.0, rng);
  ParameterEstimationBob bob(shorter, {});
  EXPECT_EQ(bob.OnAnnouncement(*announcement).status().code(), absl::StatusCode::kFailedPrecondition);
  ParameterEstimationAlice bad(ka, ParameterEstimationOptions{.sample_fraction = 1.5}, 1);
  EXPECT_EQ(bad.Announce().status().code(), absl::StatusCode::kInvalidArgument);
  ParameterEstimationAlice tiny(SiftedKey{}, {}, 1);
  EXPECT_EQ(tiny.Announce().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(alice.OnReply(SampleReply{BitString(3)}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qnet::qkd
