// Parameter estimation, the second step of QKD post-processing: Alice picks a
// random sample of the sifted bits (she announces the seed the positions are
// drawn from, and her bits there), Bob replies with his bits there, and both
// compute the same error estimate: the measured QBER, overall and per basis,
// with upper confidence bounds. The sample is disclosed, so it is removed from
// the key. CheckAbortThreshold turns an estimate above the abort threshold
// into an error naming the measured QBER.
//
// The bound. The sample is drawn without replacement, so the bound is the
// Serfling inequality for the error rate of the bits NOT sampled (Serfling,
// Ann. Stat. 2, 39 (1974); the form used in finite-key QKD, e.g. Tomamichel
// et al., Nat. Commun. 3, 634 (2012)): for a population of n + k bits of
// which k are sampled uniformly at random,
//   P[ rate(rest) >= rate(sample) + d ] <= exp(-2 d^2 n k^2 / ((n + k)(k + 1))),
// so at failure probability eps
//   upper = rate(sample) + sqrt((n + k)(k + 1) ln(1/eps) / (2 n k^2)).
// For privacy amplification the sample of each basis bounds the phase error
// rate of the key bits of the other basis (BBM92/BB84 with basis-independent
// errors: a Z key bit's phase error is the error its X measurement would
// have had). The two per-basis bounds each hold except with probability
// eps/2, so together except with eps (the configured failure probability);
// the overall bound, at eps, is informational (reports).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "qkd/bit_string.h"
#include "qkd/sifting.h"

namespace qnet::qkd {

struct ParameterEstimationOptions {
  double sample_fraction = 0.1;        // of the sifted bits, disclosed and discarded; in (0, 1)
  double failure_probability = 1e-10;  // eps_PE, the probability that the upper bounds fail
  double abort_threshold = 0.11;       // abort when the measured QBER (overall or in a basis) exceeds this
};
absl::Status ValidateParameterEstimationOptions(const ParameterEstimationOptions& options);

// Serfling upper bound on the error rate of `population` unsampled bits given
// `errors` among `sampled` bits drawn without replacement, failing with
// probability at most `failure_probability`. 1 when nothing was sampled.
double SamplingUpperBound(uint64_t errors, uint64_t sampled, uint64_t population, double failure_probability);

// Errors found in (part of) the sample.
struct ErrorRateBound {
  uint64_t sampled = 0;     // sample bits
  uint64_t errors = 0;      // of which differ between the ends
  uint64_t population = 0;  // key bits the upper bound is about
  double upper_bound = 1.0;
  double rate() const { return sampled == 0 ? 0.0 : static_cast<double>(errors) / static_cast<double>(sampled); }
};

struct ErrorEstimate {
  // The whole sample: the QBER, and an upper bound on the bit error rate of
  // the remaining key (population = all remaining bits) at eps.
  ErrorRateBound overall;
  // The Z-basis sample; its upper bound (at eps/2) is on the phase error rate
  // of the remaining X-basis key bits (population = those bits).
  ErrorRateBound z;
  // The X-basis sample; its upper bound (at eps/2) is on the phase error rate
  // of the remaining Z-basis key bits.
  ErrorRateBound x;
  double failure_probability = 0.0;
  double phase_error_bound_of_z_key() const { return x.upper_bound; }
  double phase_error_bound_of_x_key() const { return z.upper_bound; }
};

// Aborted error naming the measured QBER when it (overall, or in a basis with
// a sample) exceeds `threshold`; OK otherwise.
absl::Status CheckAbortThreshold(const ErrorEstimate& estimate, double threshold);

// Message, Alice -> Bob: which sifted bits are sampled, and Alice's bits there.
struct SampleAnnouncement {
  uint64_t sample_seed = 0;   // positions = ChooseSamplePositions(seed, sifted_bits, sample_size)
  uint64_t sifted_bits = 0;   // Alice's sifted key length, checked by Bob
  uint64_t sample_size = 0;
  BitString sample_bits;      // Alice's bits at the positions, in increasing position order
  size_t WireBytes() const;
};

// Message, Bob -> Alice: Bob's bits at the sampled positions.
struct SampleReply {
  BitString sample_bits;
  size_t WireBytes() const;
};

// `count` distinct positions in [0, population), increasing, drawn uniformly
// (partial Fisher-Yates) from a generator seeded with `seed`; both ends draw
// the same positions from the announced seed.
std::vector<uint32_t> ChooseSamplePositions(uint64_t seed, size_t population, size_t count);

// What is left of the sifted key once the sample is removed.
struct EstimatedKey {
  BitString bits;
  BitString x_basis;
  size_t x_bits() const { return x_basis.PopCount(); }
  size_t z_bits() const { return bits.size() - x_bits(); }
};

class ParameterEstimationAlice {
 public:
  ParameterEstimationAlice(SiftedKey key, ParameterEstimationOptions options, uint64_t sample_seed);

  // Fails when the options are invalid or the sifted key is too short to sample.
  absl::StatusOr<SampleAnnouncement> Announce();
  // Compares Bob's sample bits with Alice's; fails on a malformed reply.
  absl::StatusOr<ErrorEstimate> OnReply(const SampleReply& reply);
  // The key without the sample (after OnReply).
  EstimatedKey TakeRemainingKey() { return std::move(remaining_); }

 private:
  SiftedKey key_;
  ParameterEstimationOptions options_;
  uint64_t sample_seed_;
  std::vector<uint32_t> positions_;
  BitString own_sample_;
  EstimatedKey remaining_;
  bool announced_ = false;
};

class ParameterEstimationBob {
 public:
  ParameterEstimationBob(SiftedKey key, ParameterEstimationOptions options);

  // Bob's bits at the announced sample; fails on a malformed announcement
  // (e.g. a different sifted length). The estimate is then available.
  absl::StatusOr<SampleReply> OnAnnouncement(const SampleAnnouncement& announcement);
  const ErrorEstimate& estimate() const { return estimate_; }
  EstimatedKey TakeRemainingKey() { return std::move(remaining_); }

 private:
  SiftedKey key_;
  ParameterEstimationOptions options_;
  ErrorEstimate estimate_;
  EstimatedKey remaining_;
};

}  // namespace qnet::qkd
