#include "netsim/run_progress.h"

#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_format.h"

namespace qnet::netsim {

RunProgress::RunProgress(bool enabled, std::chrono::milliseconds every) : enabled_(enabled), every_(every) {
  if (enabled_) reporter_ = std::thread([this] { Report(); });
}

RunProgress::~RunProgress() {
  if (!reporter_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  reporter_.join();
}

void RunProgress::SetPhase(std::string phase) {
  std::lock_guard lock(mu_);
  phase_ = std::move(phase);
}

void RunProgress::Watch(sim::Simulator& simulator) {
  if (!enabled_) return;
  // Every 1024 events: a counter compare per event, and a line a second
  // stays fresh even at a few thousand events per second.
  simulator.SetObserver(1024, [counters = counters_](const sim::Simulator& s) {
    counters->simulated_ns.store(s.Now().time_since_epoch().count(), std::memory_order_relaxed);
    counters->events.store(s.events_run(), std::memory_order_relaxed);
  });
}

std::unique_lock<std::mutex> RunProgress::Pause() {
  std::unique_lock lock(mu_);
  if (open_line_) {
    std::fprintf(stderr, "\r\x1b[K");
    std::fflush(stderr);
    open_line_ = false;
  }
  return lock;
}

void RunProgress::Report() {
  const bool terminal = isatty(STDERR_FILENO) != 0;
  std::unique_lock lock(mu_);
  while (!wake_.wait_for(lock, every_, [this] { return stop_; })) {
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    std::string line = absl::StrFormat("qnetsim: %s, %.0f s", phase_, wall);
    const int64_t simulated_ns = counters_->simulated_ns.load(std::memory_order_relaxed);
    if (simulated_ns >= 0) {
      absl::StrAppendFormat(&line, " (simulated %.6g s, %d events)", static_cast<double>(simulated_ns) * 1e-9,
                            counters_->events.load(std::memory_order_relaxed));
    }
    std::fprintf(stderr, terminal ? "\r\x1b[K%s" : "%s\n", line.c_str());
    std::fflush(stderr);
    open_line_ = terminal;
  }
  if (open_line_) {
    std::fprintf(stderr, "\r\x1b[K");
    std::fflush(stderr);
  }
}

}  // namespace qnet::netsim
