#include "physical/physical_layer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"

namespace qnet::physical {
namespace {

absl::Status FromWire(int32_t code, const std::string& message) {
  if (code <= 0 || code > static_cast<int32_t>(absl::StatusCode::kUnauthenticated)) {
    return absl::UnknownError(message);
  }
  return absl::Status(static_cast<absl::StatusCode>(code), message);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PhysicalLayer>> PhysicalLayer::Create(NodeContext& context,
                                                                      QuantumDevice& device,
                                                                      StateBackend& backend,
                                                                      NodeHardware hardware,
                                                                      std::vector<PhysicalLink> links,
                                                                      const PhysicalLayerOptions& options) {
  const std::string& self = context.node_name();
  if (!(options.photon_source_rate_hz > 0.0 && std::isfinite(options.photon_source_rate_hz))) {
    return absl::InvalidArgumentError(absl::StrCat("node ", self, ": photon_source_rate_hz = ",
                                                   options.photon_source_rate_hz,
                                                   " must be a positive, finite pulse rate"));
  }
  std::unique_ptr<PhysicalLayer> layer(new PhysicalLayer(context, device, backend, std::move(hardware), options));
  absl::flat_hash_set<std::string> neighbours;
  for (PhysicalLink& link : links) {
    const LinkPhysics& p = link.physics;
    if (p.name.empty()) return absl::InvalidArgumentError(absl::StrCat("a link of node ", self, " has no name"));
    if (p.node_a == p.node_b || (p.node_a != self && p.node_b != self)) {
      return absl::InvalidArgumentError(absl::StrCat("link ", p.name, " joins '", p.node_a, "' and '", p.node_b,
                                                     "', so it cannot be a link of node ", self));
    }
    if (!(std::isfinite(p.length_km) && p.length_km >= 0.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("link ", p.name, ": length_km must be finite and >= 0, got ", p.length_km));
    }
    if (!(p.station_fraction >= 0.0 && p.station_fraction <= 1.0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "link ", p.name, ": station_fraction must lie in [0, 1], got ", p.station_fraction));
    }
    if (!(p.eavesdropper_fraction >= 0.0 && p.eavesdropper_fraction <= 1.0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "link ", p.name, ": eavesdropper_fraction must lie in [0, 1], got ", p.eavesdropper_fraction));
    }
    if (layer->links_.contains(p.name)) {
      return absl::InvalidArgumentError(absl::StrCat("node ", self, " has two links named ", p.name));
    }
    auto state = std::make_unique<LinkState>();
    state->is_station_host = p.node_a == self;
    state->far_end = state->is_station_host ? p.node_b : p.node_a;
    if (!neighbours.insert(state->far_end).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("node ", self, " has two links to ", state->far_end));
    }
    state->to_station = FibreDelay(state->is_station_host ? p.length_a_km() : p.length_b_km());
    state->link = std::move(link);
    if (state->is_station_host) {
      LinkState* raw = state.get();
      PhysicalLayer* owner = layer.get();
      state->station = std::make_unique<HeraldingStation>(
          context, backend, state->link.physics, layer->hardware_, state->link.far_end, state->to_station,
          [owner, raw](const HeraldingStation::Outcome& outcome) { owner->OnStationOutcome(*raw, outcome); });
    }
    const std::string name = state->link.physics.name;
    layer->links_.emplace(name, std::move(state));
  }
  return layer;
}

PhysicalLayer::PhysicalLayer(NodeContext& context, QuantumDevice& device, StateBackend& backend,
                             NodeHardware hardware, const PhysicalLayerOptions& options)
    : context_(context), device_(device), backend_(backend), hardware_(std::move(hardware)), options_(options) {}

PhysicalLayer::~PhysicalLayer() {
  for (auto& [name, link] : links_) {
    for (auto& [id, generation] : link->generations) {
      if (generation.delivery_timer != kNoTimer) context_.CancelTimer(generation.delivery_timer);
    }
  }
}

PhysicalLayer::LinkState* PhysicalLayer::FindLinkTo(const std::string& neighbour) const {
  for (const auto& [name, link] : links_) {
    if (link->far_end == neighbour) return link.get();
  }
  return nullptr;
}

