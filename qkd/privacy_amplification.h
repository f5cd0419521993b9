// Privacy amplification, the last step of QKD post-processing: both ends
// compress their (identical, verified) key with the same random Toeplitz
// matrix, announced by Alice as its seed, to a length about which an
// eavesdropper knows (almost) nothing.
//
// Toeplitz hashing: the m x n matrix T[i][j] = s[i - j + n - 1] is given by a
// seed s of n + m - 1 bits; the output is y = T x over GF(2). The family is
// two-universal, as the leftover hash lemma requires. T x is the slice
// [n - 1, n - 1 + m) of the polynomial product s(z) x(z), computed with
// word-level carry-less Karatsuba multiplication: about (n/64)^1.58 word
// products instead of the n m / 64 of a row-by-row product.
//
// Final length (ComputeSecretKeyLength). With n_Z, n_X the key bits measured
// in Z and X, e_ph^U(b) the upper bound on the phase error rate of the
// basis-b key bits (from parameter estimation: the other basis' sample), and
// h the binary entropy:
//   l = floor( n_Z (1 - h(e_ph^U(Z))) + n_X (1 - h(e_ph^U(X)))
//              - leak_EC - leak_verify - 2 log2(1/eps_PA) ).
// This is the finite-key bound of Tomamichel, Lim, Gisin and Renner,
// Nat. Commun. 3, 634 (2012), Eq. (2) (smooth min-entropy from the entropic
// uncertainty relation, n (1 - h(e_ph^U)); leftover hash lemma, 2 log2(1/eps_PA)),
// applied per basis for BBM92/BB84 with symmetric, basis-independent errors,
// where it reduces asymptotically to Shor-Preskill's 1 - h(e_bit) - h(e_phase)
// with the measured leak_EC in place of n h(e_bit). Security: eps_PE (the
// phase bounds) + eps_PA (hashing) + the verification failure probability.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "core/rng.h"
#include "qkd/bit_string.h"

namespace qnet::qkd {

// T x for the Toeplitz matrix of `seed`; seed.size() must be
// input.size() + output_bits - 1 (checked by ApplyPrivacyAmplification).
BitString ToeplitzHash(const BitString& seed, const BitString& input, size_t output_bits);

struct SecretKeyLengthInputs {
  uint64_t z_key_bits = 0;
  uint64_t x_key_bits = 0;
  double z_phase_error_bound = 0.5;  // upper bound on the phase error rate of the Z key bits
  double x_phase_error_bound = 0.5;
  uint64_t error_correction_leak = 0;  // bits disclosed by error correction
  uint64_t verification_leak = 0;      // bits disclosed by verification
  double failure_probability = 1e-10;  // eps_PA
};

struct SecretKeyLength {
  double min_entropy_bits = 0.0;  // n_Z (1 - h(e_Z)) + n_X (1 - h(e_X))
  double security_bits = 0.0;     // 2 log2(1/eps_PA)
  double bound = 0.0;             // before flooring; may be negative
  uint64_t bits = 0;              // floor(bound), or 0
};
SecretKeyLength ComputeSecretKeyLength(const SecretKeyLengthInputs& inputs);

// Message, Alice -> Bob: the Toeplitz seed and the output length.
struct PrivacyAmplificationSeed {
  uint64_t input_bits = 0;
  uint64_t output_bits = 0;
  BitString toeplitz_seed;  // input_bits + output_bits - 1 bits
  size_t WireBytes() const;
};

// Alice: a uniformly random Toeplitz seed for compressing `input_bits` to
// `output_bits`.
PrivacyAmplificationSeed MakePrivacyAmplificationSeed(uint64_t input_bits, uint64_t output_bits, Rng& rng);
// Both ends: the final key; fails when the seed does not fit the key.
absl::StatusOr<BitString> ApplyPrivacyAmplification(const BitString& key, const PrivacyAmplificationSeed& seed);

}  // namespace qnet::qkd
