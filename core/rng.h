// The one source of randomness in qnet: a seeded, platform-independent
// generator. Every random choice (Born-rule outcomes, attempt counts, basis
// choices) draws from an Rng derived from the run's seed, so a seed
// reproduces a simulated run exactly. Distributions are implemented here
// rather than with <random>'s, whose algorithms differ between libraries.
#pragma once

#include <cstdint>
#include <string_view>

namespace qnet {

class Rng {
 public:
  explicit Rng(uint64_t seed);

  // An independent generator derived from this one's seed and a label, so
  // components get their own streams and adding draws in one does not shift
  // another's.
  Rng Fork(std::string_view label) const;
  Rng Fork(uint64_t stream) const;

  uint64_t NextU64();
  // Uniform in [0, 1) with 53 random bits.
  double Uniform();
  // Uniform integer in [0, n); n > 0.
  uint64_t UniformInt(uint64_t n);
  bool Bernoulli(double p);
  // Number of independent trials up to and including the first success,
  // each succeeding with probability p in (0, 1]: P(k) = (1-p)^(k-1) p.
  // Exact inverse-transform sampling, O(1) however small p is.
  uint64_t Geometric(double p);
  // Standard normal (Box-Muller).
  double Normal();

  uint64_t seed() const { return seed_; }

 private:
  uint64_t seed_;
  uint64_t state_[4];  // xoshiro256** state
};

}  // namespace qnet
