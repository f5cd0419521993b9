#include "qkd/gf2.h"

#include <algorithm>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace qnet::qkd {
namespace {

#if defined(__x86_64__)
__attribute__((target("pclmul,sse2"))) Clmul128 CarrylessMultiplyHardware(uint64_t a, uint64_t b) {
  const __m128i va = _mm_set_epi64x(0, static_cast<long long>(a));
  const __m128i vb = _mm_set_epi64x(0, static_cast<long long>(b));
  const __m128i p = _mm_clmulepi64_si128(va, vb, 0x00);
  Clmul128 r;
  r.lo = static_cast<uint64_t>(_mm_cvtsi128_si64(p));
  r.hi = static_cast<uint64_t>(_mm_cvtsi128_si64(_mm_unpackhi_epi64(p, p)));
  return r;
}

bool HasHardwareClmul() {
  static const bool has = __builtin_cpu_supports("pclmul");
  return has;
}

// The schoolbook loop with the instruction inlined (the hot loop of privacy
// amplification).
__attribute__((target("pclmul,sse2"))) void MultiplyAccumulateSchoolbookHardware(const uint64_t* a, size_t na,
                                                                                 const uint64_t* b, size_t nb,
                                                                                 uint64_t* r) {
  for (size_t i = 0; i < na; ++i) {
    if (a[i] == 0) continue;
    const __m128i va = _mm_set_epi64x(0, static_cast<long long>(a[i]));
    for (size_t j = 0; j < nb; ++j) {
      const __m128i p = _mm_clmulepi64_si128(va, _mm_set_epi64x(0, static_cast<long long>(b[j])), 0x00);
      r[i + j] ^= static_cast<uint64_t>(_mm_cvtsi128_si64(p));
      r[i + j + 1] ^= static_cast<uint64_t>(_mm_cvtsi128_si64(_mm_unpackhi_epi64(p, p)));
    }
  }
}
#endif

// r[0, na + nb) ^= a[0, na) * b[0, nb), schoolbook.
void MultiplyAccumulateSchoolbook(const uint64_t* a, size_t na, const uint64_t* b, size_t nb, uint64_t* r) {
#if defined(__x86_64__)
  if (HasHardwareClmul()) return MultiplyAccumulateSchoolbookHardware(a, na, b, nb, r);
#endif
  for (size_t i = 0; i < na; ++i) {
    if (a[i] == 0) continue;
    for (size_t j = 0; j < nb; ++j) {
      const Clmul128 p = CarrylessMultiply(a[i], b[j]);
      r[i + j] ^= p.lo;
      r[i + j + 1] ^= p.hi;
    }
  }
}

constexpr size_t kKaratsubaThreshold = 24;  // words; below this schoolbook is faster

// r[0, 2n) = a[0, n) * b[0, n). `scratch` holds at least 4n words (recursion
// consumes a geometric series of it).
void KaratsubaSquareSize(const uint64_t* a, const uint64_t* b, size_t n, uint64_t* r, uint64_t* scratch) {
  if (n <= kKaratsubaThreshold) {
    std::fill(r, r + 2 * n, 0);
    MultiplyAccumulateSchoolbook(a, n, b, n, r);
    return;
  }
  // a = a0 + x^(64 m) a1 with a0 of m words and a1 of h = n - m <= m words.
  const size_t m = (n + 1) / 2;
  const size_t h = n - m;
  // z0 = a0 b0 -> r[0, 2m); z2 = a1 b1 -> r[2m, 2n).
  KaratsubaSquareSize(a, b, m, r, scratch);
  KaratsubaSquareSize(a + m, b + m, h, r + 2 * m, scratch);
  // z1 = (a0 + a1)(b0 + b1) with sums of m words.
  uint64_t* sa = scratch;
  uint64_t* sb = scratch + m;
  uint64_t* z1 = scratch + 2 * m;  // 2m words
  uint64_t* rest = scratch + 4 * m;
  for (size_t i = 0; i < m; ++i) {
    sa[i] = a[i] ^ (i < h ? a[m + i] : 0);
    sb[i] = b[i] ^ (i < h ? b[m + i] : 0);
  }
  KaratsubaSquareSize(sa, sb, m, z1, rest);
  // Middle term z1 - z0 - z2 (over GF(2): XOR), added at offset m.
  for (size_t i = 0; i < 2 * m; ++i) z1[i] ^= r[i];
  for (size_t i = 0; i < 2 * h; ++i) z1[i] ^= r[2 * m + i];
  for (size_t i = 0; i < 2 * m; ++i) r[m + i] ^= z1[i];
}

}  // namespace

