// Privacy amplification: the fast Toeplitz product equals the textbook
// matrix-vector product; the family is two-universal (a fixed pair of inputs
// collides for 2^-m of the seeds); outputs of random inputs are balanced;
// equal inputs give equal outputs; the final length is the stated bound,
// checked against a hand computation.
#include "qkd/privacy_amplification.h"

#include <cmath>

#include "gtest/gtest.h"
#include "qkd/binary_entropy.h"

namespace qnet::qkd {
namespace {

// y_i = XOR_j T[i][j] x_j with T[i][j] = s[i - j + n - 1], row by row.
BitString NaiveToeplitz(const BitString& s, const BitString& x, size_t m) {
  const size_t n = x.size();
  BitString y(m);
  for (size_t i = 0; i < m; ++i) {
    bool bit = false;
    for (size_t j = 0; j < n; ++j) bit ^= s.Get(i + n - 1 - j) && x.Get(j);
    if (bit) y.Set(i, true);
  }
  return y;
}

TEST(PrivacyAmplification, ToeplitzProductMatchesNaiveProduct) {
  Rng rng(1);
  for (int trial = 0; trial < 300; ++trial) {
    const size_t n = 1 + rng.UniformInt(300);
    const size_t m = 1 + rng.UniformInt(n);
    const BitString x = BitString::Random(n, rng);
    const BitString s = BitString::Random(n + m - 1, rng);
    ASSERT_EQ(ToeplitzHash(s, x, m), NaiveToeplitz(s, x, m)) << n << " -> " << m;
  }
  // One larger case through the Karatsuba path.
  const BitString x = BitString::Random(5000, rng);
  const BitString s = BitString::Random(5000 + 2000 - 1, rng);
  EXPECT_EQ(ToeplitzHash(s, x, 2000), NaiveToeplitz(s, x, 2000));
}

TEST(PrivacyAmplification, TwoUniversalCollisionRate) {
  // For fixed x != x', P_seed[T x = T x'] = 2^-m; m = 4, 4000 seeds.
  Rng rng(2);
  const BitString x = BitString::Random(200, rng);
  BitString x2 = x;
  x2.Flip(17);
  x2.Flip(150);
  constexpr int kSeeds = 4000;
  int collisions = 0;
  for (int i = 0; i < kSeeds; ++i) {
    const BitString s = BitString::Random(200 + 4 - 1, rng);
    collisions += ToeplitzHash(s, x, 4) == ToeplitzHash(s, x2, 4);
  }
  const double p = 1.0 / 16;
  EXPECT_NEAR(collisions, kSeeds * p, 5 * std::sqrt(kSeeds * p * (1 - p)));
}

TEST(PrivacyAmplification, OutputBitsAreBalancedAndEqualInputsAgree) {
  Rng rng(3);
  size_t ones = 0, bits = 0;
  for (int i = 0; i < 200; ++i) {
    const BitString key = BitString::Random(1000, rng);
    const PrivacyAmplificationSeed seed = MakePrivacyAmplificationSeed(1000, 500, rng);
    auto a = ApplyPrivacyAmplification(key, seed);
    auto b = ApplyPrivacyAmplification(BitString(key), seed);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(*a, *b);
    ones += a->PopCount();
    bits += a->size();
  }
  EXPECT_NEAR(static_cast<double>(ones) / bits, 0.5, 5 * std::sqrt(0.25 / bits));
}

TEST(PrivacyAmplification, KeyLengthIsTheStatedBound) {
  SecretKeyLengthInputs in;
  in.z_key_bits = 50000;
  in.x_key_bits = 40000;
  in.z_phase_error_bound = 0.06;
  in.x_phase_error_bound = 0.07;
  in.error_correction_leak = 20000;
  in.verification_leak = 64;
  in.failure_probability = 1e-10;
  const SecretKeyLength l = ComputeSecretKeyLength(in);
  // 50000 (1 - h(0.06)) + 40000 (1 - h(0.07)) - 20000 - 64 - 2 log2(1e10):
  // h(0.06) = 0.327445, h(0.07) = 0.365924, 2 log2(1e10) = 66.4386.
  const double expected = 50000 * (1 - 0.327445) + 40000 * (1 - 0.365924) - 20000 - 64 - 66.4386;
  EXPECT_NEAR(l.bound, expected, 0.1);
  EXPECT_EQ(l.bits, static_cast<uint64_t>(std::floor(l.bound)));
  EXPECT_NEAR(l.security_bits, 66.4386, 1e-3);
  // A phase error bound past 1/2 leaves nothing.
  in.z_phase_error_bound = 0.6;
  in.x_phase_error_bound = 0.5;
  EXPECT_EQ(ComputeSecretKeyLength(in).bits, 0u);
  EXPECT_LT(ComputeSecretKeyLength(in).bound, 0.0);
}

TEST(PrivacyAmplification, RejectsSeedsThatDoNotFit) {
  Rng rng(4);
  const BitString key = BitString::Random(100, rng);
  PrivacyAmplificationSeed seed = MakePrivacyAmplificationSeed(100, 40, rng);
  EXPECT_EQ(seed.toeplitz_seed.size(), 139u);
  EXPECT_EQ(ApplyPrivacyAmplification(BitString::Random(99, rng), seed).status().code(),
            absl::StatusCode::kFailedPrecondition);
  seed.toeplitz_seed.PushBack(true);
  EXPECT_EQ(ApplyPrivacyAmplification(key, seed).status().code(), absl::StatusCode::kInvalidArgument);
  PrivacyAmplificationSeed too_long = MakePrivacyAmplificationSeed(100, 101, rng);
  EXPECT_EQ(ApplyPrivacyAmplification(key, too_long).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qnet::qkd
