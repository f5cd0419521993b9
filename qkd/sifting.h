// Sifting, the first step of QKD post-processing: both ends announce the
// basis (Z or X) they measured each pair in, never the outcome, and each keeps
// its outcomes of the pairs both detected and measured in the same basis, in
// increasing pair-id order (so both sifted keys line up bit for bit). The two
// ends are symmetric: each sends its BasisAnnouncement and sifts against the
// other's.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "qkd/bit_string.h"

namespace qnet::qkd {

enum class Basis : uint8_t { kZ = 0, kX = 1 };
std::string_view BasisName(Basis basis);

// One measured pair (or photon) at this end.
struct Detection {
  uint64_t pair_id = 0;  // the same id at both ends
  Basis basis = Basis::kZ;
  bool outcome = false;
  // Decoy-state BB84: the intensity index the sender chose (0 signal, 1
  // decoy, 2 vacuum). Only the sender knows it; the receiver leaves 0.
  uint8_t intensity = 0;
};

// Message: the bases this end measured in, for every pair id it detected.
struct BasisAnnouncement {
  std::vector<uint64_t> pair_ids;  // strictly increasing
  BitString x_basis;               // bit i set: pair_ids[i] was measured in X, else Z
  // Count, varint-coded id gaps, one bit per basis.
  size_t WireBytes() const;
};

// This end's sifted key.
struct SiftedKey {
  BitString bits;                  // outcomes, in increasing pair-id order
  BitString x_basis;               // per bit: measured in X (else Z) at both ends
  std::vector<uint64_t> pair_ids;  // per bit
  std::vector<uint8_t> intensity;  // per bit: this end's Detection::intensity
  uint64_t raw_detections = 0;     // this end's detections
  uint64_t common_detections = 0;  // pair ids detected at both ends
  size_t size() const { return bits.size(); }
  size_t x_bits() const { return x_basis.PopCount(); }
  size_t z_bits() const { return bits.size() - x_bits(); }
};

class Sifting {
 public:
  // Fails on duplicate pair ids (a pair is measured once).
  static absl::StatusOr<Sifting> Create(std::vector<Detection> own);

  // The message to send to the other end.
  const BasisAnnouncement& announcement() const { return announcement_; }
  // Keeps the matching-basis pairs; fails on a malformed announcement.
  absl::StatusOr<SiftedKey> Sift(const BasisAnnouncement& peer) const;

 private:
  explicit Sifting(std::vector<Detection> own);

  std::vector<Detection> own_;  // sorted by pair id
  BasisAnnouncement announcement_;
};

}  // namespace qnet::qkd
