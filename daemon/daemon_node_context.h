// qnet::NodeContext on the daemon's event loop: the scaled clock and timers
// of the EventLoop, randomness seeded from --seed and the node name, and
// SendToNeighbour onto the neighbour's peer stream. Loop thread only.
#pragma once

#include <string>

#include "core/node_context.h"
#include "daemon/event_loop.h"
#include "daemon/peer_links.h"

namespace qnet::daemon {

class DaemonNodeContext final : public NodeContext {
 public:
  DaemonNodeContext(std::string node, uint64_t seed, EventLoop& loop, PeerLinks& links)
      : node_(std::move(node)), loop_(loop), links_(links), rng_(Rng(seed).Fork(node_)) {}

  const std::string& node_name() const override { return node_; }
  TimePoint Now() const override { return loop_.Now(); }
  TimerId StartTimer(Duration after, std::function<void()> fire) override {
    return loop_.StartTimer(after, std::move(fire));
  }
  bool CancelTimer(TimerId id) override { return loop_.CancelTimer(id); }
  void SendToNeighbour(const std::string& neighbour, v1::PeerMessage message) override {
    links_.Send(neighbour, std::move(message));
  }
  Rng& rng() override { return rng_; }

 private:
  const std::string node_;
  EventLoop& loop_;
  PeerLinks& links_;
  Rng rng_;
};

}  // namespace qnet::daemon