absl::Status PhysicalLayer::NoLinkTo(const std::string& neighbour) const {
  std::vector<std::string> known;
  for (const auto& [name, link] : links_) known.push_back(link->far_end);
  std::sort(known.begin(), known.end());
  return absl::NotFoundError(absl::StrCat("node ", context_.node_name(), " has no link to '", neighbour,
                                          "'; its neighbours: ", known.empty() ? "none" : absl::StrJoin(known, ", ")));
}

absl::StatusOr<bool> PhysicalLayer::SetEavesdropperFraction(const std::string& neighbour, double fraction) {
  LinkState* link = FindLinkTo(neighbour);
  if (link == nullptr) return NoLinkTo(neighbour);
  if (!(fraction >= 0.0 && fraction <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("link ", link->link.physics.name, ": eavesdropper fraction ",
                                                   fraction, " is outside [0, 1] (the fraction of heralded "
                                                   "pairs she intercepts)"));
  }
  if (fraction > 0.0 && link->photon_number_splitting) {
    return absl::FailedPreconditionError(absl::StrCat("link ", link->link.physics.name,
                                                      " has the photon-number-splitting eavesdropper; switch her "
                                                      "off before intercept-resend"));
  }
  if (link->station) QNET_RETURN_IF_ERROR(link->station->SetEavesdropperFraction(fraction));
  if (link->fibre_out) QNET_RETURN_IF_ERROR(link->fibre_out->SetEavesdropperFraction(fraction));
  link->link.physics.eavesdropper_fraction = fraction;
  return link->station != nullptr;
}

absl::StatusOr<LinkEavesdropper> PhysicalLayer::Eavesdropper(const std::string& neighbour) const {
  const LinkState* link = FindLinkTo(neighbour);
  if (link == nullptr) return NoLinkTo(neighbour);
  LinkEavesdropper out;
  out.link = link->link.physics.name;
  out.station_here = link->station != nullptr;
  out.fraction = link->link.physics.eavesdropper_fraction;
  if (link->station) out.stats = link->station->eavesdropper_stats();
  out.photon_number_splitting = link->photon_number_splitting;
  return out;
}

absl::Status PhysicalLayer::SetPhotonNumberSplitting(const std::string& neighbour, bool enabled) {
  LinkState* link = FindLinkTo(neighbour);
  if (link == nullptr) return NoLinkTo(neighbour);
  if (enabled && link->link.physics.eavesdropper_fraction > 0.0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "link ", link->link.physics.name, " has an intercept-resend eavesdropper (fraction ",
        link->link.physics.eavesdropper_fraction, "); set it to 0 before the photon-number-splitting attack"));
  }
  QNET_RETURN_IF_ERROR(BuildPhotonSender(*link));
  QNET_RETURN_IF_ERROR(link->fibre_out->SetPhotonNumberSplitting(enabled, 1.0));
  link->photon_number_splitting = enabled;
  return absl::OkStatus();
}

size_t PhysicalLayer::active_generations() const {
  size_t n = 0;
  for (const auto& [name, link] : links_) n += link->generations.size();
  return n;
}

void PhysicalLayer::Send(const LinkState& link, v1::PhysicalMessage message) {
  message.set_link(link.link.physics.name);
  v1::PeerMessage envelope;
  *envelope.mutable_physical() = std::move(message);
  context_.SendToNeighbour(link.far_end, std::move(envelope));
}

void PhysicalLayer::NoteEnded(LinkState& link, uint64_t generation_id, const absl::Status& why,
                              bool started_here) {
  if (Ended* known = link.ended.Find(generation_id); known != nullptr) {
    known->started_here = known->started_here || started_here;
    return;
  }
  link.ended.Insert(generation_id, Ended{why, started_here});
}

