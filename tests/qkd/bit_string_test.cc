// The bit-level machinery under post-processing: BitString's word-level
// parity, slicing and counting against bit-by-bit references, and the GF(2)
// arithmetic (carry-less products, Karatsuba, GF(2^64)) against schoolbook
// references, including the hardware carry-less multiply against the
// portable one.
#include "qkd/bit_string.h"

#include <vector>

#include "gtest/gtest.h"
#include "qkd/gf2.h"

namespace qnet::qkd {
namespace {

bool NaiveParity(const BitString& s, size_t begin, size_t end) {
  bool p = false;
  for (size_t i = begin; i < end; ++i) p ^= s.Get(i);
  return p;
}

TEST(BitString, RangeParityMatchesBitByBit) {
  Rng rng(1);
  const BitString s = BitString::Random(300, rng);
  for (size_t begin = 0; begin <= 300; begin += 7) {
    for (size_t end = begin; end <= 300; end += 5) {
      ASSERT_EQ(s.RangeParity(begin, end), NaiveParity(s, begin, end)) << begin << " " << end;
    }
  }
  EXPECT_EQ(s.Parity(), NaiveParity(s, 0, 300));
}

TEST(BitString, SliceCountsAndEquality) {
  Rng rng(2);
  const BitString s = BitString::Random(200, rng);
  for (size_t begin : {0, 1, 63, 64, 65, 130}) {
    for (size_t length : {0, 1, 63, 64, 65, 70}) {
      if (begin + length > 200) continue;
      const BitString slice = s.Slice(begin, length);
      ASSERT_EQ(slice.size(), length);
      for (size_t i = 0; i < length; ++i) ASSERT_EQ(slice.Get(i), s.Get(begin + i));
      // Bits past the end stay zero, so equality is word equality.
      EXPECT_EQ(slice, BitString::FromBits([&] {
                  std::vector<uint8_t> bits;
                  for (size_t i = 0; i < length; ++i) bits.push_back(s.Get(begin + i));
                  return bits;
                }()));
    }
  }
  size_t ones = 0;
  for (size_t i = 0; i < 200; ++i) ones += s.Get(i);
  EXPECT_EQ(s.PopCount(), ones);
  BitString t = s;
  t.Flip(5);
  t.Flip(199);
  EXPECT_EQ(s.HammingDistance(t), 2u);
  EXPECT_FALSE(s == t);
  BitString pushed;
  for (size_t i = 0; i < 200; ++i) pushed.PushBack(s.Get(i));
  EXPECT_EQ(pushed, s);
  EXPECT_EQ(BitString::FromBits({1, 0, 1, 1}).ToString(), "1011");
}

TEST(Gf2, HardwareAndPortableCarrylessProductsAgree) {
  Rng rng(3);
  for (int i = 0; i < 2000; ++i) {
    const uint64_t a = rng.NextU64(), b = rng.NextU64();
    const Clmul128 fast = CarrylessMultiply(a, b);
    const Clmul128 slow = CarrylessMultiplyPortable(a, b);
    ASSERT_EQ(fast.lo, slow.lo);
    ASSERT_EQ(fast.hi, slow.hi);
  }
  // (x^63 + 1)(x + 1) = x^64 + x^63 + x + 1.
  const Clmul128 p = CarrylessMultiplyPortable((uint64_t{1} << 63) | 1, 3);
  EXPECT_EQ(p.lo, (uint64_t{1} << 63) | 3);
  EXPECT_EQ(p.hi, 1u);
}

TEST(Gf2, KaratsubaMatchesSchoolbook) {
  Rng rng(4);
  for (size_t na : {1, 5, 24, 25, 49, 100, 257}) {
    for (size_t nb : {1, 7, 24, 31, 100, 300}) {
      std::vector<uint64_t> a(na), b(nb);
      for (auto& w : a) w = rng.NextU64();
      for (auto& w : b) w = rng.NextU64();
      ASSERT_EQ(PolynomialMultiply(a, b), PolynomialMultiplySchoolbook(a, b)) << na << " x " << nb;
    }
  }
}

// Reference GF(2^64) product: shift-and-add with reduction by
// x^64 = x^4 + x^3 + x + 1 one bit at a time.
uint64_t SlowGf64(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  for (int i = 0; i < 64; ++i) {
    if ((b >> i) & 1) r ^= a;
    const bool carry = a >> 63;
    a <<= 1;
    if (carry) a ^= 0x1B;
  }
  return r;
}

TEST(Gf2, Gf64MultiplyMatchesShiftAndAdd) {
  Rng rng(5);
  for (int i = 0; i < 2000; ++i) {
    const uint64_t a = rng.NextU64(), b = rng.NextU64(), c = rng.NextU64();
    ASSERT_EQ(Gf64Multiply(a, b), SlowGf64(a, b));
    ASSERT_EQ(Gf64Multiply(a, b ^ c), Gf64Multiply(a, b) ^ Gf64Multiply(a, c));
    ASSERT_EQ(Gf64Multiply(Gf64Multiply(a, b), c), Gf64Multiply(a, Gf64Multiply(b, c)));
  }
  EXPECT_EQ(Gf64Multiply(uint64_t{1} << 63, 2), 0x1Bu);  // x^64 reduced
  EXPECT_EQ(Gf64Multiply(12345, 1), 12345u);
}

}  // namespace
}  // namespace qnet::qkd
