#include "keydist/authentication.h"

#include "absl/strings/str_cat.h"
#include "core/rng.h"
#include "qnet/v1/authentication_pool_messages.pb.h"

namespace qnet::keydist {

std::string EncodeAuthenticationPool(const std::string& self, const qkd::AuthenticationKeyPool& pool) {
  const qkd::AuthenticationKeyPool::State state = pool.state();
  v1::AuthenticationPoolState out;
  out.set_self(self);
  out.set_peer(state.peer);
  out.set_sends_first_half(state.sends_first_half);
  out.set_consumed_words(state.consumed_words);
  out.set_refilled_bits(state.refilled_bits);
  for (const qkd::AuthenticationKeyPool::Segment& s : state.segments) {
    v1::AuthenticationPoolState::Segment* segment = out.add_segments();
    segment->set_name(s.name);
    segment->mutable_words()->Add(s.words.begin(), s.words.end());
    segment->set_first_half(s.first_half);
    segment->set_next_sent(s.next_sent);
    segment->set_next_received(s.next_received);
  }
  return out.SerializeAsString();
}

absl::StatusOr<qkd::AuthenticationKeyPool> DecodeAuthenticationPool(const std::string& self,
                                                                    const std::string& record) {
  v1::AuthenticationPoolState in;
  if (!in.ParseFromString(record)) {
    return absl::InvalidArgumentError("a saved authentication pool does not parse (a corrupted store?)");
  }
  if (in.self() != self) {
    return absl::DataLossError(absl::StrCat("the authentication pool saved for ", in.peer(), " is node '", in.self(),
                                            "''s, not '", self, "''s (a store copied from another node?)"));
  }
  qkd::AuthenticationKeyPool::State state{.peer = in.peer(),
                                          .sends_first_half = in.sends_first_half(),
                                          .segments = {},
                                          .consumed_words = in.consumed_words(),
                                          .refilled_bits = in.refilled_bits()};
  for (const v1::AuthenticationPoolState::Segment& s : in.segments()) {
    state.segments.push_back({.name = s.name(),
                              .words = {s.words().begin(), s.words().end()},
                              .first_half = static_cast<size_t>(s.first_half()),
                              .next_sent = s.next_sent(),
                              .next_received = s.next_received()});
  }
  return qkd::AuthenticationKeyPool::FromState(std::move(state));
}

AuthenticationPools::AuthenticationPools(std::string self, uint64_t network_secret, uint64_t bootstrap_bits,
                                         std::shared_ptr<AuthenticationPoolStore> store)
    : self_(std::move(self)),
      network_secret_(network_secret),
      bootstrap_bits_(bootstrap_bits),
      store_(std::move(store)) {}

qkd::BitString AuthenticationPools::BootstrapBits(uint64_t network_secret, const std::string& a,
                                                  const std::string& b, uint64_t bits) {
  Rng rng = Rng(network_secret).Fork(a < b ? absl::StrCat("auth-bootstrap|", a, "|", b)
                                           : absl::StrCat("auth-bootstrap|", b, "|", a));
  return qkd::BitString::Random(bits, rng);
}

absl::StatusOr<qkd::AuthenticationKeyPool*> AuthenticationPools::Pool(const std::string& peer) {
  auto it = pools_.find(peer);
  if (it != pools_.end()) return &it->second;
  if (store_ != nullptr) {
    absl::StatusOr<std::optional<std::string>> record = store_->Load(peer);
    if (!record.ok()) {
      return absl::Status(record.status().code(), absl::StrCat("loading the authentication pool shared with ", peer,
                                                               ": ", record.status().message()));
    }
    if (record->has_value()) {
      absl::StatusOr<qkd::AuthenticationKeyPool> pool = DecodeAuthenticationPool(self_, **record);
      if (!pool.ok()) return pool.status();
      if (pool->peer() != peer || pool->sends_first_half() != (self_ < peer)) {
        return absl::DataLossError(absl::StrCat("the authentication pool saved for ", peer, " belongs to ",
                                                pool->peer(), " (a store copied from another node?)"));
      }
      return &pools_.emplace(peer, *std::move(pool)).first->second;
    }
  }
  // The end whose name sorts first sends with the first half of each segment.
  it = pools_.emplace(peer, qkd::AuthenticationKeyPool(peer, self_ < peer)).first;
  // Cannot fail: a new pool, and at least two words (checked by the caller's options).
  (void)it->second.Refill("bootstrap", BootstrapBits(network_secret_, self_, peer, bootstrap_bits_));
  if (absl::Status saved = Save(it->second); !saved.ok()) {
    pools_.erase(it);  // tried again (and saved) on the next use
    return saved;
  }
  return &it->second;
}

absl::Status AuthenticationPools::Save(const qkd::AuthenticationKeyPool& pool) {
  if (store_ == nullptr) return absl::OkStatus();
  absl::Status saved = store_->Save(pool.peer(), EncodeAuthenticationPool(self_, pool));
  if (saved.ok()) return saved;
  return absl::Status(saved.code(), absl::StrCat("saving the authentication pool shared with ", pool.peer(), ": ",
                                                 saved.message()));
}

absl::StatusOr<qkd::AuthenticationKeyPool::Taken> AuthenticationPools::TakeForSending(const std::string& peer,
                                                                                      size_t words) {
  absl::StatusOr<qkd::AuthenticationKeyPool*> pool = Pool(peer);
  if (!pool.ok()) return pool.status();
  absl::StatusOr<qkd::AuthenticationKeyPool::Taken> taken = (*pool)->TakeForSending(words);
  if (!taken.ok()) return taken;
  if (absl::Status saved = Save(**pool); !saved.ok()) return saved;
  return taken;
}

absl::StatusOr<std::vector<uint64_t>> AuthenticationPools::TakeForReceiving(const std::string& peer,
                                                                           const qkd::PoolPosition& position,
                                                                           size_t words) {
  absl::StatusOr<qkd::AuthenticationKeyPool*> pool = Pool(peer);
  if (!pool.ok()) return pool.status();
  absl::StatusOr<std::vector<uint64_t>> taken = (*pool)->TakeForReceiving(position, words);
  if (!taken.ok()) return taken;
  if (absl::Status saved = Save(**pool); !saved.ok()) return saved;
  return taken;
}

absl::Status AuthenticationPools::Refill(const std::string& peer, const std::string& segment,
                                         const qkd::BitString& bits) {
  absl::StatusOr<qkd::AuthenticationKeyPool*> pool = Pool(peer);
  if (!pool.ok()) return pool.status();
  if (absl::Status refilled = (*pool)->Refill(segment, bits); !refilled.ok()) return refilled;
  return Save(**pool);
}

absl::StatusOr<const qkd::AuthenticationKeyPool*> AuthenticationPools::With(const std::string& peer) {
  absl::StatusOr<qkd::AuthenticationKeyPool*> pool = Pool(peer);
  if (!pool.ok()) return pool.status();
  return *pool;
}

}  // namespace qnet::keydist
