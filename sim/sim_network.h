// A whole network inside one process: a SimNodeContext per node and a
// SimChannel per link, all on one Simulator. The caller builds a protocol
// stack per node on its context, registers the stack as the node's sink, and
// runs the simulator. For fault injection, channels can be cut, made lossy or
// slow, and nodes can crash (their timers stop, their messages are dropped,
// neighbours hear OnNeighbourDown) and restart.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "sim/sim_channel.h"
#include "sim/sim_node_context.h"
#include "sim/simulator.h"

namespace qnet::sim {

struct SimLink {
  std::string name;  // e.g. "alice-bob"
  std::string a;
  std::string b;
  double length_km = 0.0;
};

struct SimTopology {
  std::vector<std::string> nodes;
  std::vector<SimLink> links;
};

// Queued events point into the network: do not run the Simulator after
// destroying the network (declare the Simulator first so it goes last).
class SimNetwork {
 public:
  // InvalidArgument on an empty or duplicate node name, a link to an unknown
  // node, a self-link, two links between one pair, a duplicate link name, a
  // negative or non-finite length, or bad channel options.
  static absl::StatusOr<std::unique_ptr<SimNetwork>> Create(Simulator& simulator, uint64_t seed,
                                                            SimTopology topology,
                                                            ChannelOptions channel_defaults = {});
  SimNetwork(const SimNetwork&) = delete;
  SimNetwork& operator=(const SimNetwork&) = delete;

  Simulator& simulator() { return simulator_; }
  uint64_t seed() const { return seed_; }

  size_t num_nodes() const { return nodes_.size(); }
  SimNodeContext& node(size_t index) { return *nodes_[index]; }
  // nullptr if there is no such node.
  SimNodeContext* FindNode(std::string_view name);

  const std::vector<std::unique_ptr<SimChannel>>& channels() const { return channels_; }
  // The channel between two nodes in either order; nullptr if not neighbours.
  SimChannel* FindChannel(std::string_view a, std::string_view b);
  SimChannel* FindChannelByName(std::string_view name);

  // Crash: the node stops (its pending timers never fire, its sink is
  // cleared, messages to and from it are dropped) and its running neighbours
  // hear OnNeighbourDown. Restart: it runs again (register a new sink), and it
  // and its neighbours hear OnNeighbourUp for every usable link. NotFound for
  // an unknown node; crashing a crashed node (or restarting a running one)
  // does nothing.
  absl::Status Crash(std::string_view node);
  absl::Status Restart(std::string_view node);

  // Tells both ends of every usable link OnNeighbourUp (at the current time),
  // for stacks that wait for their neighbours before starting.
  void AnnounceLinksUp();

  // Called for every message handed to a sink (tracing, tests).
  using DeliveryObserver =
      std::function<void(TimePoint at, const std::string& from, const std::string& to, const v1::PeerMessage&)>;
  void SetDeliveryObserver(DeliveryObserver observer) { observer_ = std::move(observer); }
  // Fault injection (tests): may change any message on its way from `from`
  // to `to` before the receiver sees it, as a dishonest sender or forwarder
  // would (the observer sees the changed message).
  using DeliveryTamper = std::function<void(const std::string& from, const std::string& to, v1::PeerMessage&)>;
  void SetDeliveryTamper(DeliveryTamper tamper) { tamper_ = std::move(tamper); }

  // SendToNeighbour calls naming a node that is not a neighbour.
  uint64_t misaddressed_messages() const { return misaddressed_messages_; }

 private:
  friend class SimChannel;
  friend class SimNodeContext;
  SimNetwork(Simulator& simulator, uint64_t seed);

  // Schedules OnNeighbourUp/Down(neighbour) for `node` at the current time;
  // delivered to whatever sink the node has then, if it is running.
  void NotifyNeighbour(uint32_t node, uint32_t neighbour, bool up);
  void Deliver(uint32_t to, uint32_t from, const v1::PeerMessage& message, ChannelStats& stats);
  void NoteMisaddressed(const std::string& from, const std::string& to);

  Simulator& simulator_;
  uint64_t seed_;
  std::vector<std::unique_ptr<SimNodeContext>> nodes_;
  std::vector<std::unique_ptr<SimChannel>> channels_;
  absl::flat_hash_map<std::string, uint32_t> node_index_;
  absl::flat_hash_map<std::string, SimChannel*> channel_by_name_;
  DeliveryObserver observer_;
  DeliveryTamper tamper_;
  uint64_t misaddressed_messages_ = 0;
};

}  // namespace qnet::sim
