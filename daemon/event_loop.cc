#include "daemon/event_loop.h"

#include <cmath>

namespace qnet::daemon {

bool LoopPoster::Post(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (io_ == nullptr) return false;
  boost::asio::post(*io_, std::move(fn));
  return true;
}

void LoopPoster::Detach() {
  std::lock_guard<std::mutex> lock(mu_);
  io_ = nullptr;
}

int64_t UnixNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {
// The epoch the clock starts from: the given one, unless it is absent or in
// this host's future (then the loop's creation).
int64_t EffectiveEpoch(std::optional<int64_t> epoch_unix_ns, int64_t unix_now) {
  return epoch_unix_ns.has_value() && *epoch_unix_ns <= unix_now ? *epoch_unix_ns : unix_now;
}
}  // namespace

EventLoop::EventLoop(double time_scale, std::optional<int64_t> epoch_unix_ns)
    : EventLoop(time_scale, epoch_unix_ns, WallClock::now(), UnixNowNs()) {}

EventLoop::EventLoop(double time_scale, std::optional<int64_t> epoch_unix_ns, WallClock::time_point now,
                     int64_t unix_now)
    : time_scale_(time_scale),
      created_(now),
      epoch_unix_ns_(EffectiveEpoch(epoch_unix_ns, unix_now)),
      start_(now - std::chrono::duration_cast<WallClock::duration>(std::chrono::nanoseconds(unix_now - epoch_unix_ns_))),
      poster_(std::make_shared<LoopPoster>(&io_)),
      work_(std::make_unique<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>(
          io_.get_executor())),
      lag_(time_scale) {}

EventLoop::~EventLoop() {
  Stop();
  // Timers must go before the io_context they are bound to.
  timers_.clear();
}

void EventLoop::Start() {
  if (thread_.joinable()) return;
  std::promise<std::thread::id> started;
  auto id = started.get_future();
  thread_ = std::thread([this, &started] {
    started.set_value(std::this_thread::get_id());
    io_.run();
  });
  thread_id_ = id.get();
}

void EventLoop::Stop() {
  poster_->Detach();
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

WallClock::duration EventLoop::ToWall(Duration simulated) const {
  // Clamp so that "practically never" (e.g. Duration::max()) stays finite.
  constexpr double kMaxNs = 1e17;  // about three years
  double ns = static_cast<double>(simulated.count()) / time_scale_;
  if (!(ns > 0)) return WallClock::duration::zero();
  ns = std::min(ns, kMaxNs);
  return std::chrono::duration_cast<WallClock::duration>(std::chrono::nanoseconds(std::llround(ns)));
}

TimePoint EventLoop::ToSimulated(WallClock::duration since_start) const {
  double ns = static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(since_start).count());
  return TimePoint(Duration(std::llround(ns * time_scale_)));
}

TimerId EventLoop::AddTimer(WallClock::duration after, std::function<void()> fire, bool physics) {
  TimerId id = next_timer_++;
  if (after <= kSoon) {
    timers_.emplace(id, Timer{nullptr, std::move(fire), physics});
    soon_.emplace(WallClock::now() + std::max(after, WallClock::duration::zero()), id);
    if (!drain_posted_) {
      drain_posted_ = true;
      boost::asio::post(io_, [this] { DrainSoon(); });
    }
    return id;
  }
  auto timer = std::make_unique<boost::asio::steady_timer>(io_, after);
  timer->async_wait([this, id](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled
    auto it = timers_.find(id);
    if (it == timers_.end()) return;  // cancelled after expiry, before this ran
    if (it->second.physics) lag_.OnEvent(it->second.timer->expiry(), WallClock::now());
    std::function<void()> fire_now = std::move(it->second.fire);
    timers_.erase(it);
    fire_now();
  });
  timers_.emplace(id, Timer{std::move(timer), std::move(fire), physics});
  return id;
}

bool EventLoop::CancelTimer(TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return false;
  if (it->second.timer != nullptr) it->second.timer->cancel();  // else DrainSoon skips it
  timers_.erase(it);
  return true;
}

void EventLoop::DrainSoon() {
  drain_posted_ = false;
  // Fires what is due, earliest first, then comes back for the rest (all
  // due within kSoon) after whatever else the loop has queued.
  while (!soon_.empty()) {
    auto [due, id] = *soon_.begin();
    if (due > WallClock::now()) break;
    soon_.erase(soon_.begin());
    auto it = timers_.find(id);
    if (it == timers_.end()) continue;  // cancelled
    if (it->second.physics) lag_.OnEvent(due, WallClock::now());
    std::function<void()> fire_now = std::move(it->second.fire);
    timers_.erase(it);
    fire_now();
  }
  if (!soon_.empty() && !drain_posted_) {
    drain_posted_ = true;
    boost::asio::post(io_, [this] { DrainSoon(); });
  }
}

}  // namespace qnet::daemon
