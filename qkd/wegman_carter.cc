#include "qkd/wegman_carter.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "qkd/gf2.h"

namespace qnet::qkd {

uint64_t WegmanCarterMac::Blocks(size_t bytes) { return (bytes + 7) / 8 + 1; }

uint64_t WegmanCarterMac::Hash(uint64_t hash_key, std::string_view message) {
  // Horner: h = (...((m_1 k + m_2) k + ...) + m_L) k.
  uint64_t h = 0;
  size_t at = 0;
  while (at < message.size()) {
    uint64_t word = 0;
    const size_t n = std::min<size_t>(8, message.size() - at);
    for (size_t i = 0; i < n; ++i) word |= uint64_t{static_cast<uint8_t>(message[at + i])} << (8 * i);
    h = Gf64Multiply(h ^ word, hash_key);
    at += n;
  }
  return Gf64Multiply(h ^ static_cast<uint64_t>(message.size()), hash_key);
}

uint64_t WegmanCarterMac::Tag(uint64_t hash_key, uint64_t pad, std::string_view message) {
  return Hash(hash_key, message) ^ pad;
}

bool WegmanCarterMac::Verify(uint64_t hash_key, uint64_t pad, std::string_view message, uint64_t tag) {
  return Tag(hash_key, pad, message) == tag;
}

double WegmanCarterMac::ForgeryProbability(size_t bytes) {
  return std::ldexp(static_cast<double>(Blocks(bytes)), -64);
}

void WegmanCarterTranscript::Absorb(uint64_t hash_key, uint64_t word) {
  h_ = Gf64Multiply(h_ ^ word, hash_key);
  ++words_;
}

void WegmanCarterTranscript::Append(uint64_t hash_key, std::string_view message) {
  Absorb(hash_key, static_cast<uint64_t>(message.size()));
  for (size_t at = 0; at < message.size(); at += 8) {
    uint64_t word = 0;
    const size_t n = std::min<size_t>(8, message.size() - at);
    for (size_t i = 0; i < n; ++i) word |= uint64_t{static_cast<uint8_t>(message[at + i])} << (8 * i);
    Absorb(hash_key, word);
  }
  ++messages_;
}

uint64_t WegmanCarterTranscript::Close(uint64_t hash_key, uint64_t pad) {
  Absorb(hash_key, words_);
  const uint64_t tag = h_ ^ pad;
  *this = WegmanCarterTranscript();
  return tag;
}

AuthenticationKeyPool::AuthenticationKeyPool(std::string peer, bool sends_first_half)
    : peer_(std::move(peer)), sends_first_half_(sends_first_half) {}

std::pair<size_t, size_t> AuthenticationKeyPool::Half(const Segment& s, bool first) const {
  return first ? std::pair<size_t, size_t>{0, s.first_half} : std::pair<size_t, size_t>{s.first_half, s.words.size()};
}

absl::Status AuthenticationKeyPool::Refill(const std::string& segment, const BitString& bits) {
  if (by_name_.contains(segment)) {
    return absl::AlreadyExistsError(
        absl::StrCat("the authentication pool with ", peer_, " already had segment '", segment, "'"));
  }
  const size_t words = bits.size() / kAuthenticationWordBits;
  if (words < 2) {
    return absl::InvalidArgumentError(absl::StrCat("an authentication pool segment needs at least ",
                                                   2 * kAuthenticationWordBits, " bits, got ", bits.size()));
  }
  Segment s;
  s.name = segment;
  s.words.assign(bits.words().begin(), bits.words().begin() + static_cast<ptrdiff_t>(words));
  s.first_half = words / 2;
  by_name_[segment] = segments_.size();
  segments_.push_back(std::move(s));
  refilled_bits_ += words * kAuthenticationWordBits;
  return absl::OkStatus();
}

absl::StatusOr<AuthenticationKeyPool::Taken> AuthenticationKeyPool::TakeForSending(size_t words) {
  if (words == 0) return absl::InvalidArgumentError("taking 0 words from an authentication pool");
  for (Segment& s : segments_) {
    const auto [begin, end] = Half(s, sends_first_half_);
    if (end - begin - s.next_sent < words) continue;
    Taken t;
    t.position = {s.name, s.next_sent};
    t.words.assign(s.words.begin() + static_cast<ptrdiff_t>(begin + s.next_sent),
                   s.words.begin() + static_cast<ptrdiff_t>(begin + s.next_sent + words));
    // Overwritten at once: a word handed out exists nowhere but in the caller's hands.
    std::fill(s.words.begin() + static_cast<ptrdiff_t>(begin + s.next_sent),
              s.words.begin() + static_cast<ptrdiff_t>(begin + s.next_sent + words), 0);
    s.next_sent += words;
    consumed_words_ += words;
    DropSpentSegments();
    return t;
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "the authentication key pool shared with ", peer_, " is exhausted: ", words * kAuthenticationWordBits,
      " bits needed to send, ", bits_available_for_sending(), " left in this end's part (no pad is ever reused; ",
      "refill it with key made by a session, or install fresh pre-shared secret)"));
}

