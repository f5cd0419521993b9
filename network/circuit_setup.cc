// NetworkLayer: virtual-circuit set-up (CircuitSetup and its reply, memory
// reservation, retries) and teardown.
#include "network/network_layer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace qnet::network {

absl::Status NetworkLayer::Reserve(Circuit& c, int slots) {
  const int total = device_.num_slots();
  if (reserved_ + slots > total) {
    return ToStatus(NetworkError::kNoResources,
                    absl::StrCat("node ", Where(), " has ", total, " memory qubits and ", reserved_,
                                 " are reserved by other circuits; this circuit needs ", slots));
  }
  reserved_ += slots;
  c.reserved += slots;
  return absl::OkStatus();
}

uint32_t NetworkLayer::AffordableDepth(const Circuit& c, int sides, uint32_t wanted) const {
  if (c.rounds > 0) return 1;
  const int free = device_.num_slots() - reserved_;
  const uint32_t fits = free > 0 ? static_cast<uint32_t>(free / sides) : 0;
  return std::clamp<uint32_t>(std::min(wanted, fits), 1, std::max<uint32_t>(1, options_.max_pairs_in_flight));
}

void NetworkLayer::SendSetup(Circuit& c) {
  if (c.reserved == 0) {
    // Waiting for this node's memory: try again shortly (the deadline ends it).
    c.depth = AffordableDepth(c, 1, c.planned_depth);
    if (absl::Status s = Reserve(c, c.per_side()); !s.ok()) return ScheduleSetupRetry(c);
  }
  ++c.setup_attempts;
  v1::NetworkMessage m;
  v1::CircuitSetup* s = m.mutable_setup();
  KeyToWire(c.key, s->mutable_circuit());
  for (const std::string& n : c.path) s->add_path(n);
  s->set_pairs(c.number);
  s->set_type(c.type == link::RequestType::kKeep ? 0 : 1);
  s->set_basis(static_cast<uint32_t>(c.basis));
  s->set_min_fidelity(c.min_fidelity);
  s->set_link_min_fidelity(c.link_min_fidelity);
  s->set_cutoff_s(ToSeconds(c.cutoff));
  s->set_purpose_id(c.purpose_id);
  s->set_priority(c.priority);
  s->set_delay_s(ToSeconds(c.delay_from_head + LinkDelay(c.down)));
  s->set_purification_rounds(c.rounds);
  s->set_pairs_in_flight(c.depth);
  Send(c.down, std::move(m));
}

void NetworkLayer::ScheduleSetupRetry(Circuit& c) {
  const CircuitKey key = c.key;
  c.retry = context_.StartTimer(options_.setup_retry, lifetime_.Guard([this, key] {
    Circuit* circuit = FindCircuit(key);
    if (circuit == nullptr) return;
    circuit->retry = kNoTimer;
    SendSetup(*circuit);
  }));
}

