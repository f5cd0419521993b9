// Outbound frames of one peer stream, waiting for the stream's single
// outstanding gRPC write. Batches queued behind the write in flight are merged
// into one frame (up to a cap), so a burst of messages costs few writes.
// Not thread-safe: the owning stream locks around it.
#pragma once

#include <cstddef>
#include <deque>

#include "qnet/v1/peer_service.pb.h"

namespace qnet::daemon {

class FrameQueue {
 public:
  // Merging stops at this many messages per frame, keeping frames well under
  // gRPC's default 4 MiB message limit.
  static constexpr int kMaxMessagesPerFrame = 512;
  // And at this many bytes (a frame of photon batches reaches it long before
  // 512 messages); a sender splits its own batches at it too.
  static constexpr size_t kMaxFrameBytes = size_t{2} << 20;

  // Appends `frame`. A batch frame is merged into the last queued frame when
  // that one is a batch which is not being written yet and has room.
  void Push(v1::PeerFrame frame);

  bool empty() const { return frames_.empty(); }
  size_t size() const { return frames_.size(); }

  // The frame to write next; it stays queued (and is no longer merged into)
  // until PopInFlight.
  v1::PeerFrame* StartNext();
  void PopInFlight();
  // Drops every frame except the one being written.
  void DropQueued();
  bool in_flight() const { return in_flight_; }

 private:
  std::deque<v1::PeerFrame> frames_;
  std::deque<size_t> bytes_;  // per frame, its serialised size
  bool in_flight_ = false;
};

}  // namespace qnet::daemon
