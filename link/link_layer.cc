#include "link/link_layer.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"

namespace qnet::link {
namespace {

v1::LinkErrorCode ErrorToWire(LinkError e) {
  switch (e) {
    case LinkError::kUnsupported: return v1::LINK_ERROR_UNSUPPORTED;
    case LinkError::kTimeout: return v1::LINK_ERROR_TIMEOUT;
    case LinkError::kNoResources: return v1::LINK_ERROR_NO_RESOURCES;
    case LinkError::kRejected: return v1::LINK_ERROR_REJECTED;
    case LinkError::kExpired: return v1::LINK_ERROR_EXPIRED;
    case LinkError::kPeerDown: return v1::LINK_ERROR_PEER_DOWN;
    case LinkError::kCancelled: return v1::LINK_ERROR_CANCELLED;
    case LinkError::kDeviceError: return v1::LINK_ERROR_DEVICE_ERROR;
  }
  return v1::LINK_ERROR_DEVICE_ERROR;
}

std::optional<LinkError> ErrorFromWire(v1::LinkErrorCode code) {
  switch (code) {
    case v1::LINK_ERROR_UNSUPPORTED: return LinkError::kUnsupported;
    case v1::LINK_ERROR_TIMEOUT: return LinkError::kTimeout;
    case v1::LINK_ERROR_NO_RESOURCES: return LinkError::kNoResources;
    case v1::LINK_ERROR_REJECTED: return LinkError::kRejected;
    case v1::LINK_ERROR_EXPIRED: return LinkError::kExpired;
    case v1::LINK_ERROR_PEER_DOWN: return LinkError::kPeerDown;
    case v1::LINK_ERROR_CANCELLED: return LinkError::kCancelled;
    case v1::LINK_ERROR_DEVICE_ERROR: return LinkError::kDeviceError;
    default: return std::nullopt;
  }
}

v1::LinkBasisChoice BasisToWire(BasisChoice b) {
  switch (b) {
    case BasisChoice::kZ: return v1::LINK_BASIS_Z;
    case BasisChoice::kX: return v1::LINK_BASIS_X;
    case BasisChoice::kY: return v1::LINK_BASIS_Y;
    case BasisChoice::kBb84: return v1::LINK_BASIS_BB84;
    case BasisChoice::kSixState: return v1::LINK_BASIS_SIX_STATE;
    case BasisChoice::kChsh: return v1::LINK_BASIS_CHSH;
    case BasisChoice::kE91: break;  // never sent: ValidateParams refuses it
  }
  return v1::LINK_BASIS_Z;
}

std::optional<BasisChoice> BasisFromWire(int b) {
  switch (b) {
    case v1::LINK_BASIS_Z: return BasisChoice::kZ;
    case v1::LINK_BASIS_X: return BasisChoice::kX;
    case v1::LINK_BASIS_Y: return BasisChoice::kY;
    case v1::LINK_BASIS_BB84: return BasisChoice::kBb84;
    case v1::LINK_BASIS_SIX_STATE: return BasisChoice::kSixState;
    case v1::LINK_BASIS_CHSH: return BasisChoice::kChsh;
    default: return std::nullopt;
  }
}

int64_t ToNs(TimePoint t) { return t.time_since_epoch().count(); }
TimePoint FromNs(int64_t ns) { return TimePoint(Duration(ns)); }

// SplitMix64 finaliser: spreads a seed draw and a clock reading into an id.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

// Runs the queued events once a protocol step (message, timer, callback)
// is over, so handlers always see consistent state.
struct LinkLayer::StepScope {
  explicit StepScope(LinkLayer& l) : layer(l) {}
  ~StepScope() { layer.FlushEvents(); }
  LinkLayer& layer;
};

absl::StatusOr<std::unique_ptr<LinkLayer>> LinkLayer::Build(NodeContext& context, physical::QuantumDevice& device,
                                                            physical::PhysicalLayer& physical,
                                                            physical::NodeHardware hardware,
                                                            std::vector<physical::PhysicalLink> links,
                                                            LinkLayerOptions options) {
  std::unique_ptr<LinkLayer> layer(
      new LinkLayer(context, device, physical, std::move(hardware), std::move(options)));
  const std::string& self = context.node_name();
  for (physical::PhysicalLink& l : links) {
    const physical::LinkPhysics& p = l.physics;
    if (p.name.empty()) return absl::InvalidArgumentError(absl::StrCat("a link of node ", self, " has no name"));
    if (p.node_a == p.node_b || (p.node_a != self && p.node_b != self)) {
      return absl::InvalidArgumentError(absl::StrCat("link ", p.name, " joins '", p.node_a, "' and '", p.node_b,
                                                     "', so it cannot be a link of node ", self));
    }
    auto state = std::make_unique<LinkState>();
    state->name = p.name;
    state->is_master = p.node_a == self;
    state->peer = state->is_master ? p.node_b : p.node_a;
    if (layer->FindLinkByPeer(state->peer) != nullptr || layer->link_by_name_.contains(p.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("node ", self, " has two links named ", p.name, " or two links to ", state->peer));
    }
    state->generation_prefix = (layer->incarnation_ & 0xFFFFFFULL) << 40;
    state->max_in_flight = std::max(1, std::min(layer->hardware_.num_qubits, l.far_end.num_qubits));
    const Duration round_trip = 2 * FibreDelay(p.length_km);
    state->channel = std::make_unique<ReliableChannel>(context, p.name, state->peer, layer->incarnation_,
                                                       2 * round_trip + std::chrono::milliseconds(1),
                                                       layer->options_.min_retransmit_timeout);
    state->link = std::move(l);
    layer->link_by_name_[state->name] = state.get();
    layer->links_.push_back(std::move(state));
  }
  return layer;
}

LinkLayer::LinkLayer(NodeContext& context, physical::QuantumDevice& device, physical::PhysicalLayer& physical,
                     physical::NodeHardware hardware, LinkLayerOptions options)
    : context_(context),
      device_(device),
      physical_(physical),
      hardware_(std::move(hardware)),
      options_(std::move(options)),
      rng_(context.rng().Fork("link")) {
  // A fresh value per start: the seeded draw keeps simulations reproducible,
  // the clock tells a restarted daemon (same seed) from its predecessor.
  incarnation_ = Mix(context.rng().NextU64() ^ Mix(static_cast<uint64_t>(ToNs(context.Now()))));
  if (incarnation_ == 0) incarnation_ = 1;
}

LinkLayer::~LinkLayer() {
  for (auto& link : links_) {
    std::vector<uint64_t> ids;
    for (const auto& [id, g] : link->generations) ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    for (uint64_t id : ids) DropGeneration(*link, id);
    if (link->memory_retry != kNoTimer) context_.CancelTimer(link->memory_retry);
  }
  for (auto& [id, r] : requests_) {
    if (r.deadline != kNoTimer) context_.CancelTimer(r.deadline);
  }
  if (flush_timer_ != kNoTimer) context_.CancelTimer(flush_timer_);
}

// ---------------------------------------------------------------- helpers

LinkLayer::LinkState* LinkLayer::FindLinkByPeer(const std::string& peer) {
  for (auto& link : links_) {
    if (link->peer == peer) return link.get();
  }
  return nullptr;
}

absl::StatusOr<const FidelityTable*> LinkLayer::Table(LinkState& link) {
  if (link.table == nullptr && link.table_error.ok()) {
    const physical::NodeHardware& a = link.is_master ? hardware_ : link.link.far_end;
    const physical::NodeHardware& b = link.is_master ? link.link.far_end : hardware_;
    absl::StatusOr<FidelityTable> table = FidelityTable::Build(a, b, link.link.physics, options_.alpha_grid);
    if (table.ok()) {
      link.table = std::make_unique<FidelityTable>(*std::move(table));
    } else {
      link.table_error = table.status();
    }
  }
  if (link.table == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("UNSUPPORTED: link ", link.name,
                                                      " cannot generate entanglement: ", link.table_error.message()));
  }
  return link.table.get();
}

absl::StatusOr<const FidelityTable*> LinkLayer::FidelityTableFor(const std::string& neighbour) {
  LinkState* link = FindLinkByPeer(neighbour);
  if (link == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("'", neighbour, "' is not a neighbour of ", context_.node_name()));
  }
  return Table(*link);
}

