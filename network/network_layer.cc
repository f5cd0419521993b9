// NetworkLayer: construction, the service's entry points (receivers,
// Create, Cancel, datagrams), message dispatch, neighbour events and event
// delivery to the layer above.
#include "network/network_layer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "network/network_wire.h"

namespace qnet::network {

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
  layer->routing_.Start();
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
      routing_(context, link, hardware_, links_, options_.advert_refresh, options_.hop_cost, options_.adverts),
      datagrams_(context, routing_) {
  // Newer incarnations start with larger numbers (the runtime's clock), so
  // their circuit numbers are fresh (their adverts' too: AdvertFlooding).
  const uint64_t start = static_cast<uint64_t>(std::max<int64_t>(0, ToNs(context.Now())));
  incarnation_ = (start / 1000) << 20;
}

NetworkLayer::~NetworkLayer() {
  lifetime_.End();
  for (auto& [key, c] : circuits_) {
    for (HeldPair& p : c.up_pairs) FreePair(p);
    for (HeldPair& p : c.down_pairs) FreePair(p);
    if (c.link_request.has_value()) (void)link_.Cancel(*c.link_request);
    if (c.up_label != 0) (void)link_.UnregisterReceiver(c.up_label);
    if (c.deadline != kNoTimer) context_.CancelTimer(c.deadline);
    if (c.retry != kNoTimer) context_.CancelTimer(c.retry);
  }
  if (flush_timer_ != kNoTimer) context_.CancelTimer(flush_timer_);
}

NetworkLayerStats NetworkLayer::stats() const {
  NetworkLayerStats out = stats_;
  out.adverts_stale = routing_.stats().stale;
  out.adverts_refused = routing_.stats().refused_impossible;
  out.adverts_unauthenticated = routing_.stats().refused_unauthenticated;
  return out;
}

void NetworkLayer::OnNeighbourUp(const std::string& neighbour) { routing_.OnNeighbourUp(neighbour); }

void NetworkLayer::OnNeighbourDown(const std::string& neighbour) {
  if (!routing_.MarkNeighbourDown(neighbour)) return;
  std::vector<CircuitKey> affected;
  for (const auto& [key, c] : circuits_) {
    if (c.up == neighbour || c.down == neighbour) affected.push_back(key);
  }
  for (const CircuitKey& key : affected) {
    EndCircuit(key, NetworkError::kPeerDown, absl::StrCat("the link ", Where(), "-", neighbour, " went down"),
               neighbour);
  }
  routing_.OriginateAdvert();
}

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

std::string NetworkLayer::CircuitId(RequestId request) const {
  auto it = by_request_.find(request);
  if (it == by_request_.end()) return "";
  return absl::StrCat(it->second.head, "#", it->second.number);
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
  absl::StatusOr<Route> route = routing_.database().PathTo(Where(), request.remote_node);
  if (!route.ok()) return ToStatus(NetworkError::kNoRoute, std::string(route.status().message()));
  absl::StatusOr<PathPlan> plan = PlanPath(*route, routing_.database(), request.min_fidelity);
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
  // A request for n pairs never needs more than n in flight: reserving more
  // starves other circuits at a shared node (a GHZ root's k one-pair circuits).
  c.planned_depth = std::min<uint32_t>(plan->pairs_in_flight, std::max<uint32_t>(1, request.number));
  c.depth = AffordableDepth(c, 1, c.planned_depth);
  if (absl::Status reserved = Reserve(c, c.per_side()); !reserved.ok()) {
    if (request.max_time == Duration(0)) return reserved;
  }
  const CircuitKey key = c.key;
  const RequestId id = c.request_id;
  Circuit& stored = circuits_.emplace(key, std::move(c)).first->second;
  by_request_[id] = key;
  NoteCircuit(stored, false);
  if (request.max_time > Duration(0)) {
    stored.deadline = context_.StartTimer(request.max_time, lifetime_.Guard([this, id] {
      auto it = by_request_.find(id);
      if (it == by_request_.end()) return;
      Circuit* circuit = FindCircuit(it->second);
      if (circuit != nullptr) circuit->deadline = kNoTimer;
      EndCircuit(it->second, NetworkError::kTimeout,
                 absl::StrCat("max_time passed with ", circuit == nullptr ? 0 : circuit->delivered, " of ",
                              circuit == nullptr ? 0 : circuit->number, " pairs delivered"),
                 "");
    }));
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
  return datagrams_.RegisterReceiver(purpose_id, std::move(handler));
}

absl::Status NetworkLayer::UnregisterDatagramReceiver(uint32_t purpose_id) {
  return datagrams_.UnregisterReceiver(purpose_id);
}

absl::Status NetworkLayer::SendDatagram(const std::string& destination, uint32_t purpose_id, std::string payload) {
  return datagrams_.Send(destination, purpose_id, std::move(payload));
}

void NetworkLayer::Send(const std::string& neighbour, v1::NetworkMessage message) {
  SendNetworkMessage(context_, neighbour, std::move(message));
}

Duration NetworkLayer::LinkDelay(const std::string& neighbour) const {
  for (const physical::PhysicalLink& l : links_) {
    if (l.physics.node_a == neighbour || l.physics.node_b == neighbour) return FibreDelay(l.physics.length_km);
  }
  return Duration(0);
}

void NetworkLayer::OnNetworkMessage(const std::string& from, const v1::NetworkMessage& message) {
  switch (message.body_case()) {
    case v1::NetworkMessage::kAdverts:
      stats_.adverts_received += static_cast<uint64_t>(message.adverts().adverts_size());
      return routing_.OnAdverts(from, message.adverts());
    case v1::NetworkMessage::kSetup: return OnSetup(from, message.setup());
    case v1::NetworkMessage::kSetupReply: return OnSetupReply(from, message.setup_reply());
    case v1::NetworkMessage::kCredit: return OnCredit(from, message.credit());
    case v1::NetworkMessage::kTrack: return OnTrack(from, message.track());
    case v1::NetworkMessage::kVerdict: return OnVerdict(from, message.verdict());
    case v1::NetworkMessage::kTeardown: return OnTeardown(from, message.teardown());
    case v1::NetworkMessage::kPurify: return OnPurify(from, message.purify());
    case v1::NetworkMessage::kPurifyResult: return OnPurifyResult(from, message.purify_result());
    case v1::NetworkMessage::kDatagram: return datagrams_.OnDatagram(message.datagram());
    case v1::NetworkMessage::BODY_NOT_SET: return;
  }
}

void NetworkLayer::Emit(const NetworkEventHandler& handler, NetworkEvent event) {
  if (!handler) return;
  pending_events_.emplace_back(handler, std::move(event));
  if (flush_timer_ != kNoTimer) return;
  flush_timer_ = context_.StartTimer(Duration(0), lifetime_.Guard([this] {
    flush_timer_ = kNoTimer;
    FlushEvents();
  }));
}

void NetworkLayer::FlushEvents() {
  while (!pending_events_.empty()) {
    auto [handler, event] = std::move(pending_events_.front());
    pending_events_.pop_front();
    handler(event);
  }
}

}  // namespace qnet::network
