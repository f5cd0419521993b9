// A bounded memory of values keyed by ids from a dense, increasing counter
// (generation ids, request numbers): the physical and link layers' memory of
// ended generations and requests and of delivered pairs, which only late or
// reordered messages consult.
//
// An id lives in slot `id mod capacity`, so the latest ids sit side by side:
// an insertion touches memory the previous one just touched. The FIFO hash
// maps this replaces paid a cache miss per insertion to find and erase their
// oldest key, about 14% of a long simulation's time (BENCHMARKS.md, issue 19).
// An id is forgotten when a later id with the same residue takes its slot:
// for a dense counter, once `max_capacity` newer ids have been inserted. An
// id older than the one holding its slot (by less than 2^32: ids of another
// incarnation, which differ in their high bits, replace freely) is not
// remembered, so one late insertion never evicts a newer id. The table
// starts small and doubles (up to `max_capacity`) when two ids it holds
// would share a slot, so a quiet link costs a few slots, not thousands.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace qnet {

template <typename V>
class RecentIdMap {
 public:
  // `max_capacity` is rounded up to a power of two.
  explicit RecentIdMap(size_t max_capacity) : max_capacity_(std::bit_ceil(std::max<size_t>(max_capacity, 1))) {}

  // Inserts unless `id` is present or, at full size, a newer id holds its
  // slot; returns whether it did. At full size the id takes the slot of an
  // older one with the same residue.
  bool Insert(uint64_t id, V value) {
    if (slots_.empty()) slots_.resize(std::min<size_t>(kInitialCapacity, max_capacity_));
    Slot* s = &SlotOf(id);
    if (s->used) {
      if (s->id == id) return false;
      if (slots_.size() < max_capacity_) {
        Grow(id);
        s = &SlotOf(id);
      } else if (s->id > id && s->id - id < kSameEpoch) {
        return false;  // too old to remember
      }
    }
    if (!s->used) ++size_;
    s->id = id;
    s->used = true;
    s->value = std::move(value);
    return true;
  }
  V* Find(uint64_t id) {
    if (slots_.empty()) return nullptr;
    Slot& s = SlotOf(id);
    return s.used && s.id == id ? &s.value : nullptr;
  }
  bool contains(uint64_t id) const {
    if (slots_.empty()) return false;
    const Slot& s = slots_[id & (slots_.size() - 1)];
    return s.used && s.id == id;
  }
  void Erase(uint64_t id) {
    if (slots_.empty()) return;
    Slot& s = SlotOf(id);
    if (!s.used || s.id != id) return;
    s.used = false;
    s.value = V{};  // release what the value holds now
    --size_;
  }
  void Clear() {
    slots_.clear();
    size_ = 0;
  }
  size_t size() const { return size_; }
  size_t capacity() const { return slots_.size(); }

 private:
  static constexpr size_t kInitialCapacity = 16;
  // Ids closer than this are of one counter's run (see the top comment).
  static constexpr uint64_t kSameEpoch = uint64_t{1} << 32;
  struct Slot {
    uint64_t id = 0;
    bool used = false;
    V value{};
  };
  Slot& SlotOf(uint64_t id) { return slots_[id & (slots_.size() - 1)]; }

  // Doubles until `id` has a slot to itself or the table is full size. Held
  // ids differ modulo the old capacity, so they differ modulo any multiple:
  // moving them never collides.
  void Grow(uint64_t id) {
    size_t capacity = slots_.size();
    do {
      capacity *= 2;
    } while (capacity < max_capacity_ && Collides(id, capacity));
    std::vector<Slot> larger(capacity);
    for (Slot& s : slots_) {
      if (s.used) larger[s.id & (capacity - 1)] = std::move(s);
    }
    slots_ = std::move(larger);
  }
  bool Collides(uint64_t id, size_t capacity) const {
    for (const Slot& s : slots_) {
      if (s.used && s.id != id && (s.id & (capacity - 1)) == (id & (capacity - 1))) return true;
    }
    return false;
  }

  size_t max_capacity_;
  size_t size_ = 0;
  std::vector<Slot> slots_;
};

}  // namespace qnet