LinkLayer::Request* LinkLayer::FindRequest(RequestId id) {
  auto it = requests_.find(id);
  return it == requests_.end() ? nullptr : &it->second;
}

LinkLayer::Request* LinkLayer::FindRequest(LinkState& link, const RequestKey& key) {
  auto it = link.by_key.find(key);
  return it == link.by_key.end() ? nullptr : FindRequest(it->second);
}

LinkLayer::RequestKey LinkLayer::KeyFromWire(const v1::LinkRequestKey& key) { return {key.origin(), key.number()}; }

void LinkLayer::KeyToWire(const RequestKey& key, v1::LinkRequestKey* out) {
  out->set_origin(key.origin);
  out->set_number(key.number);
}

absl::Status LinkLayer::ValidateParams(const EntanglementRequest& request) const {
  if (request.number < 1) {
    return absl::InvalidArgumentError("the number of pairs must be at least 1");
  }
  if (!(std::isfinite(request.min_fidelity) && request.min_fidelity >= 0.0 && request.min_fidelity <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_fidelity must lie in [0, 1], got ", request.min_fidelity));
  }
  if (request.max_time < Duration{0}) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_time must be >= 0 (0 = no limit), got ", FormatDuration(request.max_time)));
  }
  if (request.type != RequestType::kKeep && request.type != RequestType::kMeasure) {
    return absl::InvalidArgumentError("the request type must be KEEP or MEASURE");
  }
  if (static_cast<int>(request.basis) > static_cast<int>(BasisChoice::kE91)) {
    return absl::InvalidArgumentError("unknown basis choice");
  }
  if (request.type == RequestType::kMeasure && request.basis == BasisChoice::kE91) {
    return absl::InvalidArgumentError(
        "the E91 basis choice is served by the network layer only (the link wire cannot carry it yet); ask the "
        "network layer, which reaches a neighbour over a 1-hop circuit");
  }
  return absl::OkStatus();
}