absl::Status PhysicalLayer::StartGeneration(const std::string& link_name, uint64_t generation_id, int slot,
                                            const GenerationParams& params, GenerationCallback done) {
  auto found = links_.find(link_name);
  if (found == links_.end()) {
    return absl::NotFoundError(absl::StrCat("node ", context_.node_name(), " has no link named '", link_name, "'"));
  }
  LinkState& link = *found->second;
  if (link.generations.contains(generation_id)) {
    return absl::AlreadyExistsError(
        absl::StrCat("generation ", generation_id, " is already under way on link ", link_name));
  }
  if (Ended* ended = link.ended.Find(generation_id); ended != nullptr) {
    if (ended->started_here) {
      return absl::AlreadyExistsError(absl::StrCat("generation ", generation_id, " already ran on link ",
                                                   link_name, "; generation ids must not be reused"));
    }
    // The far end ended it before this end started: report how, as the
    // callback would have.
    ended->started_here = true;
    GenerationResult result;
    result.status = ended->status;
    result.slot = slot;
    context_.StartTimer(Duration{0}, lifetime_.Guard([this, result, done = std::move(done)]() mutable {
      result.heralded_at = context_.Now();
      if (done) done(result);
    }));
    return absl::OkStatus();
  }
  QNET_ASSIGN_OR_RETURN(const quantum::QubitId qubit, device_.AwaitHerald(slot));
  Generation& generation = link.generations[generation_id];
  generation.id = generation_id;
  generation.slot = slot;
  generation.done = std::move(done);
  generation.qubit = qubit;
  generation.started_at = context_.Now();
  if (link.is_station_host) {
    absl::Status ready = link.station->Ready(
        HeraldingStation::End::kA, generation_id,
        {.qubit = qubit, .bright_state_alpha = params.bright_state_alpha, .max_attempts = params.max_attempts});
    if (!ready.ok()) {
      device_.CancelHerald(slot, qubit);
      link.generations.erase(generation_id);
      return ready;
    }
  } else {
    v1::PhysicalMessage message;
    v1::GenerationReady* r = message.mutable_ready();
    r->set_generation_id(generation_id);
    r->set_qubit_id(qubit);
    r->set_bright_state_alpha(params.bright_state_alpha);
    r->set_max_attempts(params.max_attempts);
    Send(link, std::move(message));
  }
  return absl::OkStatus();
}

bool PhysicalLayer::AbortGeneration(const std::string& link_name, uint64_t generation_id) {
  auto found = links_.find(link_name);
  if (found == links_.end()) return false;
  LinkState& link = *found->second;
  if (!link.generations.contains(generation_id)) return false;
  if (link.station) link.station->Cancel(generation_id);
  v1::PhysicalMessage message;
  message.mutable_abort()->set_generation_id(generation_id);
  Send(link, std::move(message));
  NoteEnded(link, generation_id,
            absl::CancelledError(absl::StrCat("generation ", generation_id, " on link ", link_name, " was aborted at ",
                                              context_.node_name())),
            true);
  Drop(link, generation_id);
  return true;
}

void PhysicalLayer::Drop(LinkState& link, uint64_t generation_id) {
  auto it = link.generations.find(generation_id);
  if (it == link.generations.end()) return;
  if (it->second.delivery_timer != kNoTimer) context_.CancelTimer(it->second.delivery_timer);
  ReleaseQubit(it->second);
  link.generations.erase(it);
}

void PhysicalLayer::ReleaseQubit(const Generation& generation) {
  device_.CancelHerald(generation.slot, generation.qubit);
  // The id belongs to this generation alone, so discarding it is always
  // right, and it catches a pair prepared after the slot was freed or reused.
  backend_.Discard(generation.qubit);
}

void PhysicalLayer::Finish(LinkState& link, uint64_t generation_id, GenerationResult result) {
  auto it = link.generations.find(generation_id);
  if (it == link.generations.end()) return;
  Generation generation = std::move(it->second);
  link.generations.erase(it);
  if (generation.delivery_timer != kNoTimer) context_.CancelTimer(generation.delivery_timer);
  if (!result.status.ok()) ReleaseQubit(generation);
  NoteEnded(link, generation_id, result.status, true);
  result.slot = generation.slot;
  if (generation.done) generation.done(result);
}

void PhysicalLayer::OnStationOutcome(LinkState& link, const HeraldingStation::Outcome& outcome) {
  if (!link.generations.contains(outcome.generation_id)) {
    // The station only runs generations started here; this cannot happen,
    // but never leave a prepared pair behind.
    if (outcome.status.ok()) {
      backend_.Discard(outcome.qubit_a);
      backend_.Discard(outcome.qubit_b);
    }
    return;
  }
  const bool heralded = outcome.status.ok() || absl::IsDeadlineExceeded(outcome.status);
  v1::PhysicalMessage message;
  if (heralded) {
    v1::Herald* h = message.mutable_herald();
    h->set_generation_id(outcome.generation_id);
    h->set_success(outcome.status.ok());
    h->set_bell_state(static_cast<uint32_t>(outcome.label));
    h->set_attempts(outcome.attempts);
    h->set_heralded_at_ns(outcome.click_time.time_since_epoch().count());
    if (outcome.status.ok()) h->set_qubit_id(outcome.qubit_b);
  } else {
    v1::StationError* e = message.mutable_station_error();
    e->set_generation_id(outcome.generation_id);
    e->set_code(static_cast<int32_t>(outcome.status.code()));
    e->set_message(std::string(outcome.status.message()));
  }
  Send(link, std::move(message));
  if (heralded) {
    ScheduleDelivery(link, outcome.generation_id, outcome.status, outcome.label, outcome.attempts,
                     outcome.click_time);
  } else {
    GenerationResult result;
    result.status = outcome.status;
    result.heralded_at = context_.Now();
    Finish(link, outcome.generation_id, std::move(result));
  }
}

