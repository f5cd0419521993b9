// The discrete-event simulator's clock and event queue: virtual time that
// jumps from one scheduled event to the next. Events at equal times run in
// the order they were scheduled, and nothing here reads a wall clock or an
// unseeded source, so a run is exactly reproducible. Single-threaded: every
// event runs on the caller's thread inside one of the Run*/Step calls.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/time.h"

namespace qnet::sim {

// Non-zero handle of a scheduled event, for Cancel. Never reused in practice
// (a slot would have to be recycled 2^32 times).
using EventId = uint64_t;
inline constexpr EventId kNoEvent = 0;

// Something whose events die with it, e.g. a node's timers when it crashes:
// an event scheduled for an owner runs only while Alive(stamp) holds. (A
// wrapper lambda doing the check cost an allocation per timer.)
class EventOwner {
 public:
  virtual bool Alive(uint64_t stamp) const = 0;

 protected:
  ~EventOwner() = default;
};

class Simulator {
 public:
  explicit Simulator(TimePoint start = TimePoint{});
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  TimePoint Now() const { return now_; }

  // Runs `fn` at `at`; a time in the past means "now" (after the events
  // already queued for now). `fn` may schedule and cancel other events.
  EventId ScheduleAt(TimePoint at, std::function<void()> fn);
  // Runs `fn` after `after` (negative counts as zero).
  EventId ScheduleAfter(Duration after, std::function<void()> fn);
  // As ScheduleAfter; when the event's time comes, `fn` runs only if
  // `owner->Alive(stamp)` (the event counts as run either way). The owner
  // must outlive the event or cancel it.
  EventId ScheduleAfter(Duration after, std::function<void()> fn, const EventOwner* owner, uint64_t stamp);
  // Returns false if the event already ran, was cancelled, or never existed.
  // O(1); the queue entry is dropped lazily.
  bool Cancel(EventId id);

  // The Run*/Step calls are not re-entrant: call them from outside events.
  // Runs the next event, advancing Now() to its time. False if none is queued.
  bool Step();
  // Runs every event at or before `deadline`, then sets Now() to `deadline`
  // (if later). Returns the number of events run.
  uint64_t RunUntil(TimePoint deadline);
  uint64_t RunFor(Duration d) { return RunUntil(now_ + d); }
  // Runs until the queue is empty. Never returns if events keep rescheduling
  // themselves forever; use RunUntil for such systems.
  uint64_t RunUntilIdle();
  // Runs events until `done()` holds (checked before the first event and after
  // each one) or the next event lies beyond `deadline`; in the latter case
  // Now() becomes `deadline`. Returns done().
  bool RunUntil(const std::function<bool()>& done, TimePoint deadline);

  // Makes the innermost running Run*/Step call return after the current event.
  void Stop() { stop_requested_ = true; }

  // Calls `observe` after every `every_events`-th event (0: never), e.g. to
  // publish progress to a reporter thread. It must not schedule events or
  // change the simulation: a run with and without it is the same run.
  void SetObserver(uint64_t every_events, std::function<void(const Simulator&)> observe) {
    observe_every_ = every_events;
    observe_ = std::move(observe);
  }

  // Events scheduled and not yet run or cancelled.
  uint64_t pending() const { return live_events_; }
  uint64_t events_run() const { return events_run_; }
  // Time of the next live event, or TimePoint::max() if none.
  TimePoint NextEventTime();

 private:
  // Heap entry: 24 bytes, ordered by (time, seq). The callback lives in a
  // slot so that heap moves are cheap and cancellation is a generation bump.
  struct Entry {
    int64_t time_ns;
    uint64_t seq;
    uint32_t slot;
    uint32_t generation;
  };
  struct Slot {
    std::function<void()> fn;
    const EventOwner* owner = nullptr;
    uint64_t stamp = 0;
    uint32_t generation = 1;
    bool live = false;
  };
  static bool Earlier(const Entry& x, const Entry& y) {
    return x.time_ns != y.time_ns ? x.time_ns < y.time_ns : x.seq < y.seq;
  }

  bool IsLive(const Entry& e) const {
    const Slot& s = slots_[e.slot];
    return s.live && s.generation == e.generation;
  }
  void ReleaseSlot(uint32_t slot);
  // Pops cancelled entries off the top; true if a live one remains.
  bool SkipDead();
  // Runs the top entry (which must be live).
  void RunTop();
  // Rebuilds the heap without cancelled entries once they dominate it.
  void MaybeCompact();
  // A 4-ary min-heap on (time, seq): half the depth of a binary heap, and
  // the four children share a cache line or two, which matters once millions
  // of events are pending.
  void HeapPush(const Entry& e);
  void HeapPop();
  void SiftDown(size_t i, Entry e);

  TimePoint now_;
  uint64_t next_seq_ = 0;
  uint64_t live_events_ = 0;
  uint64_t events_run_ = 0;
  uint64_t dead_in_heap_ = 0;
  bool stop_requested_ = false;
  uint64_t observe_every_ = 0;
  std::function<void(const Simulator&)> observe_;
  std::vector<Entry> heap_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
};

}  // namespace qnet::sim