int LinkLayer::held_slots() const {
  int n = 0;
  for (const auto& link : links_) {
    for (const auto& [id, g] : link->generations) n += g.slot >= 0 ? 1 : 0;
  }
  return n;
}

size_t LinkLayer::active_generations() const {
  size_t n = 0;
  for (const auto& link : links_) n += link->generations.size();
  return n;
}

uint64_t LinkLayer::retransmissions() const {
  uint64_t n = 0;
  for (const auto& link : links_) n += link->channel->retransmissions();
  return n;
}

void LinkLayer::Send(LinkState& link, v1::LinkMessage message) {
  if (link.peer_down) return;
  link.channel->SendReliable(std::move(message));
}

void LinkLayer::NoteEnded(LinkState& link, const RequestKey& key, v1::LinkErrorCode why) {
  if (!link.ended.try_emplace(key, why).second) return;
  link.ended_order.push_back(key);
  if (link.ended_order.size() > kMemory) {
    link.ended.erase(link.ended_order.front());
    link.ended_order.pop_front();
  }
}

void LinkLayer::NoteDelivered(LinkState& link, uint64_t generation_id, DeliveredPair pair) {
  if (!link.delivered.try_emplace(generation_id, std::move(pair)).second) return;
  link.delivered_order.push_back(generation_id);
  if (link.delivered_order.size() > kMemory) {
    link.delivered.erase(link.delivered_order.front());
    link.delivered_order.pop_front();
  }
}

void LinkLayer::ForgetKeptSlot(int slot) { kept_by_slot_.erase(slot); }

MeasurementBasis LinkLayer::ChooseBasis(const Request& request) {
  switch (request.params.basis) {
    case BasisChoice::kZ: return MeasurementBasis::kZ;
    case BasisChoice::kX: return MeasurementBasis::kX;
    case BasisChoice::kY: return MeasurementBasis::kY;
    case BasisChoice::kBb84: return rng_.UniformInt(2) == 0 ? MeasurementBasis::kZ : MeasurementBasis::kX;
    case BasisChoice::kSixState: {
      const uint64_t k = rng_.UniformInt(3);
      return k == 0 ? MeasurementBasis::kZ : (k == 1 ? MeasurementBasis::kX : MeasurementBasis::kY);
    }
    case BasisChoice::kChsh: {
      const bool first = rng_.UniformInt(2) == 0;
      if (request.originated_here) return first ? MeasurementBasis::kChshA0 : MeasurementBasis::kChshA1;
      return first ? MeasurementBasis::kChshB0 : MeasurementBasis::kChshB1;
    }
    case BasisChoice::kE91: {
      if (request.originated_here) return rng_.UniformInt(2) == 0 ? MeasurementBasis::kZ : MeasurementBasis::kX;
      constexpr MeasurementBasis kOther[] = {MeasurementBasis::kZ, MeasurementBasis::kX, MeasurementBasis::kChshB0,
                                             MeasurementBasis::kChshB1};
      return kOther[rng_.UniformInt(4)];
    }
  }
  return MeasurementBasis::kZ;
}

Duration LinkLayer::WatchdogTimeout(const LinkState& link, double alpha) const {
  // Long enough that a live generation is almost never abandoned (30 mean
  // generation times: e^-30), short enough that a lost herald costs little.
  double mean_s = 0.0;
  Duration attempt{0};
  if (link.table != nullptr) {
    if (const physical::LinkCalibration* c = link.table->Find(alpha); c != nullptr) {
      mean_s = c->MeanGenerationSeconds();
      attempt = c->attempt_duration;
    }
  }
  if (!std::isfinite(mean_s)) mean_s = 1e6;
  return 4 * link.channel->retransmit_timeout() + FromSeconds(std::min(1e6, 30.0 * mean_s)) + 2 * attempt;
}

// ---------------------------------------------------------------- events

void LinkLayer::Emit(const LinkEventHandler& handler, LinkEvent event) {
  if (!handler) return;
  pending_events_.emplace_back(handler, std::move(event));
}

void LinkLayer::FlushEvents() {
  if (flushing_) return;
  flushing_ = true;
  while (!pending_events_.empty()) {
    auto [handler, event] = std::move(pending_events_.front());
    pending_events_.pop_front();
    handler(event);
  }
  flushing_ = false;
}

void LinkLayer::FlushLater() {
  if (pending_events_.empty() || flush_timer_ != kNoTimer) return;
  std::weak_ptr<bool> alive = alive_;
  flush_timer_ = context_.StartTimer(Duration{0}, [this, alive] {
    if (alive.expired()) return;
    flush_timer_ = kNoTimer;
    FlushEvents();
  });
}

// ---------------------------------------------------------------- service

absl::Status LinkLayer::RegisterReceiver(uint32_t purpose_id, LinkEventHandler handler) {
  if (!handler) return absl::InvalidArgumentError("RegisterReceiver: the handler is empty");
  if (!receivers_.try_emplace(purpose_id, std::move(handler)).second) {
    return absl::AlreadyExistsError(
        absl::StrCat("node ", context_.node_name(), " already has a receiver for purpose id ", purpose_id));
  }
  return absl::OkStatus();
}

