// Verification: the polynomial hash over GF(2^64) accepts identical keys,
// rejects differing ones (a collision has probability <= L/2^64, never seen
// here), is linear in the key as a polynomial hash must be, and states its
// failure probability.
#include "qkd/verification.h"

#include <cmath>

#include "gtest/gtest.h"
#include "qkd/gf2.h"

namespace qnet::qkd {
namespace {

TEST(Verification, IdenticalKeysPassDifferentKeysFail) {
  Rng rng(1);
  for (int trial = 0; trial < 500; ++trial) {
    const BitString alice = BitString::Random(1000 + trial, rng);
    BitString bob = alice;
    const VerificationTag same = MakeVerificationTag(bob, rng.NextU64());
    auto ok = CheckVerificationTag(alice, same);
    ASSERT_TRUE(ok.ok());
    EXPECT_TRUE(ok->match);
    // One residual error anywhere, or a burst, is caught.
    bob.Flip(rng.UniformInt(bob.size()));
    if (trial % 2 == 1) bob.Flip(rng.UniformInt(bob.size()));
    if (bob == alice) continue;
    auto bad = CheckVerificationTag(alice, MakeVerificationTag(bob, rng.NextU64()));
    ASSERT_TRUE(bad.ok());
    EXPECT_FALSE(bad->match);
  }
}

TEST(Verification, HashIsThePolynomialInThePoint) {
  Rng rng(2);
  const uint64_t r = rng.NextU64();
  // One word m: m r. Two words m1, m2: m1 r^2 + m2 r.
  const BitString one = BitString::FromWords({0xabcdef}, 64);
  EXPECT_EQ(PolynomialHash(one, r), Gf64Multiply(0xabcdef, r));
  const BitString two = BitString::FromWords({5, 7}, 128);
  EXPECT_EQ(PolynomialHash(two, r), Gf64Multiply(5, Gf64Multiply(r, r)) ^ Gf64Multiply(7, r));
  // Linear: H(a + b) = H(a) + H(b), so a collision is a root of H(a - b).
  const BitString a = BitString::Random(777, rng), b = BitString::Random(777, rng);
  BitString sum = a;
  for (size_t i = 0; i < sum.size(); ++i) {
    if (b.Get(i)) sum.Flip(i);
  }
  EXPECT_EQ(PolynomialHash(sum, r), PolynomialHash(a, r) ^ PolynomialHash(b, r));
}

TEST(Verification, FailureProbabilityAndErrors) {
  EXPECT_DOUBLE_EQ(VerificationFailureProbability(10000), 157.0 / std::ldexp(1.0, 64));
  EXPECT_EQ(kVerificationDisclosedBits, 64u);
  Rng rng(3);
  const BitString key = BitString::Random(100, rng);
  VerificationTag tag = MakeVerificationTag(key, 1);
  EXPECT_NE(tag.point, 0u);
  VerificationTag wrong_length = tag;
  wrong_length.key_bits = 99;
  EXPECT_EQ(CheckVerificationTag(key, wrong_length).status().code(), absl::StatusCode::kFailedPrecondition);
  VerificationTag zero = tag;
  zero.point = 0;
  EXPECT_EQ(CheckVerificationTag(key, zero).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qnet::qkd
