#include "network/network_layer.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace qnet::network {
namespace {

using link::LinkError;
using quantum::BellState;

int64_t ToNs(TimePoint t) { return t.time_since_epoch().count(); }
TimePoint FromNs(int64_t ns) { return TimePoint(Duration(ns)); }

NetworkError FromLinkError(LinkError e) {
  switch (e) {
    case LinkError::kUnsupported: return NetworkError::kUnsupported;
    case LinkError::kTimeout: return NetworkError::kTimeout;
    case LinkError::kNoResources: return NetworkError::kNoResources;
    case LinkError::kRejected: return NetworkError::kRejected;
    case LinkError::kExpired: return NetworkError::kPeerDown;
    case LinkError::kPeerDown: return NetworkError::kPeerDown;
    case LinkError::kCancelled: return NetworkError::kCancelled;
    case LinkError::kDeviceError: return NetworkError::kDeviceError;
  }
  return NetworkError::kDeviceError;
}

NetworkError FromStatus(const absl::Status& s) {
  std::optional<LinkError> e = link::LinkErrorFromStatusCode(s.code());
  if (s.code() == absl::StatusCode::kInvalidArgument) return NetworkError::kDeviceError;
  return e.has_value() ? FromLinkError(*e) : NetworkError::kDeviceError;
}

BellDiagonal StateFromWire(const v1::CircuitTrack& track) {
  BellDiagonal d;
  if (track.state_size() == 4) {
    for (int i = 0; i < 4; ++i) d.p[static_cast<size_t>(i)] = track.state(i);
  }
  return d;
}

void StateToWire(const BellDiagonal& d, v1::CircuitTrack* track) {
  track->clear_state();
  for (double p : d.p) track->add_state(p);
}

MemoryDecayRates HeadRatesFromWire(const v1::CircuitTrack& track) {
  MemoryDecayRates r;
  if (track.head_t1_s() > 0) r.t1_s = track.head_t1_s();
  if (track.head_t2_s() > 0) r.t2_s = track.head_t2_s();
  return r;
}

double RateToWire(double t) { return std::isfinite(t) && t > 0 ? t : 0.0; }

}  // namespace

absl::StatusOr<std::unique_ptr<NetworkLayer>> NetworkLayer::Build(NodeContext& context,
                                                                  physical::QuantumDevice& device,
                                                                  link::LinkLayer& link,
                                                                  physical::NodeHardware hardware,
                                                                  std::vector<physical::PhysicalLink> links,
                                                                  NetworkLayerOptions options) {
  for (const physical::PhysicalLink& l : links) {
    if (l.physics.node_a != context.node_name() && l.physics.node_b != context.node_name()) {
      return absl::InvalidArgumentError(
          absl::StrCat("link ", l.physics.name, " does not have node ", context.node_name(), " as an end"));
    }
  }
  std::unique_ptr<NetworkLayer> layer(
      new NetworkLayer(context, device, link, std::move(hardware), std::move(links), std::move(options)));
  layer->OriginateAdvert();
  layer->ScheduleRefresh();
  return layer;
}

NetworkLayer::NetworkLayer(NodeContext& context, physical::QuantumDevice& device, link::LinkLayer& link,
                           physical::NodeHardware hardware, std::vector<physical::PhysicalLink> links,
                           NetworkLayerOptions options)
    : context_(context),
      device_(device),
      link_(link),
      hardware_(std::move(hardware)),
      links_(std::move(links)),
      options_(std::move(options)),
      rng_(context.rng().Fork("network")),
      database_(options_.hop_cost) {
  // Newer incarnations start with larger numbers (the runtime's clock), so
  // their adverts replace the old ones and their circuit numbers are fresh.
  const uint64_t start = static_cast<uint64_t>(std::max<int64_t>(0, ToNs(context.Now())));
  advert_sequence_ = start;
  incarnation_ = (start / 1000) << 20;
}

NetworkLayer::~NetworkLayer() {
  *alive_ = false;
  for (auto& [key, c] : circuits_) {
    for (HeldPair& p : c.up_pairs) FreePair(p);
    for (HeldPair& p : c.down_pairs) FreePair(p);
    if (c.link_request != 0) (void)link_.Cancel(c.link_request);
    if (c.up_label != 0) (void)link_.UnregisterReceiver(c.up_label);
    if (c.deadline != kNoTimer) context_.CancelTimer(c.deadline);
    if (c.retry != kNoTimer) context_.CancelTimer(c.retry);
  }
  if (refresh_timer_ != kNoTimer) context_.CancelTimer(refresh_timer_);
  if (flush_timer_ != kNoTimer) context_.CancelTimer(flush_timer_);
}

// ---------------------------------------------------------------- routing

void NetworkLayer::OriginateAdvert() {
  v1::LinkStateAdvert advert;
  advert.set_origin(Where());
  advert.set_sequence(++advert_sequence_);
  advert.set_memory_qubits(static_cast<uint32_t>(std::max(0, hardware_.num_qubits)));
  advert.set_t1_s(RateToWire(hardware_.t1_s));
  advert.set_t2_s(RateToWire(hardware_.t2_s));
  advert.set_single_qubit_gate_error(hardware_.single_qubit_gate_error);
  advert.set_two_qubit_gate_error(hardware_.two_qubit_gate_error);
  advert.set_readout_error_0(hardware_.readout_error_0);
  advert.set_readout_error_1(hardware_.readout_error_1);
  for (const physical::PhysicalLink& l : links_) {
    const std::string& far = l.physics.node_a == Where() ? l.physics.node_b : l.physics.node_a;
    v1::LinkAdvert* a = advert.add_links();
    a->set_neighbour(far);
    a->set_delay_s(ToSeconds(FibreDelay(l.physics.length_km)));
    absl::StatusOr<const link::FidelityTable*> table = link_.FidelityTableFor(far);
    absl::StatusOr<link::FidelityTable::Choice> best =
        table.ok() ? (*table)->Best(link::RequestType::kKeep) : absl::StatusOr<link::FidelityTable::Choice>(table.status());
    // A link that cannot generate is advertised down: no path may use it.
    a->set_up(neighbours_up_.contains(far) && best.ok());
    if (best.ok()) {
      a->set_best_fidelity(best->expected_fidelity);
      const double mean_s = best->calibration->MeanGenerationSeconds();
      a->set_pair_rate_hz(mean_s > 0 && std::isfinite(mean_s) ? 1.0 / mean_s : 0.0);
    }
  }
  database_.Update(advert);
  v1::LinkStateAdverts adverts;
  *adverts.add_adverts() = std::move(advert);
  Flood(adverts, "");
}

void NetworkLayer::Flood(const v1::LinkStateAdverts& adverts, const std::string& except) {
  if (adverts.adverts_size() == 0) return;
  for (const std::string& n : neighbours_up_) {
    if (n == except) continue;
    v1::NetworkMessage m;
    *m.mutable_adverts() = adverts;
    Send(n, std::move(m));
  }
}

void NetworkLayer::OnAdverts(const std::string& from, const v1::LinkStateAdverts& adverts) {
  v1::LinkStateAdverts forward;
  bool reoriginate = false;
  for (const v1::LinkStateAdvert& a : adverts.adverts()) {
    ++stats_.adverts_received;
    if (a.origin() == Where()) {
      // An advert of an earlier incarnation of this node that is newer than
      // ours would shadow it: jump past it.
      if (a.sequence() >= advert_sequence_) {
        advert_sequence_ = a.sequence();
        reoriginate = true;
      }
      continue;
    }
    if (database_.Update(a)) *forward.add_adverts() = a;
  }
  Flood(forward, from);
  if (reoriginate) OriginateAdvert();
}