absl::Status LinkLayer::UnregisterReceiver(uint32_t purpose_id) {
  if (receivers_.erase(purpose_id) == 0) {
    return absl::NotFoundError(
        absl::StrCat("node ", context_.node_name(), " has no receiver for purpose id ", purpose_id));
  }
  return absl::OkStatus();
}

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
  r.key = {context_.node_name(), next_request_number_++};
  r.link = link;
  r.originated_here = true;
  r.params = request;
  r.handler = std::move(handler);
  r.alpha = choice.alpha;
  const RequestId id = r.id;
  if (request.max_time > Duration{0}) {
    std::weak_ptr<bool> alive = alive_;
    r.deadline = context_.StartTimer(request.max_time, [this, alive, id] {
      if (alive.expired()) return;
      StepScope step(*this);
      Request* timed_out = FindRequest(id);
      if (timed_out == nullptr) return;
      timed_out->deadline = kNoTimer;
      std::string message =
          absl::StrCat("max_time ", FormatDuration(timed_out->params.max_time), " passed with ",
                       timed_out->delivered, " of ", timed_out->params.number, " pairs delivered");
      if (const std::string wait = MemoryWait(*timed_out->link); !wait.empty()) {
        absl::StrAppend(&message, " while waiting for free memory (", wait, ")");
      }
      EndRequest(id, LinkError::kTimeout, message, true);
    });
  }
  v1::LinkMessage message;
  v1::LinkRequestSubmit* s = message.mutable_submit();
  KeyToWire(r.key, s->mutable_key());
  s->set_pairs(request.number);
  s->set_type(request.type == RequestType::kKeep ? v1::LINK_REQUEST_TYPE_KEEP : v1::LINK_REQUEST_TYPE_MEASURE);
  s->set_basis(BasisToWire(request.basis));
  s->set_min_fidelity(request.min_fidelity);
  s->set_max_time_ns(request.max_time.count());
  s->set_priority(request.priority);
  s->set_purpose_id(request.purpose_id);
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
  FlushLater();
  return absl::OkStatus();
}

// ---------------------------------------------------------------- inbound

void LinkLayer::OnLinkMessage(const std::string& from, const v1::LinkMessage& message) {
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
  if (!link.channel->Receive(message)) return;
  switch (message.body_case()) {
    case v1::LinkMessage::kHello: return;
    case v1::LinkMessage::kSubmit: return OnSubmit(link, message.submit());
    case v1::LinkMessage::kAccepted: return OnAccepted(link, message.accepted());
    case v1::LinkMessage::kAssign: return OnAssign(link, message.assign());
    case v1::LinkMessage::kReport: return OnReport(link, message.report());
    case v1::LinkMessage::kEnded: return OnEnded(link, message.ended());
    case v1::LinkMessage::BODY_NOT_SET: return;
  }
}

void LinkLayer::Refuse(LinkState& link, const RequestKey& key, LinkError error, const std::string& message) {
  NoteEnded(link, key, ErrorToWire(error));
  v1::LinkMessage m;
  v1::LinkRequestEnded* e = m.mutable_ended();
  KeyToWire(key, e->mutable_key());
  e->set_reason(ErrorToWire(error));
  e->set_message(message);
  Send(link, std::move(m));
}

