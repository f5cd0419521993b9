#include "sim/sim_node_context.h"

#include <memory>
#include <utility>

#include "sim/sim_network.h"

namespace qnet::sim {

SimNodeContext::SimNodeContext(SimNetwork& network, std::string name, uint32_t index, Rng rng)
    : network_(network), name_(std::move(name)), index_(index), rng_(rng) {}

TimePoint SimNodeContext::Now() const { return network_.simulator_.Now(); }

TimerId SimNodeContext::StartTimer(Duration after, std::function<void()> fire) {
  // A crash must silence the old incarnation's timers without the runtime
  // tracking them one by one.
  return network_.simulator_.ScheduleAfter(after, std::move(fire), this, incarnation_);
}

bool SimNodeContext::CancelTimer(TimerId id) { return network_.simulator_.Cancel(id); }

void SimNodeContext::SendToNeighbour(const std::string& neighbour, v1::PeerMessage message) {
  auto it = channel_to_.find(neighbour);
  if (it == channel_to_.end()) {
    network_.NoteMisaddressed(name_, neighbour);
    return;
  }
  // Send drops it if this node has crashed (the caller still driving a
  // crashed stack) or the link is down.
  it->second->Send(index_, std::move(message));
}

void SimNodeContext::SendToNeighbours(std::span<const std::string> neighbours, v1::PeerMessage message) {
  const auto shared = std::make_shared<const v1::PeerMessage>(std::move(message));
  for (const std::string& neighbour : neighbours) {
    auto it = channel_to_.find(neighbour);
    if (it == channel_to_.end()) {
      network_.NoteMisaddressed(name_, neighbour);
      continue;
    }
    it->second->Send(index_, shared);
  }
}

}  // namespace qnet::sim