void NetworkLayer::ScheduleRefresh() {
  std::weak_ptr<bool> alive = alive_;
  refresh_timer_ = context_.StartTimer(options_.advert_refresh, [this, alive] {
    if (alive.expired()) return;
    refresh_timer_ = kNoTimer;
    OriginateAdvert();
    ScheduleRefresh();
  });
}

void NetworkLayer::OnNeighbourUp(const std::string& neighbour) {
  bool known = false;
  for (const physical::PhysicalLink& l : links_) {
    known = known || l.physics.node_a == neighbour || l.physics.node_b == neighbour;
  }
  if (!known) return;
  neighbours_up_.insert(neighbour);
  OriginateAdvert();
  // Database exchange: the neighbour learns everything this node knows.
  v1::NetworkMessage m;
  for (const v1::LinkStateAdvert* a : database_.All()) *m.mutable_adverts()->add_adverts() = *a;
  Send(neighbour, std::move(m));
}

void NetworkLayer::OnNeighbourDown(const std::string& neighbour) {
  if (!neighbours_up_.erase(neighbour)) return;
  std::vector<CircuitKey> affected;
  for (const auto& [key, c] : circuits_) {
    if (c.up == neighbour || c.down == neighbour) affected.push_back(key);
  }
  for (const CircuitKey& key : affected) {
    EndCircuit(key, NetworkError::kPeerDown, absl::StrCat("the link ", Where(), "-", neighbour, " went down"),
               neighbour);
  }
  OriginateAdvert();
}

// ---------------------------------------------------------------- service

absl::Status NetworkLayer::RegisterReceiver(uint32_t purpose_id, NetworkEventHandler handler) {
  if (!handler) return absl::InvalidArgumentError("a receiver needs an event handler");
  if (purpose_id >= options_.first_label) {
    return absl::InvalidArgumentError(
        absl::StrCat("purpose ids from ", options_.first_label, " up are reserved for circuit labels"));
  }
  if (!receivers_.emplace(purpose_id, std::move(handler)).second) {
    return absl::AlreadyExistsError(absl::StrCat("purpose id ", purpose_id, " already has a receiver at ", Where()));
  }
  return absl::OkStatus();
}

absl::Status NetworkLayer::UnregisterReceiver(uint32_t purpose_id) {
  if (receivers_.erase(purpose_id) == 0) {
    return absl::NotFoundError(absl::StrCat("purpose id ", purpose_id, " has no receiver at ", Where()));
  }
  return absl::OkStatus();
}

absl::StatusOr<RequestId> NetworkLayer::Create(const EndToEndRequest& request, NetworkEventHandler handler) {
  if (!handler) return absl::InvalidArgumentError("a request needs an event handler");
  if (request.remote_node == Where()) {
    return absl::InvalidArgumentError(absl::StrCat("remote_node is ", Where(), " itself"));
  }
  if (request.number == 0) return absl::InvalidArgumentError("number must be at least 1");
  if (!(request.min_fidelity >= 0.0 && request.min_fidelity <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("min_fidelity must be in [0, 1], got ", request.min_fidelity));
  }
  if (request.max_time < Duration(0)) return absl::InvalidArgumentError("max_time must not be negative");
  if (request.purpose_id >= options_.first_label) {
    return absl::InvalidArgumentError(
        absl::StrCat("purpose ids from ", options_.first_label, " up are reserved for circuit labels"));
  }
  absl::StatusOr<Route> route = database_.PathTo(Where(), request.remote_node);
  if (!route.ok()) return ToStatus(NetworkError::kNoRoute, std::string(route.status().message()));
  absl::StatusOr<PathPlan> plan = PlanPath(*route, database_, request.min_fidelity);
  if (!plan.ok()) return plan.status();

  Circuit c;
  c.key = {Where(), incarnation_ | next_circuit_++};
  c.path = route->path;
  c.position = 0;
  c.down = c.path[1];
  c.number = request.number;
  c.type = request.type;
  c.basis = request.basis;
  c.min_fidelity = request.min_fidelity;
  c.link_min_fidelity = plan->link_min_fidelity;
  c.cutoff = plan->cutoff;
  c.rounds = plan->purification_rounds;
  c.purpose_id = request.purpose_id;
  c.priority = request.priority;
  c.request_id = next_request_id_++;
  c.handler = std::move(handler);
  c.started = context_.Now();
  if (absl::Status reserved = Reserve(c, c.per_side()); !reserved.ok()) {
    if (request.max_time == Duration(0)) return reserved;
  }
  const CircuitKey key = c.key;
  const RequestId id = c.request_id;
  Circuit& stored = circuits_.emplace(key, std::move(c)).first->second;
  by_request_[id] = key;
  std::weak_ptr<bool> alive = alive_;
  if (request.max_time > Duration(0)) {
    stored.deadline = context_.StartTimer(request.max_time, [this, alive, id] {
      if (alive.expired()) return;
      auto it = by_request_.find(id);
      if (it == by_request_.end()) return;
      Circuit* circuit = FindCircuit(it->second);
      if (circuit != nullptr) circuit->deadline = kNoTimer;
      EndCircuit(it->second, NetworkError::kTimeout,
                 absl::StrCat("max_time passed with ", circuit == nullptr ? 0 : circuit->delivered, " of ",
                              circuit == nullptr ? 0 : circuit->number, " pairs delivered"),
                 "");
    });
  }
  SendSetup(stored);
  return id;
}

absl::Status NetworkLayer::Cancel(RequestId request_id) {
  auto it = by_request_.find(request_id);
  if (it == by_request_.end()) {
    return absl::NotFoundError(absl::StrCat("request ", request_id, " is not active at ", Where()));
  }
  const CircuitKey key = it->second;
  EndCircuit(key, NetworkError::kCancelled, absl::StrCat("cancelled at ", Where()), "");
  return absl::OkStatus();
}

absl::Status NetworkLayer::RegisterDatagramReceiver(uint32_t purpose_id, DatagramHandler handler) {
  if (!handler) return absl::InvalidArgumentError("a datagram receiver needs a handler");
  if (!datagram_receivers_.emplace(purpose_id, std::move(handler)).second) {
    return absl::AlreadyExistsError(
        absl::StrCat("datagram purpose id ", purpose_id, " already has a receiver at ", Where()));
  }
  return absl::OkStatus();
}

absl::Status NetworkLayer::UnregisterDatagramReceiver(uint32_t purpose_id) {
  if (datagram_receivers_.erase(purpose_id) == 0) {
    return absl::NotFoundError(absl::StrCat("datagram purpose id ", purpose_id, " has no receiver at ", Where()));
  }
  return absl::OkStatus();
}

absl::Status NetworkLayer::SendDatagram(const std::string& destination, uint32_t purpose_id, std::string payload) {
  v1::Datagram d;
  d.set_source(Where());
  d.set_destination(destination);
  d.set_purpose_id(purpose_id);
  d.set_payload(std::move(payload));
  d.set_hops_left(64);
  if (destination != Where()) {
    absl::StatusOr<Route> route = database_.PathTo(Where(), destination);
    if (!route.ok()) return ToStatus(NetworkError::kNoRoute, std::string(route.status().message()));
  }
  // Delivered (or forwarded) from the event loop, never inside this call.
  std::weak_ptr<bool> alive = alive_;
  context_.StartTimer(Duration(0), [this, alive, d = std::move(d)]() mutable {
    if (!alive.expired()) OnDatagram(std::move(d));
  });
  return absl::OkStatus();
}