void LinkLayer::OnSubmit(LinkState& link, const v1::LinkRequestSubmit& submit) {
  const RequestKey key = KeyFromWire(submit.key());
  if (key.origin != link.peer) {
    ++ignored_messages_;
    return;
  }
  if (link.by_key.contains(key) || link.ended.contains(key)) return;  // stale
  const std::string& self = context_.node_name();
  EntanglementRequest params;
  params.remote_node = link.peer;
  params.number = submit.pairs();
  params.type = submit.type() == v1::LINK_REQUEST_TYPE_MEASURE ? RequestType::kMeasure : RequestType::kKeep;
  const std::optional<BasisChoice> basis = BasisFromWire(submit.basis());
  params.basis = basis.value_or(BasisChoice::kZ);
  params.min_fidelity = submit.min_fidelity();
  params.max_time = Duration(submit.max_time_ns());
  params.priority = submit.priority();
  params.purpose_id = submit.purpose_id();
  if (!v1::LinkRequestType_IsValid(submit.type()) || !basis.has_value()) {
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
  Emit(r.handler, IncomingRequest{id, link.peer, params});
  requests_.emplace(id, std::move(r));

  v1::LinkMessage m;
  KeyToWire(key, m.mutable_accepted()->mutable_key());
  Send(link, std::move(m));
  ScheduleAll();
}

void LinkLayer::OnAccepted(LinkState& link, const v1::LinkRequestAccepted& accepted) {
  Request* r = FindRequest(link, KeyFromWire(accepted.key()));
  if (r == nullptr || !r->originated_here || r->accepted) return;
  r->accepted = true;
  if (link.is_master) r->queue_order = link.next_queue_order++;
  ScheduleAll();
}

void LinkLayer::OnAssign(LinkState& link, const v1::LinkGenerationAssign& assign) {
  if (link.is_master) {
    ++ignored_messages_;
    return;
  }
  const uint64_t id = assign.generation_id();
  if (link.generations.contains(id)) return;
  std::optional<v1::LinkGenerationReport> early;
  if (auto e = link.early_reports.find(id); e != link.early_reports.end()) {
    early = e->second;
    link.early_reports.erase(e);
    // The master already gave up on it: nothing to start.
    if (!early->success()) return;
  }
  const RequestKey key = KeyFromWire(assign.key());
  Request* r = FindRequest(link, key);
  const auto refuse = [&](LinkError error, bool transient, const std::string& message) {
    v1::LinkMessage m;
    v1::LinkGenerationReport* rep = m.mutable_report();
    rep->set_generation_id(id);
    rep->set_success(false);
    rep->set_error(ErrorToWire(error));
    rep->set_transient(transient);
    rep->set_message(message);
    Send(link, std::move(m));
  };
  if (r == nullptr) {
    auto ended = link.ended.find(key);
    if (ended == link.ended.end()) {
      return refuse(LinkError::kRejected, false,
                    absl::StrCat("node ", context_.node_name(), " does not know request ", key.origin, "/",
                                 key.number));
    }
    const std::optional<LinkError> why = ErrorFromWire(ended->second);
    return refuse(why.value_or(LinkError::kDeviceError), false,
                  why.has_value() ? absl::StrCat("the request already ended at ", context_.node_name())
                                  : absl::StrCat("the request is already complete at ", context_.node_name()));
  }
  // The master assigns only accepted requests; its assignment may overtake
  // the acceptance.
  r->accepted = true;
  absl::StatusOr<int> slot = device_.Allocate();
  if (!slot.ok()) {
    if (device_.num_slots() == 0) {
      return refuse(LinkError::kNoResources, false,
                    absl::StrCat("node ", context_.node_name(), " has no memory qubits"));
    }
    // Busy slots come back when their generations end, held ones when the
    // layer above frees them: transient either way, so the master waits.
    link.memory_wait = absl::StrCat("all ", device_.num_slots(), " memory slots at ", context_.node_name(),
                                    " are in use");
    return refuse(LinkError::kNoResources, true, absl::StrCat("no free memory slot at ", context_.node_name(), " (",
                                                              device_.num_slots(), " slots, all in use)"));
  }
  link.memory_wait.clear();
  ForgetKeptSlot(*slot);
  Generation g;
  g.id = id;
  g.request = r->id;
  g.slot = *slot;
  g.alpha = assign.bright_state_alpha();
  Generation& stored = link.generations.emplace(id, std::move(g)).first->second;
  if (absl::Status started = StartPhysical(link, stored); !started.ok()) {
    (void)device_.Free(stored.slot);
    link.generations.erase(id);
    return refuse(LinkError::kDeviceError, false,
                  absl::StrCat("the physical layer at ", context_.node_name(), " refused: ", started.message()));
  }
  if (early.has_value()) OnReport(link, *early);
}

void LinkLayer::OnReport(LinkState& link, const v1::LinkGenerationReport& report) {
  const uint64_t id = report.generation_id();
  auto it = link.generations.find(id);
  if (it == link.generations.end()) {
    if (!link.is_master && link.early_reports.try_emplace(id, report).second) {
      link.early_order.push_back(id);
      if (link.early_order.size() > kMemory) {
        link.early_reports.erase(link.early_order.front());
        link.early_order.pop_front();
      }
    }
    return;
  }
  Generation& g = it->second;
  g.peer_reported = true;
  g.peer = report;
  if (!report.success()) {
    return GenerationFailed(link, id,
                            absl::AbortedError(absl::StrCat("generation ", id, " failed at ", link.peer,
                                                            report.message().empty() ? "" : ": ", report.message())),
                            false, &report);
  }
  if (g.own == Own::kReady) return TryDeliver(link, id);
  if (g.own == Own::kRunning && !link.is_master && g.timer == kNoTimer) {
    // The master heard its herald; ours left the station at the same time,
    // so it is lost if it is not here within a retransmission timeout or two.
    std::weak_ptr<bool> alive = alive_;
    std::string name = link.name;
    g.timer = context_.StartTimer(2 * link.channel->retransmit_timeout(), [this, alive, name, id] {
      if (alive.expired()) return;
      StepScope step(*this);
      OnGrace(name, id);
    });
  }
}

void LinkLayer::OnEnded(LinkState& link, const v1::LinkRequestEnded& ended) {
  const RequestKey key = KeyFromWire(ended.key());
  std::vector<uint64_t> undelivered(ended.undelivered_generations().begin(), ended.undelivered_generations().end());
  std::sort(undelivered.begin(), undelivered.end());
  for (uint64_t gid : undelivered) {
    auto d = link.delivered.find(gid);
    if (d == link.delivered.end()) continue;
    PairExpired expired;
    expired.request_id = d->second.request;
    expired.entanglement_id = d->second.id;
    expired.message = absl::StrCat(link.peer, " dropped pair ", d->second.id.ToString(),
                                   " when the request ended there: ", ended.message());
    if (d->second.type == RequestType::kKeep) {
      auto kept = kept_by_slot_.find(d->second.slot);
      if (kept != kept_by_slot_.end() && kept->second.link == link.name && kept->second.generation == gid) {
        expired.slot = d->second.slot;
        kept_by_slot_.erase(kept);
      }
    }
    Emit(d->second.handler, std::move(expired));
    ++stats_.pairs_expired;
    link.delivered.erase(d);
  }
  const std::optional<LinkError> why = ErrorFromWire(ended.reason());
  if (Request* r = FindRequest(link, key); r != nullptr) {
    EndRequest(r->id, why.value_or(LinkError::kDeviceError),
               absl::StrCat(link.peer, " ended the request: ", ended.message()), false);
  } else {
    NoteEnded(link, key, ended.reason());
  }
}

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
  std::vector<uint64_t> gens;
  for (const auto& [id, g] : link.generations) gens.push_back(id);
  std::sort(gens.begin(), gens.end());
  for (uint64_t id : gens) DropGeneration(link, id);
  link.early_reports.clear();
  link.early_order.clear();
  if (!restarted) return;
  // Its halves of the pairs delivered earlier are gone with it.
  std::vector<int> slots;
  for (const auto& [slot, kept] : kept_by_slot_) {
    if (kept.link == link.name) slots.push_back(slot);
  }
  std::sort(slots.begin(), slots.end());
  for (int slot : slots) {
    KeptPair kept = std::move(kept_by_slot_[slot]);
    kept_by_slot_.erase(slot);
    if (!device_.IsAllocated(slot)) continue;  // already freed by the layer above
    Emit(kept.pair.handler, PairExpired{kept.pair.request, kept.pair.id, slot, message});
    ++stats_.pairs_expired;
  }
  link.delivered.clear();
  link.delivered_order.clear();
  // A new incarnation numbers its requests afresh.
  link.ended.clear();
  link.ended_order.clear();
}

