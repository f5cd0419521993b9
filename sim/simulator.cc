#include "sim/simulator.h"

#include <algorithm>
#include <utility>

namespace qnet::sim {
namespace {

constexpr size_t kArity = 4;

EventId MakeEventId(uint32_t slot, uint32_t generation) {
  return (static_cast<uint64_t>(slot) << 32) | generation;
}

}  // namespace

Simulator::Simulator(TimePoint start) : now_(start) {}

EventId Simulator::ScheduleAt(TimePoint at, std::function<void()> fn) {
  if (at < now_) at = now_;
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& s = slots_[slot];
  s.fn = std::move(fn);
  s.live = true;
  HeapPush(Entry{at.time_since_epoch().count(), next_seq_++, slot, s.generation});
  ++live_events_;
  return MakeEventId(slot, s.generation);
}

EventId Simulator::ScheduleAfter(Duration after, std::function<void()> fn) {
  return ScheduleAt(now_ + std::max(after, Duration::zero()), std::move(fn));
}

EventId Simulator::ScheduleAfter(Duration after, std::function<void()> fn, const EventOwner* owner,
                                 uint64_t stamp) {
  const EventId id = ScheduleAfter(after, std::move(fn));
  Slot& s = slots_[id >> 32];
  s.owner = owner;
  s.stamp = stamp;
  return id;
}

bool Simulator::Cancel(EventId id) {
  const uint64_t slot = id >> 32;
  const uint32_t generation = static_cast<uint32_t>(id);
  if (slot >= slots_.size()) return false;
  const Slot& s = slots_[slot];
  if (!s.live || s.generation != generation) return false;
  ReleaseSlot(static_cast<uint32_t>(slot));
  --live_events_;
  ++dead_in_heap_;
  MaybeCompact();
  return true;
}

void Simulator::ReleaseSlot(uint32_t slot) {
  Slot& s = slots_[slot];
  s.fn = nullptr;  // drop captured state now, not when the heap entry surfaces
  s.owner = nullptr;
  s.live = false;
  if (++s.generation == 0) s.generation = 1;  // ids stay non-zero
  free_slots_.push_back(slot);
}

void Simulator::MaybeCompact() {
  // Protocols cancel most of their timeouts; without this the heap would fill
  // with dead entries far in the future. Amortised O(1) per cancellation.
  if (dead_in_heap_ < 64 || dead_in_heap_ * 2 < heap_.size()) return;
  std::erase_if(heap_, [this](const Entry& e) { return !IsLive(e); });
  for (size_t i = heap_.size() / kArity + 1; i-- > 0;) {
    if (i < heap_.size()) SiftDown(i, heap_[i]);
  }
  dead_in_heap_ = 0;
}

void Simulator::HeapPush(const Entry& e) {
  size_t i = heap_.size();
  heap_.push_back(e);
  while (i > 0) {
    const size_t parent = (i - 1) / kArity;
    if (!Earlier(e, heap_[parent])) break;
    heap_[i] = heap_[parent];
    i = parent;
  }
  heap_[i] = e;
}

void Simulator::HeapPop() {
  const Entry last = heap_.back();
  heap_.pop_back();
  if (!heap_.empty()) SiftDown(0, last);
}

void Simulator::SiftDown(size_t i, Entry e) {
  const size_t n = heap_.size();
  for (;;) {
    const size_t first = i * kArity + 1;
    if (first >= n) break;
    const size_t end = std::min(first + kArity, n);
    size_t best = first;
    for (size_t c = first + 1; c < end; ++c) {
      if (Earlier(heap_[c], heap_[best])) best = c;
    }
    if (!Earlier(heap_[best], e)) break;
    heap_[i] = heap_[best];
    i = best;
  }
  heap_[i] = e;
}

bool Simulator::SkipDead() {
  while (!heap_.empty() && !IsLive(heap_.front())) {
    HeapPop();
    --dead_in_heap_;
  }
  return !heap_.empty();
}

void Simulator::RunTop() {
  const Entry e = heap_.front();
  HeapPop();
  std::function<void()> fn = std::move(slots_[e.slot].fn);
  const EventOwner* owner = slots_[e.slot].owner;
  const uint64_t stamp = slots_[e.slot].stamp;
  ReleaseSlot(e.slot);
  --live_events_;
  ++events_run_;
  now_ = TimePoint(Duration(e.time_ns));
  if (owner == nullptr || owner->Alive(stamp)) fn();
  if (observe_every_ != 0 && observe_ && events_run_ % observe_every_ == 0) observe_(*this);
}

TimePoint Simulator::NextEventTime() {
  if (!SkipDead()) return TimePoint::max();
  return TimePoint(Duration(heap_.front().time_ns));
}

bool Simulator::Step() {
  stop_requested_ = false;
  if (!SkipDead()) return false;
  RunTop();
  return true;
}

uint64_t Simulator::RunUntil(TimePoint deadline) {
  stop_requested_ = false;
  const uint64_t before = events_run_;
  const int64_t deadline_ns = deadline.time_since_epoch().count();
  while (!stop_requested_ && SkipDead() && heap_.front().time_ns <= deadline_ns) RunTop();
  if (!stop_requested_ && deadline > now_) now_ = deadline;
  return events_run_ - before;
}

uint64_t Simulator::RunUntilIdle() {
  stop_requested_ = false;
  const uint64_t before = events_run_;
  while (!stop_requested_ && SkipDead()) RunTop();
  return events_run_ - before;
}

bool Simulator::RunUntil(const std::function<bool()>& done, TimePoint deadline) {
  stop_requested_ = false;
  const int64_t deadline_ns = deadline.time_since_epoch().count();
  while (!done()) {
    if (stop_requested_) return false;
    if (!SkipDead() || heap_.front().time_ns > deadline_ns) {
      if (deadline > now_) now_ = deadline;
      return false;
    }
    RunTop();
  }
  return true;
}

}  // namespace qnet::sim