void NetworkLayer::OnDatagram(v1::Datagram d) {
  if (d.destination() == Where()) {
    auto it = datagram_receivers_.find(d.purpose_id());
    if (it == datagram_receivers_.end()) {
      ++dropped_datagrams_;
      return;
    }
    DatagramHandler handler = it->second;  // may unregister itself
    handler(d.source(), d.payload());
    return;
  }
  if (d.hops_left() == 0) {
    ++dropped_datagrams_;
    return;
  }
  absl::StatusOr<Route> route = database_.PathTo(Where(), d.destination());
  if (!route.ok() || !neighbours_up_.contains(route->path[1])) {
    ++dropped_datagrams_;
    return;
  }
  d.set_hops_left(d.hops_left() - 1);
  v1::NetworkMessage m;
  *m.mutable_datagram() = std::move(d);
  Send(route->path[1], std::move(m));
}

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

// ---------------------------------------------------------------- signalling

void NetworkLayer::Send(const std::string& neighbour, v1::NetworkMessage message) {
  v1::PeerMessage m;
  *m.mutable_network() = std::move(message);
  context_.SendToNeighbour(neighbour, std::move(m));
}

Duration NetworkLayer::LinkDelay(const std::string& neighbour) const {
  for (const physical::PhysicalLink& l : links_) {
    if (l.physics.node_a == neighbour || l.physics.node_b == neighbour) return FibreDelay(l.physics.length_km);
  }
  return Duration(0);
}

