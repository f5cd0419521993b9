// The authentication key pools of one node: for every other node it runs
// sessions with, a qkd::AuthenticationKeyPool (qkd/wegman_carter.h) that
// authenticates the two ends' session messages end to end, so repeaters
// and relays on the path can forward them but not forge or alter them.
//
// Bootstrap ("pre-shared secret") assumption: Wegman-Carter authentication
// needs some secret shared before the first key exists. Here each pair's
// first segment ("bootstrap") is drawn from a seeded generator keyed by a
// network-wide secret and the two node names (sorted), so both ends derive
// the same bits and no other pair's. The node stack takes the network-wide
// secret from the network file (its name and seed) - which every node holds,
// so in this simulator it stands in for a secret installed out of band; it
// is not secret from anyone who reads the file. A real deployment installs
// each pair's initial pool out of band (a courier, a trusted set-up). After
// that every session refills its pair's pool from the key it makes
// (KeyDistribution takes exactly the bits its messages used off the front
// of the key), so the pool never shrinks while sessions succeed.
//
// Restarts. With an AuthenticationPoolStore (qnetd with a key store: the
// KME vault) each pool is saved after every change - before a tagged
// message leaves and before a received one is believed - and loaded, not
// bootstrapped, when the node starts again, so a node that restarts alone
// goes on where it stopped. Without a store the pools live in memory: a
// restarted node derives the bootstrap again and its peers refuse the pad
// words it reuses (a pool never accepts a word twice), so authentication
// with it fails until both ends start afresh - a pad is never silently
// reused.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "qkd/wegman_carter.h"

namespace qnet::keydist {

// Bits of each pair's bootstrap segment: room for a few dozen sessions'
// messages (~100 words each) in flight before any refill.
inline constexpr uint64_t kDefaultAuthenticationBootstrapBits = 1 << 16;

// Durable storage of a node's pools, one opaque record per peer.
class AuthenticationPoolStore {
 public:
  virtual ~AuthenticationPoolStore() = default;
  // The record saved for `peer`, nullopt if none was.
  virtual absl::StatusOr<std::optional<std::string>> Load(const std::string& peer) = 0;
  // Replaces the record for `peer`; returns once it is durable.
  virtual absl::Status Save(const std::string& peer, const std::string& record) = 0;
};

// The record of `self`'s pool (the proto qnet.v1.AuthenticationPoolState)
// and back; InvalidArgument for bytes that are not a pool's, DataLoss for
// another node's pool.
std::string EncodeAuthenticationPool(const std::string& self, const qkd::AuthenticationKeyPool& pool);
absl::StatusOr<qkd::AuthenticationKeyPool> DecodeAuthenticationPool(const std::string& self,
                                                                    const std::string& record);

class AuthenticationPools {
 public:
  // `store` may be null (pools in memory only).
  AuthenticationPools(std::string self, uint64_t network_secret,
                      uint64_t bootstrap_bits = kDefaultAuthenticationBootstrapBits,
                      std::shared_ptr<AuthenticationPoolStore> store = nullptr);

  // The pool operations (qkd::AuthenticationKeyPool) on the pool shared with
  // `peer`: loaded from the store or bootstrapped on first use, saved after
  // the change. A save that fails fails the call (the change stays made in
  // memory: words taken are never handed out again either way).
  absl::StatusOr<qkd::AuthenticationKeyPool::Taken> TakeForSending(const std::string& peer, size_t words);
  absl::StatusOr<std::vector<uint64_t>> TakeForReceiving(const std::string& peer, const qkd::PoolPosition& position,
                                                         size_t words);
  absl::Status Refill(const std::string& peer, const std::string& segment, const qkd::BitString& bits);

  // The pool shared with `peer` (loaded or bootstrapped on first use), for
  // reading its figures.
  absl::StatusOr<const qkd::AuthenticationKeyPool*> With(const std::string& peer);

  // The bootstrap bits of the pair {a, b} (either order gives the same).
  static qkd::BitString BootstrapBits(uint64_t network_secret, const std::string& a, const std::string& b,
                                      uint64_t bits);

  const std::string& self() const { return self_; }

 private:
  absl::StatusOr<qkd::AuthenticationKeyPool*> Pool(const std::string& peer);
  absl::Status Save(const qkd::AuthenticationKeyPool& pool);

  std::string self_;
  uint64_t network_secret_;
  uint64_t bootstrap_bits_;
  std::shared_ptr<AuthenticationPoolStore> store_;
  std::map<std::string, qkd::AuthenticationKeyPool> pools_;
};

}  // namespace qnet::keydist
