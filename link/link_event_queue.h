// The link layer's outgoing events (PairDelivered, RequestFailed, ...), held
// back until the current protocol step (message, timer, completion) is over:
// handlers never run inside a call into the link layer and always see its
// state consistent.
#pragma once

#include <deque>
#include <memory>
#include <utility>

#include "core/lifetime.h"
#include "core/node_context.h"
#include "link/link_service.h"

namespace qnet::link {

// A request's or receiver's handler, shared by every event and record that
// names it: copying a std::function per event allocated (its captured
// state) several times per pair.
using SharedLinkEventHandler = std::shared_ptr<const LinkEventHandler>;

class LinkEventQueue {
 public:
  explicit LinkEventQueue(NodeContext& context) : context_(context) {}
  ~LinkEventQueue();
  LinkEventQueue(const LinkEventQueue&) = delete;
  LinkEventQueue& operator=(const LinkEventQueue&) = delete;

  // Queues `event` for `handler` (nothing for an empty handler).
  void Emit(const SharedLinkEventHandler& handler, LinkEvent event);
  // Runs the queued events, including those they queue. A Flush from inside
  // a handler returns at once (the outer one goes on).
  void Flush();
  // Flushes once the caller has returned (from a zero-delay timer): for
  // events queued by an API call, which must not run inside it.
  void FlushLater();

 private:
  NodeContext& context_;
  std::deque<std::pair<SharedLinkEventHandler, LinkEvent>> pending_;
  bool flushing_ = false;
  TimerId flush_timer_ = kNoTimer;
  Lifetime lifetime_;  // last: ends before the members its callbacks use
};

}  // namespace qnet::link