void NetworkLayer::SendSetup(Circuit& c) {
  if (c.reserved == 0) {
    // Waiting for this node's memory: try again shortly (the deadline ends it).
    if (absl::Status s = Reserve(c, c.per_side()); !s.ok()) {
      std::weak_ptr<bool> alive = alive_;
      const CircuitKey key = c.key;
      c.retry = context_.StartTimer(options_.setup_retry, [this, alive, key] {
        if (alive.expired()) return;
        Circuit* circuit = FindCircuit(key);
        if (circuit == nullptr) return;
        circuit->retry = kNoTimer;
        SendSetup(*circuit);
      });
      return;
    }
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
  Send(c.down, std::move(m));
}

void NetworkLayer::OnNetworkMessage(const std::string& from, const v1::NetworkMessage& message) {
  switch (message.body_case()) {
    case v1::NetworkMessage::kAdverts: return OnAdverts(from, message.adverts());
    case v1::NetworkMessage::kSetup: return OnSetup(from, message.setup());
    case v1::NetworkMessage::kSetupReply: return OnSetupReply(from, message.setup_reply());
    case v1::NetworkMessage::kCredit: return OnCredit(from, message.credit());
    case v1::NetworkMessage::kTrack: return OnTrack(from, message.track());
    case v1::NetworkMessage::kVerdict: return OnVerdict(from, message.verdict());
    case v1::NetworkMessage::kTeardown: return OnTeardown(from, message.teardown());
    case v1::NetworkMessage::kPurify: return OnPurify(from, message.purify());
    case v1::NetworkMessage::kPurifyResult: return OnPurifyResult(from, message.purify_result());
    case v1::NetworkMessage::kDatagram: return OnDatagram(message.datagram());
    case v1::NetworkMessage::BODY_NOT_SET: return;
  }
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
  if (!c.tail() && !neighbours_up_.contains(c.down)) {
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
  if (absl::Status s = Reserve(c, c.tail() ? c.per_side() : 2 * c.per_side()); !s.ok()) {
    return refuse(NetworkError::kNoResources, std::string(s.message().substr(s.message().find(':') + 2)));
  }
  c.up_label = options_.first_label + next_label_++;
  std::weak_ptr<bool> alive = alive_;
  absl::Status registered = link_.RegisterReceiver(c.up_label, [this, alive, key](const link::LinkEvent& e) {
    if (alive.expired()) return;
    OnUpstreamLinkEvent(key, e);
  });
  if (!registered.ok()) {
    reserved_ -= c.reserved;
    return refuse(NetworkError::kDeviceError, std::string(registered.message()));
  }
  ++stats_.circuits_set_up;
  Circuit& stored = circuits_.emplace(key, std::move(c)).first->second;
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
      retry.key.number = incarnation_ | next_circuit_++;
      by_request_[retry.request_id] = retry.key;
      Circuit& stored = circuits_.emplace(retry.key, std::move(retry)).first->second;
      std::weak_ptr<bool> alive = alive_;
      const CircuitKey new_key = stored.key;
      stored.retry = context_.StartTimer(options_.setup_retry, [this, alive, new_key] {
        if (alive.expired()) return;
        Circuit* circuit = FindCircuit(new_key);
        if (circuit == nullptr) return;
        circuit->retry = kNoTimer;
        SendSetup(*circuit);
      });
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
  c->credits = static_cast<uint32_t>(c->per_side());
  c->path_delay = FromSeconds(reply.delay_s());
  if (!c->head()) {
    v1::NetworkMessage m;
    v1::CircuitSetupReply* r = m.mutable_setup_reply();
    *r = reply;
    r->set_link_label(c->up_label);
    Send(c->up, std::move(m));
  }
  RequestLinkPair(*c);
}

void NetworkLayer::OnCredit(const std::string& from, const v1::CircuitCredit& credit) {
  Circuit* c = FindCircuit(KeyFromWire(credit.circuit()));
  if (c == nullptr || c->down != from) return;
  c->credits += credit.credits();
  RequestLinkPair(*c);
}

void NetworkLayer::SendCredit(Circuit& c) {
  if (c.up.empty()) return;
  v1::NetworkMessage m;
  KeyToWire(c.key, m.mutable_credit()->mutable_circuit());
  m.mutable_credit()->set_credits(1);
  Send(c.up, std::move(m));
}

void NetworkLayer::SendTrack(Circuit& c, v1::CircuitTrack track) {
  KeyToWire(c.key, track.mutable_circuit());
  v1::NetworkMessage m;
  *m.mutable_track() = std::move(track);
  Send(c.down, std::move(m));
}

void NetworkLayer::OnTeardown(const std::string& from, const v1::CircuitTeardown& teardown) {
  const CircuitKey key = KeyFromWire(teardown.circuit());
  Circuit* c = FindCircuit(key);
  if (c == nullptr || (c->up != from && c->down != from)) return;
  EndCircuit(key, NetworkErrorFromWire(teardown.error()), teardown.message(), from);
}

// ---------------------------------------------------------------- generation

void NetworkLayer::RequestLinkPair(Circuit& c) {
  if (!c.established || c.down.empty() || c.link_request != 0 || c.credits == 0) return;
  int in_use = 0, ready = 0;
  for (const HeldPair& p : c.down_pairs) {
    in_use += p.slot >= 0 ? 1 : 0;
    ready += p.level == c.rounds ? 1 : 0;
  }
  if (in_use >= c.per_side()) return;  // the circuit's downstream qubits are in use
  if (c.head() && c.delivered + static_cast<uint32_t>(ready) >= c.number) return;  // enough under way
  link::EntanglementRequest r;
  r.remote_node = c.down;
  r.number = 1;
  r.type = link::RequestType::kKeep;
  r.min_fidelity = c.link_min_fidelity;
  r.priority = c.priority;
  r.purpose_id = c.down_label;
  std::weak_ptr<bool> alive = alive_;
  const CircuitKey key = c.key;
  absl::StatusOr<link::RequestId> id = link_.Create(r, [this, alive, key](const link::LinkEvent& e) {
    if (alive.expired()) return;
    OnDownstreamLinkEvent(key, e);
  });
  if (!id.ok()) {
    EndCircuit(key, FromStatus(id.status()),
               absl::StrCat("the link ", Where(), "-", c.down, " refused: ", id.status().message()), "");
    return;
  }
  --c.credits;
  c.link_request = *id;
}

void NetworkLayer::OnDownstreamLinkEvent(const CircuitKey& key, const link::LinkEvent& event) {
  Circuit* c = FindCircuit(key);
  if (c == nullptr) {
    // The circuit is gone: a pair that still arrives is nobody's.
    if (const auto* p = std::get_if<link::PairDelivered>(&event); p != nullptr && p->slot >= 0) {
      (void)device_.Free(p->slot);
    }
    return;
  }
  if (const auto* p = std::get_if<link::PairDelivered>(&event)) return AddPair(*c, false, *p);
  if (const auto* done = std::get_if<link::RequestCompleted>(&event)) {
    if (c->link_request == done->request_id) c->link_request = 0;
    return RequestLinkPair(*c);
  }
  if (const auto* failed = std::get_if<link::RequestFailed>(&event)) {
    if (c->link_request != failed->request_id) return;
    c->link_request = 0;
    EndCircuit(key, FromLinkError(failed->error),
               absl::StrCat("the link ", Where(), "-", c->down, " failed: ", std::string(link::LinkErrorName(failed->error)),
                            ": ", failed->message),
               "");
    return;
  }
  if (const auto* expired = std::get_if<link::PairExpired>(&event)) {
    Discard(*c, false, expired->entanglement_id.sequence, "its link pair expired");
  }
}

void NetworkLayer::OnUpstreamLinkEvent(const CircuitKey& key, const link::LinkEvent& event) {
  Circuit* c = FindCircuit(key);
  if (c == nullptr) {
    if (const auto* p = std::get_if<link::PairDelivered>(&event); p != nullptr && p->slot >= 0) {
      (void)device_.Free(p->slot);
    }
    return;
  }
  if (const auto* incoming = std::get_if<link::IncomingRequest>(&event)) {
    // Only the circuit's upstream neighbour may use its label.
    if (incoming->origin != c->up) (void)link_.Cancel(incoming->request_id);
    return;
  }
  if (const auto* p = std::get_if<link::PairDelivered>(&event)) return AddPair(*c, true, *p);
  if (const auto* expired = std::get_if<link::PairExpired>(&event)) {
    Discard(*c, true, expired->entanglement_id.sequence, "its link pair expired");
  }
}

void NetworkLayer::AddPair(Circuit& c, bool upstream, const link::PairDelivered& delivered) {
  HeldPair pair;
  pair.sequence = delivered.entanglement_id.sequence;
  pair.slot = delivered.slot;
  pair.label = delivered.bell_state;
  pair.fidelity = delivered.fidelity_estimate;
  pair.estimate_time = delivered.estimate_time;
  (upstream ? c.up_pairs : c.down_pairs).push_back(std::move(pair));
  HeldPair& stored = (upstream ? c.up_pairs : c.down_pairs).back();
  const CircuitKey key = c.key;
  const uint64_t sequence = stored.sequence;
  if (upstream) {
    if (auto early = c.early_tracks.find(sequence); early != c.early_tracks.end()) {
      stored.pending_track = std::move(early->second);
      c.early_tracks.erase(early);
    }
  }
  const bool end = upstream ? c.tail() : c.head();
  if (!end && c.cutoff > Duration(0)) {
    const Duration wait = std::max(Duration(0), stored.estimate_time + c.cutoff - context_.Now());
    std::weak_ptr<bool> alive = alive_;
    stored.cutoff = context_.StartTimer(wait, [this, alive, key, upstream, sequence] {
      if (alive.expired()) return;
      OnCutoff(key, upstream, sequence);
    });
  }
  if (c.rounds > 0) {
    if (upstream && stored.pending_track.has_value() && stored.pending_track->dead()) {
      stored.pending_track.reset();
      Discard(c, true, sequence, "its link pair was discarded upstream");
      c.discarded_up.erase(sequence);
      return;
    }
    // Not usable before its purification rounds.
    return upstream ? ServePendingPurify(c) : TryPurify(c);
  }
  PairReady(c, upstream, stored);
}

void NetworkLayer::PairReady(Circuit& c, bool upstream, HeldPair& stored) {
  const uint64_t sequence = stored.sequence;
  const bool end = upstream ? c.tail() : c.head();
  if (end) {
    if (c.type == link::RequestType::kMeasure) return Measure(c, upstream, sequence);
    if (c.head()) return HeadTrack(c, stored);
    if (stored.pending_track.has_value()) {
      v1::CircuitTrack track = *std::move(stored.pending_track);
      stored.pending_track.reset();
      HandleTrack(c, track);
    }
    return;
  }
  if (upstream && stored.pending_track.has_value() && stored.pending_track->dead()) {
    stored.pending_track.reset();
    Discard(c, true, sequence, "its segment was discarded upstream");
    c.discarded_up.erase(sequence);  // the dead track was this pair's track
    return;
  }
  TrySwap(c);
}

bool NetworkLayer::IsNodeA(const std::string& neighbour) const {
  for (const physical::PhysicalLink& l : links_) {
    if (l.physics.node_b == neighbour && l.physics.node_a == Where()) return true;
  }
  return false;
}

void NetworkLayer::RunSteps(std::vector<DeviceStep> steps, std::function<void(absl::StatusOr<int>)> done) {
  struct Run {
    std::vector<DeviceStep> steps;
    size_t next = 0;
    std::function<void(absl::StatusOr<int>)> done;
    std::function<void(absl::StatusOr<int>)> advance;
  };
  auto run = std::make_shared<Run>();
  run->steps = std::move(steps);
  run->done = std::move(done);
  std::weak_ptr<Run> weak = run;
  run->advance = [weak](absl::StatusOr<int> result) {
    std::shared_ptr<Run> r = weak.lock();
    if (r == nullptr) return;
    if (!result.ok() || r->next == r->steps.size()) {
      // `advance` holds `r` only weakly, so the run ends with the last step's callback.
      auto finish = std::move(r->done);
      finish(std::move(result));
      return;
    }
    DeviceStep step = r->steps[r->next++];
    step([r](absl::StatusOr<int> next) { r->advance(std::move(next)); });
  };
  run->advance(0);
}

void NetworkLayer::TryPurify(Circuit& c) {
  // Upstream end of the link: two idle pairs of the same unfinished level.
  HeldPair* keep = nullptr;
  HeldPair* sacrifice = nullptr;
  for (uint32_t level = 0; level < c.rounds && sacrifice == nullptr; ++level) {
    keep = sacrifice = nullptr;
    for (HeldPair& p : c.down_pairs) {
      if (p.busy || p.slot < 0 || p.level != level) continue;
      if (keep == nullptr) {
        keep = &p;
      } else {
        sacrifice = &p;
        break;
      }
    }
  }
  if (keep == nullptr || sacrifice == nullptr) return;
  keep->busy = sacrifice->busy = true;
  const CircuitKey key = c.key;
  const uint64_t keep_sequence = keep->sequence, sacrifice_sequence = sacrifice->sequence;
  const int keep_slot = keep->slot, sacrifice_slot = sacrifice->slot;
  const quantum::BellState keep_label = keep->label, sacrifice_label = sacrifice->label;
  const double angle = IsNodeA(c.down) ? M_PI / 2 : -M_PI / 2;
  physical::QuantumDevice* device = &device_;
  auto done_status = [](std::function<void(absl::StatusOr<int>)> next) {
    return [next](absl::Status s) { next(s.ok() ? absl::StatusOr<int>(0) : absl::StatusOr<int>(s)); };
  };
  std::vector<DeviceStep> steps = {
      // Both pairs to PHI+ first: DEJMPS is defined in that frame.
      [=](auto next) { device->ApplyPauli(keep_slot, quantum::XBit(keep_label), quantum::ZBit(keep_label), done_status(next)); },
      [=](auto next) {
        device->ApplyPauli(sacrifice_slot, quantum::XBit(sacrifice_label), quantum::ZBit(sacrifice_label), done_status(next));
      },
      [=](auto next) { device->ApplyGate(keep_slot, physical::Gate::Rx(angle), done_status(next)); },
      [=](auto next) { device->ApplyGate(sacrifice_slot, physical::Gate::Rx(angle), done_status(next)); },
      [=](auto next) {
        device->ApplyTwoQubitGate(keep_slot, sacrifice_slot, physical::TwoQubitGate::kCnot, done_status(next));
      },
      [=](auto next) { device->Measure(sacrifice_slot, quantum::Basis::Z(), next); },
  };
  std::weak_ptr<bool> alive = alive_;
  RunSteps(std::move(steps), [this, alive, key, keep_sequence, sacrifice_sequence](absl::StatusOr<int> outcome) {
    if (alive.expired()) return;
    Circuit* circuit = FindCircuit(key);
    if (circuit == nullptr) return;
    if (!outcome.ok()) {
      EndCircuit(key, NetworkError::kDeviceError,
                 absl::StrCat("purification at ", Where(), " failed: ", outcome.status().message()), "");
      return;
    }
    if (HeldPair* sacrificed = FindPair(*circuit, false, sacrifice_sequence)) FreePair(*sacrificed);
    ErasePair(*circuit, false, sacrifice_sequence);
    v1::NetworkMessage m;
    v1::CircuitPurify* p = m.mutable_purify();
    KeyToWire(key, p->mutable_circuit());
    p->set_keep_sequence(keep_sequence);
    p->set_sacrifice_sequence(sacrifice_sequence);
    p->set_outcome(*outcome);
    Send(circuit->down, std::move(m));
    RequestLinkPair(*circuit);
  });
}

void NetworkLayer::OnPurify(const std::string& from, const v1::CircuitPurify& purify) {
  Circuit* c = FindCircuit(KeyFromWire(purify.circuit()));
  if (c == nullptr || c->up != from) return;
  if (!StartPurifyHere(*c, purify)) c->pending_purify.push_back(purify);
}

void NetworkLayer::ServePendingPurify(Circuit& c) {
  std::vector<v1::CircuitPurify> pending = std::move(c.pending_purify);
  c.pending_purify.clear();
  const CircuitKey key = c.key;
  for (const v1::CircuitPurify& p : pending) {
    Circuit* circuit = FindCircuit(key);
    if (circuit == nullptr) return;
    if (!StartPurifyHere(*circuit, p)) circuit->pending_purify.push_back(p);
  }
}

bool NetworkLayer::StartPurifyHere(Circuit& c, const v1::CircuitPurify& purify) {
  const uint64_t keep_sequence = purify.keep_sequence(), sacrifice_sequence = purify.sacrifice_sequence();
  const bool keep_gone = c.discarded_up.contains(keep_sequence);
  const bool sacrifice_gone = c.discarded_up.contains(sacrifice_sequence);
  HeldPair* keep = FindPair(c, true, keep_sequence);
  HeldPair* sacrifice = FindPair(c, true, sacrifice_sequence);
  auto reply = [&](bool success, double fidelity, const std::string& message) {
    v1::NetworkMessage m;
    v1::CircuitPurifyResult* r = m.mutable_purify_result();
    KeyToWire(c.key, r->mutable_circuit());
    r->set_keep_sequence(keep_sequence);
    r->set_success(success);
    r->set_fidelity(fidelity);
    r->set_message(message);
    Send(c.up, std::move(m));
  };
  if (keep_gone || sacrifice_gone) {
    // This end dropped one of them (cutoff): the round fails.
    c.discarded_up.erase(keep_sequence);
    c.discarded_up.erase(sacrifice_sequence);
    for (uint64_t s : {keep_sequence, sacrifice_sequence}) {
      if (HeldPair* p = FindPair(c, true, s); p != nullptr && !p->busy) {
        if (p->slot >= 0) SendCredit(c);
        FreePair(*p);
        ErasePair(c, true, s);
      }
    }
    reply(false, 0.0, absl::StrCat("a pair of the round was discarded at ", Where()));
    return true;
  }
  if (keep == nullptr || sacrifice == nullptr || keep->busy || sacrifice->busy) return false;  // not here yet
  keep->busy = sacrifice->busy = true;
  const int keep_slot = keep->slot, sacrifice_slot = sacrifice->slot;
  const double angle = IsNodeA(c.up) ? M_PI / 2 : -M_PI / 2;
  physical::QuantumDevice* device = &device_;
  auto done_status = [](std::function<void(absl::StatusOr<int>)> next) {
    return [next](absl::Status s) { next(s.ok() ? absl::StatusOr<int>(0) : absl::StatusOr<int>(s)); };
  };
  std::vector<DeviceStep> steps = {
      [=](auto next) { device->ApplyGate(keep_slot, physical::Gate::Rx(angle), done_status(next)); },
      [=](auto next) { device->ApplyGate(sacrifice_slot, physical::Gate::Rx(angle), done_status(next)); },
      [=](auto next) {
        device->ApplyTwoQubitGate(keep_slot, sacrifice_slot, physical::TwoQubitGate::kCnot, done_status(next));
      },
      [=](auto next) { device->Measure(sacrifice_slot, quantum::Basis::Z(), next); },
  };
  std::weak_ptr<bool> alive = alive_;
  const CircuitKey key = c.key;
  const int far_outcome = purify.outcome();
  RunSteps(std::move(steps), [this, alive, key, keep_sequence, sacrifice_sequence, far_outcome](
                                 absl::StatusOr<int> outcome) {
    if (alive.expired()) return;
    Circuit* circuit = FindCircuit(key);
    if (circuit == nullptr) return;
    if (!outcome.ok()) {
      EndCircuit(key, NetworkError::kDeviceError,
                 absl::StrCat("purification at ", Where(), " failed: ", outcome.status().message()), "");
      return;
    }
    HeldPair* kept = FindPair(*circuit, true, keep_sequence);
    HeldPair* sacrificed = FindPair(*circuit, true, sacrifice_sequence);
    if (kept == nullptr || sacrificed == nullptr) return;
    // The model of the round, from both pairs' estimates at this moment.
    const TimePoint now = context_.Now();
    auto state_now = [&](const HeldPair& p) {
      return Decay(BellDiagonal::Werner(p.fidelity), now - p.estimate_time, NeighbourRates(*circuit, circuit->up),
                   now - p.estimate_time, OwnRates(*circuit));
    };
    const double fidelity = BellDiagonal::Dejmps(state_now(*kept), state_now(*sacrificed)).first.fidelity();
    FreePair(*sacrificed);
    ErasePair(*circuit, true, sacrifice_sequence);
    SendCredit(*circuit);
    kept = FindPair(*circuit, true, keep_sequence);
    const bool success = *outcome == far_outcome;
    v1::NetworkMessage m;
    v1::CircuitPurifyResult* r = m.mutable_purify_result();
    KeyToWire(key, r->mutable_circuit());
    r->set_keep_sequence(keep_sequence);
    r->set_success(success);
    r->set_fidelity(fidelity);
    Send(circuit->up, std::move(m));
    if (!success) {
      ++stats_.purification_failures;
      FreePair(*kept);
      ErasePair(*circuit, true, keep_sequence);
      SendCredit(*circuit);
      return;
    }
    ++stats_.purifications;
    kept->busy = false;
    kept->level += 1;
    kept->label = quantum::BellState::kPhiPlus;
    kept->fidelity = fidelity;
    kept->estimate_time = now;
    if (kept->level == circuit->rounds) PairReady(*circuit, true, *kept);
  });
  return true;
}

void NetworkLayer::OnPurifyResult(const std::string& from, const v1::CircuitPurifyResult& result) {
  Circuit* c = FindCircuit(KeyFromWire(result.circuit()));
  if (c == nullptr || c->down != from) return;
  HeldPair* kept = FindPair(*c, false, result.keep_sequence());
  if (kept == nullptr) return;
  kept->busy = false;
  if (!result.success()) {
    if (c->head()) ++stats_.purification_failures;
    FreePair(*kept);
    ErasePair(*c, false, result.keep_sequence());
    RequestLinkPair(*c);
    TryPurify(*c);
    return;
  }
  kept->level += 1;
  kept->label = quantum::BellState::kPhiPlus;
  kept->fidelity = result.fidelity();
  kept->estimate_time = context_.Now();
  if (kept->level == c->rounds) {
    PairReady(*c, false, *kept);
  } else {
    TryPurify(*c);
  }
}

void NetworkLayer::TrySwap(Circuit& c) {
  if (c.swapping) return;  // one swap at a time
  HeldPair* up = nullptr;
  HeldPair* down = nullptr;
  for (HeldPair& p : c.up_pairs) {
    if (up == nullptr && !p.busy && p.slot >= 0 && p.level == c.rounds) up = &p;
  }
  for (HeldPair& p : c.down_pairs) {
    if (down == nullptr && !p.busy && p.slot >= 0 && p.level == c.rounds) down = &p;
  }
  if (up == nullptr || down == nullptr) return;
  up->busy = down->busy = true;
  c.swapping = true;
  std::weak_ptr<bool> alive = alive_;
  const CircuitKey key = c.key;
  const uint64_t up_sequence = up->sequence;
  const uint64_t down_sequence = down->sequence;
  device_.BellMeasure(up->slot, down->slot,
                      [this, alive, key, up_sequence, down_sequence](absl::StatusOr<BellState> outcome) {
                        if (alive.expired()) return;
                        OnSwapped(key, up_sequence, down_sequence, std::move(outcome));
                      });
}

void NetworkLayer::OnSwapped(const CircuitKey& key, uint64_t up_sequence, uint64_t down_sequence,
                             absl::StatusOr<BellState> outcome) {
  Circuit* c = FindCircuit(key);
  if (c == nullptr) return;
  c->swapping = false;
  HeldPair* up = FindPair(*c, true, up_sequence);
  HeldPair* down = FindPair(*c, false, down_sequence);
  if (up == nullptr || down == nullptr) return;
  up->busy = down->busy = false;
  if (!outcome.ok()) {
    Discard(*c, true, up_sequence, absl::StrCat("the Bell-state measurement failed: ", outcome.status().message()));
    Discard(*c, false, down_sequence, "the Bell-state measurement failed");
    return;
  }
  ++stats_.swaps;
  const TimePoint now = context_.Now();
  SwapRecord record;
  record.down_sequence = down_sequence;
  record.outcome = *outcome;
  record.down_label = down->label;
  record.time = now;
  record.down_state = Decay(BellDiagonal::Werner(down->fidelity), now - down->estimate_time, OwnRates(*c),
                            now - down->estimate_time, NeighbourRates(*c, c->down));
  std::optional<v1::CircuitTrack> pending = std::move(up->pending_track);
  FreePair(*up);
  FreePair(*down);
  ErasePair(*c, true, up_sequence);
  ErasePair(*c, false, down_sequence);
  c->swaps[up_sequence] = record;
  SendCredit(*c);
  if (pending.has_value()) HandleTrack(*c, *pending);
  if ((c = FindCircuit(key)) == nullptr) return;
  RequestLinkPair(*c);
  TrySwap(*c);
}

void NetworkLayer::OnCutoff(const CircuitKey& key, bool upstream, uint64_t sequence) {
  Circuit* c = FindCircuit(key);
  if (c == nullptr) return;
  HeldPair* p = FindPair(*c, upstream, sequence);
  if (p == nullptr) return;
  p->cutoff = kNoTimer;
  if (p->busy) return;
  Discard(*c, upstream, sequence,
          absl::StrCat("it waited longer than the cutoff ", FormatDuration(c->cutoff), " at ", Where()));
}

void NetworkLayer::Measure(Circuit& c, bool upstream, uint64_t sequence) {
  HeldPair* p = FindPair(c, upstream, sequence);
  if (p == nullptr) return;
  // Each end picks its basis on its own (the head is CHSH's A, the tail B).
  const bool first = rng_.UniformInt(2) == 0;
  switch (c.basis) {
    case link::BasisChoice::kZ: p->basis = link::MeasurementBasis::kZ; break;
    case link::BasisChoice::kX: p->basis = link::MeasurementBasis::kX; break;
    case link::BasisChoice::kY: p->basis = link::MeasurementBasis::kY; break;
    case link::BasisChoice::kBb84: p->basis = first ? link::MeasurementBasis::kZ : link::MeasurementBasis::kX; break;
    case link::BasisChoice::kSixState: {
      const uint64_t k = rng_.UniformInt(3);
      p->basis = k == 0 ? link::MeasurementBasis::kZ : (k == 1 ? link::MeasurementBasis::kX : link::MeasurementBasis::kY);
      break;
    }
    case link::BasisChoice::kChsh:
      p->basis = c.head() ? (first ? link::MeasurementBasis::kChshA0 : link::MeasurementBasis::kChshA1)
                          : (first ? link::MeasurementBasis::kChshB0 : link::MeasurementBasis::kChshB1);
      break;
    case link::BasisChoice::kE91: {
      // The head picks a key basis; the tail adds the CHSH settings B0, B1.
      constexpr link::MeasurementBasis kTail[] = {link::MeasurementBasis::kZ, link::MeasurementBasis::kX,
                                                  link::MeasurementBasis::kChshB0, link::MeasurementBasis::kChshB1};
      p->basis = c.head() ? (first ? link::MeasurementBasis::kZ : link::MeasurementBasis::kX)
                          : kTail[rng_.UniformInt(4)];
      break;
    }
  }
  p->busy = true;
  std::weak_ptr<bool> alive = alive_;
  const CircuitKey key = c.key;
  device_.Measure(p->slot, link::ToQuantumBasis(p->basis),
                  [this, alive, key, upstream, sequence](absl::StatusOr<int> outcome) {
                    if (alive.expired()) return;
                    OnMeasured(key, upstream, sequence, std::move(outcome));
                  });
}

void NetworkLayer::OnMeasured(const CircuitKey& key, bool upstream, uint64_t sequence, absl::StatusOr<int> outcome) {
  Circuit* c = FindCircuit(key);
  if (c == nullptr) return;
  HeldPair* p = FindPair(*c, upstream, sequence);
  if (p == nullptr) return;
  p->busy = false;
  if (!outcome.ok()) {
    EndCircuit(key, NetworkError::kDeviceError,
               absl::StrCat("measuring a qubit at ", Where(), " failed: ", outcome.status().message()), "");
    return;
  }
  p->measured = true;
  p->outcome = *outcome;
  p->measured_at = context_.Now();
  FreePair(*p);
  if (c->head()) {
    HeadTrack(*c, *p);
    RequestLinkPair(*c);
    return;
  }
  SendCredit(*c);
  if (p->pending_track.has_value()) {
    v1::CircuitTrack track = *std::move(p->pending_track);
    p->pending_track.reset();
    HandleTrack(*c, track);
  }
}

void NetworkLayer::HeadTrack(Circuit& c, HeldPair& pair) {
  pair.tracked = true;
  v1::CircuitTrack track;
  track.set_link_sequence(pair.sequence);
  track.set_head_pair(pair.sequence);
  track.set_frame(static_cast<uint32_t>(pair.label));
  BellDiagonal state = BellDiagonal::Werner(pair.fidelity);
  TimePoint at = pair.estimate_time;
  if (pair.measured) {
    // The head's qubit stopped decaying when it was measured.
    const Duration wait = pair.measured_at - pair.estimate_time;
    state = Decay(state, wait, OwnRates(c), wait, NeighbourRates(c, c.down));
    at = pair.measured_at;
  } else {
    track.set_head_t1_s(RateToWire(hardware_.t1_s));
    track.set_head_t2_s(RateToWire(hardware_.t2_s));
  }
  StateToWire(state, &track);
  track.set_state_time_ns(ToNs(at));
  SendTrack(c, std::move(track));
}

void NetworkLayer::OnTrack(const std::string& from, const v1::CircuitTrack& track) {
  Circuit* c = FindCircuit(KeyFromWire(track.circuit()));
  if (c == nullptr || c->up != from) return;
  HandleTrack(*c, track);
}

void NetworkLayer::HandleTrack(Circuit& c, const v1::CircuitTrack& track) {
  const uint64_t sequence = track.link_sequence();
  if (auto swap = c.swaps.find(sequence); swap != c.swaps.end()) {
    const SwapRecord record = swap->second;
    c.swaps.erase(swap);
    v1::CircuitTrack next;
    next.set_link_sequence(record.down_sequence);
    next.set_head_pair(track.head_pair());
    next.set_dead(track.dead());
    if (!track.dead()) {
      const MemoryDecayRates head = HeadRatesFromWire(track);
      const Duration wait = record.time - FromNs(track.state_time_ns());
      const BellDiagonal segment = Decay(StateFromWire(track), wait, head, wait, OwnRates(c));
      const BellDiagonal joined =
          BellDiagonal::Swap(segment, record.down_state).With(BellMeasurementErrors(hardware_));
      const BellState frame =
          quantum::Compose(quantum::Compose(static_cast<BellState>(track.frame() & 3), record.down_label),
                           record.outcome);
      next.set_frame(static_cast<uint32_t>(frame));
      StateToWire(joined, &next);
      next.set_state_time_ns(ToNs(record.time));
      next.set_head_t1_s(track.head_t1_s());
      next.set_head_t2_s(track.head_t2_s());
    }
    SendTrack(c, std::move(next));
    return;
  }
  HeldPair* pair = FindPair(c, true, sequence);
  if (pair != nullptr) {
    if (track.dead()) {
      if (pair->busy) {
        pair->pending_track = track;
        return;
      }
      Discard(c, true, sequence, "its segment was discarded upstream");
      c.discarded_up.erase(sequence);  // the dead track was this pair's track
      return;
    }
    if (c.tail() && !pair->busy) return Decide(c, *pair, track);
    pair->pending_track = track;  // used once the swap (or measurement) is done
    return;
  }
  if (c.discarded_up.erase(sequence) > 0) {
    if (track.dead()) return;
    // The head's qubit is joined to a pair this node dropped: the head frees it.
    v1::NetworkMessage m;
    v1::CircuitVerdict* v = m.mutable_verdict();
    KeyToWire(c.key, v->mutable_circuit());
    v->set_head_pair(track.head_pair());
    v->set_delivered(false);
    v->set_message(absl::StrCat("a link pair of the path was discarded at ", Where()));
    Send(c.up, std::move(m));
    return;
  }
  c.early_tracks[sequence] = track;  // the link layer has not delivered the pair here yet
}

void NetworkLayer::Decide(Circuit& c, HeldPair& pair, const v1::CircuitTrack& track) {
  const BellDiagonal segment = StateFromWire(track);
  const TimePoint t0 = FromNs(track.state_time_ns());
  const TimePoint now = context_.Now();
  BellDiagonal estimate;
  TimePoint at;
  if (pair.measured) {
    at = std::max(t0, pair.measured_at);
    estimate = Decay(segment, Duration(0), MemoryDecayRates::None(), pair.measured_at - t0, OwnRates(c));
  } else {
    // KEEP: judged at the time the head will learn of it (both qubits wait until then).
    at = now + c.path_delay;
    estimate = Decay(segment, at - t0, HeadRatesFromWire(track), at - t0, OwnRates(c));
  }
  const double fidelity = estimate.fidelity();
  const BellState frame = static_cast<BellState>(track.frame() & 3);
  v1::NetworkMessage m;
  v1::CircuitVerdict* v = m.mutable_verdict();
  KeyToWire(c.key, v->mutable_circuit());
  v->set_head_pair(track.head_pair());
  const uint64_t sequence = pair.sequence;
  if (c.delivered < c.number && fidelity >= c.min_fidelity) {
    PairDelivered d;
    d.request_id = c.request_id;
    d.id = {c.key.head, Where(), c.key.number, c.delivered};
    d.remote_node = c.key.head;
    d.purpose_id = c.purpose_id;
    d.pair_index = c.delivered;
    d.type = c.type;
    d.bell_state = frame;
    d.fidelity_estimate = fidelity;
    d.estimate_time = at;
    d.path = c.path;
    if (pair.measured) {
      d.outcome = pair.outcome;
      d.basis = pair.basis;
    } else {
      d.slot = pair.slot;
      pair.slot = -1;  // handed up
      if (pair.cutoff != kNoTimer) context_.CancelTimer(pair.cutoff);
      pair.cutoff = kNoTimer;
      SendCredit(c);
    }
    v->set_delivered(true);
    v->set_sequence(c.delivered);
    v->set_bell_state(static_cast<uint32_t>(frame));
    v->set_fidelity(fidelity);
    v->set_estimate_time_ns(ToNs(at));
    ++c.delivered;
    ++stats_.pairs_delivered;
    Emit(c.handler, std::move(d));
    if (c.delivered == c.number) {
      Emit(c.handler, RequestCompleted{c.request_id, c.delivered});
      c.handler = nullptr;  // ended here; the head's teardown follows
    }
  } else {
    ++stats_.rejected_pairs;
    v->set_delivered(false);
    v->set_message(c.delivered >= c.number
                       ? std::string("the request is complete")
                       : absl::StrFormat("the end-to-end fidelity estimate %.4f is below min_fidelity %.4f", fidelity,
                                         c.min_fidelity));
    if (pair.slot >= 0) {
      FreePair(pair);
      SendCredit(c);
    }
  }
  ErasePair(c, true, sequence);
  Send(c.up, std::move(m));
}

void NetworkLayer::OnVerdict(const std::string& from, const v1::CircuitVerdict& verdict) {
  const CircuitKey key = KeyFromWire(verdict.circuit());
  Circuit* c = FindCircuit(key);
  if (c == nullptr || c->down != from) return;
  if (!c->head()) {
    v1::NetworkMessage m;
    *m.mutable_verdict() = verdict;
    Send(c->up, std::move(m));
    return;
  }
  HeldPair* pair = FindPair(*c, false, verdict.head_pair());
  if (pair == nullptr) return;
  if (verdict.delivered() && c->delivered < c->number) {
    PairDelivered d;
    d.request_id = c->request_id;
    d.id = {c->key.head, c->path.back(), c->key.number, verdict.sequence()};
    d.remote_node = c->path.back();
    d.purpose_id = c->purpose_id;
    d.pair_index = c->delivered;
    d.type = c->type;
    d.bell_state = static_cast<BellState>(verdict.bell_state() & 3);
    d.fidelity_estimate = verdict.fidelity();
    d.estimate_time = FromNs(verdict.estimate_time_ns());
    d.path = c->path;
    if (pair->measured) {
      d.outcome = pair->outcome;
      d.basis = pair->basis;
    } else {
      d.slot = pair->slot;
      pair->slot = -1;
    }
    ++c->delivered;
    ++stats_.pairs_delivered;
    Emit(c->handler, std::move(d));
  } else {
    FreePair(*pair);
  }
  ErasePair(*c, false, verdict.head_pair());
  if (c->delivered == c->number) {
    Emit(c->handler, RequestCompleted{c->request_id, c->delivered});
    c->handler = nullptr;  // ended; the teardown must not report again
    EndCircuit(key, std::nullopt, "completed", "");
    return;
  }
  RequestLinkPair(*c);
}

void NetworkLayer::Discard(Circuit& c, bool upstream, uint64_t sequence, const std::string& why) {
  HeldPair* pair = FindPair(c, upstream, sequence);
  if (pair == nullptr || pair->busy) return;
  ++stats_.discarded_pairs;
  const bool had_slot = pair->slot >= 0;
  std::optional<v1::CircuitTrack> pending = std::move(pair->pending_track);
  FreePair(*pair);
  ErasePair(c, upstream, sequence);
  if (upstream) {
    if (had_slot) SendCredit(c);
    if (pending.has_value()) {
      if (!pending->dead()) {
        v1::NetworkMessage m;
        v1::CircuitVerdict* v = m.mutable_verdict();
        KeyToWire(c.key, v->mutable_circuit());
        v->set_head_pair(pending->head_pair());
        v->set_delivered(false);
        v->set_message(absl::StrCat("a link pair was discarded at ", Where(), ": ", why));
        Send(c.up, std::move(m));
      }
    } else {
      c.discarded_up.insert(sequence);
    }
    return;
  }
  if (c.head()) {
    RequestLinkPair(c);
    return;
  }
  // The downstream segment starting here is void: say so along the circuit.
  v1::CircuitTrack dead;
  dead.set_link_sequence(sequence);
  dead.set_dead(true);
  SendTrack(c, std::move(dead));
  RequestLinkPair(c);
}

NetworkLayer::HeldPair* NetworkLayer::FindPair(Circuit& c, bool upstream, uint64_t sequence) {
  for (HeldPair& p : upstream ? c.up_pairs : c.down_pairs) {
    if (p.sequence == sequence) return &p;
  }
  return nullptr;
}

void NetworkLayer::ErasePair(Circuit& c, bool upstream, uint64_t sequence) {
  std::deque<HeldPair>& pairs = upstream ? c.up_pairs : c.down_pairs;
  for (auto it = pairs.begin(); it != pairs.end(); ++it) {
    if (it->sequence == sequence) {
      if (it->cutoff != kNoTimer) context_.CancelTimer(it->cutoff);
      pairs.erase(it);
      return;
    }
  }
}

void NetworkLayer::FreePair(HeldPair& pair) {
  if (pair.cutoff != kNoTimer) {
    context_.CancelTimer(pair.cutoff);
    pair.cutoff = kNoTimer;
  }
  if (pair.slot >= 0) {
    (void)device_.Free(pair.slot);
    pair.slot = -1;
    link_.OnMemoryFreed();  // a link request waiting for memory may go on
  }
}

MemoryDecayRates NetworkLayer::NeighbourRates(const Circuit& /*c*/, const std::string& neighbour) const {
  for (const physical::PhysicalLink& l : links_) {
    if (l.physics.node_a == neighbour || l.physics.node_b == neighbour) return MemoryDecayRates::Of(l.far_end);
  }
  return MemoryDecayRates::None();
}

MemoryDecayRates NetworkLayer::OwnRates(const Circuit& /*c*/) const { return MemoryDecayRates::Of(hardware_); }

// ---------------------------------------------------------------- lifecycle

NetworkLayer::Circuit* NetworkLayer::FindCircuit(const CircuitKey& key) {
  auto it = circuits_.find(key);
  return it == circuits_.end() ? nullptr : &it->second;
}

NetworkLayer::CircuitKey NetworkLayer::KeyFromWire(const v1::CircuitKey& key) { return {key.head(), key.number()}; }

void NetworkLayer::KeyToWire(const CircuitKey& key, v1::CircuitKey* out) {
  out->set_head(key.head);
  out->set_number(key.number);
}

void NetworkLayer::EndCircuit(const CircuitKey& key, std::optional<NetworkError> error, const std::string& message,
                              const std::string& from) {
  auto it = circuits_.find(key);
  if (it == circuits_.end()) return;
  Circuit c = std::move(it->second);
  circuits_.erase(it);
  for (const std::string* n : {&c.up, &c.down}) {
    if (n->empty() || *n == from || !neighbours_up_.contains(*n)) continue;
    v1::NetworkMessage m;
    v1::CircuitTeardown* t = m.mutable_teardown();
    KeyToWire(key, t->mutable_circuit());
    t->set_error(ToWire(error));
    t->set_message(message);
    Send(*n, std::move(m));
  }
  if (c.link_request != 0) (void)link_.Cancel(c.link_request);
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

int NetworkLayer::held_slots() const {
  int n = 0;
  for (const auto& [key, c] : circuits_) {
    for (const HeldPair& p : c.up_pairs) n += p.slot >= 0 ? 1 : 0;
    for (const HeldPair& p : c.down_pairs) n += p.slot >= 0 ? 1 : 0;
  }
  return n;
}

void NetworkLayer::Emit(const NetworkEventHandler& handler, NetworkEvent event) {
  if (!handler) return;
  pending_events_.emplace_back(handler, std::move(event));
  if (flush_timer_ != kNoTimer) return;
  std::weak_ptr<bool> alive = alive_;
  flush_timer_ = context_.StartTimer(Duration(0), [this, alive] {
    if (alive.expired()) return;
    flush_timer_ = kNoTimer;
    FlushEvents();
  });
}

void NetworkLayer::FlushEvents() {
  while (!pending_events_.empty()) {
    auto [handler, event] = std::move(pending_events_.front());
    pending_events_.pop_front();
    handler(event);
  }
}

}  // namespace qnet::network
