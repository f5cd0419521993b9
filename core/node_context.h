// The narrow interface through which a node's protocol stack touches the
// world: its name, the runtime's clock, timers, seeded randomness, and sending
// a message to a neighbour. The in-process simulator and the daemon each
// implement it, so the very same protocol objects run under both. Inbound
// events (peer messages, neighbour up/down) are delivered by the runtime
// calling the stack; protocol code never blocks and never sees a thread.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>

#include "core/rng.h"
#include "core/time.h"
#include "qnet/v1/peer_messages.pb.h"

namespace qnet {

using TimerId = uint64_t;
inline constexpr TimerId kNoTimer = 0;

class NodeContext {
 public:
  virtual ~NodeContext() = default;

  virtual const std::string& node_name() const = 0;
  virtual TimePoint Now() const = 0;

  // Runs `fire` on the node's event loop after `after` (>= 0) has passed.
  // Returns a non-zero id for CancelTimer.
  virtual TimerId StartTimer(Duration after, std::function<void()> fire) = 0;
  // Returns false if the timer had already fired or was cancelled.
  virtual bool CancelTimer(TimerId id) = 0;

  // Queues `message` for the neighbour named `neighbour`. Delivery takes at
  // least the link's classical delay; the runtime may drop it if the
  // neighbour is down (the layers learn that through OnNeighbourDown).
  virtual void SendToNeighbour(const std::string& neighbour, v1::PeerMessage message) = 0;
  // Queues the same `message` for each of `neighbours` (flooding). The
  // default copies it per neighbour; a runtime that can share one immutable
  // copy (the simulator: a link-state flood on a 1,000-node network is ~10^7
  // deliveries) overrides it.
  virtual void SendToNeighbours(std::span<const std::string> neighbours, v1::PeerMessage message) {
    for (size_t i = 0; i < neighbours.size(); ++i) {
      if (i + 1 == neighbours.size()) {
        SendToNeighbour(neighbours[i], std::move(message));
      } else {
        SendToNeighbour(neighbours[i], message);
      }
    }
  }

  // Protocol-level randomness (e.g. a per-pair basis choice), seeded.
  virtual Rng& rng() = 0;
};

// What a runtime delivers into a node's stack.
class PeerMessageSink {
 public:
  virtual ~PeerMessageSink() = default;
  virtual void OnPeerMessage(const std::string& from, const v1::PeerMessage& message) = 0;
  virtual void OnNeighbourUp(const std::string& /*neighbour*/) {}
  virtual void OnNeighbourDown(const std::string& /*neighbour*/) {}
};

}  // namespace qnet
