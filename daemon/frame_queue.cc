#include "daemon/frame_queue.h"

namespace qnet::daemon {

void FrameQueue::Push(v1::PeerFrame frame) {
  const size_t bytes = frame.ByteSizeLong();
  if (frame.has_batch() && !frames_.empty()) {
    bool tail_is_writing = in_flight_ && frames_.size() == 1;
    v1::PeerFrame& tail = frames_.back();
    if (!tail_is_writing && tail.has_batch() &&
        tail.batch().envelopes_size() + frame.batch().envelopes_size() <= kMaxMessagesPerFrame &&
        bytes_.back() + bytes <= kMaxFrameBytes) {
      auto* into = tail.mutable_batch()->mutable_envelopes();
      for (auto& envelope : *frame.mutable_batch()->mutable_envelopes()) into->Add(std::move(envelope));
      bytes_.back() += bytes;  // an upper bound: the merged frame drops one lag report
      return;
    }
  }
  frames_.push_back(std::move(frame));
  bytes_.push_back(bytes);
}

v1::PeerFrame* FrameQueue::StartNext() {
  if (frames_.empty() || in_flight_) return nullptr;
  in_flight_ = true;
  return &frames_.front();
}

void FrameQueue::PopInFlight() {
  if (!in_flight_) return;
  frames_.pop_front();
  bytes_.pop_front();
  in_flight_ = false;
}

void FrameQueue::DropQueued() {
  while (frames_.size() > (in_flight_ ? 1u : 0u)) {
    frames_.pop_back();
    bytes_.pop_back();
  }
}

}  // namespace qnet::daemon
