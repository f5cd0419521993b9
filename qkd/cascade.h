// Error correction by Cascade, the third step of QKD post-processing: Bob
// corrects his key to Alice's by asking her for the parities of blocks of bits
// and binary-searching the blocks whose parities differ. Alice answers
// questions and never learns Bob's bits; every parity she sends is a bit
// disclosed to an eavesdropper, counted in disclosed_bits() (the leak that
// privacy amplification removes). Bob's requests only reveal where errors
// are (which half he asks about next), which says nothing about the key's
// value when errors are independent of it; as in the literature they are not
// counted.
//
// Variant: the original protocol of Brassard and Salvail (EUROCRYPT '93,
// LNCS 765, 410), with the parameters analysed as "original" by
// Martinez-Mateo, Pacher, Peev, Ciurana and Martin, "Demystifying the
// information reconciliation protocol Cascade", QIC 15, 453 (2015):
//  - 4 passes; pass i shuffles the key with its own public permutation
//    (seeded by Bob's announced shuffle seed) and cuts it into blocks of
//    k_1 = ceil(0.73 / QBER) bits, k_i = 2 k_(i-1) (capped at half the key,
//    so every pass has at least two blocks);
//  - our one addition, for short keys with few errors: when the last pass's
//    block reaches that cap, `extra_passes_at_cap` more passes at the cap
//    follow. Such keys hold only a handful of errors, and with 4 passes a
//    pair of them sharing a block in every pass is common (~7% of 1150-bit
//    keys at QBER 0.5% kept an error); 4 more fresh shuffles cut that to
//    ~0.5% for a few parity bits. Keys of 10^4 bits at >= 1% never reach
//    the cap: the original schedule.
//  - a block whose parity differs is bisected by BINARY (Alice's parity of
//    the left half is asked, the right half's is deduced) down to one bit,
//    which Bob flips;
//  - the cascade effect (back-tracking): a flip changes the parity of the
//    block holding that bit in every earlier pass, turning an even block odd;
//    those blocks are searched in turn, always the smallest (earliest pass)
//    first, until no block of any pass processed so far is odd;
//  - parities Alice already disclosed or that follow from disclosed ones
//    (the right half of a bisected block) are remembered and never asked
//    again.
// Rounds: the blocks of one pass are disjoint, so all searches in that pass
// advance together, one parity per search per round trip; a round is one
// CascadeParityRequest and its CascadeParityReply.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "qkd/bit_string.h"

namespace qnet::qkd {

struct CascadeOptions {
  int passes = 4;
  double first_block_factor = 0.73;  // k_1 = ceil(factor / QBER)
  int extra_passes_at_cap = 4;        // see above; 0 = the original protocol
};

// The largest pass count a request may name; 4 is the usual.
inline constexpr int kMaxCascadePasses = 16;

// The public permutation of pass `pass` (0-based) over `key_bits` positions:
// element j is the key position at index j of the shuffled key.
std::vector<uint32_t> CascadeShuffle(uint64_t shuffle_seed, int pass, size_t key_bits);

// Bits [begin, end) of pass `pass`'s shuffled key.
struct CascadeRange {
  uint8_t pass = 0;
  uint32_t begin = 0;
  uint32_t end = 0;
};

// Message, Bob -> Alice: "send me your parities of these ranges".
struct CascadeParityRequest {
  uint64_t shuffle_seed = 0;  // the same in every request of one reconciliation
  uint64_t key_bits = 0;      // Bob's key length, checked by Alice
  std::vector<CascadeRange> ranges;
  size_t WireBytes() const;  // 8 + 8 + 4, then 1 + 4 + 4 per range
};

// Message, Alice -> Bob: her parities of the requested ranges, in order.
struct CascadeParityReply {
  BitString parities;
  size_t WireBytes() const;  // 4 + packed bits
};

class CascadeAlice {
 public:
  explicit CascadeAlice(BitString key);

  // Alice's parities; fails on a malformed request (unknown pass, range out
  // of the key, a key length or seed different from the first request's).
  absl::StatusOr<CascadeParityReply> Answer(const CascadeParityRequest& request);

  uint64_t disclosed_bits() const { return disclosed_bits_; }
  uint64_t requests() const { return requests_; }

 private:
  BitString key_;
  std::optional<uint64_t> shuffle_seed_;
  std::vector<BitString> shuffled_;  // per pass, built on first use
  uint64_t disclosed_bits_ = 0;
  uint64_t requests_ = 0;
};

struct CascadeStats {
  uint64_t key_bits = 0;
  uint64_t disclosed_bits = 0;   // parities Alice sent: the leak
  uint64_t requests = 0;         // round trips
  uint64_t bytes_sent = 0;       // Bob's requests
  uint64_t bytes_received = 0;   // Alice's replies
  uint64_t corrected_bits = 0;   // bits Bob flipped
  std::vector<uint32_t> block_sizes;  // per pass
};

class CascadeBob {
 public:
  // `qber_estimate` (from parameter estimation) sets the block sizes; 0 means
  // "no errors expected" (blocks of half the key).
  static absl::StatusOr<CascadeBob> Create(BitString key, double qber_estimate, uint64_t shuffle_seed,
                                           CascadeOptions options = {});

  // The first request (nullopt for an empty key: nothing to reconcile).
  absl::StatusOr<std::optional<CascadeParityRequest>> Start();
  // Applies Alice's reply; returns the next request, or nullopt when Bob's
  // key is reconciled. Fails on a reply of the wrong size.
  absl::StatusOr<std::optional<CascadeParityRequest>> OnReply(const CascadeParityReply& reply);

  bool done() const { return done_; }
  const BitString& key() const { return key_; }
  const CascadeStats& stats() const { return stats_; }

 private:
  // Set when Alice's parities contradict each other (only a tampered or
  // buggy reply does that): the cascade effect would flip bits forever.
  bool inconsistent_ = false;
  struct Pass {
    uint32_t block_size = 0;
    uint32_t blocks = 0;
    std::vector<uint32_t> order;  // shuffled index -> key position
    std::vector<uint32_t> where;  // key position -> shuffled index
    BitString shuffled;           // Bob's current bits in shuffled order
    BitString alice_parity;       // per block, once known
    BitString mismatched;         // per block: Bob's parity differs from Alice's
    std::set<uint32_t> odd;       // the mismatched blocks
  };
  // A BINARY bisection in progress: Alice's parity of [begin, end) is known
  // and differs from Bob's.
  struct Search {
    uint32_t begin = 0;
    uint32_t end = 0;
    bool alice_parity = false;
  };

  CascadeBob(BitString key, std::vector<uint32_t> block_sizes, uint64_t shuffle_seed);
  std::optional<CascadeParityRequest> Advance();
  CascadeParityRequest MakeRequest(std::vector<CascadeRange> ranges);
  void FlipKeyBit(uint32_t position);
  static uint64_t CacheKey(size_t pass, uint32_t begin, uint32_t end) {
    return (uint64_t{pass} << 60) | (uint64_t{begin} << 30) | end;
  }

  BitString key_;
  std::vector<uint32_t> block_sizes_;
  uint64_t shuffle_seed_;
  std::vector<Pass> passes_;  // passes whose block parities are known
  std::optional<Pass> pending_pass_;  // a pass whose block parities were asked
  size_t search_pass_ = 0;
  std::vector<Search> searches_;
  std::vector<size_t> waiting_;  // searches whose left-half parity was asked, in request order
  absl::flat_hash_map<uint64_t, bool> known_parity_;  // Alice's parities of sub-blocks
  CascadeStats stats_;
  bool started_ = false;
  bool done_ = false;
};

}  // namespace qnet::qkd
