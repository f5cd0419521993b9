#include "link/link_event_queue.h"

namespace qnet::link {

LinkEventQueue::~LinkEventQueue() {
  if (flush_timer_ != kNoTimer) context_.CancelTimer(flush_timer_);
}

void LinkEventQueue::Emit(const SharedLinkEventHandler& handler, LinkEvent event) {
  if (handler == nullptr || !*handler) return;
  pending_.emplace_back(handler, std::move(event));
}

void LinkEventQueue::Flush() {
  if (flushing_) return;
  flushing_ = true;
  while (!pending_.empty()) {
    auto [handler, event] = std::move(pending_.front());
    pending_.pop_front();
    (*handler)(event);
  }
  flushing_ = false;
}

void LinkEventQueue::FlushLater() {
  if (pending_.empty() || flush_timer_ != kNoTimer) return;
  flush_timer_ = context_.StartTimer(Duration{0}, lifetime_.Guard([this] {
    flush_timer_ = kNoTimer;
    Flush();
  }));
}

}  // namespace qnet::link
