// Information-theoretically secure message authentication for QKD's classical
// channel: a Wegman-Carter MAC (M. N. Wegman and J. L. Carter, "New hash
// functions and their use in authentication and set equality", JCSS 22, 1981)
// and the pool of pre-shared secret bits its keys and one-time pads come from.
// Post-processing messages cross untrusted repeaters; with this MAC a node on
// the path can neither forge nor modify one without detection, whatever its
// computing power.
//
// The MAC: the message, cut into 64-bit little-endian words m_1..m_(L-1)
// (the last zero-padded) followed by a word holding its length in bytes,
// hashes to h_k(m) = m_1 k^L + m_2 k^(L-1) + ... + m_L k over GF(2^64)
// (x^64 + x^4 + x^3 + x + 1, qkd/gf2.h), k the secret hash key; the tag is
// h_k(m) XOR p, p a fresh one-time pad. The length word makes messages of
// different lengths differ in the polynomial, so for any two different
// messages of at most L words h_k(m) - h_k(m') is a nonzero polynomial in k
// of degree <= L, equal to any given value for at most L of the 2^64 keys:
// the family is L/2^64-almost-XOR-universal. With the tag padded, an
// adversary who saw any number of (message, tag) pairs under one k - each
// with its own pad - forges a new message (or alters one) with probability at
// most L / 2^64 per attempt (WegmanCarterMac::ForgeryProbability); it learns
// nothing about k from tags. A pad is never used twice (the pool hands each
// word out once and refuses a word it has handed out), which is what the
// bound needs.
//
// The pool (AuthenticationKeyPool): the secret bits one pair of nodes shares
// for authentication, held at one end, in segments each named by where its
// bits came from (a bootstrap pre-shared secret, then the keys the pair's
// sessions make). Each segment is split in two halves, one per direction:
// the end whose name sorts first sends with words of the first half, the
// other with words of the second, so the ends never take the same word for
// two messages however their sessions interleave. A sent message names the
// word it used (segment, index); the receiver takes exactly that word and
// refuses one it has taken already, or one below a word it has taken (a
// replayed or reordered message), so no pad word is ever used twice at
// either end. Words skipped that way are burned (counted as consumed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "qkd/bit_string.h"

namespace qnet::qkd {

// The tag and each pool word (hash key or pad) are 64 bits.
inline constexpr uint64_t kAuthenticationWordBits = 64;

class WegmanCarterMac {
 public:
  // L for a message of `bytes` bytes: ceil(bytes / 8) words plus the length word.
  static uint64_t Blocks(size_t bytes);
  // h_k(message), the polynomial hash described above.
  static uint64_t Hash(uint64_t hash_key, std::string_view message);
  // h_k(message) XOR pad.
  static uint64_t Tag(uint64_t hash_key, uint64_t pad, std::string_view message);
  static bool Verify(uint64_t hash_key, uint64_t pad, std::string_view message, uint64_t tag);
  // The bound on forging or altering a message of `bytes` bytes: L / 2^64.
  static double ForgeryProbability(size_t bytes);
};

// The same polynomial hash over a sequence of messages, fed one at a time
// (delayed authentication: one tag covers every message a side sent since
// its previous tag). Each message is framed as a word holding its length in
// bytes followed by its words (the last zero-padded); Close() appends a word
// holding the number of words fed, so the framing is injective and the
// whole is the MAC's hash of one long message: two different sequences of
// at most L words collide for at most L of the 2^64 keys. Close() returns
// h XOR pad and starts a new transcript.
class WegmanCarterTranscript {
 public:
  void Append(uint64_t hash_key, std::string_view message);
  uint64_t Close(uint64_t hash_key, uint64_t pad);
  // Messages and words fed since the last Close().
  uint64_t messages() const { return messages_; }
  uint64_t words() const { return words_; }