// ---------------------------------------------------------------- master

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
  std::weak_ptr<bool> alive = alive_;
  LinkState* raw = &link;
  link.memory_retry_own = own_memory;
  link.memory_retry = context_.StartTimer(link.channel->retransmit_timeout(), [this, alive, raw] {
    if (alive.expired()) return;
    StepScope step(*this);
    raw->memory_retry = kNoTimer;
    ScheduleAll();
  });
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
  return absl::StrCat("all ", device_.num_slots(), " memory slots at ", context_.node_name(), " are in use");
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
      link.memory_wait = absl::StrCat("all ", device_.num_slots(), " memory slots at ", context_.node_name(),
                                      " are in use");
      ++stats_.memory_waits;
      if (held_slots() == 0) StartMemoryRetry(link, /*own_memory=*/true);
      return;
    }
    link.memory_wait.clear();
    ForgetKeptSlot(*slot);
    link.last_served_local = r->originated_here;
    Generation g;
    g.id = link.generation_prefix | link.next_generation++;
    g.request = r->id;
    g.slot = *slot;
    g.alpha = r->alpha;
    const uint64_t id = g.id;
    Generation& stored = link.generations.emplace(id, std::move(g)).first->second;
    if (absl::Status started = StartPhysical(link, stored); !started.ok()) {
      (void)device_.Free(stored.slot);
      link.generations.erase(id);
      EndRequest(r->id, LinkError::kDeviceError,
                 absl::StrCat("the physical layer at ", context_.node_name(), " refused: ", started.message()), true);
      continue;
    }
    ++r->in_flight;
    std::weak_ptr<bool> alive = alive_;
    std::string name = link.name;
    stored.timer = context_.StartTimer(WatchdogTimeout(link, stored.alpha), [this, alive, name, id] {
      if (alive.expired()) return;
      StepScope step(*this);
      OnWatchdog(name, id);
    });
    v1::LinkMessage m;
    v1::LinkGenerationAssign* a = m.mutable_assign();
    a->set_generation_id(id);
    KeyToWire(r->key, a->mutable_key());
    a->set_bright_state_alpha(stored.alpha);
    Send(link, std::move(m));
  }
}

// ---------------------------------------------------------------- generations

absl::Status LinkLayer::StartPhysical(LinkState& link, Generation& generation) {
  physical::GenerationParams params;
  params.bright_state_alpha = generation.alpha;
  params.max_attempts = 0;  // the master's watchdog bounds it instead
  std::weak_ptr<bool> alive = alive_;
  std::string name = link.name;
  const uint64_t id = generation.id;
  QNET_RETURN_IF_ERROR(physical_.StartGeneration(
      link.name, id, generation.slot, params, [this, alive, name, id](const physical::GenerationResult& result) {
        if (alive.expired()) return;
        StepScope step(*this);
        OnPhysicalResult(name, id, result);
      }));
  generation.physical_running = true;
  ++stats_.generations_started;
  return absl::OkStatus();
}