void PhysicalLayer::ScheduleDelivery(LinkState& link, uint64_t generation_id, absl::Status failure,
                                     quantum::BellState label, uint64_t attempts, TimePoint click_time) {
  const TimePoint at = click_time + link.to_station;
  if (at <= context_.Now()) return Deliver(link, generation_id, failure, label, attempts, click_time);
  LinkState* raw = &link;
  link.generations[generation_id].delivery_timer = context_.StartTimer(
      at - context_.Now(),
      lifetime_.Guard([this, raw, generation_id, failure = std::move(failure), label, attempts, click_time] {
        Deliver(*raw, generation_id, failure, label, attempts, click_time);
      }));
}

void PhysicalLayer::Deliver(LinkState& link, uint64_t generation_id, const absl::Status& failure,
                            quantum::BellState label, uint64_t attempts, TimePoint click_time) {
  auto it = link.generations.find(generation_id);
  if (it == link.generations.end()) return;
  it->second.delivery_timer = kNoTimer;
  GenerationResult result;
  result.heralded_at = context_.Now();
  result.attempts = attempts;
  result.status = failure;
  if (failure.ok()) {
    const TimePoint emitted_at = click_time - link.to_station;
    absl::Status bound = device_.BindHerald(it->second.slot, it->second.qubit, emitted_at);
    if (bound.ok()) {
      result.label = label;
      result.emitted_at = emitted_at;
    } else {
      // The caller freed (or reused) the slot without aborting the generation.
      result.status = absl::FailedPreconditionError(absl::StrCat(
          "the heralded qubit of generation ", generation_id, " on link ", link.link.physics.name,
          " has no slot to go to: ", bound.message()));
    }
  }
  link.herald_stats.attempts += attempts;
  // The run's attempts dephase what else this node stores (if its hardware
  // does): from this end's start to the last attempt's emission.
  const TimePoint last_emission = std::max(it->second.started_at, click_time - link.to_station);
  device_.RecordEntanglementAttempts(it->second.slot, attempts, it->second.started_at, last_emission);
  ++(result.status.ok() ? link.herald_stats.heralded : link.herald_stats.failed);
  Finish(link, generation_id, std::move(result));
}

void PhysicalLayer::OnPhysicalMessage(const std::string& from, const v1::PhysicalMessage& message) {
  auto found = links_.find(message.link());
  if (found == links_.end() || found->second->far_end != from) {
    ++ignored_messages_;
    return;
  }
  LinkState& link = *found->second;
  switch (message.body_case()) {
    case v1::PhysicalMessage::kReady: return OnReady(link, message.ready());
    case v1::PhysicalMessage::kAbort: return OnAbort(link, message.abort().generation_id());
    case v1::PhysicalMessage::kHerald: return OnHerald(link, message.herald());
    case v1::PhysicalMessage::kStationError: return OnStationError(link, message.station_error());
    case v1::PhysicalMessage::kPhotonPulses: return OnPhotonPulses(link, message.photon_pulses());
    case v1::PhysicalMessage::BODY_NOT_SET: break;
  }
  ++ignored_messages_;
}

void PhysicalLayer::OnReady(LinkState& link, const v1::GenerationReady& ready) {
  if (!link.is_station_host || link.ended.contains(ready.generation_id())) {
    ++ignored_messages_;
    return;
  }
  absl::Status accepted = link.station->Ready(HeraldingStation::End::kB, ready.generation_id(),
                                              {.qubit = ready.qubit_id(),
                                               .bright_state_alpha = ready.bright_state_alpha(),
                                               .max_attempts = ready.max_attempts()});
  if (!accepted.ok()) ++ignored_messages_;
}

