#include "qkd/bit_string.h"

#include <bit>
#include <cassert>

namespace qnet::qkd {
namespace {

size_t WordsFor(size_t bits) { return (bits + 63) / 64; }

// Ones in the low `n` bits (n in [0, 64]).
uint64_t LowMask(size_t n) { return n >= 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1; }

}  // namespace

BitString::BitString(size_t size) : size_(size), words_(WordsFor(size), 0) {}

BitString BitString::Random(size_t size, Rng& rng) {
  BitString s(size);
  for (auto& w : s.words_) w = rng.NextU64();
  if (size % 64 != 0 && !s.words_.empty()) s.words_.back() &= LowMask(size % 64);
  return s;
}

BitString BitString::FromBits(const std::vector<uint8_t>& bits) {
  BitString s(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) {
    if (bits[i] != 0) s.Set(i, true);
  }
  return s;
}

BitString BitString::FromWords(std::vector<uint64_t> words, size_t size) {
  BitString s;
  s.size_ = size;
  words.resize(WordsFor(size), 0);
  if (size % 64 != 0) words.back() &= LowMask(size % 64);
  s.words_ = std::move(words);
  return s;
}

void BitString::PushBack(bool value) {
  if (size_ % 64 == 0) words_.push_back(0);
  ++size_;
  if (value) Set(size_ - 1, true);
}

size_t BitString::PopCount() const {
  size_t n = 0;
  for (uint64_t w : words_) n += static_cast<size_t>(std::popcount(w));
  return n;
}

bool BitString::Parity() const {
  uint64_t x = 0;
  for (uint64_t w : words_) x ^= w;
  return std::popcount(x) & 1;
}

bool BitString::RangeParity(size_t begin, size_t end) const {
  assert(begin <= end && end <= size_);
  if (begin == end) return false;
  const size_t first = begin >> 6;
  const size_t last = (end - 1) >> 6;
  const uint64_t head = ~LowMask(begin & 63);
  const uint64_t tail = LowMask(((end - 1) & 63) + 1);
  if (first == last) return std::popcount(words_[first] & head & tail) & 1;
  uint64_t x = (words_[first] & head) ^ (words_[last] & tail);
  for (size_t w = first + 1; w < last; ++w) x ^= words_[w];
  return std::popcount(x) & 1;
}

size_t BitString::HammingDistance(const BitString& other) const {
  assert(size_ == other.size_);
  size_t n = 0;
  for (size_t w = 0; w < words_.size(); ++w) n += static_cast<size_t>(std::popcount(words_[w] ^ other.words_[w]));
  return n;
}

BitString BitString::Slice(size_t begin, size_t length) const {
  assert(begin + length <= size_);
  BitString out(length);
  const size_t shift = begin & 63;
  const size_t base = begin >> 6;
  for (size_t w = 0; w < out.words_.size(); ++w) {
    uint64_t lo = words_[base + w] >> shift;
    if (shift != 0 && base + w + 1 < words_.size()) lo |= words_[base + w + 1] << (64 - shift);
    out.words_[w] = lo;
  }
  if (length % 64 != 0 && !out.words_.empty()) out.words_.back() &= LowMask(length % 64);
  return out;
}

std::string BitString::ToString() const {
  std::string s(size_, '0');
  for (size_t i = 0; i < size_; ++i) {
    if (Get(i)) s[i] = '1';
  }
  return s;
}

}  // namespace qnet::qkd
