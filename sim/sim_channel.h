// The classical channel between two neighbouring nodes in the simulator: it
// carries protocol messages with the fibre's propagation delay, and for
// protocol tests it can add a fixed delay, jitter and random loss, or be cut
// and restored (both ends then hear OnNeighbourDown / OnNeighbourUp).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/rng.h"
#include "core/time.h"
#include "qnet/v1/peer_messages.pb.h"

namespace qnet::sim {

class SimNetwork;

struct ChannelOptions {
  Duration extra_delay{0};          // added to the fibre delay of every message
  Duration jitter{0};               // extra uniform delay in [0, jitter]; non-zero allows reordering
  double loss_probability = 0.0;    // each message is lost independently with this probability
  bool serialize_messages = false;  // send every message as protobuf bytes and parse it on arrival

  // InvalidArgument naming the field if a value is out of range.
  absl::Status Validate() const;
};

struct ChannelStats {
  uint64_t sent = 0;           // SendToNeighbour calls for this channel, both directions
  uint64_t delivered = 0;      // handed to a PeerMessageSink
  uint64_t lost = 0;           // dropped by the loss probability
  uint64_t dropped_down = 0;   // sent while unusable, or in flight when it became unusable
  uint64_t dropped_no_sink = 0;  // arrived at a node with no sink registered
  uint64_t bytes = 0;          // serialised size, counted only with serialize_messages
};

class SimChannel {
 public:
  SimChannel(const SimChannel&) = delete;
  SimChannel& operator=(const SimChannel&) = delete;

  const std::string& name() const { return name_; }
  const std::string& node_a() const;
  const std::string& node_b() const;
  double length_km() const { return length_km_; }
  // Fibre delay plus the fixed extra delay (jitter comes on top).
  Duration delay() const { return fibre_delay_ + options_.extra_delay; }

  const ChannelOptions& options() const { return options_; }
  // Applies to messages sent from now on.
  absl::Status SetOptions(const ChannelOptions& options);

  // Cuts the channel: messages in flight and sent while down are dropped, and
  // both ends (if running) hear OnNeighbourDown at the current time.
  void TakeDown();
  // Restores it; both ends hear OnNeighbourUp if both nodes are running.
  void BringUp();
  bool is_up() const { return up_; }
  // Up and both end nodes running: messages get through.
  bool usable() const;

  const ChannelStats& stats() const { return stats_; }

 private:
  friend class SimNetwork;
  friend class SimNodeContext;
  SimChannel(SimNetwork& network, std::string name, uint32_t a, uint32_t b, double length_km,
             const ChannelOptions& options, Rng rng);

  uint32_t Other(uint32_t end) const { return end == a_ ? b_ : a_; }
  void Send(uint32_t from, v1::PeerMessage message);
  // The same, for a message several channels deliver (not copied).
  void Send(uint32_t from, std::shared_ptr<const v1::PeerMessage> message);
  // Loss and jitter draws for one message; nullopt if it is not delivered.
  std::optional<Duration> DeliveryDelay();
  void Deliver(uint32_t to, uint64_t epoch, const v1::PeerMessage& message);
  // Delivers the message parked in in_flight_[slot] and frees the slot.
  void DeliverInFlight(uint32_t slot);
  void DeliverBytes(uint32_t to, uint64_t epoch, const std::string& bytes);
  // Called by the network around any change of up_ or an end's liveness.
  void OnUsabilityChange(bool was_usable);

  SimNetwork& network_;
  std::string name_;
  uint32_t a_;
  uint32_t b_;
  double length_km_;
  Duration fibre_delay_;
  ChannelOptions options_;
  Rng rng_;
  bool up_ = true;
  // Bumped whenever the channel becomes unusable, so deliveries scheduled
  // before a cut are recognised and dropped even if it is back up by then.
  uint64_t epoch_ = 0;
  ChannelStats stats_;
  // Messages in flight, each parked in a slot that its delivery event names,
  // so the event's callback fits std::function's inline buffer instead of
  // costing an allocation per message.
  struct InFlight {
    v1::PeerMessage message;
    uint64_t epoch = 0;
    uint32_t to = 0;
  };
  std::vector<InFlight> in_flight_;
  std::vector<uint32_t> free_in_flight_;
};

}  // namespace qnet::sim