absl::StatusOr<std::vector<uint64_t>> AuthenticationKeyPool::TakeForReceiving(const PoolPosition& position,
                                                                              size_t words) {
  auto it = by_name_.find(position.segment);
  if (it == by_name_.end()) {
    return absl::NotFoundError(absl::StrCat("the authentication pool with ", peer_, " has no segment '",
                                            position.segment, "'"));
  }
  Segment& s = segments_[it->second];
  const auto [begin, end] = Half(s, !sends_first_half_);
  if (words == 0 || position.index > end - begin || end - begin - position.index < words) {
    return absl::OutOfRangeError(absl::StrCat("words ", position.index, "+", words, " lie outside ", peer_,
                                              "'s ", end - begin, " words of segment '", s.name, "'"));
  }
  if (position.index < s.next_received) {
    return absl::PermissionDeniedError(absl::StrCat("word ", position.index, " of segment '", s.name, "' from ",
                                                    peer_, " was used before (", s.next_received,
                                                    " taken): a replayed or reordered message"));
  }
  std::vector<uint64_t> out(s.words.begin() + static_cast<ptrdiff_t>(begin + position.index),
                            s.words.begin() + static_cast<ptrdiff_t>(begin + position.index + words));
  std::fill(s.words.begin() + static_cast<ptrdiff_t>(begin + s.next_received),
            s.words.begin() + static_cast<ptrdiff_t>(begin + position.index + words), 0);
  consumed_words_ += position.index + words - s.next_received;  // burned ones included
  s.next_received = position.index + words;
  DropSpentSegments();
  return out;
}

void AuthenticationKeyPool::DropSpentSegments() {
  const auto spent = [this](const Segment& s) {
    const auto [mine_begin, mine_end] = Half(s, sends_first_half_);
    const auto [theirs_begin, theirs_end] = Half(s, !sends_first_half_);
    return s.next_sent == mine_end - mine_begin && s.next_received == theirs_end - theirs_begin;
  };
  if (std::none_of(segments_.begin(), segments_.end(), spent)) return;
  std::erase_if(segments_, spent);
  by_name_.clear();
  for (size_t i = 0; i < segments_.size(); ++i) by_name_[segments_[i].name] = i;
}

AuthenticationKeyPool::State AuthenticationKeyPool::state() const {
  return State{.peer = peer_,
               .sends_first_half = sends_first_half_,
               .segments = segments_,
               .consumed_words = consumed_words_,
               .refilled_bits = refilled_bits_};
}

absl::StatusOr<AuthenticationKeyPool> AuthenticationKeyPool::FromState(State state) {
  AuthenticationKeyPool pool(std::move(state.peer), state.sends_first_half);
  for (Segment& s : state.segments) {
    const std::string where = absl::StrCat("segment '", s.name, "' of the authentication pool with ", pool.peer_);
    if (s.words.size() < 2 || s.first_half == 0 || s.first_half >= s.words.size()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", s.words.size(), " words split at ", s.first_half));
    }
    const auto [mine_begin, mine_end] = pool.Half(s, pool.sends_first_half_);
    const auto [theirs_begin, theirs_end] = pool.Half(s, !pool.sends_first_half_);
    if (s.next_sent > mine_end - mine_begin || s.next_received > theirs_end - theirs_begin) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": used up to ", s.next_sent, " / ", s.next_received,
                                                     " past its halves of ", mine_end - mine_begin, " / ",
                                                     theirs_end - theirs_begin, " words"));
    }
    if (!pool.by_name_.emplace(s.name, pool.segments_.size()).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": the name appears twice"));
    }
    pool.segments_.push_back(std::move(s));
  }
  pool.consumed_words_ = state.consumed_words;
  pool.refilled_bits_ = state.refilled_bits;
  return pool;
}

uint64_t AuthenticationKeyPool::bits_available_for_sending() const {
  uint64_t words = 0;
  for (const Segment& s : segments_) {
    const auto [begin, end] = Half(s, sends_first_half_);
    words += end - begin - s.next_sent;
  }
  return words * kAuthenticationWordBits;
}

uint64_t AuthenticationKeyPool::bits_available_for_receiving() const {
  uint64_t words = 0;
  for (const Segment& s : segments_) {
    const auto [begin, end] = Half(s, !sends_first_half_);
    words += end - begin - s.next_received;
  }
  return words * kAuthenticationWordBits;
}

}  // namespace qnet::qkd