void NetworkLayer::OnSetup(const std::string& from, const v1::CircuitSetup& setup) {
  const CircuitKey key = KeyFromWire(setup.circuit());
  auto refuse = [&](NetworkError error, const std::string& message) {
    v1::NetworkMessage m;
    v1::CircuitSetupReply* r = m.mutable_setup_reply();
    *r->mutable_circuit() = setup.circuit();
    r->set_ok(false);
    r->set_error(ToWire(error));
    r->set_message(message);
    Send(from, std::move(m));
  };
  if (FindCircuit(key) != nullptr) return;  // a duplicate
  size_t position = 0;
  while (position < static_cast<size_t>(setup.path_size()) && setup.path(static_cast<int>(position)) != Where()) {
    ++position;
  }
  if (position == 0 || position >= static_cast<size_t>(setup.path_size()) ||
      setup.path(static_cast<int>(position - 1)) != from || setup.pairs() == 0 || setup.type() > 1 ||
      setup.basis() > static_cast<uint32_t>(link::BasisChoice::kE91) ||
      setup.purification_rounds() > kMaxPurificationRounds) {
    return refuse(NetworkError::kRejected, absl::StrCat("node ", Where(), " got a malformed circuit set-up from ",
                                                         from, " (path ", absl::StrJoin(setup.path(), "-"), ")"));
  }
  Circuit c;
  c.key = key;
  c.path.assign(setup.path().begin(), setup.path().end());
  c.position = position;
  c.up = from;
  if (!c.tail()) c.down = c.path[position + 1];
  if (!c.tail() && !routing_.IsUp(c.down)) {
    return refuse(NetworkError::kPeerDown, absl::StrCat("the link ", Where(), "-", c.down, " is down"));
  }
  c.number = setup.pairs();
  c.type = setup.type() == 0 ? link::RequestType::kKeep : link::RequestType::kMeasure;
  c.basis = static_cast<link::BasisChoice>(setup.basis());
  c.min_fidelity = setup.min_fidelity();
  c.link_min_fidelity = setup.link_min_fidelity();
  c.cutoff = FromSeconds(setup.cutoff_s());
  c.rounds = setup.purification_rounds();
  c.purpose_id = setup.purpose_id();
  c.priority = setup.priority();
  c.delay_from_head = FromSeconds(setup.delay_s());
  if (c.tail()) {
    auto receiver = receivers_.find(c.purpose_id);
    if (receiver == receivers_.end()) {
      return refuse(NetworkError::kRejected,
                    absl::StrCat("node ", Where(), " has no receiver for purpose id ", c.purpose_id));
    }
    c.handler = receiver->second;
  }
  const int sides = c.tail() ? 1 : 2;
  c.depth = AffordableDepth(c, sides, std::max<uint32_t>(1, setup.pairs_in_flight()));
  if (absl::Status s = Reserve(c, sides * c.per_side()); !s.ok()) {
    return refuse(NetworkError::kNoResources, std::string(s.message().substr(s.message().find(':') + 2)));
  }
  c.up_label = options_.first_label + next_label_++;
  absl::Status registered = link_.RegisterReceiver(
      c.up_label, lifetime_.Guard([this, key](const link::LinkEvent& e) { OnUpstreamLinkEvent(key, e); }));
  if (!registered.ok()) {
    reserved_ -= c.reserved;
    return refuse(NetworkError::kDeviceError, std::string(registered.message()));
  }
  ++stats_.circuits_set_up;
  Circuit& stored = circuits_.emplace(key, std::move(c)).first->second;
  NoteCircuit(stored, false);
  if (!stored.tail()) {
    SendSetup(stored);
    return;
  }
  stored.established = true;
  stored.path_delay = stored.delay_from_head;
  stored.request_id = next_request_id_++;
  stored.started = context_.Now();
  by_request_[stored.request_id] = key;
  IncomingRequest incoming;
  incoming.request_id = stored.request_id;
  incoming.origin = key.head;
  incoming.request.remote_node = key.head;
  incoming.request.number = stored.number;
  incoming.request.type = stored.type;
  incoming.request.basis = stored.basis;
  incoming.request.min_fidelity = stored.min_fidelity;
  incoming.request.priority = stored.priority;
  incoming.request.purpose_id = stored.purpose_id;
  incoming.path = stored.path;
  Emit(stored.handler, std::move(incoming));
  v1::NetworkMessage m;
  v1::CircuitSetupReply* r = m.mutable_setup_reply();
  KeyToWire(key, r->mutable_circuit());
  r->set_ok(true);
  r->set_link_label(stored.up_label);
  r->set_delay_s(ToSeconds(stored.path_delay));
  r->set_pairs_in_flight(stored.depth);
  Send(stored.up, std::move(m));
}

void NetworkLayer::OnSetupReply(const std::string& from, const v1::CircuitSetupReply& reply) {
  const CircuitKey key = KeyFromWire(reply.circuit());
  Circuit* c = FindCircuit(key);
  if (c == nullptr || c->down != from || c->established) return;
  if (!reply.ok()) {
    const NetworkError error = NetworkErrorFromWire(reply.error()).value_or(NetworkError::kDeviceError);
    if (c->head() && error == NetworkError::kNoResources && c->deadline != kNoTimer) {
      // Memory on the path is taken: try again with a fresh circuit until the deadline.
      Circuit retry = std::move(*c);
      circuits_.erase(key);
      reserved_ -= retry.reserved;
      retry.reserved = 0;
      const uint64_t next = incarnation_ | next_circuit_++;
      NoteCircuit(retry, true,
                  absl::StrCat("NO_RESOURCES on the path: the request goes on as circuit ", key.head, "#", next));
      retry.key.number = next;
      by_request_[retry.request_id] = retry.key;
      Circuit& again = circuits_.emplace(retry.key, std::move(retry)).first->second;
      NoteCircuit(again, false);
      ScheduleSetupRetry(again);
      return;
    }
    if (!c->head()) {
      v1::NetworkMessage m;
      *m.mutable_setup_reply() = reply;
      Send(c->up, std::move(m));
    }
    // The refusal went upstream already; nothing downstream holds state.
    const std::string down = c->down;
    c->down.clear();
    c->up.clear();
    EndCircuit(key, error, reply.message(), down);
    return;
  }
  c->established = true;
  c->down_label = reply.link_label();
  // The path runs at the depth its shortest node could hold: give back the rest.
  if (const uint32_t agreed = std::max<uint32_t>(1, reply.pairs_in_flight()); c->rounds == 0 && agreed < c->depth) {
    const int sides = c->head() ? 1 : 2;
    const int excess = sides * static_cast<int>(c->depth - agreed);
    reserved_ -= excess;
    c->reserved -= excess;
    c->depth = agreed;
  }
  c->credits = static_cast<uint32_t>(c->per_side());
  c->path_delay = FromSeconds(reply.delay_s());
  if (!c->head()) {
    v1::NetworkMessage m;
    v1::CircuitSetupReply* r = m.mutable_setup_reply();
    *r = reply;
    r->set_link_label(c->up_label);
    r->set_pairs_in_flight(c->depth);
    Send(c->up, std::move(m));
  }
  RequestLinkPair(*c);
}

