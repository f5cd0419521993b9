#include "daemon/frame_queue.h"

namespace qnet::daemon {

void FrameQueue::Push(v1::PeerFrame frame) {
  if (frame.has_batch() && !frames_.empty()) {
    bool tail_is_writing = in_flight_ && frames_.size() == 1;
    v1::PeerFrame& tail = frames_.back();
    if (!tail_is_writing && tail.has_batch() &&
        tail.batch().envelopes_size() + frame.batch().envelopes_size() <= kMaxMessagesPerFrame) {
      auto* into = tail.mutable_batch()->mutable_envelopes();
      for (auto& envelope : *frame.mutable_batch()->mutable_envelopes()) into->Add(std::move(envelope));
      return;
    }
  }
  frames_.push_back(std::move(frame));
}

v1::PeerFrame* FrameQueue::StartNext() {
  if (frames_.empty() || in_flight_) return nullptr;
  in_flight_ = true;
  return &frames_.front();
}

void FrameQueue::PopInFlight() {
  if (!in_flight_) return;
  frames_.pop_front();
  in_flight_ = false;
}

void FrameQueue::DropQueued() {
  while (frames_.size() > (in_flight_ ? 1u : 0u)) frames_.pop_back();
}

}  // namespace qnet::daemon
