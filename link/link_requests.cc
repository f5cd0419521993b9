// The life of a link-layer request at both ends: creation at the origin,
// submission to and acceptance (or refusal) by the far end, the deadline,
// completion, and ending it at both ends (cancel, timeout, errors).
#include "link/link_layer.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"
#include "link/link_wire.h"

namespace qnet::link {

absl::StatusOr<RequestId> LinkLayer::Create(const EntanglementRequest& request, LinkEventHandler handler) {
  if (!handler) return absl::InvalidArgumentError("Create: the request needs an event handler");
  LinkState* link = FindLinkByPeer(request.remote_node);
  if (link == nullptr) {
    std::vector<std::string> neighbours;
    for (const auto& l : links_) neighbours.push_back(l->peer);
    return absl::InvalidArgumentError(absl::StrCat("node ", context_.node_name(), " has no link to '",
                                                   request.remote_node, "' (its neighbours: ",
                                                   neighbours.empty() ? "none" : absl::StrJoin(neighbours, ", "),
                                                   ")"));
  }
  QNET_RETURN_IF_ERROR(ValidateParams(request));
  if (link->peer_down) {
    return ToStatus(LinkError::kPeerDown, absl::StrCat("neighbour ", link->peer, " is down"));
  }
  if (device_.num_slots() == 0 || link->link.far_end.num_qubits <= 0) {
    const std::string& none = device_.num_slots() == 0 ? context_.node_name() : link->peer;
    return ToStatus(LinkError::kNoResources, absl::StrCat("node ", none, " has no memory qubits"));
  }
  QNET_ASSIGN_OR_RETURN(const FidelityTable* table, Table(*link));
  QNET_ASSIGN_OR_RETURN(const FidelityTable::Choice choice, table->Choose(request.type, request.min_fidelity));

  Request r;
  r.id = next_request_id_++;
  r.key = {context_.node_name(), link->next_request_number++};
  r.link = link;
  r.originated_here = true;
  r.params = request;
  r.handler = std::make_shared<const LinkEventHandler>(std::move(handler));
  r.alpha = choice.alpha;
  const RequestId id = r.id;
  if (request.max_time > Duration{0}) {
    r.deadline = context_.StartTimer(request.max_time, lifetime_.Guard([this, id] {
      StepScope step(*this);
      OnDeadline(id);
    }));
  }
  v1::LinkMessage message;
  v1::LinkRequestSubmit* s = message.mutable_submit();
  KeyToWire(r.key, s->mutable_key());
  RequestToWire(request, s);
  link->by_key[r.key] = id;
  requests_.emplace(id, std::move(r));
  Send(*link, std::move(message));
  return id;
}

absl::Status LinkLayer::Cancel(RequestId request_id) {
  if (FindRequest(request_id) == nullptr) {
    return absl::NotFoundError(absl::StrCat("node ", context_.node_name(), " has no active request ", request_id));
  }
  EndRequest(request_id, LinkError::kCancelled, absl::StrCat("cancelled at ", context_.node_name()), true);
  events_.FlushLater();
  return absl::OkStatus();
}

absl::Status LinkLayer::Extend(RequestId request_id, uint32_t more) {
  Request* r = FindRequest(request_id);
  if (r == nullptr) {
    return absl::NotFoundError(absl::StrCat("node ", context_.node_name(), " has no active request ", request_id));
  }
  if (!r->params.open) {
    return absl::FailedPreconditionError(
        absl::StrCat("request ", request_id, " at ", context_.node_name(), " is not open: it cannot be extended"));
  }
  if (!r->originated_here) {
    return absl::FailedPreconditionError(absl::StrCat("request ", request_id, " at ", context_.node_name(),
                                                      " was asked by ", r->key.origin, "; only its origin extends it"));
  }
  if (more == 0 || more > UINT32_MAX - r->params.number) {
    return absl::InvalidArgumentError(absl::StrCat("Extend: ", more, " more pairs on top of ", r->params.number,
                                                   " (the total must stay in [1, 2^32 - 1])"));
  }
  const uint32_t total = r->params.number + more;
  ExtendTo(*r, total);
  // Only the master counts a request's pairs against its total (the other
  // end never completes an open request), so only the master is told; not
  // before it has the request (the channel may reorder, and an Extend ahead
  // of its Submit would be lost): acceptance sends the total then.
  if (!r->link->is_master && r->accepted) Send(*r->link, ExtendMessage(r->key.origin, r->key.number, total));
  ScheduleAll();
  events_.FlushLater();
  return absl::OkStatus();
}

void LinkLayer::OnExtend(LinkState& link, const v1::LinkRequestExtend& extend) {
  const RequestKey key = KeyFromWire(extend.key());
  Request* r = key.origin == link.peer ? FindRequest(link, key) : nullptr;
  if (r == nullptr || !r->params.open) {
    ++ignored_messages_;  // ended here (the origin hears of it) or never open
    return;
  }
  ExtendTo(*r, extend.pairs());
  ScheduleAll();
}

void LinkLayer::ExtendTo(Request& request, uint32_t pairs) {
  if (pairs <= request.params.number) return;
  // It joins the back of the queue, as the new request it replaces would
  // have: a circuit extending its request keeps no place ahead of others.
  if (request.link->is_master && request.accepted) request.queue_order = request.link->next_queue_order++;
  request.params.number = pairs;
}

void LinkLayer::OnDeadline(RequestId id) {
  Request* timed_out = FindRequest(id);
  if (timed_out == nullptr) return;
  timed_out->deadline = kNoTimer;
  std::string message = absl::StrCat("max_time ", FormatDuration(timed_out->params.max_time), " passed with ",
                                     timed_out->delivered, " of ", timed_out->params.number, " pairs delivered");
  if (const std::string wait = MemoryWait(*timed_out->link); !wait.empty()) {
    absl::StrAppend(&message, " while waiting for free memory (", wait, ")");
  }
  EndRequest(id, LinkError::kTimeout, message, true);
}

// ---------------------------------------------------------------- the far end's answer

void LinkLayer::OnSubmit(LinkState& link, const v1::LinkRequestSubmit& submit) {
  const RequestKey key = KeyFromWire(submit.key());
  if (key.origin != link.peer) {
    ++ignored_messages_;
    return;
  }
  if (link.by_key.contains(key) || link.ended_there.contains(key.number)) return;  // stale
  const std::string& self = context_.node_name();
  const EntanglementRequest params = RequestFromWire(submit, link.peer);
  if (!SubmitIsReadable(submit)) {
    return Refuse(link, key, LinkError::kRejected, absl::StrCat(self, " cannot read the request's type or basis"));
  }
  if (absl::Status valid = ValidateParams(params); !valid.ok()) {
    return Refuse(link, key, LinkError::kRejected, absl::StrCat("malformed request: ", valid.message()));
  }
  auto receiver = receivers_.find(params.purpose_id);
  if (receiver == receivers_.end()) {
    return Refuse(link, key, LinkError::kRejected,
                  absl::StrCat("node ", self, " has no receiver for purpose id ", params.purpose_id));
  }
  if (device_.num_slots() == 0) {
    return Refuse(link, key, LinkError::kNoResources, absl::StrCat("node ", self, " has no memory qubits"));
  }
  absl::StatusOr<const FidelityTable*> table = Table(link);
  if (!table.ok()) return Refuse(link, key, LinkError::kUnsupported, std::string(table.status().message()));
  absl::StatusOr<FidelityTable::Choice> choice = (*table)->Choose(params.type, params.min_fidelity);
  if (!choice.ok()) return Refuse(link, key, LinkError::kUnsupported, std::string(choice.status().message()));

  Request r;
  r.id = next_request_id_++;
  r.key = key;
  r.link = &link;
  r.originated_here = false;
  r.accepted = true;
  r.params = params;
  r.handler = receiver->second;
  r.alpha = choice->alpha;
  if (link.is_master) r.queue_order = link.next_queue_order++;
  const RequestId id = r.id;
  link.by_key[key] = id;
  events_.Emit(r.handler, IncomingRequest{id, link.peer, params});
  requests_.emplace(id, std::move(r));

  v1::LinkMessage m;
  KeyToWire(key, m.mutable_accepted()->mutable_key());
  Send(link, std::move(m));
  ScheduleAll();
}

void LinkLayer::Refuse(LinkState& link, const RequestKey& key, LinkError error, const std::string& message) {
  NoteEnded(link, key, ErrorToWire(error));
  SendEnded(link, key, error, message, {});
}

void LinkLayer::OnAccepted(LinkState& link, const v1::LinkRequestAccepted& accepted) {
  Request* r = FindRequest(link, KeyFromWire(accepted.key()));
  if (r == nullptr || !r->originated_here || !NoteAccepted(link, *r)) return;
  ScheduleAll();
}

bool LinkLayer::NoteAccepted(LinkState& link, Request& r) {
  if (r.accepted) return false;
  r.accepted = true;
  if (link.is_master) {
    r.queue_order = link.next_queue_order++;
  } else if (r.originated_here && r.params.open) {
    // Extensions made before the master had the request.
    Send(link, ExtendMessage(r.key.origin, r.key.number, r.params.number));
  }
  return true;
}

// ---------------------------------------------------------------- ending

void LinkLayer::OnEnded(LinkState& link, const v1::LinkRequestEnded& ended) {
  ExpireUndelivered(link, ended);
  const RequestKey key = KeyFromWire(ended.key());
  const std::optional<LinkError> why = ErrorFromWire(ended.reason());
  if (Request* r = FindRequest(link, key); r != nullptr) {
    EndRequest(r->id, why.value_or(LinkError::kDeviceError),
               absl::StrCat(link.peer, " ended the request: ", ended.message()), false);
  } else {
    NoteEnded(link, key, ended.reason());
  }
}

void LinkLayer::SendEnded(LinkState& link, const RequestKey& key, LinkError error, const std::string& message,
                          const std::vector<uint64_t>& undelivered) {
  v1::LinkMessage m;
  v1::LinkRequestEnded* e = m.mutable_ended();
  KeyToWire(key, e->mutable_key());
  e->set_reason(ErrorToWire(error));
  e->set_message(message);
  for (uint64_t gid : undelivered) e->add_undelivered_generations(gid);
  Send(link, std::move(m));
}

void LinkLayer::EndRequest(RequestId id, LinkError error, const std::string& message, bool notify_peer) {
  Request* r = FindRequest(id);
  if (r == nullptr) return;
  LinkState& link = *r->link;
  const std::vector<uint64_t> gens = SortedGenerations(link, id);
  for (uint64_t gid : gens) DropGeneration(link, gid);
  if (notify_peer) SendEnded(link, r->key, error, message, gens);
  events_.Emit(r->handler, RequestFailed{id, error, message, r->delivered});
  NoteEnded(link, r->key, ErrorToWire(error));
  RemoveRequest(*r);
  ScheduleAll();
}

void LinkLayer::CompleteRequest(RequestId id) {
  Request* r = FindRequest(id);
  if (r == nullptr) return;
  LinkState& link = *r->link;
  // Leftovers (at the non-master: generations the master already gave up).
  for (uint64_t gid : SortedGenerations(link, id)) {
    SendFailure(link, gid, "the request is complete");
    DropGeneration(link, gid);
  }
  events_.Emit(r->handler, RequestCompleted{id, r->delivered});
  NoteEnded(link, r->key, v1::LINK_ERROR_NONE);
  RemoveRequest(*r);
}

void LinkLayer::RemoveRequest(Request& request) {
  if (request.deadline != kNoTimer) context_.CancelTimer(request.deadline);
  LinkState& link = *request.link;
  link.by_key.erase(request.key);
  requests_.erase(request.id);
  if (link.by_key.empty()) link.memory_wait.clear();  // nothing waits any more
}

void LinkLayer::NoteEnded(LinkState& link, const RequestKey& key, v1::LinkErrorCode why) {
  if (RecentIdMap<v1::LinkErrorCode>* ended = EndedBy(link, key.origin); ended != nullptr) {
    ended->Insert(key.number, why);
  }
}

const v1::LinkErrorCode* LinkLayer::FindEnded(LinkState& link, const RequestKey& key) {
  RecentIdMap<v1::LinkErrorCode>* ended = EndedBy(link, key.origin);
  return ended == nullptr ? nullptr : ended->Find(key.number);
}

RecentIdMap<v1::LinkErrorCode>* LinkLayer::EndedBy(LinkState& link, const std::string& origin) {
  if (origin == link.peer) return &link.ended_there;
  if (origin == context_.node_name()) return &link.ended_here;
  return nullptr;
}

}  // namespace qnet::link
