#include "core/rng.h"

#include <cmath>
#include <limits>

namespace qnet {
namespace {

uint64_t SplitMix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t HashLabel(std::string_view label) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
  for (unsigned char c : label) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

Rng::Rng(uint64_t seed) : seed_(seed) {
  uint64_t x = seed;
  for (auto& s : state_) s = SplitMix64(x);
}

Rng Rng::Fork(std::string_view label) const { return Fork(HashLabel(label)); }

Rng Rng::Fork(uint64_t stream) const {
  uint64_t x = seed_ ^ Rotl(stream, 17) ^ 0x5851f42d4c957f2dULL;
  return Rng(SplitMix64(x) ^ stream);
}

uint64_t Rng::NextU64() {
  const uint64_t result = Rotl(state_[1] * 5, 7) * 9;
  const uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = Rotl(state_[3], 45);
  return result;
}

double Rng::Uniform() { return static_cast<double>(NextU64() >> 11) * 0x1.0p-53; }

uint64_t Rng::UniformInt(uint64_t n) {
  // Rejection sampling: no modulo bias.
  const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
  uint64_t x;
  do {
    x = NextU64();
  } while (x >= limit);
  return x % n;
}

bool Rng::Bernoulli(double p) { return Uniform() < p; }

uint64_t Rng::Geometric(double p) {
  if (p >= 1.0) return 1;
  // k = ceil(ln U / ln(1-p)) with U in (0,1]; log1p keeps precision for tiny p.
  const double u = 1.0 - Uniform();
  const double k = std::ceil(std::log(u) / std::log1p(-p));
  if (!(k >= 1.0)) return 1;
  if (k > 9.0e18) return static_cast<uint64_t>(9.0e18);
  return static_cast<uint64_t>(k);
}

double Rng::Normal() {
  const double u1 = 1.0 - Uniform();
  const double u2 = Uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

}  // namespace qnet
