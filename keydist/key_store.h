// Where a node keeps the keys it shares with other nodes until applications
// fetch them. KeyStore is the interface the node stack fills (every key this
// node ends up sharing, as initiator or responder); MemoryKeyStore is the
// bounded in-memory store the stack uses today (oldest key dropped first).
// The daemon's key manager (daemon/key_manager.h) takes its pools' blocks
// out of it into a durable store (kme/key_vault.h).
#pragma once

#include <cstddef>
#include <deque>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "qkd/bit_string.h"

namespace qnet::keydist {

struct StoredKey {
  std::string key_id;  // the same at both ends
  std::string peer;
  std::string protocol;  // QkdProtocolName
  qkd::BitString bits;
};

class KeyStore {
 public:
  virtual ~KeyStore() = default;
  // Keeps `key` under its id; a key id already held is left as it is.
  virtual void Put(StoredKey key) = 0;
  // NotFound (saying what is kept) for an id not held.
  virtual absl::StatusOr<StoredKey> Find(const std::string& key_id) const = 0;
  // Find, and the key is no longer kept here: the daemon's key manager moves
  // its pools' blocks into its durable store, out of reach of GetKey.
  virtual absl::StatusOr<StoredKey> Take(const std::string& key_id) = 0;
  virtual size_t size() const = 0;
};

class MemoryKeyStore final : public KeyStore {
 public:
  static constexpr size_t kDefaultCapacity = 4096;
  explicit MemoryKeyStore(size_t capacity = kDefaultCapacity) : capacity_(capacity) {}

  void Put(StoredKey key) override;
  absl::StatusOr<StoredKey> Find(const std::string& key_id) const override;
  absl::StatusOr<StoredKey> Take(const std::string& key_id) override;
  size_t size() const override { return keys_.size(); }

 private:
  size_t capacity_;
  absl::flat_hash_map<std::string, StoredKey> keys_;
  std::deque<std::string> order_;  // oldest first
};

// Lower-case hex of the bits, 4 per digit, most significant first within
// each nibble of bit indices (bit 0 is the top bit of the first digit); a
// last partial nibble is padded with zeros.
std::string KeyHex(const qkd::BitString& key);

}  // namespace qnet::keydist
