#include "keydist/key_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace qnet::keydist {

void MemoryKeyStore::Put(StoredKey key) {
  if (key.key_id.empty() || keys_.contains(key.key_id)) return;
  order_.push_back(key.key_id);
  std::string id = key.key_id;
  keys_.emplace(std::move(id), std::move(key));
  while (order_.size() > capacity_) {
    keys_.erase(order_.front());
    order_.pop_front();
  }
}

absl::StatusOr<StoredKey> MemoryKeyStore::Find(const std::string& key_id) const {
  auto it = keys_.find(key_id);
  if (it == keys_.end()) {
    return absl::NotFoundError(
        absl::StrCat("no key '", key_id, "' here (keys are kept for the last ", capacity_, " sessions of this node)"));
  }
  return it->second;
}

absl::StatusOr<StoredKey> MemoryKeyStore::Take(const std::string& key_id) {
  absl::StatusOr<StoredKey> key = Find(key_id);
  if (!key.ok()) return key;
  keys_.erase(key_id);
  order_.erase(std::find(order_.begin(), order_.end(), key_id));
  return key;
}

std::string KeyHex(const qkd::BitString& key) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve((key.size() + 3) / 4);
  for (size_t i = 0; i < key.size(); i += 4) {
    int nibble = 0;
    for (size_t b = 0; b < 4; ++b) nibble = (nibble << 1) | (i + b < key.size() && key.Get(i + b) ? 1 : 0);
    hex.push_back(kDigits[nibble]);
  }
  return hex;
}

}  // namespace qnet::keydist