void LinkLayer::OnPhysicalResult(const std::string& link_name, uint64_t generation_id,
                                 const physical::GenerationResult& result) {
  auto found = link_by_name_.find(link_name);
  if (found == link_by_name_.end()) return;
  LinkState& link = *found->second;
  auto it = link.generations.find(generation_id);
  if (it == link.generations.end()) return;
  Generation& g = it->second;
  g.physical_running = false;
  if (g.timer != kNoTimer) {
    context_.CancelTimer(g.timer);
    g.timer = kNoTimer;
  }
  if (!result.status.ok()) return GenerationFailed(link, generation_id, result.status, true, nullptr);
  g.label = result.label;
  g.emitted_at = result.emitted_at;
  Request* r = FindRequest(g.request);
  if (r == nullptr) return DropGeneration(link, generation_id);
  if (r->params.type == RequestType::kMeasure) {
    g.own = Own::kMeasuring;
    g.basis = ChooseBasis(*r);
    std::weak_ptr<bool> alive = alive_;
    device_.Measure(g.slot, ToQuantumBasis(g.basis),
                    [this, alive, link_name, generation_id](absl::StatusOr<int> outcome) {
                      if (alive.expired()) return;
                      StepScope step(*this);
                      OnMeasured(link_name, generation_id, std::move(outcome));
                    });
    return;
  }
  g.own = Own::kReady;
  SendReport(link, g);
  TryDeliver(link, generation_id);
}

void LinkLayer::OnMeasured(const std::string& link_name, uint64_t generation_id, absl::StatusOr<int> outcome) {
  auto found = link_by_name_.find(link_name);
  if (found == link_by_name_.end()) return;
  LinkState& link = *found->second;
  auto it = link.generations.find(generation_id);
  if (it == link.generations.end()) return;  // dropped meanwhile (its slot was freed)
  Generation& g = it->second;
  if (!outcome.ok()) return GenerationFailed(link, generation_id, outcome.status(), true, nullptr);
  g.outcome = *outcome;
  g.measured_at = context_.Now();
  (void)device_.Free(g.slot);
  g.slot = -1;
  g.own = Own::kReady;
  SendReport(link, g);
  TryDeliver(link, generation_id);
  ScheduleAll();  // a slot came free
}

void LinkLayer::OnWatchdog(const std::string& link_name, uint64_t generation_id) {
  auto found = link_by_name_.find(link_name);
  if (found == link_by_name_.end()) return;
  LinkState& link = *found->second;
  auto it = link.generations.find(generation_id);
  if (it == link.generations.end()) return;
  it->second.timer = kNoTimer;
  if (!it->second.physical_running) return;
  ++stats_.lost_heralds;
  GenerationFailed(link, generation_id,
                   absl::DeadlineExceededError(absl::StrCat("generation ", generation_id, " on link ", link_name,
                                                            " heard no herald in time (a message was lost?)")),
                   true, nullptr);
}

void LinkLayer::OnGrace(const std::string& link_name, uint64_t generation_id) {
  auto found = link_by_name_.find(link_name);
  if (found == link_by_name_.end()) return;
  LinkState& link = *found->second;
  auto it = link.generations.find(generation_id);
  if (it == link.generations.end()) return;
  it->second.timer = kNoTimer;
  if (it->second.own != Own::kRunning) return;
  ++stats_.lost_heralds;
  GenerationFailed(link, generation_id,
                   absl::DeadlineExceededError(absl::StrCat("the herald of generation ", generation_id, " on link ",
                                                            link_name, " never reached ", context_.node_name())),
                   true, nullptr);
}

void LinkLayer::SendReport(LinkState& link, const Generation& generation) {
  v1::LinkMessage m;
  v1::LinkGenerationReport* rep = m.mutable_report();
  rep->set_generation_id(generation.id);
  rep->set_success(true);
  rep->set_emitted_at_ns(ToNs(generation.emitted_at));
  if (generation.outcome >= 0) rep->set_measured_at_ns(ToNs(generation.measured_at));
  Send(link, std::move(m));
}

void LinkLayer::SendFailure(LinkState& link, uint64_t generation_id, const std::string& message) {
  v1::LinkMessage m;
  v1::LinkGenerationReport* rep = m.mutable_report();
  rep->set_generation_id(generation_id);
  rep->set_success(false);
  rep->set_message(message);
  Send(link, std::move(m));
}

void LinkLayer::TryDeliver(LinkState& link, uint64_t generation_id) {
  auto it = link.generations.find(generation_id);
  if (it == link.generations.end()) return;
  Generation& g = it->second;
  if (g.own != Own::kReady || !g.peer_reported || !g.peer.success()) return;
  Request* r = FindRequest(g.request);
  if (r == nullptr) return DropGeneration(link, generation_id);

  const physical::LinkPhysics& physics = link.link.physics;
  PairDelivered event;
  event.request_id = r->id;
  event.entanglement_id = {physics.node_a, physics.node_b, g.id};
  event.remote_node = link.peer;
  event.purpose_id = r->params.purpose_id;
  event.pair_index = r->delivered;
  event.type = r->params.type;
  event.bell_state = g.label;
  const TimePoint far_emitted = FromNs(g.peer.emitted_at_ns());
  Duration wait_self{0};
  Duration wait_far{0};
  if (r->params.type == RequestType::kKeep) {
    event.estimate_time = context_.Now();
    wait_self = event.estimate_time - g.emitted_at;
    wait_far = event.estimate_time - far_emitted;
    event.slot = g.slot;
  } else {
    // Each qubit decohered until its own measurement.
    event.estimate_time = g.measured_at;
    wait_self = g.measured_at - g.emitted_at;
    wait_far = FromNs(g.peer.measured_at_ns()) - far_emitted;
    event.outcome = g.outcome;
    event.basis = g.basis;
  }
  if (link.table != nullptr) {
    event.fidelity_estimate = link.is_master ? link.table->Estimate(g.alpha, wait_self, wait_far)
                                             : link.table->Estimate(g.alpha, wait_far, wait_self);
  }
  ++r->delivered;
  ++stats_.pairs_delivered;
  if (link.is_master) {
    --r->in_flight;
    r->consecutive_failures = 0;
  }
  DeliveredPair record{r->id, r->handler, event.entanglement_id, r->params.type, event.slot};
  if (r->params.type == RequestType::kKeep) kept_by_slot_[g.slot] = KeptPair{link.name, g.id, record};
  NoteDelivered(link, g.id, std::move(record));
  if (g.timer != kNoTimer) context_.CancelTimer(g.timer);
  link.generations.erase(it);  // the slot (KEEP) now belongs to the layer above
  link.memory_wait.clear();     // both ends had memory for this pair
  Emit(r->handler, std::move(event));
  if (r->delivered >= r->params.number) CompleteRequest(r->id);
  ScheduleAll();
}

