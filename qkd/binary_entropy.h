// The binary entropy h(p) = -p log2 p - (1-p) log2(1-p), the unit in which
// QKD post-processing prices errors: error correction must disclose at least
// n h(QBER) bits, and privacy amplification removes n h(phase error) bits.
#pragma once

#include <cmath>

namespace qnet::qkd {

// h(p) for p in [0, 1]; p outside is clamped. Note h(p) = h(1 - p).
inline double BinaryEntropy(double p) {
  if (!(p > 0.0) || !(p < 1.0)) return 0.0;
  return -p * std::log2(p) - (1.0 - p) * std::log2(1.0 - p);
}

// h(p) for an upper bound p on an error rate: past 1/2 the bound says nothing
// (an adversary may know everything), so it is priced at the full bit.
inline double BinaryEntropyOfUpperBound(double p) { return p >= 0.5 ? 1.0 : BinaryEntropy(p); }

}  // namespace qnet::qkd
