// The daemon's event loop: one thread running a boost::asio::io_context that
// owns all of a node's protocol state. Other threads (gRPC callbacks, tests)
// never touch that state; they Post work into the loop.
//
// Time scale. The protocol stack's clock reads
//     Now() = (wall-clock time since the epoch) x time_scale,
// where the epoch is the loop's creation or a given Unix time,
// so time_scale is simulated seconds per wall-clock second: with S = 1 the
// stack runs in real time, S = 0.001 is slow motion (1 simulated second takes
// 1000 wall seconds, so microsecond-scale physics becomes visible), S = 10
// runs ten times faster than real time. A timer for simulated duration d
// fires after d / S of wall time.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <type_traits>

#include "absl/container/flat_hash_map.h"
#include "core/node_context.h"
#include "core/time.h"
#include "daemon/asio.h"
#include "daemon/lag_monitor.h"

namespace qnet::daemon {

using WallClock = std::chrono::steady_clock;

// A thread-safe handle for posting into a loop that may already be gone:
// posts after the loop is destroyed are dropped. gRPC-side objects hold one.
class LoopPoster {
 public:
  explicit LoopPoster(boost::asio::io_context* io) : io_(io) {}
  // Returns false if the loop is gone (fn is dropped).
  bool Post(std::function<void()> fn);
  void Detach();

 private:
  std::mutex mu_;
  boost::asio::io_context* io_;
};

// This host's wall clock (CLOCK_REALTIME) as a Unix time in ns: epochs and
// peer messages' send stamps are on it.
int64_t UnixNowNs();

class EventLoop {
 public:
  // time_scale > 0: simulated seconds per wall-clock second. The clock's
  // zero is `epoch_unix_ns` (a Unix time in ns, not in the future) when
  // given, else now: daemons given one epoch share one simulated time line.
  explicit EventLoop(double time_scale, std::optional<int64_t> epoch_unix_ns = std::nullopt);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Starts the loop thread.
  void Start();
  // Stops the loop thread and joins it; work not yet run is dropped.
  // Idempotent; must not be called from the loop thread.
  void Stop();

  // Thread-safe: runs fn on the loop thread (dropped after Stop).
  void Post(std::function<void()> fn) { poster_->Post(std::move(fn)); }
  const std::shared_ptr<LoopPoster>& poster() const { return poster_; }

  // From a thread other than the loop's, while the loop runs: runs fn on the
  // loop and waits for its result. For tests and start-up/shut-down code.
  template <typename F>
  auto Call(F&& fn) -> std::invoke_result_t<F&> {
    using R = std::invoke_result_t<F&>;
    std::packaged_task<R()> task(std::forward<F>(fn));
    auto result = task.get_future();
    if (!poster_->Post([&task] { task(); })) std::abort();  // misuse: the loop was stopped
    return result.get();
  }

  bool InLoopThread() const { return std::this_thread::get_id() == thread_id_; }

  // Thread-safe clock reads.
  double time_scale() const { return time_scale_; }
  TimePoint Now() const { return ToSimulated(WallClock::now() - start_); }
  WallClock::time_point epoch() const { return start_; }  // Now() == 0 here
  // The epoch the clock counts from, as a Unix time in ns: the one given,
  // else (none, or one in this host's future) the loop's creation. Peers
  // compare it (the Hello), so it is the epoch really used.
  int64_t epoch_unix_ns() const { return epoch_unix_ns_; }
  WallClock::time_point created_at() const { return created_; }
  WallClock::duration ToWall(Duration simulated) const;
  TimePoint ToSimulated(WallClock::duration since_start) const;

  // Loop thread only. Timers in simulated time (scaled) or wall time
  // (unscaled: transport keepalives, reconnect backoff). A scaled timer is
  // physics: how late it fires goes to the lag monitor.
  TimerId StartTimer(Duration after, std::function<void()> fire) {
    return AddTimer(ToWall(after), std::move(fire), /*physics=*/true);
  }
  TimerId StartWallTimer(WallClock::duration after, std::function<void()> fire) {
    return AddTimer(after, std::move(fire), /*physics=*/false);
  }
  // Returns false if the timer already fired or was cancelled.
  bool CancelTimer(TimerId id);
  size_t pending_timers() const { return timers_.size(); }

  boost::asio::io_context& io_context() { return io_; }

  // Loop thread only: how far this node's software runs behind the physics.
  LagMonitor& lag() { return lag_; }
  const LagMonitor& lag() const { return lag_; }

 private:
  struct Timer {
    std::unique_ptr<boost::asio::steady_timer> timer;  // null while in soon_
    std::function<void()> fire;
    bool physics = false;
  };
  // Timers due within kSoon of their start skip the asio timer queue (each
  // of those reprograms a timerfd, a syscall, and wakes the reactor): they
  // wait in soon_, in deadline order, for one posted drain.
  static constexpr WallClock::duration kSoon = std::chrono::microseconds(10);
  void DrainSoon();

  TimerId AddTimer(WallClock::duration after, std::function<void()> fire, bool physics);

  // `now` and `unix_now`: one instant on both clocks.
  EventLoop(double time_scale, std::optional<int64_t> epoch_unix_ns, WallClock::time_point now, int64_t unix_now);

  const double time_scale_;
  const WallClock::time_point created_;
  const int64_t epoch_unix_ns_;  // before start_, which is computed from it
  const WallClock::time_point start_;
  boost::asio::io_context io_;
  std::shared_ptr<LoopPoster> poster_;
  std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::thread::id thread_id_;
  absl::flat_hash_map<TimerId, Timer> timers_;
  LagMonitor lag_;
  TimerId next_timer_ = 1;
  std::set<std::pair<WallClock::time_point, TimerId>> soon_;
  bool drain_posted_ = false;
};

}  // namespace qnet::daemon