void PhysicalLayer::OnAbort(LinkState& link, uint64_t generation_id) {
  if (link.station) link.station->Cancel(generation_id);
  absl::Status why = absl::CancelledError(absl::StrCat("generation ", generation_id, " on link ",
                                                       link.link.physics.name, " was aborted by ", link.far_end));
  if (link.generations.contains(generation_id)) {
    GenerationResult result;
    result.status = std::move(why);
    result.heralded_at = context_.Now();
    return Finish(link, generation_id, std::move(result));
  }
  // Aborted before this end started it (or after it ended here: then the
  // earlier ending stands).
  NoteEnded(link, generation_id, why, false);
}

void PhysicalLayer::OnHerald(LinkState& link, const v1::Herald& herald) {
  if (link.is_station_host) {
    ++ignored_messages_;
    return;
  }
  const uint64_t id = herald.generation_id();
  // Where the pair's state lives (the station host), for a later fetch.
  if (herald.success()) backend_.NoteHeldBy(herald.qubit_id(), link.link.physics.node_a);
  auto it = link.generations.find(id);
  const bool expected = it != link.generations.end() && it->second.delivery_timer == kNoTimer &&
                        (!herald.success() || it->second.qubit == herald.qubit_id());
  if (!expected) {
    // This end stopped waiting (it aborted, the link went down) while the
    // station heralded: the qubit it prepared for us is nobody's.
    const bool ours = it != link.generations.end() && it->second.qubit == herald.qubit_id();
    if (herald.success() && !ours) backend_.Discard(herald.qubit_id());
    ++ignored_messages_;
    return;
  }
  if (herald.bell_state() > 3) {
    GenerationResult result;
    result.status = absl::InternalError(absl::StrCat("herald for generation ", id, " on link ",
                                                     link.link.physics.name, " names Bell state ",
                                                     herald.bell_state(), ", which does not exist"));
    result.heralded_at = context_.Now();
    return Finish(link, id, std::move(result));
  }
  absl::Status failure =
      herald.success() ? absl::OkStatus()
                       : absl::DeadlineExceededError(absl::StrCat("no heralded success in ", herald.attempts(),
                                                                  " attempts on link ", link.link.physics.name));
  // The host sends early so that the herald arrives when the station's own
  // signal would; if it could not, act no earlier than that time.
  ScheduleDelivery(link, id, std::move(failure), static_cast<quantum::BellState>(herald.bell_state()),
                   herald.attempts(), TimePoint(Duration(herald.heralded_at_ns())));
}

void PhysicalLayer::OnStationError(LinkState& link, const v1::StationError& error) {
  if (link.is_station_host) {
    ++ignored_messages_;
    return;
  }
  absl::Status why = FromWire(error.code(), error.message());
  if (link.generations.contains(error.generation_id())) {
    GenerationResult result;
    result.status = std::move(why);
    result.heralded_at = context_.Now();
    return Finish(link, error.generation_id(), std::move(result));
  }
  NoteEnded(link, error.generation_id(), why, false);
}

void PhysicalLayer::OnNeighbourDown(const std::string& neighbour) {
  for (auto& [name, link] : links_) {
    if (link->far_end != neighbour) continue;
    if (link->station) link->station->CancelAll();
    std::vector<uint64_t> ids;
    for (const auto& [id, generation] : link->generations) ids.push_back(id);
    std::sort(ids.begin(), ids.end());  // callbacks in a deterministic order
    for (uint64_t id : ids) {
      GenerationResult result;
      result.status = absl::UnavailableError(
          absl::StrCat("link ", name, " to ", neighbour, " went down during generation ", id));
      result.heralded_at = context_.Now();
      Finish(*link, id, std::move(result));
    }
  }
}

}  // namespace qnet::physical

// ---- Prepare-and-measure ----

