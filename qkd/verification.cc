#include "qkd/verification.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "core/rng.h"
#include "qkd/gf2.h"

namespace qnet::qkd {

uint64_t PolynomialHash(const BitString& key, uint64_t r) {
  // Horner: ((m_1 r + m_2) r + ...) r. The length is fixed and known to both
  // ends, so zero padding of the last word is unambiguous.
  uint64_t acc = 0;
  for (uint64_t word : key.words()) acc = Gf64Multiply(acc ^ word, r);
  return acc;
}

double VerificationFailureProbability(size_t key_bits) {
  const double words = std::ceil(static_cast<double>(key_bits) / 64.0);
  return std::ldexp(std::max(words, 1.0), -64);
}

VerificationTag MakeVerificationTag(const BitString& key, uint64_t point_seed) {
  Rng rng(point_seed);
  uint64_t r = 0;
  while (r == 0) r = rng.NextU64();
  return VerificationTag{key.size(), r, PolynomialHash(key, r)};
}

absl::StatusOr<VerificationResult> CheckVerificationTag(const BitString& key, const VerificationTag& tag) {
  if (tag.key_bits != key.size()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "verification: Bob's key has %d bits but Alice's %d; the ends disagree on the reconciled key", tag.key_bits,
        key.size()));
  }
  if (tag.point == 0) {
    return absl::InvalidArgumentError("verification: hash point 0 hashes every key to 0; Bob must draw r != 0");
  }
  return VerificationResult{PolynomialHash(key, tag.point) == tag.tag};
}

}  // namespace qnet::qkd
