// A packed string of bits (64 per word), the currency of QKD post-processing:
// sifted keys, samples, parities, hash seeds and final keys are all bit
// strings. Bits past size() in the last word are kept zero so that word-level
// operations (parity, popcount, comparison, hashing) need no masking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.h"

namespace qnet::qkd {

class BitString {
 public:
  BitString() = default;
  // `size` zero bits.
  explicit BitString(size_t size);
  // `size` independent fair bits from `rng`.
  static BitString Random(size_t size, Rng& rng);
  // Bits given as 0/1 values.
  static BitString FromBits(const std::vector<uint8_t>& bits);
  // The first `size` bits of `words` (bit i is bit i%64 of word i/64).
  static BitString FromWords(std::vector<uint64_t> words, size_t size);

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const std::vector<uint64_t>& words() const { return words_; }

  bool Get(size_t i) const { return (words_[i >> 6] >> (i & 63)) & 1u; }
  void Set(size_t i, bool value) {
    const uint64_t mask = uint64_t{1} << (i & 63);
    if (value) {
      words_[i >> 6] |= mask;
    } else {
      words_[i >> 6] &= ~mask;
    }
  }
  void Flip(size_t i) { words_[i >> 6] ^= uint64_t{1} << (i & 63); }
  void PushBack(bool value);

  // Number of ones.
  size_t PopCount() const;
  // XOR of all bits.
  bool Parity() const;
  // XOR of bits [begin, end); begin <= end <= size().
  bool RangeParity(size_t begin, size_t end) const;
  // Number of positions where the two strings differ; sizes must be equal.
  size_t HammingDistance(const BitString& other) const;
  // Bits [begin, begin + length) as a new string.
  BitString Slice(size_t begin, size_t length) const;

  // "0110..." (for tests and debugging).
  std::string ToString() const;

  friend bool operator==(const BitString& a, const BitString& b) {
    return a.size_ == b.size_ && a.words_ == b.words_;
  }

 private:
  size_t size_ = 0;
  std::vector<uint64_t> words_;
};

}  // namespace qnet::qkd