void LinkLayer::DropGeneration(LinkState& link, uint64_t generation_id) {
  auto it = link.generations.find(generation_id);
  if (it == link.generations.end()) return;
  Generation& g = it->second;
  if (g.timer != kNoTimer) context_.CancelTimer(g.timer);
  if (g.physical_running) physical_.AbortGeneration(link.name, generation_id);
  // Freeing a slot being measured makes the measurement complete Cancelled,
  // which finds no generation and does nothing.
  if (g.slot >= 0) (void)device_.Free(g.slot);
  link.generations.erase(it);
}

void LinkLayer::GenerationFailed(LinkState& link, uint64_t generation_id, const absl::Status& why, bool report,
                                 const v1::LinkGenerationReport* peer_report) {
  auto it = link.generations.find(generation_id);
  if (it == link.generations.end()) return;
  const RequestId request_id = it->second.request;
  ++stats_.generations_failed;
  if (report) SendFailure(link, generation_id, std::string(why.message()));
  DropGeneration(link, generation_id);
  Request* r = link.is_master ? FindRequest(request_id) : nullptr;
  if (r == nullptr) return ScheduleAll();
  --r->in_flight;
  const std::optional<LinkError> peer_error =
      peer_report != nullptr ? ErrorFromWire(peer_report->error()) : std::nullopt;
  if (peer_error.has_value()) {
    if (*peer_error == LinkError::kNoResources && peer_report->transient()) {
      // The far end has no free slot now (busy generating on another link,
      // or held by its layer above): try again shortly.
      ++stats_.far_memory_waits;
      link.memory_wait = peer_report->message();
      StartMemoryRetry(link, /*own_memory=*/false);
      return ScheduleAll();
    }
    EndRequest(request_id, *peer_error, absl::StrCat(link.peer, ": ", peer_report->message()), true);
    return;
  }
  if (absl::IsInvalidArgument(why) || absl::IsInternal(why) || absl::IsFailedPrecondition(why)) {
    EndRequest(request_id, LinkError::kDeviceError,
               absl::StrCat("generation failed at ", context_.node_name(), ": ", why.message()), true);
    return;
  }
  if (++r->consecutive_failures >= options_.max_consecutive_failures) {
    EndRequest(request_id, LinkError::kDeviceError,
               absl::StrCat(r->consecutive_failures, " generations in a row failed on link ", link.name,
                            "; the last: ", why.message()),
               true);
    return;
  }
  ScheduleAll();
}

// ---------------------------------------------------------------- requests

void LinkLayer::EndRequest(RequestId id, LinkError error, const std::string& message, bool notify_peer) {
  Request* r = FindRequest(id);
  if (r == nullptr) return;
  LinkState& link = *r->link;
  std::vector<uint64_t> gens;
  for (const auto& [gid, g] : link.generations) {
    if (g.request == id) gens.push_back(gid);
  }
  std::sort(gens.begin(), gens.end());
  for (uint64_t gid : gens) DropGeneration(link, gid);
  if (notify_peer) {
    v1::LinkMessage m;
    v1::LinkRequestEnded* e = m.mutable_ended();
    KeyToWire(r->key, e->mutable_key());
    e->set_reason(ErrorToWire(error));
    e->set_message(message);
    for (uint64_t gid : gens) e->add_undelivered_generations(gid);
    Send(link, std::move(m));
  }
  Emit(r->handler, RequestFailed{id, error, message, r->delivered});
  NoteEnded(link, r->key, ErrorToWire(error));
  RemoveRequest(*r);
  ScheduleAll();
}

void LinkLayer::CompleteRequest(RequestId id) {
  Request* r = FindRequest(id);
  if (r == nullptr) return;
  LinkState& link = *r->link;
  // Leftovers (at the non-master: generations the master already gave up).
  std::vector<uint64_t> gens;
  for (const auto& [gid, g] : link.generations) {
    if (g.request == id) gens.push_back(gid);
  }
  std::sort(gens.begin(), gens.end());
  for (uint64_t gid : gens) {
    SendFailure(link, gid, "the request is complete");
    DropGeneration(link, gid);
  }
  Emit(r->handler, RequestCompleted{id, r->delivered});
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

}  // namespace qnet::link
