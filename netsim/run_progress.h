// What a long qnetsim run is doing, on stderr, so that a user never waits in
// silence: after the first second of wall time, about one line a second
// with the phase ("loading FILE", "simulating") and, while simulating, the
// simulated time and events so far. A reporter thread prints; the run only
// publishes (SetPhase, and a simulator observer every few thousand events),
// so the simulation itself is unchanged.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "sim/simulator.h"

namespace qnet::netsim {

class RunProgress {
 public:
  // `enabled` false (--quiet): prints nothing, starts no thread.
  explicit RunProgress(bool enabled, std::chrono::milliseconds every = std::chrono::seconds(1));
  ~RunProgress();  // stops the reporter; ends its line
  RunProgress(const RunProgress&) = delete;
  RunProgress& operator=(const RunProgress&) = delete;

  void SetPhase(std::string phase);
  // Publishes the simulator's time and events while it runs.
  void Watch(sim::Simulator& simulator);
  // No report while the returned lock is held, and the terminal's report
  // line is cleared: hold it while printing results.
  std::unique_lock<std::mutex> Pause();

 private:
  void Report();

  const bool enabled_;
  const std::chrono::milliseconds every_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  // Shared with the simulator's observer, which may outlive this object.
  struct Counters {
    std::atomic<int64_t> simulated_ns{-1};  // -1: not simulating yet
    std::atomic<uint64_t> events{0};
  };
  std::shared_ptr<Counters> counters_ = std::make_shared<Counters>();
  std::mutex mu_;
  std::condition_variable wake_;
  std::string phase_;
  bool stop_ = false;
  bool open_line_ = false;  // a rewritten line is on the terminal
  std::thread reporter_;
};

}  // namespace qnet::netsim
