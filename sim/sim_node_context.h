// One node's view of the simulator: the NodeContext its protocol stack is
// built on. Timers are simulator events, randomness is the run seed forked by
// the node's name, and SendToNeighbour goes through the SimChannel of the
// link to that neighbour. Inbound messages go to the registered sink.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "core/node_context.h"
#include "sim/simulator.h"

namespace qnet::sim {

class SimChannel;
class SimNetwork;

class SimNodeContext final : public NodeContext, private EventOwner {
 public:
  SimNodeContext(const SimNodeContext&) = delete;
  SimNodeContext& operator=(const SimNodeContext&) = delete;

  const std::string& node_name() const override { return name_; }
  TimePoint Now() const override;
  TimerId StartTimer(Duration after, std::function<void()> fire) override;
  bool CancelTimer(TimerId id) override;
  // Messages to a node that is not a neighbour are dropped and counted in
  // SimNetwork::misaddressed_messages() (that is a protocol bug).
  void SendToNeighbour(const std::string& neighbour, v1::PeerMessage message) override;
  // One immutable copy shared by every neighbour's delivery.
  void SendToNeighbours(std::span<const std::string> neighbours, v1::PeerMessage message) override;
  Rng& rng() override { return rng_; }

  // Position in the node list (the network file's order).
  uint32_t index() const { return index_; }
  // Neighbour names in link order.
  const std::vector<std::string>& neighbours() const { return neighbour_names_; }
  bool running() const { return running_; }

  // Where this node's inbound messages and neighbour events go; nullptr
  // drops them. Cleared when the node crashes.
  void SetSink(PeerMessageSink* sink) { sink_ = sink; }
  PeerMessageSink* sink() const { return sink_; }

 private:
  friend class SimNetwork;
  friend class SimChannel;
  SimNodeContext(SimNetwork& network, std::string name, uint32_t index, Rng rng);
  // A timer runs only in the incarnation that started it, while running.
  bool Alive(uint64_t incarnation) const override { return running_ && incarnation_ == incarnation; }

  SimNetwork& network_;
  std::string name_;
  uint32_t index_;
  Rng rng_;
  PeerMessageSink* sink_ = nullptr;
  bool running_ = true;
  // Bumped on crash: timers started before it become no-ops.
  uint64_t incarnation_ = 0;
  std::vector<std::string> neighbour_names_;
  absl::flat_hash_map<std::string, SimChannel*> channel_to_;
};

}  // namespace qnet::sim