void NetworkLayer::OnTeardown(const std::string& from, const v1::CircuitTeardown& teardown) {
  const CircuitKey key = KeyFromWire(teardown.circuit());
  Circuit* c = FindCircuit(key);
  if (c == nullptr || (c->up != from && c->down != from)) return;
  EndCircuit(key, NetworkErrorFromWire(teardown.error()), teardown.message(), from);
}

NetworkLayer::Circuit* NetworkLayer::FindCircuit(const CircuitKey& key) {
  auto it = circuits_.find(key);
  return it == circuits_.end() ? nullptr : &it->second;
}

NetworkLayer::CircuitKey NetworkLayer::KeyFromWire(const v1::CircuitKey& key) { return {key.head(), key.number()}; }

void NetworkLayer::KeyToWire(const CircuitKey& key, v1::CircuitKey* out) {
  out->set_head(key.head);
  out->set_number(key.number);
}

void NetworkLayer::NoteCircuit(const Circuit& c, bool ended, const std::string& outcome) const {
  if (!options_.on_circuit) return;
  CircuitRecord r;
  r.id = absl::StrCat(c.key.head, "#", c.key.number);
  r.ended = ended;
  r.path = c.path;
  r.position = c.position;
  r.pairs = c.number;
  r.delivered = c.delivered;
  r.outcome = outcome;
  r.request_id = c.request_id;
  options_.on_circuit(r);
}

void NetworkLayer::EndCircuit(const CircuitKey& key, std::optional<NetworkError> error, const std::string& message,
                              const std::string& from) {
  auto it = circuits_.find(key);
  if (it == circuits_.end()) return;
  Circuit c = std::move(it->second);
  circuits_.erase(it);
  NoteCircuit(c, true,
              error.has_value() ? absl::StrCat(std::string(NetworkErrorName(*error)), ": ", message) : std::string("completed"));
  for (const std::string* n : {&c.up, &c.down}) {
    if (n->empty() || *n == from || !routing_.IsUp(*n)) continue;
    v1::NetworkMessage m;
    v1::CircuitTeardown* t = m.mutable_teardown();
    KeyToWire(key, t->mutable_circuit());
    t->set_error(ToWire(error));
    t->set_message(message);
    Send(*n, std::move(m));
  }
  if (c.link_request.has_value()) (void)link_.Cancel(*c.link_request);
  if (c.up_label != 0) (void)link_.UnregisterReceiver(c.up_label);
  for (HeldPair& p : c.up_pairs) FreePair(p);
  for (HeldPair& p : c.down_pairs) FreePair(p);
  if (c.deadline != kNoTimer) context_.CancelTimer(c.deadline);
  if (c.retry != kNoTimer) context_.CancelTimer(c.retry);
  reserved_ -= c.reserved;
  if (c.request_id != 0) by_request_.erase(c.request_id);
  const bool end = c.head() || c.tail();
  if (!end || !c.handler) return;
  if (error.has_value()) {
    Emit(c.handler, RequestFailed{c.request_id, *error, message, c.delivered});
  } else if (c.delivered < c.number) {
    Emit(c.handler, RequestFailed{c.request_id, NetworkError::kDeviceError,
                                  absl::StrCat("the circuit ended with ", c.delivered, " of ", c.number, " pairs"),
                                  c.delivered});
  }
  // A tail that delivered every pair has already reported completion.
}

}  // namespace qnet::network
