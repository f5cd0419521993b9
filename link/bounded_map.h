// A map that remembers at most a fixed number of insertions, forgetting the
// oldest first: the link layer's memory of reports that came before their
// generation's assignment. (Memories keyed by a dense counter use
// core/recent_id_map.h, which costs no cache miss per insertion.)
#pragma once

#include <cstddef>
#include <deque>
#include <utility>

#include "absl/container/flat_hash_map.h"

namespace qnet::link {

template <typename K, typename V>
class BoundedMap {
 public:
  explicit BoundedMap(size_t capacity) : capacity_(capacity) {}

  // Inserts unless `key` is present; returns whether it did. Past capacity
  // the oldest insertion is forgotten (erased keys still count until then).
  bool Insert(const K& key, V value) {
    if (!map_.try_emplace(key, std::move(value)).second) return false;
    order_.push_back(key);
    if (order_.size() > capacity_) {
      map_.erase(order_.front());
      order_.pop_front();
    }
    return true;
  }
  V* Find(const K& key) {
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second;
  }
  bool contains(const K& key) const { return map_.contains(key); }
  void Erase(const K& key) { map_.erase(key); }
  void Clear() {
    map_.clear();
    order_.clear();
  }

 private:
  size_t capacity_;
  absl::flat_hash_map<K, V> map_;
  std::deque<K> order_;
};

}  // namespace qnet::link
