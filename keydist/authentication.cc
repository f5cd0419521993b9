#include "keydist/authentication.h"

#include "absl/strings/str_cat.h"
#include "core/rng.h"

namespace qnet::keydist {

AuthenticationPools::AuthenticationPools(std::string self, uint64_t network_secret, uint64_t bootstrap_bits)
    : self_(std::move(self)), network_secret_(network_secret), bootstrap_bits_(bootstrap_bits) {}

qkd::BitString AuthenticationPools::BootstrapBits(uint64_t network_secret, const std::string& a,
                                                  const std::string& b, uint64_t bits) {
  Rng rng = Rng(network_secret).Fork(a < b ? absl::StrCat("auth-bootstrap|", a, "|", b)
                                           : absl::StrCat("auth-bootstrap|", b, "|", a));
  return qkd::BitString::Random(bits, rng);
}

qkd::AuthenticationKeyPool& AuthenticationPools::With(const std::string& peer) {
  auto it = pools_.find(peer);
  if (it != pools_.end()) return it->second;
  // The end whose name sorts first sends with the first half of each segment.
  it = pools_.emplace(peer, qkd::AuthenticationKeyPool(peer, self_ < peer)).first;
  // Cannot fail: a new pool, and at least two words (checked by the caller's options).
  (void)it->second.Refill("bootstrap", BootstrapBits(network_secret_, self_, peer, bootstrap_bits_));
  return it->second;
}

}  // namespace qnet::keydist
