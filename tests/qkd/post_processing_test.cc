// The whole post-processing pipeline, two ends exchanging only QkdMessages
// through an in-process loop: on correlated detections at 1-5% QBER both ends
// finish with bit-identical keys, the same key id and consistent reports
// (final length within the privacy amplification bound, QBER within sampling
// error of the true rate, Cascade efficiency in its band); above the
// threshold, on residual errors, on a peer's abort and on protocol errors
// both ends abort with an error that says why.
#include "qkd/post_processing.h"

#include <cmath>
#include <deque>

#include "gtest/gtest.h"

namespace qnet::qkd {
namespace {

struct Raw {
  std::vector<Detection> alice;
  std::vector<Detection> bob;
};

// Entanglement-based pairs measured in independent random bases; in the same
// basis Bob's outcome differs from Alice's with probability q (in either
// basis, like a depolarised pair); each end misses a pair with `loss`.
Raw MakeRaw(size_t pairs, double q, Rng& rng, double loss = 0.05) {
  Raw raw;
  for (uint64_t id = 0; id < pairs; ++id) {
    const Basis a = rng.Bernoulli(0.5) ? Basis::kX : Basis::kZ;
    const Basis b = rng.Bernoulli(0.5) ? Basis::kX : Basis::kZ;
    const bool outcome = rng.Bernoulli(0.5);
    const bool bob_outcome = a == b ? outcome ^ rng.Bernoulli(q) : rng.Bernoulli(0.5);
    if (!rng.Bernoulli(loss)) raw.alice.push_back({id, a, outcome});
    if (!rng.Bernoulli(loss)) raw.bob.push_back({id, b, bob_outcome});
  }
  return raw;
}

struct Ends {
  PostProcessing alice;
  PostProcessing bob;
};

Ends Make(const Raw& raw, uint64_t seed, PostProcessingOptions alice_options = {},
          PostProcessingOptions bob_options = {}) {
  auto alice = PostProcessing::Create(Role::kAlice, raw.alice, alice_options, seed);
  auto bob = PostProcessing::Create(Role::kBob, raw.bob, bob_options, seed + 1);
  EXPECT_TRUE(alice.ok() && bob.ok());
  return Ends{*std::move(alice), *std::move(bob)};
}

// Delivers messages in order in both directions until neither end has any.
void Exchange(Ends& e) {
  std::deque<QkdMessage> to_alice, to_bob;
  for (auto& m : e.alice.Start()) to_bob.push_back(std::move(m));
  for (auto& m : e.bob.Start()) to_alice.push_back(std::move(m));
  int guard = 0;
  while ((!to_alice.empty() || !to_bob.empty()) && ++guard < 100000) {
    if (!to_bob.empty()) {
      QkdMessage m = std::move(to_bob.front());
      to_bob.pop_front();
      for (auto& r : e.bob.Receive(m)) to_alice.push_back(std::move(r));
    }
    if (!to_alice.empty()) {
      QkdMessage m = std::move(to_alice.front());
      to_alice.pop_front();
      for (auto& r : e.alice.Receive(m)) to_bob.push_back(std::move(r));
    }
  }
  EXPECT_TRUE(e.alice.finished());
  EXPECT_TRUE(e.bob.finished());
}

TEST(PostProcessing, BothEndsGetIdenticalKeysAtLowQber) {
  constexpr size_t kPairs = 100000;
  for (double q : {0.01, 0.03, 0.05}) {
    for (uint64_t seed : {1, 2, 3}) {
      Rng rng(seed * 100 + static_cast<uint64_t>(q * 1000));
      const Raw raw = MakeRaw(kPairs, q, rng);
      Ends e = Make(raw, seed);
      Exchange(e);
      SCOPED_TRACE(testing::Message() << "QBER " << q << " seed " << seed);
      ASSERT_EQ(e.alice.state(), PostProcessing::State::kDone) << e.alice.status();
      ASSERT_EQ(e.bob.state(), PostProcessing::State::kDone) << e.bob.status();
      EXPECT_EQ(e.alice.key(), e.bob.key());
      const PostProcessingReport& a = e.alice.report();
      const PostProcessingReport& b = e.bob.report();
      EXPECT_GT(a.final_key_bits, 0u);
      EXPECT_EQ(a.final_key_bits, e.alice.key().size());
      EXPECT_EQ(a.key_id, b.key_id);
      EXPECT_FALSE(a.key_id.empty());
      // Never longer than the bound, which both ends computed alike.
      EXPECT_LE(static_cast<double>(a.final_key_bits), a.key_length.bound);
      EXPECT_EQ(a.key_length.bits, b.key_length.bits);
      EXPECT_EQ(a.leaked_error_correction_bits, b.leaked_error_correction_bits);
      EXPECT_EQ(a.corrected_bits, b.corrected_bits);
      EXPECT_EQ(a.sifted_bits, b.sifted_bits);
      EXPECT_EQ(a.reconciled_bits + a.sample_bits, a.sifted_bits);
      // Sifting keeps the pairs both ends detected (0.95^2) in the same
      // basis (1/2): binomial, 5 sigma.
      const double p = 0.95 * 0.95 / 2;
      EXPECT_NEAR(static_cast<double>(a.sifted_bits), kPairs * p, 5 * std::sqrt(kPairs * p * (1 - p)));
      // Measured QBER within 5 sigma of the true rate, below its bound.
      const double k = static_cast<double>(a.qber.overall.sampled);
      EXPECT_NEAR(a.qber.overall.rate(), q, 5 * std::sqrt(q * (1 - q) / k));
      EXPECT_LT(a.qber.overall.rate(), a.qber.overall.upper_bound);
      // Errors Cascade corrected: the rest of the key's, about q n.
      const double n = static_cast<double>(a.reconciled_bits);
      EXPECT_NEAR(static_cast<double>(a.corrected_bits), q * n, 5 * std::sqrt(q * n));
      EXPECT_GT(a.error_correction_efficiency, 1.0);
      EXPECT_LT(a.error_correction_efficiency, 1.3);
      // Every byte one end sent, the other received.
      EXPECT_EQ(a.bytes_sent, b.bytes_received);
      EXPECT_EQ(b.bytes_sent, a.bytes_received);
      EXPECT_TRUE(a.abort_reason.empty());
    }
  }
}

TEST(PostProcessing, AbortsAboveTheThresholdNamingTheQber) {
  Rng rng(7);
  const Raw raw = MakeRaw(20000, 0.15, rng);
  Ends e = Make(raw, 7);
  Exchange(e);
  for (const PostProcessing* end : {&e.alice, &e.bob}) {
    EXPECT_EQ(end->state(), PostProcessing::State::kAborted);
    EXPECT_EQ(end->status().code(), absl::StatusCode::kAborted);
    EXPECT_NE(end->status().message().find("measured QBER 1"), std::string_view::npos) << end->status();
    EXPECT_NE(end->status().message().find("abort threshold 11.00%"), std::string_view::npos);
    EXPECT_TRUE(end->key().empty());
    EXPECT_EQ(end->report().abort_reason, end->status().message());
  }
  EXPECT_GT(e.alice.report().qber.overall.rate(), 0.11);
}

TEST(PostProcessing, NoKeyWhenFiniteSizeMarginsEatIt) {
  // 8% QBER on 2 * 10^4 pairs: the phase error bounds (+7% from the sample)
  // and Cascade's leak leave nothing; the error says so.
  Rng rng(8);
  const Raw raw = MakeRaw(20000, 0.08, rng);
  PostProcessingOptions options;
  options.estimation.abort_threshold = 0.2;
  Ends e = Make(raw, 8, options, options);
  Exchange(e);
  for (const PostProcessing* end : {&e.alice, &e.bob}) {
    EXPECT_EQ(end->state(), PostProcessing::State::kAborted);
    EXPECT_EQ(end->status().code(), absl::StatusCode::kFailedPrecondition) << end->status();
    EXPECT_NE(end->status().message().find("no secret key"), std::string_view::npos) << end->status();
  }
  EXPECT_LT(e.alice.report().key_length.bound, 1.0);
}

TEST(PostProcessing, ResidualErrorsFailVerification) {
  // One Cascade pass leaves errors; verification catches them at both ends.
  Rng rng(9);
  const Raw raw = MakeRaw(40000, 0.05, rng);
  PostProcessingOptions options;
  options.cascade.passes = 1;
  Ends e = Make(raw, 9, options, options);
  Exchange(e);
  for (const PostProcessing* end : {&e.alice, &e.bob}) {
    EXPECT_EQ(end->state(), PostProcessing::State::kAborted);
    EXPECT_NE(end->status().message().find("keys differ"), std::string_view::npos) << end->status();
  }
}

TEST(PostProcessing, PeerAbortReachesTheOtherEnd) {
  // Alice's stricter threshold makes her abort alone; Bob learns it from her
  // AbortNotice.
  Rng rng(10);
  const Raw raw = MakeRaw(40000, 0.05, rng);
  PostProcessingOptions strict;
  strict.estimation.abort_threshold = 0.02;
  Ends e = Make(raw, 10, strict, {});
  Exchange(e);
  EXPECT_EQ(e.alice.state(), PostProcessing::State::kAborted);
  EXPECT_EQ(e.bob.state(), PostProcessing::State::kAborted);
  EXPECT_NE(e.bob.status().message().find("aborted by the peer"), std::string_view::npos) << e.bob.status();
  EXPECT_NE(e.bob.status().message().find("threshold 2.00%"), std::string_view::npos) << e.bob.status();
}

TEST(PostProcessing, UnexpectedMessageIsAProtocolError) {
  Rng rng(11);
  const Raw raw = MakeRaw(1000, 0.01, rng);
  Ends e = Make(raw, 11);
  e.bob.Start();
  const auto out = e.bob.Receive(VerificationResult{true});
  EXPECT_EQ(e.bob.state(), PostProcessing::State::kAborted);
  EXPECT_NE(e.bob.status().message().find("unexpected VerificationResult"), std::string_view::npos);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(MessageName(out[0]), "AbortNotice");
  // Later messages are dropped.
  EXPECT_TRUE(e.bob.Receive(SampleReply{}).empty());
}

TEST(PostProcessing, RejectsBadInput) {
  EXPECT_FALSE(PostProcessing::Create(Role::kAlice, {{1, Basis::kZ, false}, {1, Basis::kX, false}}, {}, 1).ok());
  PostProcessingOptions bad;
  bad.privacy_amplification_failure_probability = 0;
  EXPECT_EQ(PostProcessing::Create(Role::kAlice, {}, bad, 1).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qnet::qkd