 private:
  void Absorb(uint64_t hash_key, uint64_t word);
  uint64_t h_ = 0;
  uint64_t messages_ = 0;
  uint64_t words_ = 0;
};

// Where a word of a pool lies: the segment and the word's index in the
// sending end's half of it.
struct PoolPosition {
  std::string segment;
  uint64_t index = 0;
  bool operator==(const PoolPosition&) const = default;
};

class AuthenticationKeyPool {
 public:
  // `peer` names the other end in errors. `sends_first_half`: the two ends
  // of a pair pass opposite values (by convention, true at the end whose
  // name sorts first).
  AuthenticationKeyPool(std::string peer, bool sends_first_half);

  // Adds `bits` as segment `segment` (both ends must add the same bits
  // under the same name). Bits past a whole number of words are dropped.
  // AlreadyExists for a name the pool holds (a segment is never filled
  // twice; names of segments dropped when spent are not remembered, which
  // is safe as long as names do not repeat: the caller uses session key ids),
  // InvalidArgument for fewer than 2 words (each half needs one).
  absl::Status Refill(const std::string& segment, const BitString& bits);

  // Takes the next `words` unused consecutive words of this end's half of
  // the oldest segment that has them, never to be handed out again.
  // ResourceExhausted, saying how much is left, when no segment has them.
  struct Taken {
    PoolPosition position;        // of the first word
    std::vector<uint64_t> words;  // `words` of them
  };
  absl::StatusOr<Taken> TakeForSending(size_t words);
  // Takes the peer's `words` words from `position` on (as the peer's
  // TakeForSending named them). NotFound for an unknown segment,
  // OutOfRange past the segment's half, PermissionDenied for a word taken
  // before or lying below one taken before (no pad is ever used twice).
  // Words below `position` not yet taken are burned.
  absl::StatusOr<std::vector<uint64_t>> TakeForReceiving(const PoolPosition& position, size_t words);

  const std::string& peer() const { return peer_; }
  bool sends_first_half() const { return sends_first_half_; }
  // Words handed out or burned, both directions, times 64.
  uint64_t bits_consumed() const { return consumed_words_ * kAuthenticationWordBits; }
  // Bits this end can still send with / still receive with.
  uint64_t bits_available_for_sending() const;
  uint64_t bits_available_for_receiving() const;
  uint64_t bits_refilled() const { return refilled_bits_; }

  // What a pool holds, for keeping it on disk across restarts (a pool that
  // is rebuilt from its bootstrap instead would hand out used pads again).
  // Used words are zero in `words`, so a state holds no spent pad (older
  // copies in a store's journal may, until it overwrites them).
  struct Segment {
    std::string name;
    std::vector<uint64_t> words;
    size_t first_half = 0;        // words [0, first_half) belong to the first end
    uint64_t next_sent = 0;       // index in this end's half
    uint64_t next_received = 0;   // index in the peer's half
  };
  struct State {
    std::string peer;
    bool sends_first_half = false;
    std::vector<Segment> segments;  // in the order added; spent ones dropped
    uint64_t consumed_words = 0, refilled_bits = 0;
  };
  State state() const;
  // A pool from a saved state; InvalidArgument (naming what is wrong) for a
  // state no pool could have been in (e.g. a corrupted file).
  static absl::StatusOr<AuthenticationKeyPool> FromState(State state);

 private:
  // Drops segments whose two halves are both used up: they can hand out
  // nothing more, and a pool that refills every session would otherwise
  // grow (and be saved) without bound. A word of a dropped segment is then
  // refused as NotFound instead of PermissionDenied.
  void DropSpentSegments();
  // [begin, end) of a half in `words`.
  std::pair<size_t, size_t> Half(const Segment& s, bool first) const;

  std::string peer_;
  bool sends_first_half_;
  std::vector<Segment> segments_;               // in the order added
  absl::flat_hash_map<std::string, size_t> by_name_;  // index in segments_
  uint64_t consumed_words_ = 0;
  uint64_t refilled_bits_ = 0;
};

}  // namespace qnet::qkd
