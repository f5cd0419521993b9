#include "qkd/sifting.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "qkd/wire_size.h"

namespace qnet::qkd {

std::string_view BasisName(Basis basis) { return basis == Basis::kX ? "X" : "Z"; }

size_t BasisAnnouncement::WireBytes() const {
  size_t bytes = VarintBytes(pair_ids.size());
  uint64_t previous = 0;
  for (uint64_t id : pair_ids) {
    bytes += VarintBytes(id - previous);
    previous = id;
  }
  return bytes + PackedBitsBytes(x_basis.size());
}

Sifting::Sifting(std::vector<Detection> own) : own_(std::move(own)) {
  announcement_.pair_ids.reserve(own_.size());
  announcement_.x_basis = BitString(own_.size());
  for (size_t i = 0; i < own_.size(); ++i) {
    announcement_.pair_ids.push_back(own_[i].pair_id);
    if (own_[i].basis == Basis::kX) announcement_.x_basis.Set(i, true);
  }
}

absl::StatusOr<Sifting> Sifting::Create(std::vector<Detection> own) {
  std::sort(own.begin(), own.end(), [](const Detection& a, const Detection& b) { return a.pair_id < b.pair_id; });
  for (size_t i = 1; i < own.size(); ++i) {
    if (own[i].pair_id == own[i - 1].pair_id) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "sifting: pair id %d appears twice in this end's detections; each pair is measured once", own[i].pair_id));
    }
  }
  return Sifting(std::move(own));
}

absl::StatusOr<SiftedKey> Sifting::Sift(const BasisAnnouncement& peer) const {
  if (peer.x_basis.size() != peer.pair_ids.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "sifting: the peer's basis announcement lists %d pair ids but %d bases", peer.pair_ids.size(),
        peer.x_basis.size()));
  }
  for (size_t i = 1; i < peer.pair_ids.size(); ++i) {
    if (peer.pair_ids[i] <= peer.pair_ids[i - 1]) {
      return absl::InvalidArgumentError(
          absl::StrFormat("sifting: the peer's pair ids are not strictly increasing at index %d (%d after %d)", i,
                          peer.pair_ids[i], peer.pair_ids[i - 1]));
    }
  }
  SiftedKey key;
  key.raw_detections = own_.size();
  // Merge the two sorted id lists.
  size_t i = 0, j = 0;
  while (i < own_.size() && j < peer.pair_ids.size()) {
    if (own_[i].pair_id < peer.pair_ids[j]) {
      ++i;
    } else if (own_[i].pair_id > peer.pair_ids[j]) {
      ++j;
    } else {
      ++key.common_detections;
      const bool x = own_[i].basis == Basis::kX;
      if (x == peer.x_basis.Get(j)) {
        key.bits.PushBack(own_[i].outcome);
        key.x_basis.PushBack(x);
        key.pair_ids.push_back(own_[i].pair_id);
        key.intensity.push_back(own_[i].intensity);
      }
      ++i;
      ++j;
    }
  }
  return key;
}

}  // namespace qnet::qkd
