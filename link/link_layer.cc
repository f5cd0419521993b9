// The link layer's construction, lookups and shared helpers, introspection,
// and the purpose-id receivers. The rest lives by concern in link_requests.cc,
// link_queue.cc, link_generation.cc, link_delivery.cc and link_peers.cc.
#include "link/link_layer.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "link/link_wire.h"

namespace qnet::link {
namespace {

// SplitMix64 finaliser: spreads a seed draw and a clock reading into an id.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

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
                                                       layer->options_.min_retransmit_timeout,
                                                       std::chrono::duration_cast<Duration>(
                                                           layer->options_.min_retransmit_timeout *
                                                           layer->options_.ack_delay_fraction));
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
      rng_(context.rng().Fork("link")),
      events_(context) {
  // A fresh value per start: the seeded draw keeps simulations reproducible,
  // the clock tells a restarted daemon (same seed) from its predecessor.
  incarnation_ = Mix(context.rng().NextU64() ^ Mix(static_cast<uint64_t>(ToNs(context.Now()))));
  if (incarnation_ == 0) incarnation_ = 1;
}

LinkLayer::~LinkLayer() {
  for (auto& link : links_) {
    for (uint64_t id : SortedGenerations(*link)) DropGeneration(*link, id);
    if (link->memory_retry != kNoTimer) context_.CancelTimer(link->memory_retry);
  }
  for (auto& [id, r] : requests_) {
    if (r.deadline != kNoTimer) context_.CancelTimer(r.deadline);
  }
}

// ---------------------------------------------------------------- lookups

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

LinkLayer::Generation* LinkLayer::FindGeneration(const std::string& link_name, uint64_t id, LinkState** link) {
  auto found = link_by_name_.find(link_name);
  if (found == link_by_name_.end()) return nullptr;
  auto it = found->second->generations.find(id);
  if (it == found->second->generations.end()) return nullptr;
  *link = found->second;
  return &it->second;
}

std::vector<uint64_t> LinkLayer::SortedGenerations(const LinkState& link, std::optional<RequestId> request) {
  std::vector<uint64_t> ids;
  for (const auto& [id, g] : link.generations) {
    if (!request.has_value() || g.request == *request) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
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

std::string LinkLayer::AllSlotsInUse() const {
  return absl::StrCat("all ", device_.num_slots(), " memory slots at ", context_.node_name(), " are in use");
}

// ---------------------------------------------------------------- introspection

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

absl::StatusOr<LinkPairStats> LinkLayer::PairStats(const std::string& neighbour) const {
  for (const auto& link : links_) {
    if (link->peer != neighbour) continue;
    LinkPairStats stats = link->pair_stats;
    stats.link = link->name;
    return stats;
  }
  return absl::NotFoundError(absl::StrCat("node ", context_.node_name(), " has no link to '", neighbour, "'"));
}

uint64_t LinkLayer::retransmissions() const {
  uint64_t n = 0;
  for (const auto& link : links_) n += link->channel->retransmissions();
  return n;
}

// ---------------------------------------------------------------- receivers

absl::Status LinkLayer::RegisterReceiver(uint32_t purpose_id, LinkEventHandler handler) {
  if (!handler) return absl::InvalidArgumentError("RegisterReceiver: the handler is empty");
  if (!receivers_.try_emplace(purpose_id, std::make_shared<const LinkEventHandler>(std::move(handler))).second) {
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

}  // namespace qnet::link