namespace qnet::physical {

absl::Status PhysicalLayer::BuildPhotonSender(LinkState& link) {
  if (link.fibre_out) return absl::OkStatus();
  const std::string& name = link.link.physics.name;
  QNET_ASSIGN_OR_RETURN(PhotonSource source, PhotonSource::Create(options_.photon_source_rate_hz,
                                                                  context_.rng().Fork(absl::StrCat("bb84-source/", name))));
  QNET_ASSIGN_OR_RETURN(const FibreChannelParams params,
                        FibreChannelParamsFromLink(link.link.physics, link.link.physics.eavesdropper_fraction));
  QNET_ASSIGN_OR_RETURN(FibreChannel fibre,
                        FibreChannel::Create(params, context_.rng().Fork(absl::StrCat("bb84-fibre/", name))));
  link.photon_source.emplace(std::move(source));
  link.fibre_out.emplace(std::move(fibre));
  return absl::OkStatus();
}

absl::Status PhysicalLayer::BuildPhotonDetector(LinkState& link) {
  if (link.photon_detector) return absl::OkStatus();
  QNET_ASSIGN_OR_RETURN(const PhotonDetectorParams params, PhotonDetectorParamsFromLink(link.link.physics));
  QNET_ASSIGN_OR_RETURN(
      PhotonDetector detector,
      PhotonDetector::Create(params, context_.rng().Fork(absl::StrCat("bb84-detector/", link.link.physics.name))));
  link.photon_detector.emplace(std::move(detector));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<PreparedPulse>> PhysicalLayer::SendPhotons(const std::string& neighbour, uint64_t session,
                                                                      uint64_t first_pulse_id, uint32_t count,
                                                                      const std::vector<PulseIntensity>& intensities) {
  if (count == 0 || count > kMaxPulsesPerSend) {
    return absl::InvalidArgumentError(absl::StrCat("cannot send ", count, " photon pulses at once: send 1 to ",
                                                   kMaxPulsesPerSend, " per call (split a longer run)"));
  }
  if (first_pulse_id > std::numeric_limits<uint64_t>::max() - (count - 1)) {
    return absl::InvalidArgumentError(absl::StrCat("pulse ids from ", first_pulse_id, " for ", count,
                                                   " pulses overflow 64 bits; start the ids lower"));
  }
  LinkState* link = FindLinkTo(neighbour);
  if (link == nullptr) return NoLinkTo(neighbour);
  QNET_RETURN_IF_ERROR(BuildPhotonSender(*link));
  if (intensities != link->photon_source->intensities()) {
    QNET_RETURN_IF_ERROR(link->photon_source->SetIntensities(intensities));
  }
  if (link->photon_number_splitting) {
    // Eve knows the receiver's specification and the public signal intensity.
    const double mu = intensities.empty() ? 1.0 : intensities[0].mean_photon_number;
    QNET_RETURN_IF_ERROR(link->fibre_out->SetPhotonNumberSplitting(
        true, PnsForwardProbability(mu, link->fibre_out->transmittance(), link->link.physics.detector_efficiency)));
  }
  const uint64_t blocked_before = link->fibre_out->stats().pulses_blocked;

  // The source numbers its pulses itself; relabel them with the caller's ids
  // (the fibre needs them consecutive, which they stay).
  std::vector<PreparedPulse> prepared = link->photon_source->EmitBatch(count);
  for (uint32_t i = 0; i < count; ++i) prepared[i].pulse_id = first_pulse_id + i;
  QNET_ASSIGN_OR_RETURN(FibreChannel::Output out, link->fibre_out->Transmit(prepared));
  const std::vector<PhotonBatch::Photon>& photons = out.to_receiver.photons;
  PhotonLinkStats& stats = link->photon_stats;
  stats.pulses_sent += count;
  stats.photons_delivered += photons.size();
  stats.pulses_intercepted += out.intercepted.size();
  stats.pulses_blocked += link->fibre_out->stats().pulses_blocked - blocked_before;

  // One source: a batch starts when the previous one has been emitted.
  const TimePoint start = std::max(context_.Now(), link->source_free_at);
  link->source_free_at = start + link->photon_source->EmissionOffset(count);

  // Split into messages of at most kMaxPhotonsPerMessage photons whose gate
  // ranges tile the batch, so the receiver gates every pulse exactly once; a
  // batch with no surviving photon still sends its gates (dark counts).
  LinkState* raw = link;
  size_t next_photon = 0;
  uint64_t gate_begin = 0;  // index in the batch
  do {
    const size_t end_photon = std::min(next_photon + kMaxPhotonsPerMessage, photons.size());
    const uint64_t gate_end = end_photon < photons.size() ? photons[end_photon].pulse_id - first_pulse_id : count;
    v1::PhysicalMessage message;
    v1::PhotonPulses* body = message.mutable_photon_pulses();
    body->set_session_id(session);
    body->set_first_pulse_id(first_pulse_id + gate_begin);
    body->set_num_pulses(gate_end - gate_begin);
    body->mutable_photons()->Reserve(static_cast<int>(end_photon - next_photon));
    for (size_t i = next_photon; i < end_photon; ++i) {
      v1::PhotonPulses::Photon* p = body->add_photons();
      p->set_pulse_id(photons[i].pulse_id);
      p->set_x(photons[i].polarisation.x);
      p->set_y(photons[i].polarisation.y);
      p->set_z(photons[i].polarisation.z);
      if (photons[i].count != 1) p->set_count(photons[i].count);
    }
    // Leaves once the last pulse it covers has been emitted.
    const TimePoint leaves = start + link->photon_source->EmissionOffset(gate_end);
    context_.StartTimer(leaves - context_.Now(), lifetime_.Guard([this, raw, message = std::move(message)]() mutable {
      Send(*raw, std::move(message));
    }));
    next_photon = end_photon;
    gate_begin = gate_end;
  } while (gate_begin < count);
  return prepared;
}

absl::Status PhysicalLayer::RegisterPhotonReceiver(PhotonReceiver receiver) {
  if (receiver && photon_receiver_) {
    return absl::AlreadyExistsError(absl::StrCat("node ", context_.node_name(),
                                                 " already has a photon receiver; remove it first "
                                                 "(RegisterPhotonReceiver(nullptr))"));
  }
  photon_receiver_ = std::move(receiver);
  return absl::OkStatus();
}

absl::StatusOr<HeraldedLinkStats> PhysicalLayer::HeraldStats(const std::string& neighbour) const {
  const LinkState* link = FindLinkTo(neighbour);
  if (link == nullptr) return NoLinkTo(neighbour);
  HeraldedLinkStats stats = link->herald_stats;
  stats.link = link->link.physics.name;
  return stats;
}

absl::StatusOr<PhotonLinkStats> PhysicalLayer::PhotonStats(const std::string& neighbour) const {
  const LinkState* link = FindLinkTo(neighbour);
  if (link == nullptr) return NoLinkTo(neighbour);
  PhotonLinkStats stats = link->photon_stats;
  stats.link = link->link.physics.name;
  return stats;
}

void PhysicalLayer::OnPhotonPulses(LinkState& link, const v1::PhotonPulses& pulses) {
  PhotonLinkStats& stats = link.photon_stats;
  const uint64_t gates = pulses.num_pulses();
  // A sender never sends more gates than one batch: a larger count is garbage
  // and would make the dark-count sampling allocate without bound.
  if (gates == 0 || gates > kMaxPulsesPerSend || static_cast<uint64_t>(pulses.photons_size()) > gates) {
    ++stats.malformed_batches;
    ++ignored_messages_;
    return;
  }
  if (!photon_receiver_ || !BuildPhotonDetector(link).ok()) {
    stats.photons_dropped += pulses.photons_size();
    return;
  }
  PhotonBatch batch;
  batch.first_pulse_id = pulses.first_pulse_id();
  batch.num_pulses = gates;
  batch.photons.reserve(pulses.photons_size());
  for (const v1::PhotonPulses::Photon& p : pulses.photons()) {
    // 0 is the wire's default: one photon. More than a laser pulse of mean
    // 100 could carry is garbage (and would make detection loop long).
    const uint32_t count = p.count() == 0 ? 1 : p.count();
    if (count > kMaxPhotonsPerPulse) {
      ++stats.malformed_batches;
      ++ignored_messages_;
      return;
    }
    batch.photons.push_back({p.pulse_id(), {p.x(), p.y(), p.z()}, count});
  }
  // Detect checks the batch (ids in range and increasing, Bloch vectors
  // states) before it draws anything, so a rejected batch leaves no trace.
  absl::StatusOr<std::vector<MeasuredPulse>> detections = link.photon_detector->Detect(batch);
  if (!detections.ok()) {
    ++stats.malformed_batches;
    ++ignored_messages_;
    return;
  }
  stats.gates += gates;
  stats.photons_received += batch.photons.size();
  stats.detections += detections->size();
  // A copy: the receiver may replace itself while it runs.
  PhotonReceiver receiver = photon_receiver_;
  receiver(link.far_end, pulses.session_id(), *std::move(detections), gates);
}

}  // namespace qnet::physical
