// Verification, the fourth step of QKD post-processing: after error
// correction both ends hash their keys with a universal hash chosen at random
// by Bob and compare, so that they go on only with identical keys. The hash
// is the polynomial hash over GF(2^64): the key, cut into L = ceil(n/64)
// words m_1..m_L, hashes to m_1 r^L + m_2 r^(L-1) + ... + m_L r with a random
// nonzero r in GF(2^64). Two different keys of the same length collide only
// if r is a root of their difference, a nonzero polynomial of degree <= L, so
// with probability at most L / (2^64 - 1), about n / 2^70
// (VerificationFailureProbability). The
// 64-bit tag is disclosed: kVerificationDisclosedBits, taken off the final key
// by privacy amplification.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "qkd/bit_string.h"

namespace qnet::qkd {

inline constexpr uint64_t kVerificationDisclosedBits = 64;

// The polynomial hash of `key` at point `r`.
uint64_t PolynomialHash(const BitString& key, uint64_t r);
// Probability that two different keys of `key_bits` bits pass verification.
double VerificationFailureProbability(size_t key_bits);

// Message, Bob -> Alice: the hash point and Bob's tag.
struct VerificationTag {
  uint64_t key_bits = 0;
  uint64_t point = 0;  // r
  uint64_t tag = 0;
  size_t WireBytes() const { return 24; }
};

// Message, Alice -> Bob: whether the tags matched.
struct VerificationResult {
  bool match = false;
  size_t WireBytes() const { return 1; }
};

// Bob: tags his reconciled key at a point drawn from `point_seed`.
VerificationTag MakeVerificationTag(const BitString& key, uint64_t point_seed);
// Alice: compares her key's hash at the announced point; fails on a tag for a
// key of another length or at the point 0 (which would hash everything to 0).
absl::StatusOr<VerificationResult> CheckVerificationTag(const BitString& key, const VerificationTag& tag);

}  // namespace qnet::qkd
