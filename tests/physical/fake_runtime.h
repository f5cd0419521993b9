// A tiny deterministic runtime for the physical layer's unit tests: virtual
// time with a queue of timers (equal times run in scheduling order), and
// NodeContexts whose messages reach a wired neighbour after a fixed delay.
// Deliberately independent of sim/, so these tests exercise the layer alone.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <queue>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "core/node_context.h"

namespace qnet::testing {

class VirtualClock {
 public:
  TimePoint Now() const { return now_; }

  TimerId Schedule(Duration after, std::function<void()> fire) {
    const TimerId id = next_id_++;
    const TimePoint at = now_ + std::max(Duration{0}, after);
    queue_.push({at, id});
    pending_.emplace(id, std::move(fire));
    return id;
  }
  bool Cancel(TimerId id) { return pending_.erase(id) > 0; }

  // Runs the next live timer; false if none is left.
  bool Step() {
    while (!queue_.empty()) {
      const auto [at, id] = queue_.top();
      queue_.pop();
      auto it = pending_.find(id);
      if (it == pending_.end()) continue;  // cancelled
      std::function<void()> fire = std::move(it->second);
      pending_.erase(it);
      now_ = at;
      ++events_run_;
      fire();
      return true;
    }
    return false;
  }
  // Runs until nothing is pending or `max_events` have run; returns events run.
  uint64_t RunUntilIdle(uint64_t max_events = 100'000'000) {
    uint64_t n = 0;
    while (n < max_events && Step()) ++n;
    return n;
  }
  // Runs every timer due at or before `until`, then sets the clock to it.
  void RunUntil(TimePoint until) {
    while (!queue_.empty() && queue_.top().first <= until) {
      if (!Step()) break;
    }
    if (until > now_) now_ = until;
  }
  void RunFor(Duration d) { RunUntil(now_ + d); }

  size_t pending() const { return pending_.size(); }
  uint64_t events_run() const { return events_run_; }

 private:
  using Entry = std::pair<TimePoint, TimerId>;  // ids grow, so ties run in scheduling order
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> queue_;
  std::map<TimerId, std::function<void()>> pending_;
  TimePoint now_{};
  TimerId next_id_ = 1;
  uint64_t events_run_ = 0;
};

class FakeNodeContext final : public NodeContext {
 public:
  FakeNodeContext(VirtualClock& clock, std::string name, uint64_t seed)
      : clock_(clock), name_(std::move(name)), rng_(Rng(seed).Fork(name_)) {}

  const std::string& node_name() const override { return name_; }
  TimePoint Now() const override { return clock_.Now(); }
  TimerId StartTimer(Duration after, std::function<void()> fire) override {
    return clock_.Schedule(after, std::move(fire));
  }
  bool CancelTimer(TimerId id) override { return clock_.Cancel(id); }
  Rng& rng() override { return rng_; }

  void SendToNeighbour(const std::string& neighbour, v1::PeerMessage message) override {
    sent.emplace_back(neighbour, message);
    auto route = routes_.find(neighbour);
    if (route == routes_.end() || !route->second.up) return;  // dropped, like a cut link
    FakeNodeContext* to = route->second.peer;
    const std::string from = name_;
    clock_.Schedule(route->second.delay, [to, from, message = std::move(message)] {
      if (to->receive) to->receive(from, message);
    });
  }

  // Wires a and b both ways with a one-way delay.
  static void Connect(FakeNodeContext& a, FakeNodeContext& b, Duration delay) {
    a.routes_[b.name_] = {&b, delay, true};
    b.routes_[a.name_] = {&a, delay, true};
  }
  // Messages sent from now on to `neighbour` are dropped (or delivered again).
  void SetRouteUp(const std::string& neighbour, bool up) { routes_[neighbour].up = up; }

  // Where inbound messages go.
  std::function<void(const std::string& from, const v1::PeerMessage&)> receive;
  // Every message this node sent, in order.
  std::vector<std::pair<std::string, v1::PeerMessage>> sent;

 private:
  struct Route {
    FakeNodeContext* peer = nullptr;
    Duration delay{0};
    bool up = true;
  };
  VirtualClock& clock_;
  std::string name_;
  Rng rng_;
  absl::flat_hash_map<std::string, Route> routes_;
};

}  // namespace qnet::testing
