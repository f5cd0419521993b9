// The distributed queue at the link's master (node_a): which accepted request
// is served next, how many generations run at once, and waiting for memory
// when either end has no free slot.
#include <string>

#include "link/link_layer.h"

namespace qnet::link {

void LinkLayer::ScheduleAll() {
  if (scheduling_) {
    schedule_again_ = true;
    return;
  }
  scheduling_ = true;
  do {
    schedule_again_ = false;
    for (auto& link : links_) Schedule(*link);
  } while (schedule_again_);
  scheduling_ = false;
}

void LinkLayer::Schedule(LinkState& link) {
  if (!link.is_master || link.peer_down || link.memory_retry != kNoTimer) return;
  while (static_cast<int>(link.generations.size()) < link.max_in_flight) {
    Request* r = PickNext(link);
    if (r == nullptr) return;
    absl::StatusOr<int> slot = device_.Allocate();
    if (!slot.ok()) {
      // Wait for memory; only the request's max_time or a cancel ends it.
      // Slots busy with generations or measurements come back when those
      // end (which schedules again); slots the layer above holds come back
      // when it frees them, which it may announce (OnMemoryFreed) or not:
      // then the retry timer polls.
      link.memory_wait = AllSlotsInUse();
      ++stats_.memory_waits;
      if (held_slots() == 0) StartMemoryRetry(link, /*own_memory=*/true);
      return;
    }
    link.memory_wait.clear();
    ForgetKeptSlot(*slot);
    link.last_served_local = r->originated_here;
    StartGeneration(link, *r, *slot);
  }
}

LinkLayer::Request* LinkLayer::PickNext(LinkState& link) {
  // Highest priority first; FIFO within it; at equal priority the two ends'
  // requests take turns.
  Request* best[2] = {nullptr, nullptr};  // [originated here, at the peer]
  uint32_t top = 0;
  bool any = false;
  for (const auto& [key, id] : link.by_key) {
    Request& r = requests_.at(id);
    if (!r.accepted || r.delivered + r.in_flight >= r.params.number) continue;
    if (any && r.params.priority < top) continue;
    if (!any || r.params.priority > top) {
      best[0] = best[1] = nullptr;
      top = r.params.priority;
      any = true;
    }
    Request*& slot = best[r.originated_here ? 0 : 1];
    if (slot == nullptr || r.queue_order < slot->queue_order) slot = &r;
  }
  if (best[0] != nullptr && best[1] != nullptr) return link.last_served_local ? best[1] : best[0];
  return best[0] != nullptr ? best[0] : best[1];
}

void LinkLayer::StartMemoryRetry(LinkState& link, bool own_memory) {
  if (link.memory_retry != kNoTimer) return;
  LinkState* raw = &link;
  link.memory_retry_own = own_memory;
  link.memory_retry = context_.StartTimer(link.channel->retransmit_timeout(), lifetime_.Guard([this, raw] {
    StepScope step(*this);
    raw->memory_retry = kNoTimer;
    ScheduleAll();
  }));
}

void LinkLayer::OnMemoryFreed() {
  StepScope step(*this);
  bool waiting = false;
  for (auto& link : links_) {
    if (link->memory_retry == kNoTimer || !link->memory_retry_own) continue;
    context_.CancelTimer(link->memory_retry);
    link->memory_retry = kNoTimer;
    waiting = true;
  }
  if (waiting) ScheduleAll();
}

std::string LinkLayer::MemoryWait(const LinkState& link) const {
  if (!link.memory_wait.empty()) return link.memory_wait;
  for (int slot = 0; slot < device_.num_slots(); ++slot) {
    if (!device_.IsAllocated(slot)) return "";
  }
  return AllSlotsInUse();
}

}  // namespace qnet::link
