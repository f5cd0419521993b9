// Arithmetic over GF(2) for the hashing steps of QKD post-processing:
// carry-less (polynomial) products of bit strings, used by Toeplitz privacy
// amplification (a Toeplitz matrix-vector product is a slice of a polynomial
// product), and multiplication in GF(2^64), used by the polynomial universal
// hash of the verification step. Uses the CPU's carry-less multiply
// instruction when there is one, with a portable fallback giving identical
// results.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace qnet::qkd {

// 128-bit carry-less product of two 64-bit polynomials.
struct Clmul128 {
  uint64_t lo = 0;
  uint64_t hi = 0;
};
Clmul128 CarrylessMultiply(uint64_t a, uint64_t b);
// The portable implementation (tests compare it with the hardware one).
Clmul128 CarrylessMultiplyPortable(uint64_t a, uint64_t b);

// Product of two polynomials over GF(2) given as little-endian words (bit i of
// the polynomial is bit i%64 of word i/64). The result has a.size() + b.size()
// words. Karatsuba above a small size, so 10^6-bit operands take milliseconds.
std::vector<uint64_t> PolynomialMultiply(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b);
// Schoolbook reference for the same product (tests).
std::vector<uint64_t> PolynomialMultiplySchoolbook(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b);

// Multiplication in GF(2^64) = GF(2)[x] / (x^64 + x^4 + x^3 + x + 1).
uint64_t Gf64Multiply(uint64_t a, uint64_t b);

}  // namespace qnet::qkd