Clmul128 CarrylessMultiplyPortable(uint64_t a, uint64_t b) {
  // 4-bit windows of b: table of a * w for every 4-bit w, as 128-bit values.
  uint64_t tlo[16], thi[16];
  tlo[0] = 0;
  thi[0] = 0;
  for (int w = 1; w < 16; ++w) {
    uint64_t lo = 0, hi = 0;
    for (int bit = 0; bit < 4; ++bit) {
      if ((w >> bit) & 1) {
        lo ^= a << bit;
        if (bit != 0) hi ^= a >> (64 - bit);
      }
    }
    tlo[w] = lo;
    thi[w] = hi;
  }
  Clmul128 r;
  for (int shift = 60; shift >= 0; shift -= 4) {
    const unsigned w = static_cast<unsigned>((b >> shift) & 15);
    // r = r * x^4 + a * w
    if (shift != 60) {
      r.hi = (r.hi << 4) | (r.lo >> 60);
      r.lo <<= 4;
    }
    r.lo ^= tlo[w];
    r.hi ^= thi[w];
  }
  return r;
}

Clmul128 CarrylessMultiply(uint64_t a, uint64_t b) {
#if defined(__x86_64__)
  if (HasHardwareClmul()) return CarrylessMultiplyHardware(a, b);
#endif
  return CarrylessMultiplyPortable(a, b);
}

std::vector<uint64_t> PolynomialMultiplySchoolbook(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  std::vector<uint64_t> r(a.size() + b.size(), 0);
  MultiplyAccumulateSchoolbook(a.data(), a.size(), b.data(), b.size(), r.data());
  return r;
}

std::vector<uint64_t> PolynomialMultiply(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  std::vector<uint64_t> r(a.size() + b.size(), 0);
  if (a.empty() || b.empty()) return r;
  // Cut the longer operand into chunks the length of the shorter one and
  // multiply each chunk by Karatsuba (which wants equal sizes).
  const std::vector<uint64_t>& longer = a.size() >= b.size() ? a : b;
  const std::vector<uint64_t>& shorter = a.size() >= b.size() ? b : a;
  const size_t n = shorter.size();
  std::vector<uint64_t> chunk(n), product(2 * n), scratch(4 * n + 256);
  for (size_t offset = 0; offset < longer.size(); offset += n) {
    const size_t len = std::min(n, longer.size() - offset);
    std::fill(chunk.begin(), chunk.end(), 0);
    std::copy(longer.begin() + static_cast<std::ptrdiff_t>(offset),
              longer.begin() + static_cast<std::ptrdiff_t>(offset + len), chunk.begin());
    KaratsubaSquareSize(chunk.data(), shorter.data(), n, product.data(), scratch.data());
    // The padded chunk's product has at most len + n nonzero words.
    for (size_t i = 0; i < len + n; ++i) r[offset + i] ^= product[i];
  }
  return r;
}

uint64_t Gf64Multiply(uint64_t a, uint64_t b) {
  const Clmul128 p = CarrylessMultiply(a, b);
  // x^64 = x^4 + x^3 + x + 1: fold the high word down twice (the first fold
  // can carry at most 4 bits past x^63).
  const uint64_t hi = p.hi;
  const uint64_t carry = (hi >> 63) ^ (hi >> 61) ^ (hi >> 60);
  uint64_t lo = p.lo ^ hi ^ (hi << 1) ^ (hi << 3) ^ (hi << 4);
  lo ^= carry ^ (carry << 1) ^ (carry << 3) ^ (carry << 4);
  return lo;
}

}  // namespace qnet::qkd
