#include "qkd/privacy_amplification.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "qkd/binary_entropy.h"
#include "qkd/gf2.h"
#include "qkd/wire_size.h"

namespace qnet::qkd {

BitString ToeplitzHash(const BitString& seed, const BitString& input, size_t output_bits) {
  if (output_bits == 0 || input.empty()) return BitString(output_bits);
  const std::vector<uint64_t> product = PolynomialMultiply(seed.words(), input.words());
  const size_t product_bits = 64 * product.size();
  return BitString::FromWords(product, product_bits).Slice(input.size() - 1, output_bits);
}

SecretKeyLength ComputeSecretKeyLength(const SecretKeyLengthInputs& in) {
  SecretKeyLength out;
  out.min_entropy_bits = static_cast<double>(in.z_key_bits) * (1.0 - BinaryEntropyOfUpperBound(in.z_phase_error_bound)) +
                         static_cast<double>(in.x_key_bits) * (1.0 - BinaryEntropyOfUpperBound(in.x_phase_error_bound));
  out.security_bits = 2.0 * std::log2(1.0 / in.failure_probability);
  out.bound = out.min_entropy_bits - static_cast<double>(in.error_correction_leak) -
              static_cast<double>(in.verification_leak) - out.security_bits;
  out.bits = out.bound >= 1.0 ? static_cast<uint64_t>(std::floor(out.bound)) : 0;
  return out;
}

size_t PrivacyAmplificationSeed::WireBytes() const { return 16 + PackedBitsBytes(toeplitz_seed.size()); }

PrivacyAmplificationSeed MakePrivacyAmplificationSeed(uint64_t input_bits, uint64_t output_bits, Rng& rng) {
  PrivacyAmplificationSeed seed;
  seed.input_bits = input_bits;
  seed.output_bits = output_bits;
  const uint64_t seed_bits = input_bits + output_bits > 0 ? input_bits + output_bits - 1 : 0;
  seed.toeplitz_seed = BitString::Random(seed_bits, rng);
  return seed;
}

absl::StatusOr<BitString> ApplyPrivacyAmplification(const BitString& key, const PrivacyAmplificationSeed& seed) {
  if (seed.input_bits != key.size()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "privacy amplification: the seed is for a %d-bit key but this end holds %d bits", seed.input_bits,
        key.size()));
  }
  if (seed.output_bits > seed.input_bits) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "privacy amplification: cannot extract %d bits from a %d-bit key", seed.output_bits, seed.input_bits));
  }
  if (seed.output_bits > 0 && seed.toeplitz_seed.size() != seed.input_bits + seed.output_bits - 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "privacy amplification: a %d x %d Toeplitz matrix needs a %d-bit seed, got %d bits", seed.output_bits,
        seed.input_bits, seed.input_bits + seed.output_bits - 1, seed.toeplitz_seed.size()));
  }
  return ToeplitzHash(seed.toeplitz_seed, key, seed.output_bits);
}

}  // namespace qnet::qkd
