// Messaging with the neighbours: inbound messages (checked, deduplicated by
// the link's ReliableChannel and dispatched by kind), reliable sending, and
// the neighbour going down, coming up or restarting.
#include "link/link_layer.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"

namespace qnet::link {

void LinkLayer::OnLinkMessage(const std::string& from, const v1::LinkMessage& message) {
  // The body's replies (sent below, or as `step` ends) carry its ack; what
  // they did not carry goes alone after this event.
  ReliableChannel* acks_owed = nullptr;
  absl::Cleanup flush_acks = [&acks_owed] {
    if (acks_owed != nullptr) acks_owed->FlushAcksLater();
  };
  StepScope step(*this);
  auto found = link_by_name_.find(message.link());
  if (found == link_by_name_.end() || found->second->peer != from) {
    ++ignored_messages_;
    return;
  }
  LinkState& link = *found->second;
  if (message.incarnation() != link.peer_incarnation) {
    if (link.peer_incarnation != 0) {
      PeerLost(link, absl::StrCat("neighbour ", link.peer, " restarted"), true);
    }
    link.peer_incarnation = message.incarnation();
  }
  link.peer_down = false;  // it evidently reaches us
  acks_owed = link.channel.get();
  if (!link.channel->Receive(message)) return;
  switch (message.body_case()) {
    case v1::LinkMessage::kHello: return;
    case v1::LinkMessage::kSubmit: return OnSubmit(link, message.submit());
    case v1::LinkMessage::kAccepted: return OnAccepted(link, message.accepted());
    case v1::LinkMessage::kAssign: return OnAssign(link, message.assign());
    case v1::LinkMessage::kReport: return OnReport(link, message.report());
    case v1::LinkMessage::kEnded: return OnEnded(link, message.ended());
    case v1::LinkMessage::kExtend: return OnExtend(link, message.extend());
    case v1::LinkMessage::BODY_NOT_SET: return;
  }
}

void LinkLayer::Send(LinkState& link, v1::LinkMessage message) {
  if (link.peer_down) return;
  link.channel->SendReliable(std::move(message));
}

LinkLayer::RequestKey LinkLayer::KeyFromWire(const v1::LinkRequestKey& key) { return {key.origin(), key.number()}; }

void LinkLayer::KeyToWire(const RequestKey& key, v1::LinkRequestKey* out) {
  out->set_origin(key.origin);
  out->set_number(key.number);
}

// ---------------------------------------------------------------- neighbour up, down, restarted

void LinkLayer::OnNeighbourUp(const std::string& neighbour) {
  StepScope step(*this);
  LinkState* link = FindLinkByPeer(neighbour);
  if (link == nullptr) return;
  link->peer_down = false;
  v1::LinkMessage hello;
  hello.mutable_hello();
  link->channel->SendOnce(std::move(hello));
  // Whatever was sent before it could be reached goes now, not at the next backoff.
  link->channel->RetransmitNow();
}

void LinkLayer::OnNeighbourDown(const std::string& neighbour) {
  StepScope step(*this);
  LinkState* link = FindLinkByPeer(neighbour);
  if (link == nullptr) return;
  link->peer_down = true;
  PeerLost(*link, absl::StrCat("neighbour ", neighbour, " went down"), false);
}

void LinkLayer::PeerLost(LinkState& link, const std::string& message, bool restarted) {
  if (restarted) {
    link.channel->ResetForNewPeer();
  } else {
    link.channel->Reset();
  }
  if (link.memory_retry != kNoTimer) {
    context_.CancelTimer(link.memory_retry);
    link.memory_retry = kNoTimer;
  }
  link.memory_wait.clear();
  std::vector<RequestId> ids;
  for (const auto& [key, id] : link.by_key) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (RequestId id : ids) EndRequest(id, LinkError::kPeerDown, message, false);
  for (uint64_t id : SortedGenerations(link)) DropGeneration(link, id);
  link.early_reports.Clear();
  if (!restarted) return;
  // Its halves of the pairs delivered earlier are gone with it.
  ExpireKeptPairs(link, message);
  link.delivered.Clear();
  // A new incarnation numbers its requests afresh.
  link.ended_here.Clear();
  link.ended_there.Clear();
}

}  // namespace qnet::link
