#include "keydist/key_distribution.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/status.h"
#include "keydist/qkd_wire.h"
#include "quantum/bell.h"

namespace qnet::keydist {
namespace {

using link::MeasurementBasis;

// Progress stages, in order (QkdProgress::stage).
constexpr const char* kStageNames[] = {"offered",   "measuring", "measured",   "chsh",
                                       "sifted",    "estimated", "reconciled", "done"};
constexpr int kOffered = 0, kMeasuring = 1, kMeasured = 2, kChsh = 3, kSifted = 4, kEstimated = 5,
              kReconciled = 6, kDone = 7;

int PostStage(const qkd::PostProcessing& post) {
  const qkd::PostProcessingReport& r = post.report();
  if (post.state() == qkd::PostProcessing::State::kDone) return kDone;
  if (r.leaked_error_count_bits > 0 || r.leaked_verification_bits > 0) return kReconciled;
  if (r.qber.overall.sampled > 0) return kEstimated;
  if (r.sifted_bits > 0) return kSifted;
  return kMeasured;
}

bool IsKeyBasis(MeasurementBasis b) { return b == MeasurementBasis::kZ || b == MeasurementBasis::kX; }
bool IsTestBasis(MeasurementBasis b) { return b == MeasurementBasis::kChshB0 || b == MeasurementBasis::kChshB1; }

// A measurement axis in the X-Z plane as its angle from Z towards X, in
// eighths of a turn (pi/4); Y is not in the plane.
std::optional<int> EighthTurns(MeasurementBasis b) {
  switch (b) {
    case MeasurementBasis::kZ:
    case MeasurementBasis::kChshA0: return 0;
    case MeasurementBasis::kX:
    case MeasurementBasis::kChshA1: return 2;
    case MeasurementBasis::kChshB0: return 1;
    case MeasurementBasis::kChshB1: return -1;
    case MeasurementBasis::kY: return std::nullopt;
  }
  return std::nullopt;
}

// The tail's measurement of a pair delivered in Bell state `frame`, as the
// measurement of a PHI+ pair that gives the same statistics. The frame
// X^x Z^z sits on the head's qubit; moved to the tail's qubit it conjugates
// the tail's observable, turning the axis angle t into -t (Z) and pi - t (X).
// An angle outside {0, pi/4, pi/2, -pi/4} is the opposite of one inside
// (sigma(t + pi) = -sigma(t)): the same setting with the outcome flipped.
std::optional<std::pair<MeasurementBasis, bool>> ToPhiPlusFrame(quantum::BellState frame, MeasurementBasis basis,
                                                                bool outcome) {
  std::optional<int> turns = EighthTurns(basis);
  if (!turns.has_value()) return std::nullopt;
  int t = *turns;
  if (quantum::ZBit(frame)) t = -t;
  if (quantum::XBit(frame)) t = 4 - t;
  t = ((t % 8) + 8) % 8;
  bool flip = false;
  if (t >= 3 && t <= 6) {
    t = (t + 4) % 8;
    flip = true;
  }
  const MeasurementBasis out = t == 0   ? MeasurementBasis::kZ
                               : t == 2 ? MeasurementBasis::kX
                               : t == 1 ? MeasurementBasis::kChshB0
                                        : MeasurementBasis::kChshB1;
  return std::pair{out, outcome != flip};
}

v1::KeyDistributionProtocol ProtocolToWire(QkdProtocol p) {
  switch (p) {
    case QkdProtocol::kE91: return v1::KEYDIST_E91;
    case QkdProtocol::kBb84: return v1::KEYDIST_BB84;
    case QkdProtocol::kBbm92:
    case QkdProtocol::kRelay: break;  // relays offer BBM92 hops
  }
  return v1::KEYDIST_BBM92;
}

std::optional<QkdProtocol> ProtocolFromWire(v1::KeyDistributionProtocol p) {
  if (p == v1::KEYDIST_BBM92) return QkdProtocol::kBbm92;
  if (p == v1::KEYDIST_E91) return QkdProtocol::kE91;
  if (p == v1::KEYDIST_BB84) return QkdProtocol::kBb84;
  return std::nullopt;
}

void PostProcessingToWire(const qkd::PostProcessingOptions& o, v1::KeyDistributionPostProcessing* out) {
  out->set_sample_fraction(o.estimation.sample_fraction);
  out->set_estimation_failure_probability(o.estimation.failure_probability);
  out->set_abort_threshold(o.estimation.abort_threshold);
  out->set_cascade_passes(static_cast<uint32_t>(std::max(0, o.cascade.passes)));
  out->set_cascade_first_block_factor(o.cascade.first_block_factor);
  out->set_privacy_amplification_failure_probability(o.privacy_amplification_failure_probability);
}

qkd::PostProcessingOptions PostProcessingFromWire(const v1::KeyDistributionPostProcessing& w) {
  qkd::PostProcessingOptions o;
  o.estimation.sample_fraction = w.sample_fraction();
  o.estimation.failure_probability = w.estimation_failure_probability();
  o.estimation.abort_threshold = w.abort_threshold();
  o.cascade.passes = static_cast<int>(std::min<uint32_t>(w.cascade_passes(), INT_MAX));
  o.cascade.first_block_factor = w.cascade_first_block_factor();
  o.privacy_amplification_failure_probability = w.privacy_amplification_failure_probability();
  return o;
}

absl::Status ValidateSessionOptions(const QkdSessionOptions& o) {
  if (o.pairs == 0) return absl::InvalidArgumentError("a QKD session needs pairs >= 1");
  if (!(o.min_fidelity >= 0.0 && o.min_fidelity <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("min_fidelity must lie in [0, 1], got ", o.min_fidelity));
  }
  if (o.timeout <= Duration(0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("a QKD session needs a timeout > 0, got ", FormatDuration(o.timeout)));
  }
  if (!std::isfinite(o.e91_min_chsh)) {
    return absl::InvalidArgumentError("e91_min_chsh must be finite (2 is the classical bound)");
  }
  // The pipeline validates its own options; with no detections this is cheap.
  return qkd::PostProcessing::Create(qkd::Role::kAlice, {}, o.post_processing, 0).status();
}

absl::Status StatusFromWire(int32_t code, const std::string& message, const std::string& source) {
  absl::StatusCode c = static_cast<absl::StatusCode>(code);
  if (code <= 0 || code > static_cast<int32_t>(absl::StatusCode::kUnauthenticated)) c = absl::StatusCode::kUnknown;
  return absl::Status(c, absl::StrCat(message, " (reported by ", source, ")"));
}

absl::Status WithContext(const absl::Status& s, absl::string_view context) {
  return absl::Status(s.code(), absl::StrCat(context, ": ", s.message()));
}

// The first `bits` bits of a XOR b (both at least that long).
qkd::BitString XorPrefix(const qkd::BitString& a, const qkd::BitString& b, size_t bits) {
  std::vector<uint64_t> words = a.Slice(0, bits).words();
  const qkd::BitString other = b.Slice(0, bits);
  for (size_t i = 0; i < words.size(); ++i) words[i] ^= other.words()[i];
  return qkd::BitString::FromWords(std::move(words), bits);
}

// A public id for a relayed key from public data only (the hop key ids).
std::string RelayKeyId(const std::string& origin, uint64_t relay_id, const std::vector<std::string>& hop_ids,
                       uint64_t bits) {
  uint64_t h = 0xcbf29ce484222325ULL;
  auto mix_byte = [&h](unsigned char c) {
    h ^= c;
    h *= 0x100000001b3ULL;
  };
  auto mix = [&](std::string_view s) {
    for (char c : s) mix_byte(static_cast<unsigned char>(c));
    mix_byte(0);
  };
  mix(origin);
  mix(absl::StrCat(relay_id, ":", bits));
  for (const std::string& id : hop_ids) mix(id);
  h ^= h >> 31;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 29;
  return absl::StrFormat("qr-%016x", h);
}

}  // namespace

std::string_view QkdProtocolName(QkdProtocol protocol) {
  switch (protocol) {
    case QkdProtocol::kBbm92: return "BBM92";
    case QkdProtocol::kE91: return "E91";
    case QkdProtocol::kRelay: return "relay";
    case QkdProtocol::kBb84: return "BB84";
  }
  return "?";
}

// ---------------------------------------------------------------- set-up

absl::StatusOr<std::unique_ptr<KeyDistribution>> KeyDistribution::Create(NodeContext& context,
                                                                         network::NetworkLayer& network,
                                                                         physical::PhysicalLayer* physical,
                                                                         KeyDistributionOptions options) {
  if (options.pair_purpose_ids == 0 ||
      options.first_pair_purpose_id > UINT32_MAX - options.pair_purpose_ids ||
      (options.purpose_id >= options.first_pair_purpose_id &&
       options.purpose_id - options.first_pair_purpose_id < options.pair_purpose_ids)) {
    return absl::InvalidArgumentError(
        "key distribution needs a non-empty pair purpose id range that does not hold its datagram purpose id");
  }
  std::unique_ptr<KeyDistribution> kd(new KeyDistribution(context, network, options));
  KeyDistribution* self = kd.get();
  absl::Status s = network.RegisterDatagramReceiver(
      options.purpose_id, [self](const std::string& source, const std::string& payload) {
        self->OnDatagram(source, payload);
      });
  if (!s.ok()) {
    return absl::AlreadyExistsError(absl::StrCat("key distribution cannot receive datagrams on purpose id ",
                                                 options.purpose_id, ": ", s.message()));
  }
  kd->receiving_datagrams_ = true;
  if (physical != nullptr) {
    std::weak_ptr<bool> alive = kd->alive_;
    s = physical->RegisterPhotonReceiver([self, alive](const std::string& from, uint64_t session,
                                                       std::vector<physical::MeasuredPulse> detections,
                                                       uint64_t gates) {
      if (!alive.expired()) self->OnPhotons(from, session, detections, gates);
    });
    if (!s.ok()) {
      return absl::AlreadyExistsError(
          absl::StrCat("key distribution at ", context.node_name(), " cannot receive BB84 photons: ", s.message()));
    }
    kd->physical_ = physical;
  }
  return kd;
}

KeyDistribution::KeyDistribution(NodeContext& context, network::NetworkLayer& network,
                                 KeyDistributionOptions options)
    : context_(context), network_(network), options_(options), rng_(context.rng().Fork("key-distribution")) {
  // A restarted node numbers its sessions from its clock, so a peer never
  // mistakes a new session for one of the previous incarnation's.
  const int64_t now_us = std::max<int64_t>(0, context.Now().time_since_epoch().count() / 1000);
  next_id_ = (static_cast<uint64_t>(now_us) << 16) + 1;
}

KeyDistribution::~KeyDistribution() {
  *alive_ = false;
  for (auto& [key, s] : sessions_) {
    if (s.deadline != kNoTimer) context_.CancelTimer(s.deadline);
    if (s.request != 0) (void)network_.Cancel(s.request);
    if (s.pair_purpose != 0) (void)network_.UnregisterReceiver(s.pair_purpose);
  }
  for (auto& [key, r] : relays_) {
    if (r.deadline != kNoTimer) context_.CancelTimer(r.deadline);
  }
  if (receiving_datagrams_) (void)network_.UnregisterDatagramReceiver(options_.purpose_id);
  if (physical_ != nullptr) (void)physical_->RegisterPhotonReceiver(nullptr);
}

// ---------------------------------------------------------------- sessions

absl::StatusOr<SessionId> KeyDistribution::StartSession(const std::string& peer, const QkdSessionOptions& options,
                                                        ProgressHandler progress, DoneHandler done) {
  if (!done) return absl::InvalidArgumentError("a QKD session needs a done handler");
  if (peer.empty() || peer == Where()) {
    return absl::InvalidArgumentError(absl::StrCat("a QKD session needs another node as its peer, got '", peer, "'"));
  }
  QNET_RETURN_IF_ERROR(ValidateSessionOptions(options));
  if (options.protocol == QkdProtocol::kBb84) QNET_RETURN_IF_ERROR(Bb84Possible(peer));
  absl::StatusOr<SessionId> id = options.protocol == QkdProtocol::kRelay
                                     ? StartRelay(peer, options, std::move(progress), std::move(done))
                                     : StartHopOrSession(peer, options, std::move(progress), std::move(done), {});
  if (id.ok()) ++stats_.sessions_started;
  return id;
}

absl::StatusOr<SessionId> KeyDistribution::StartHopOrSession(const std::string& peer,
                                                             const QkdSessionOptions& options,
                                                             ProgressHandler progress, DoneHandler done,
                                                             std::optional<HopOf> hop) {
  absl::StatusOr<network::Route> route = network_.routes().PathTo(Where(), peer);
  if (!route.ok()) {
    return network::ToStatus(network::NetworkError::kNoRoute,
                             absl::StrCat("no QKD session with ", peer, ": ", route.status().message()));
  }
  const SessionKey key{Where(), next_id_++};
  v1::KeyDistributionMessage m;
  v1::KeyDistributionOffer* offer = m.mutable_offer();
  offer->set_protocol(ProtocolToWire(options.protocol));
  offer->set_pairs(options.pairs);
  offer->set_min_fidelity(options.min_fidelity);
  offer->set_timeout_ns(options.timeout.count());
  PostProcessingToWire(options.post_processing, offer->mutable_post_processing());
  offer->set_e91_min_chsh(options.e91_min_chsh);
  if (hop.has_value()) {
    auto relay = relays_.find(hop->relay);
    if (relay == relays_.end()) return absl::InternalError("a relay hop without its relay session");
    v1::KeyDistributionRelayTag* tag = offer->mutable_relay();
    tag->mutable_relay()->set_initiator(hop->relay.initiator);
    tag->mutable_relay()->set_id(hop->relay.id);
    for (const std::string& n : relay->second.path) tag->add_path(n);
  }
  QNET_RETURN_IF_ERROR(Send(peer, key, std::move(m)));
  Session s;
  s.key = key;
  s.initiator = true;
  s.peer = peer;
  s.options = options;
  s.started = context_.Now();
  s.deadline_at = s.started + options.timeout;
  s.progress = std::move(progress);
  s.done = std::move(done);
  s.hop = std::move(hop);
  s.deadline = StartDeadline(options.timeout, [this, key] { OnDeadline(key); });
  Session& stored = sessions_.emplace(key, std::move(s)).first->second;
  EmitProgress(stored, kOffered);
  return key.id;
}

absl::Status KeyDistribution::Cancel(SessionId id) {
  const SessionKey key{Where(), id};
  auto s = sessions_.find(key);
  if (s != sessions_.end() && s->second.initiator && !s->second.hop.has_value()) {
    Fail(key, absl::CancelledError(absl::StrCat("CANCELLED: QKD session ", id, " was cancelled at ", Where())), true);
    return absl::OkStatus();
  }
  auto r = relays_.find(key);
  if (r != relays_.end() && r->second.origin()) {
    FailRelay(key, absl::CancelledError(absl::StrCat("CANCELLED: relay QKD session ", id, " was cancelled at ",
                                                     Where())),
              true);
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat("no QKD session ", id, " started at ", Where(), " is in progress"));
}

void KeyDistribution::OnDatagram(const std::string& source, const std::string& payload) {
  v1::KeyDistributionMessage m;
  if (!m.ParseFromString(payload) || m.body_case() == v1::KeyDistributionMessage::BODY_NOT_SET ||
      m.session().initiator().empty()) {
    ++stats_.malformed_messages;
    return;
  }
  const SessionKey key{m.session().initiator(), m.session().id()};
  switch (m.body_case()) {
    case v1::KeyDistributionMessage::kOffer: return OnOffer(source, key, m.offer());
    case v1::KeyDistributionMessage::kAccept: return OnAccept(source, key, m.accept());
    case v1::KeyDistributionMessage::kEnd: return OnEnd(source, key, m.end());
    case v1::KeyDistributionMessage::kTestOutcomes: return OnTestOutcomes(source, key, m.test_outcomes());
    case v1::KeyDistributionMessage::kPostProcessing: return OnPostProcessingMessage(source, key, m.post_processing());
    case v1::KeyDistributionMessage::kRelayStart: return OnRelayStart(source, key, m.relay_start());
    case v1::KeyDistributionMessage::kRelayAnnouncement: return OnRelayAnnouncement(source, key, m.relay_announcement());
    case v1::KeyDistributionMessage::kRelayDone: return OnRelayDone(source, key, m.relay_done());
    case v1::KeyDistributionMessage::kRelayAbort: return OnRelayAbort(source, key, m.relay_abort());
    case v1::KeyDistributionMessage::BODY_NOT_SET: return;
  }
}

void KeyDistribution::OnOffer(const std::string& source, const SessionKey& key,
                              const v1::KeyDistributionOffer& offer) {
  if (key.initiator != source) {
    ++stats_.stray_messages;
    return;
  }
  if (sessions_.contains(key)) return;  // a duplicate
  QkdSessionOptions o;
  const std::optional<QkdProtocol> protocol = ProtocolFromWire(offer.protocol());
  o.protocol = protocol.value_or(QkdProtocol::kBbm92);
  o.pairs = offer.pairs();
  o.min_fidelity = offer.min_fidelity();
  o.timeout = Duration(offer.timeout_ns());
  o.post_processing = PostProcessingFromWire(offer.post_processing());
  o.e91_min_chsh = offer.e91_min_chsh();
  absl::Status valid = ValidateSessionOptions(o);
  if (valid.ok() && !protocol.has_value()) {
    valid = absl::InvalidArgumentError(absl::StrCat("unknown QKD protocol ", offer.protocol()));
  }
  if (valid.ok() && o.protocol == QkdProtocol::kBb84) {
    valid = offer.has_relay() ? absl::InvalidArgumentError("relay hops run BBM92, not BB84") : Bb84Possible(source);
  }
  std::optional<HopOf> hop;
  std::vector<std::string> path;
  size_t index = 0;
  if (valid.ok() && offer.has_relay()) {
    path.assign(offer.relay().path().begin(), offer.relay().path().end());
    while (index < path.size() && path[index] != Where()) ++index;
    if (index == 0 || index >= path.size() || path[index - 1] != source ||
        offer.relay().relay().initiator() != path.front()) {
      valid = absl::InvalidArgumentError(absl::StrCat("a relay hop offer from ", source, " whose path ",
                                                      absl::StrJoin(path, "-"), " does not have ", source,
                                                      " just before ", Where()));
    } else {
      hop = HopOf{SessionKey{offer.relay().relay().initiator(), offer.relay().relay().id()}, true};
    }
  }
  if (!valid.ok()) {
    SendEnd(source, key, WithContext(valid, absl::StrCat(Where(), " refuses QKD session ", key.id)));
    return;
  }
  // A receiver of its own tells the session's pairs from any other's (BB84
  // photons name their session themselves).
  uint32_t purpose = 0;
  std::weak_ptr<bool> alive = alive_;
  const bool needs_pairs = o.protocol != QkdProtocol::kBb84;
  for (uint32_t tries = 0; needs_pairs && tries < options_.pair_purpose_ids && purpose == 0; ++tries) {
    const uint32_t candidate = options_.first_pair_purpose_id + next_pair_purpose_;
    next_pair_purpose_ = (next_pair_purpose_ + 1) % options_.pair_purpose_ids;
    absl::Status registered =
        network_.RegisterReceiver(candidate, [this, alive, key](const network::NetworkEvent& event) {
          if (!alive.expired()) OnTailEvent(key, event);
        });
    if (registered.ok()) purpose = candidate;
  }
  if (needs_pairs && purpose == 0) {
    SendEnd(source, key,
            absl::ResourceExhaustedError(absl::StrCat(Where(), " has no free pair purpose id for QKD session ",
                                                      key.id, " (", sessions_.size(), " sessions in progress)")));
    return;
  }
  if (hop.has_value()) EnsureRelay(hop->relay, path, index, o.timeout);
  Session s;
  s.key = key;
  s.initiator = false;
  s.peer = source;
  s.options = o;
  s.stage = Stage::kMeasuring;
  s.started = context_.Now();
  s.deadline_at = s.started + o.timeout;
  s.pair_purpose = purpose;
  s.hop = hop;
  s.deadline = StartDeadline(o.timeout, [this, key] { OnDeadline(key); });
  sessions_.emplace(key, std::move(s));
  ++stats_.sessions_accepted;
  v1::KeyDistributionMessage m;
  m.mutable_accept()->set_pair_purpose_id(purpose);
  if (absl::Status sent = Send(source, key, std::move(m)); !sent.ok()) {
    Fail(key, WithContext(sent, absl::StrCat("QKD session ", key.id, " from ", source)), false);
  }
}

void KeyDistribution::OnAccept(const std::string& source, const SessionKey& key,
                               const v1::KeyDistributionAccept& accept) {
  Session* s = FindSession(key, source);
  if (s == nullptr) return;
  if (!s->initiator || s->stage != Stage::kOffered) {
    ++stats_.stray_messages;
    return;
  }
  if (s->options.protocol == QkdProtocol::kBb84) {
    s->stage = Stage::kMeasuring;
    EmitProgress(*s, kMeasuring);
    SendPulses(key);
    return;
  }
  network::EndToEndRequest r;
  r.remote_node = s->peer;
  r.number = s->options.pairs;
  r.type = link::RequestType::kMeasure;
  r.basis = s->options.protocol == QkdProtocol::kE91 ? link::BasisChoice::kE91 : link::BasisChoice::kBb84;
  r.min_fidelity = s->options.min_fidelity;
  r.max_time = std::max(Duration(1), s->deadline_at - context_.Now());
  r.purpose_id = accept.pair_purpose_id();
  std::weak_ptr<bool> alive = alive_;
  absl::StatusOr<network::RequestId> request =
      network_.Create(r, [this, alive, key](const network::NetworkEvent& event) {
        if (!alive.expired()) OnHeadEvent(key, event);
      });
  if (!request.ok()) {
    Fail(key,
         WithContext(request.status(), absl::StrCat("QKD session ", key.id, " with ", source, ": no pairs")),
         true);
    return;
  }
  s->request = *request;
  s->stage = Stage::kMeasuring;
  EmitProgress(*s, kMeasuring);
}

void KeyDistribution::OnEnd(const std::string& source, const SessionKey& key, const v1::KeyDistributionEnd& end) {
  if (FindSession(key, source) == nullptr) return;
  Fail(key, StatusFromWire(end.code(), end.message(), source), false);
}

void KeyDistribution::OnHeadEvent(const SessionKey& key, const network::NetworkEvent& event) {
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return;  // ended meanwhile; its request was cancelled
  Session& s = it->second;
  if (const auto* p = std::get_if<network::PairDelivered>(&event)) {
    if (p->request_id == s.request) RecordPair(s, *p);
    return;
  }
  if (const auto* c = std::get_if<network::RequestCompleted>(&event)) {
    if (c->request_id != s.request) return;
    s.request = 0;
    OnPairsDone(key);
    return;
  }
  if (const auto* f = std::get_if<network::RequestFailed>(&event)) {
    if (f->request_id != s.request) return;
    s.request = 0;
    Fail(key,
         network::ToStatus(f->error, absl::StrCat("QKD session ", key.id, " with ", s.peer, ": the network layer ",
                                                  "delivered ", f->pairs_delivered, " of ", s.options.pairs,
                                                  " pairs: ", f->message)),
         true);
  }
}

void KeyDistribution::OnTailEvent(const SessionKey& key, const network::NetworkEvent& event) {
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return;
  Session& s = it->second;
  if (const auto* in = std::get_if<network::IncomingRequest>(&event)) {
    if (in->origin != s.peer || s.request != 0 || s.stage != Stage::kMeasuring ||
        in->request.type != link::RequestType::kMeasure) {
      // Not the session's request: nothing else may use its purpose id.
      ++stats_.stray_messages;
      (void)network_.Cancel(in->request_id);
      return;
    }
    s.request = in->request_id;
    s.path = in->path;
    return;
  }
  if (const auto* p = std::get_if<network::PairDelivered>(&event)) {
    if (s.request != 0 && p->request_id == s.request) RecordPair(s, *p);
    return;
  }
  if (const auto* c = std::get_if<network::RequestCompleted>(&event)) {
    if (s.request == 0 || c->request_id != s.request) return;
    s.request = 0;
    OnPairsDone(key);
    return;
  }
  if (const auto* f = std::get_if<network::RequestFailed>(&event)) {
    if (s.request == 0 || f->request_id != s.request) return;
    s.request = 0;
    Fail(key,
         network::ToStatus(f->error, absl::StrCat("QKD session ", key.id, " from ", s.peer,
                                                  ": the network layer delivered ", f->pairs_delivered, " of ",
                                                  s.options.pairs, " pairs: ", f->message)),
         true);
  }
}

void KeyDistribution::RecordPair(Session& s, const network::PairDelivered& pair) {
  if (pair.type != link::RequestType::kMeasure || pair.outcome < 0) {
    ++s.stray_pairs;
    return;
  }
  // One request runs on one circuit, so its sequence numbers name its pairs
  // alike at both ends.
  if (!s.circuit.has_value()) s.circuit = pair.id.circuit;
  if (*s.circuit != pair.id.circuit || !s.pair_ids.insert(pair.id.sequence).second) {
    ++s.stray_pairs;
    return;
  }
  if (s.path.empty()) s.path = pair.path;
  Measured m{pair.id.sequence, pair.basis, pair.outcome != 0};
  if (!s.initiator) {
    std::optional<std::pair<MeasurementBasis, bool>> corrected =
        ToPhiPlusFrame(pair.bell_state, pair.basis, pair.outcome != 0);
    if (!corrected.has_value()) {
      ++s.stray_pairs;
      return;
    }
    m.basis = corrected->first;
    m.outcome = corrected->second;
  }
  s.measured.push_back(m);
}

// ---------------------------------------------------------------- BB84

absl::Status KeyDistribution::Bb84Possible(const std::string& peer) const {
  if (physical_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "BB84 needs the node's physical layer (photon source and detectors), but key distribution at ", Where(),
        " runs without one; use bbm92"));
  }
  if (!physical_->PhotonStats(peer).ok()) {
    return absl::InvalidArgumentError(absl::StrCat("BB84 runs over one link: ", peer, " is not a neighbour of ",
                                                   Where(), "; use bbm92 or relay"));
  }
  return absl::OkStatus();
}

void KeyDistribution::SendPulses(const SessionKey& key) {
  Session& s = sessions_.at(key);
  const uint64_t pulses = s.options.pairs;
  s.measured.reserve(pulses);
  for (uint64_t first = 0; first < pulses; first += physical::PhysicalLayer::kMaxPulsesPerSend) {
    const auto count =
        static_cast<uint32_t>(std::min<uint64_t>(pulses - first, physical::PhysicalLayer::kMaxPulsesPerSend));
    absl::StatusOr<std::vector<physical::PreparedPulse>> prepared =
        physical_->SendPhotons(s.peer, key.id, first, count);
    if (!prepared.ok()) {
      Fail(key,
           WithContext(prepared.status(), absl::StrCat("BB84 session ", key.id, " with ", s.peer, ": pulses from ",
                                                       first, " not sent")),
           true);
      return;
    }
    for (const physical::PreparedPulse& p : *prepared) {
      s.measured.push_back({p.pulse_id, p.basis == physical::kPolarisationBasisX ? MeasurementBasis::kX
                                                                                  : MeasurementBasis::kZ,
                            p.bit != 0});
    }
  }
  EmitProgress(s, kMeasured);
}

void KeyDistribution::OnPhotons(const std::string& from, uint64_t session,
                                const std::vector<physical::MeasuredPulse>& detections, uint64_t gates) {
  const SessionKey key{from, session};
  auto it = sessions_.find(key);
  if (it == sessions_.end() || it->second.initiator || it->second.options.protocol != QkdProtocol::kBb84 ||
      it->second.stage != Stage::kMeasuring) {
    ++stats_.stray_photon_batches;  // e.g. still in the fibre when the session ended
    return;
  }
  Session& s = it->second;
  for (const physical::MeasuredPulse& d : detections) {
    // Ids outside the session's range or out of order cannot be Alice's.
    if (d.pulse_id >= s.options.pairs || (s.last_pulse.has_value() && d.pulse_id <= *s.last_pulse)) {
      ++s.stray_pairs;
      continue;
    }
    s.last_pulse = d.pulse_id;
    s.measured.push_back(
        {d.pulse_id, d.basis == physical::kPolarisationBasisX ? MeasurementBasis::kX : MeasurementBasis::kZ,
         d.bit != 0});
  }
  s.gates += gates;
  if (s.gates >= s.options.pairs) OnPairsDone(key);
}

void KeyDistribution::OnPairsDone(const SessionKey& key) {
  Session& s = sessions_.at(key);
  EmitProgress(s, kMeasured);
  if (s.options.protocol != QkdProtocol::kE91) {
    StartPostProcessing(key, {});
    return;
  }
  s.stage = Stage::kTesting;
  if (!s.initiator) {
    // The tail opens the CHSH test with its B0/B1 pairs.
    std::vector<Measured> tests;
    for (const Measured& m : s.measured) {
      if (IsTestBasis(m.basis)) tests.push_back(m);
    }
    std::sort(tests.begin(), tests.end(), [](const Measured& a, const Measured& b) { return a.pair_id < b.pair_id; });
    std::vector<uint64_t> ids;
    qkd::BitString second, outcomes;
    for (const Measured& m : tests) {
      ids.push_back(m.pair_id);
      second.PushBack(m.basis == MeasurementBasis::kChshB1);
      outcomes.PushBack(m.outcome);
    }
    if (!SendTestOutcomes(key, ids, second, outcomes)) return;
  }
  if (s.peer_test.has_value()) HandleTest(key);
}

bool KeyDistribution::SendTestOutcomes(const SessionKey& key, const std::vector<uint64_t>& ids,
                                       const qkd::BitString& second, const qkd::BitString& outcomes) {
  const Session& s = sessions_.at(key);
  v1::KeyDistributionMessage msg;
  v1::KeyDistributionTestOutcomes* t = msg.mutable_test_outcomes();
  PairIdsToProto(ids, t->mutable_pair_id_gaps());
  BitsToProto(second, t->mutable_second_setting());
  BitsToProto(outcomes, t->mutable_outcomes());
  if (absl::Status sent = Send(s.peer, key, std::move(msg)); !sent.ok()) {
    Fail(key, WithContext(sent, absl::StrCat("QKD session ", key.id, " with ", s.peer)), false);
    return false;
  }
  return true;
}

void KeyDistribution::OnTestOutcomes(const std::string& source, const SessionKey& key,
                                     const v1::KeyDistributionTestOutcomes& m) {
  Session* s = FindSession(key, source);
  if (s == nullptr) return;
  if (s->options.protocol != QkdProtocol::kE91 || s->peer_test.has_value() || s->post.has_value()) {
    ++stats_.stray_messages;
    return;
  }
  TestOutcomes t;
  absl::Status valid = absl::OkStatus();
  absl::StatusOr<std::vector<uint64_t>> ids = PairIdsFromProto(m.pair_id_gaps(), "CHSH test pair ids");
  absl::StatusOr<qkd::BitString> second = BitsFromProto(m.second_setting(), "CHSH test settings");
  absl::StatusOr<qkd::BitString> outcomes = BitsFromProto(m.outcomes(), "CHSH test outcomes");
  if (!ids.ok()) valid = ids.status();
  if (valid.ok() && !second.ok()) valid = second.status();
  if (valid.ok() && !outcomes.ok()) valid = outcomes.status();
  if (valid.ok() && (second->size() != ids->size() || outcomes->size() != ids->size())) {
    valid = absl::InvalidArgumentError(absl::StrFormat("%d pair ids with %d settings and %d outcomes", ids->size(),
                                                       second->size(), outcomes->size()));
  }
  if (!valid.ok()) {
    Fail(key,
         absl::InvalidArgumentError(absl::StrCat("QKD session ", key.id, ": malformed CHSH test outcomes from ",
                                                 source, ": ", valid.message())),
         true);
    return;
  }
  s->peer_test = TestOutcomes{*std::move(ids), *std::move(second), *std::move(outcomes)};
  if (s->stage == Stage::kTesting) HandleTest(key);
}

void KeyDistribution::HandleTest(const SessionKey& key) {
  Session& s = sessions_.at(key);
  const TestOutcomes& t = *s.peer_test;
  absl::flat_hash_map<uint64_t, const Measured*> own;
  own.reserve(s.measured.size());
  for (const Measured& m : s.measured) own[m.pair_id] = &m;
  // Correlators E(a, b), a in {Z, X} (head), b in {B0, B1} (tail, PHI+ frame).
  double sum[2][2] = {{0, 0}, {0, 0}};
  uint64_t count[2][2] = {{0, 0}, {0, 0}};
  std::vector<uint64_t> reply_ids;
  qkd::BitString reply_second, reply_outcomes;
  for (size_t i = 0; i < t.pair_ids.size(); ++i) {
    auto it = own.find(t.pair_ids[i]);
    if (it == own.end()) continue;
    const Measured& m = *it->second;
    int a = 0, b = 0;
    bool a_out = false, b_out = false;
    if (s.initiator) {
      if (!IsKeyBasis(m.basis)) continue;
      a = m.basis == MeasurementBasis::kX;
      a_out = m.outcome;
      b = t.second_setting.Get(i);
      b_out = t.outcomes.Get(i);
      reply_ids.push_back(m.pair_id);
      reply_second.PushBack(a);
      reply_outcomes.PushBack(a_out);
    } else {
      if (!IsTestBasis(m.basis)) continue;
      a = t.second_setting.Get(i);
      a_out = t.outcomes.Get(i);
      b = m.basis == MeasurementBasis::kChshB1;
      b_out = m.outcome;
    }
    sum[a][b] += a_out == b_out ? 1.0 : -1.0;
    ++count[a][b];
  }
  if (s.initiator) {
    if (!SendTestOutcomes(key, reply_ids, reply_second, reply_outcomes)) return;
  }
  // Both ends now hold the same joint outcomes and decide alike.
  const uint64_t test_pairs = count[0][0] + count[0][1] + count[1][0] + count[1][1];
  if (count[0][0] == 0 || count[0][1] == 0 || count[1][0] == 0 || count[1][1] == 0) {
    Fail(key,
         absl::FailedPreconditionError(absl::StrFormat(
             "QKD aborted: E91 session %d has too few CHSH test pairs to estimate S (Z-B0 %d, Z-B1 %d, X-B0 %d, "
             "X-B1 %d); measure more pairs",
             key.id, count[0][0], count[0][1], count[1][0], count[1][1])),
         false);
    return;
  }
  // S = E(Z,B0) + E(Z,B1) + E(X,B0) - E(X,B1): each term's sign is that of
  // its ideal PHI+ correlation cos(a - b). Each E is a mean of +-1 values,
  // variance (1 - E^2)/n (at least 1/n^2 so that a perfect sample still
  // carries its sampling error).
  double total = 0.0, variance = 0.0;
  for (int a = 0; a < 2; ++a) {
    for (int b = 0; b < 2; ++b) {
      const double n = static_cast<double>(count[a][b]);
      const double e = sum[a][b] / n;
      total += (a == 1 && b == 1) ? -e : e;
      variance += std::max(1.0 - e * e, 1.0 / n) / n;
    }
  }
  const double stderr_s = std::sqrt(variance);
  s.chsh = std::pair{total, stderr_s};
  EmitProgress(s, kChsh);
  if (!(total >= s.options.e91_min_chsh)) {
    Fail(key,
         absl::AbortedError(absl::StrFormat(
             "QKD aborted: E91 CHSH value S = %.3f +- %.3f from %d test pairs is below the minimum %.3f (a local "
             "hidden-variable model reaches 2, ideal pairs 2.828): the pairs are too noisy or eavesdropped",
             total, stderr_s, test_pairs, s.options.e91_min_chsh)),
         false);
    return;
  }
  std::vector<uint64_t> excluded = s.initiator ? t.pair_ids : std::vector<uint64_t>{};
  StartPostProcessing(key, excluded);
}

void KeyDistribution::StartPostProcessing(const SessionKey& key, const std::vector<uint64_t>& excluded) {
  Session& s = sessions_.at(key);
  const absl::flat_hash_set<uint64_t> skip(excluded.begin(), excluded.end());
  std::vector<qkd::Detection> detections;
  detections.reserve(s.measured.size());
  for (const Measured& m : s.measured) {
    if (!IsKeyBasis(m.basis) || skip.contains(m.pair_id)) continue;
    detections.push_back({m.pair_id, m.basis == MeasurementBasis::kX ? qkd::Basis::kX : qkd::Basis::kZ, m.outcome});
  }
  absl::StatusOr<qkd::PostProcessing> post =
      qkd::PostProcessing::Create(s.initiator ? qkd::Role::kAlice : qkd::Role::kBob, std::move(detections),
                                  s.options.post_processing, rng_.NextU64());
  if (!post.ok()) {
    Fail(key, WithContext(post.status(), absl::StrCat("QKD session ", key.id)), true);
    return;
  }
  s.post.emplace(*std::move(post));
  s.stage = Stage::kPostProcessing;
  std::vector<qkd::QkdMessage> out = s.post->Start();
  for (const qkd::QkdMessage& m : out) {
    v1::KeyDistributionMessage msg;
    QkdMessageToProto(key.id, m, msg.mutable_post_processing());
    if (absl::Status sent = Send(s.peer, key, std::move(msg)); !sent.ok()) {
      Fail(key, WithContext(sent, absl::StrCat("QKD session ", key.id, " with ", s.peer)), false);
      return;
    }
  }
  std::vector<qkd::QkdMessage> early = std::move(s.early);
  s.early.clear();
  for (const qkd::QkdMessage& m : early) {
    Feed(key, m);
    auto it = sessions_.find(key);
    if (it == sessions_.end() || it->second.post->finished()) break;
  }
  CheckFinished(key);
}

void KeyDistribution::OnPostProcessingMessage(const std::string& source, const SessionKey& key,
                                              const v1::QkdMessage& proto) {
  Session* s = FindSession(key, source);
  if (s == nullptr) return;
  absl::StatusOr<QkdWireMessage> m = QkdMessageFromProto(proto);
  if (m.ok() && m->session_id != key.id) {
    m = absl::InvalidArgumentError(absl::StrCat("it names session ", m->session_id));
  }
  if (!m.ok()) {
    Fail(key,
         absl::InvalidArgumentError(absl::StrCat("QKD session ", key.id, ": a malformed post-processing message from ",
                                                 source, ": ", m.status().message())),
         true);
    return;
  }
  if (!s->post.has_value()) {
    s->early.push_back(std::move(m->message));  // the peer is ahead of us
    // BB84: Bob's first message says he has measured every pulse (Alice's
    // are all out once she is measuring), so Alice may now reveal her bases.
    if (s->initiator && s->options.protocol == QkdProtocol::kBb84 && s->stage == Stage::kMeasuring) {
      StartPostProcessing(key, {});
    }
    return;
  }
  Feed(key, m->message);
  CheckFinished(key);
}

void KeyDistribution::Feed(const SessionKey& key, const qkd::QkdMessage& message) {
  Session& s = sessions_.at(key);
  std::vector<qkd::QkdMessage> out = s.post->Receive(message);
  for (const qkd::QkdMessage& m : out) {
    v1::KeyDistributionMessage msg;
    QkdMessageToProto(key.id, m, msg.mutable_post_processing());
    if (absl::Status sent = Send(s.peer, key, std::move(msg)); !sent.ok()) {
      Fail(key, WithContext(sent, absl::StrCat("QKD session ", key.id, " with ", s.peer)), false);
      return;
    }
  }
}

void KeyDistribution::CheckFinished(const SessionKey& key) {
  auto it = sessions_.find(key);
  if (it == sessions_.end() || !it->second.post.has_value()) return;
  Session& s = it->second;
  EmitProgress(s, PostStage(*s.post));
  if (!s.post->finished()) return;
  if (s.post->state() == qkd::PostProcessing::State::kDone) {
    Succeed(key);
  } else {
    // The pipeline has told the peer (or the peer told us).
    Fail(key, s.post->status(), false);
  }
}

void KeyDistribution::OnDeadline(const SessionKey& key) {
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return;
  Session& s = it->second;
  s.deadline = kNoTimer;
  std::string message;
  if (s.stage == Stage::kOffered) {
    message = absl::StrCat("TIMEOUT: ", s.peer, " did not answer the offer of QKD session ", key.id, " within ",
                           FormatDuration(s.options.timeout), " (is key distribution running there?)");
  } else if (s.options.protocol == QkdProtocol::kBb84) {
    const std::string where =
        s.post.has_value() ? "post-processing"
        : s.initiator      ? absl::StrCat(s.measured.size(), " of ", s.options.pairs, " pulses sent, waiting for ",
                                          s.peer, "'s detections")
                           : absl::StrCat(s.gates, " of ", s.options.pairs, " pulses gated, ", s.measured.size(),
                                          " detected: photons lost on the link?");
    message = absl::StrCat("TIMEOUT: BB84 session ", key.id, " between ", key.initiator, " and ",
                           s.initiator ? s.peer : Where(), " did not finish within ", FormatDuration(s.options.timeout),
                           " (", where, ")");
  } else {
    message = absl::StrCat("TIMEOUT: QKD session ", key.id, " between ", key.initiator, " and ",
                           s.initiator ? s.peer : Where(), " did not finish within ",
                           FormatDuration(s.options.timeout), " (", s.measured.size(), " of ", s.options.pairs,
                           " pairs measured", s.post.has_value() ? ", post-processing" : "", ")");
  }
  Fail(key, absl::DeadlineExceededError(message), true);
}

void KeyDistribution::Release(Session& s) {
  if (s.deadline != kNoTimer) context_.CancelTimer(s.deadline);
  s.deadline = kNoTimer;
  if (s.request != 0) (void)network_.Cancel(s.request);
  s.request = 0;
  if (s.pair_purpose != 0) (void)network_.UnregisterReceiver(s.pair_purpose);
  s.pair_purpose = 0;
}

void KeyDistribution::Succeed(const SessionKey& key) {
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return;
  Session s = std::move(it->second);
  sessions_.erase(it);
  Release(s);
  QkdResult r;
  r.protocol = s.options.protocol;
  r.peer = s.peer;
  r.report = s.post->report();
  r.key = s.post->key();
  r.key_id = r.report.key_id;
  if (s.chsh.has_value()) {
    r.chsh_s = s.chsh->first;
    r.chsh_s_stderr = s.chsh->second;
  }
  r.simulated_duration = context_.Now() - s.started;
  r.path = s.path;
  // BB84's photons cross one link: its path is the two ends, initiator first.
  if (r.path.empty() && s.options.protocol == QkdProtocol::kBb84) {
    r.path = s.initiator ? std::vector<std::string>{Where(), s.peer} : std::vector<std::string>{s.peer, Where()};
  }
  if (s.hop.has_value()) {
    ++stats_.hop_sessions;
    OnHopKey(*s.hop, HopKey{std::move(r.key), std::move(r.key_id), std::move(r.report)});
    return;
  }
  ++stats_.sessions_succeeded;
  stats_.key_bits += r.key.size();
  if (s.initiator) {
    Post([done = std::move(s.done), id = key.id, r = std::move(r)] { done(id, r); });
  } else if (responder_handler_) {
    Post([handler = responder_handler_, key, r = std::move(r)] { handler(key.initiator, key.id, r); });
  }
}

void KeyDistribution::Fail(const SessionKey& key, absl::Status status, bool tell_peer) {
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return;
  Session s = std::move(it->second);
  sessions_.erase(it);
  Release(s);
  if (tell_peer) SendEnd(s.peer, key, status);
  if (s.hop.has_value()) {
    ++stats_.hop_sessions;
    const std::string a = s.initiator ? Where() : s.peer;
    const std::string b = s.initiator ? s.peer : Where();
    FailRelay(s.hop->relay, WithContext(status, absl::StrCat("relay hop ", a, "-", b)), true);
    return;
  }
  ++stats_.sessions_failed;
  if (s.initiator) {
    Post([done = std::move(s.done), id = key.id, status] { done(id, status); });
  } else if (responder_handler_) {
    Post([handler = responder_handler_, key, status] { handler(key.initiator, key.id, status); });
  }
}

void KeyDistribution::EmitProgress(Session& s, int stage) {
  if (!s.initiator || stage <= s.progress_stage) return;
  s.progress_stage = stage;
  QkdProgress p;
  p.stage = kStageNames[stage];
  p.raw_pairs = s.measured.size();
  if (s.post.has_value()) {
    const qkd::PostProcessingReport& r = s.post->report();
    p.sifted_bits = r.sifted_bits;
    p.qber = r.qber.overall.rate();
    p.reconciled_bits = r.reconciled_bits;
    p.final_key_bits = r.final_key_bits;
  }
  if (s.chsh.has_value()) p.chsh_s = s.chsh->first;
  if (s.hop.has_value()) {
    // The origin's first hop is the relay session's visible progress.
    auto relay = relays_.find(s.hop->relay);
    if (relay == relays_.end() || !relay->second.origin() || !relay->second.progress || stage == kDone) return;
    Post([progress = relay->second.progress, id = s.hop->relay.id, p] { progress(id, p); });
    return;
  }
  if (s.progress) Post([progress = s.progress, id = s.key.id, p] { progress(id, p); });
}

KeyDistribution::Session* KeyDistribution::FindSession(const SessionKey& key, const std::string& source) {
  auto it = sessions_.find(key);
  if (it == sessions_.end() || it->second.peer != source) {
    ++stats_.stray_messages;  // late (the session ended here) or forged
    return nullptr;
  }
  return &it->second;
}

// ---------------------------------------------------------------- relays

absl::StatusOr<SessionId> KeyDistribution::StartRelay(const std::string& peer, const QkdSessionOptions& options,
                                                      ProgressHandler progress, DoneHandler done) {
  absl::StatusOr<network::Route> route = network_.routes().PathTo(Where(), peer);
  if (!route.ok()) {
    return network::ToStatus(network::NetworkError::kNoRoute,
                             absl::StrCat("no relay QKD session with ", peer, ": ", route.status().message()));
  }
  const SessionKey key{Where(), next_id_++};
  QkdSessionOptions hop = options;
  hop.protocol = QkdProtocol::kBbm92;
  // The other nodes learn their part first, so that hop offers find them ready.
  for (size_t i = 1; i < route->path.size(); ++i) {
    v1::KeyDistributionMessage m;
    v1::KeyDistributionRelayStart* start = m.mutable_relay_start();
    for (const std::string& n : route->path) start->add_path(n);
    start->set_pairs(hop.pairs);
    start->set_min_fidelity(hop.min_fidelity);
    start->set_timeout_ns(hop.timeout.count());
    PostProcessingToWire(hop.post_processing, start->mutable_post_processing());
    if (absl::Status sent = Send(route->path[i], key, std::move(m)); !sent.ok()) {
      for (size_t j = 1; j < i; ++j) {
        v1::KeyDistributionMessage abort;
        abort.mutable_relay_abort()->set_code(static_cast<int32_t>(absl::StatusCode::kCancelled));
        abort.mutable_relay_abort()->set_message(absl::StrCat("relay session ", key.id, " could not start"));
        (void)Send(route->path[j], key, std::move(abort));
      }
      return sent;
    }
  }
  Relay& r = EnsureRelay(key, route->path, 0, options.timeout);
  r.instructed = true;
  r.hop_options = hop;
  r.progress = std::move(progress);
  if (absl::Status started = StartRightHop(key); !started.ok()) {
    FailRelay(key, started, true);  // no handler yet: the caller gets the error
    return started;
  }
  relays_.at(key).done_handler = std::move(done);
  return key.id;
}

KeyDistribution::Relay& KeyDistribution::EnsureRelay(const SessionKey& key, std::vector<std::string> path,
                                                     size_t index, Duration timeout) {
  auto [it, inserted] = relays_.try_emplace(key);
  Relay& r = it->second;
  if (!inserted) return r;
  r.key = key;
  r.path = std::move(path);
  r.index = index;
  r.started = context_.Now();
  r.deadline_at = r.started + timeout;
  r.deadline = StartDeadline(timeout, [this, key] {
    auto found = relays_.find(key);
    if (found == relays_.end()) return;
    found->second.deadline = kNoTimer;
    // A hop still running here says best what is missing (e.g. a peer that
    // never answered): it fails the relay session with its own timeout.
    for (const auto& [hop_key, hop] : sessions_) {
      if (hop.hop.has_value() && hop.hop->relay == key) {
        OnDeadline(SessionKey(hop_key));
        break;
      }
    }
    found = relays_.find(key);
    if (found == relays_.end()) return;
    const Relay& relay = found->second;
    std::vector<std::string> missing;
    if (!relay.origin() && !relay.left.has_value()) missing.push_back("the left hop's key");
    if (!relay.destination() && !relay.right.has_value()) missing.push_back("the right hop's key");
    if (relay.destination() && relay.announcements.size() + 2 < relay.path.size()) {
      missing.push_back("relay announcements");
    }
    if (relay.origin() && !relay.done.has_value()) missing.push_back("the destination's confirmation");
    FailRelay(key,
              absl::DeadlineExceededError(absl::StrCat(
                  "TIMEOUT: relay QKD session ", key.id, " from ", key.initiator, " to ", relay.path.back(),
                  " did not finish at ", Where(), " within its timeout (waiting for ",
                  missing.empty() ? "nothing" : absl::StrJoin(missing, ", "), ")")),
              true);
  });
  return r;
}

absl::Status KeyDistribution::StartRightHop(const SessionKey& key) {
  Relay& r = relays_.at(key);
  QkdSessionOptions hop = r.hop_options;
  hop.timeout = std::max(Duration(1), r.deadline_at - context_.Now());
  absl::StatusOr<SessionId> id =
      StartHopOrSession(r.path[r.index + 1], hop, nullptr, nullptr, HopOf{key, false});
  if (!id.ok()) return id.status();
  relays_.at(key).right_session = SessionKey{Where(), *id};
  return absl::OkStatus();
}

void KeyDistribution::OnRelayStart(const std::string& source, const SessionKey& key,
                                   const v1::KeyDistributionRelayStart& m) {
  std::vector<std::string> path(m.path().begin(), m.path().end());
  size_t index = 0;
  while (index < path.size() && path[index] != Where()) ++index;
  if (key.initiator != source || path.size() < 2 || path.front() != source || index == 0 ||
      index >= path.size() || m.timeout_ns() <= 0) {
    ++stats_.stray_messages;
    return;
  }
  Relay& r = EnsureRelay(key, path, index, Duration(m.timeout_ns()));
  if (r.instructed || r.path != path) {
    ++stats_.stray_messages;
    return;
  }
  r.instructed = true;
  r.hop_options.protocol = QkdProtocol::kBbm92;
  r.hop_options.pairs = m.pairs();
  r.hop_options.min_fidelity = m.min_fidelity();
  r.hop_options.timeout = Duration(m.timeout_ns());
  r.hop_options.post_processing = PostProcessingFromWire(m.post_processing());
  if (absl::Status valid = ValidateSessionOptions(r.hop_options); !valid.ok()) {
    FailRelay(key, WithContext(valid, absl::StrCat(Where(), " refuses relay session ", key.id)), true);
    return;
  }
  if (!r.destination()) {
    if (absl::Status started = StartRightHop(key); !started.ok()) {
      FailRelay(key, WithContext(started, absl::StrCat("relay session ", key.id, " at ", Where())), true);
      return;
    }
  }
  AdvanceRelay(key);
}

void KeyDistribution::OnRelayAnnouncement(const std::string& source, const SessionKey& key,
                                          const v1::KeyDistributionRelayAnnouncement& m) {
  auto it = relays_.find(key);
  if (it == relays_.end() || !it->second.destination() || m.index() == 0 ||
      m.index() + 1 >= it->second.path.size() || it->second.path[m.index()] != source ||
      it->second.announcements.contains(m.index())) {
    ++stats_.stray_messages;
    return;
  }
  absl::StatusOr<qkd::BitString> bits = BitsFromProto(m.xor_bits(), "relay announcement");
  if (!bits.ok()) {
    FailRelay(key,
              absl::InvalidArgumentError(absl::StrCat("relay session ", key.id, ": a malformed announcement from ",
                                                      source, ": ", bits.status().message())),
              true);
    return;
  }
  it->second.announcements[m.index()] = Announcement{m.left_key_id(), m.right_key_id(), *std::move(bits)};
  AdvanceRelay(key);
}

void KeyDistribution::OnRelayDone(const std::string& source, const SessionKey& key,
                                  const v1::KeyDistributionRelayDone& m) {
  auto it = relays_.find(key);
  if (it == relays_.end() || !it->second.origin() || it->second.path.back() != source ||
      it->second.done.has_value()) {
    ++stats_.stray_messages;
    return;
  }
  it->second.done = std::pair{m.key_bits(), m.key_id()};
  AdvanceRelay(key);
}

void KeyDistribution::OnRelayAbort(const std::string& source, const SessionKey& key,
                                   const v1::KeyDistributionRelayAbort& m) {
  auto it = relays_.find(key);
  if (it == relays_.end() ||
      std::find(it->second.path.begin(), it->second.path.end(), source) == it->second.path.end()) {
    ++stats_.stray_messages;
    return;
  }
  // The origin passes it on to the rest of the path.
  FailRelay(key, StatusFromWire(m.code(), m.message(), source), it->second.origin());
}

void KeyDistribution::OnHopKey(const HopOf& hop, HopKey key) {
  auto it = relays_.find(hop.relay);
  if (it == relays_.end()) return;  // the relay session ended meanwhile
  Relay& r = it->second;
  if (hop.left) {
    r.left = std::move(key);
  } else {
    r.right = std::move(key);
  }
  if (r.origin() && !hop.left && r.progress) {
    QkdProgress p;
    p.stage = "relaying";
    p.raw_pairs = r.right->report.raw_detections;
    p.sifted_bits = r.right->report.sifted_bits;
    p.qber = r.right->report.qber.overall.rate();
    p.reconciled_bits = r.right->report.reconciled_bits;
    p.final_key_bits = r.right->report.final_key_bits;
    Post([progress = r.progress, id = r.key.id, p] { progress(id, p); });
  }
  AdvanceRelay(hop.relay);
}

void KeyDistribution::AdvanceRelay(const SessionKey& key) {
  auto it = relays_.find(key);
  if (it == relays_.end()) return;
  Relay& r = it->second;
  const size_t n = r.path.size();
  if (r.origin()) {
    if (!r.right.has_value() || !r.done.has_value()) return;
    const auto [bits, key_id] = *r.done;
    if (bits == 0 || bits > r.right->bits.size()) {
      FailRelay(key,
                absl::InternalError(absl::StrFormat("relay session %d: the destination reports a %d-bit key but the "
                                                    "first hop's key has %d bits",
                                                    key.id, bits, r.right->bits.size())),
                true);
      return;
    }
    QkdResult result;
    result.protocol = QkdProtocol::kRelay;
    result.peer = r.path.back();
    result.report = r.right->report;
    result.key = r.right->bits.Slice(0, bits);
    result.key_id = key_id;
    result.simulated_duration = context_.Now() - r.started;
    result.path = r.path;
    result.relay_nodes.assign(r.path.begin() + 1, r.path.end() - 1);
    if (r.progress) {
      QkdProgress p;
      p.stage = "done";
      p.raw_pairs = result.report.raw_detections;
      p.sifted_bits = result.report.sifted_bits;
      p.qber = result.report.qber.overall.rate();
      p.reconciled_bits = result.report.reconciled_bits;
      p.final_key_bits = bits;
      Post([progress = r.progress, id = key.id, p] { progress(id, p); });
    }
    DoneHandler done = std::move(r.done_handler);
    EraseRelay(key);
    ++stats_.sessions_succeeded;
    stats_.key_bits += result.key.size();
    if (done) Post([done = std::move(done), id = key.id, result = std::move(result)] { done(id, result); });
    return;
  }
  if (r.destination()) {
    if (!r.left.has_value() || !r.instructed || r.announcements.size() + 2 < n) return;
    // The hop key ids must chain: each relay's right hop is the next one's left.
    std::vector<std::string> hop_ids;
    for (size_t i = 1; i + 1 < n; ++i) {
      const Announcement& a = r.announcements.at(i);
      const std::string& next_left = i + 2 < n ? r.announcements.at(i + 1).left_key_id : r.left->key_id;
      if (a.right_key_id != next_left) {
        FailRelay(key,
                  absl::DataLossError(absl::StrCat("relay session ", key.id, ": ", r.path[i],
                                                   " announces a right hop key ", a.right_key_id, " but the next hop's "
                                                   "key is ", next_left)),
                  true);
        return;
      }
      hop_ids.push_back(a.left_key_id);
    }
    hop_ids.push_back(r.left->key_id);
    size_t bits = r.left->bits.size();
    for (const auto& [i, a] : r.announcements) bits = std::min(bits, a.bits.size());
    // K_A = K_last ^ (K_0 ^ K_1) ^ (K_1 ^ K_2) ^ ... ^ (K_(n-3) ^ K_last).
    qkd::BitString k = r.left->bits.Slice(0, bits);
    for (const auto& [i, a] : r.announcements) k = XorPrefix(k, a.bits, bits);
    const std::string key_id = RelayKeyId(key.initiator, key.id, hop_ids, bits);
    v1::KeyDistributionMessage done;
    done.mutable_relay_done()->set_key_bits(bits);
    done.mutable_relay_done()->set_key_id(key_id);
    if (absl::Status sent = Send(key.initiator, key, std::move(done)); !sent.ok()) {
      FailRelay(key, WithContext(sent, absl::StrCat("relay session ", key.id)), true);
      return;
    }
    QkdResult result;
    result.protocol = QkdProtocol::kRelay;
    result.peer = key.initiator;
    result.report = r.left->report;
    result.key = std::move(k);
    result.key_id = key_id;
    result.simulated_duration = context_.Now() - r.started;
    result.path = r.path;
    result.relay_nodes.assign(r.path.begin() + 1, r.path.end() - 1);
    EraseRelay(key);
    ++stats_.sessions_succeeded;
    stats_.key_bits += result.key.size();
    if (responder_handler_) {
      Post([handler = responder_handler_, key, result = std::move(result)] {
        handler(key.initiator, key.id, result);
      });
    }
    return;
  }
  // A relay: announce K_left ^ K_right to the destination.
  if (!r.left.has_value() || !r.right.has_value()) return;
  const size_t bits = std::min(r.left->bits.size(), r.right->bits.size());
  v1::KeyDistributionMessage m;
  v1::KeyDistributionRelayAnnouncement* a = m.mutable_relay_announcement();
  a->set_index(static_cast<uint32_t>(r.index));
  a->set_left_key_id(r.left->key_id);
  a->set_right_key_id(r.right->key_id);
  BitsToProto(XorPrefix(r.left->bits, r.right->bits, bits), a->mutable_xor_bits());
  if (absl::Status sent = Send(r.path.back(), key, std::move(m)); !sent.ok()) {
    FailRelay(key, WithContext(sent, absl::StrCat("relay session ", key.id, " at ", Where())), true);
    return;
  }
  ++stats_.relays_served;
  EraseRelay(key);
}

void KeyDistribution::FailRelay(const SessionKey& key, absl::Status status, bool tell) {
  auto it = relays_.find(key);
  if (it == relays_.end()) return;
  Relay r = std::move(it->second);
  relays_.erase(it);
  if (r.deadline != kNoTimer) context_.CancelTimer(r.deadline);
  // Its hops here end too (the relay is gone, so they do not come back here).
  std::vector<SessionKey> hops;
  for (const auto& [k, s] : sessions_) {
    if (s.hop.has_value() && s.hop->relay == key) hops.push_back(k);
  }
  for (const SessionKey& k : hops) {
    Fail(k, absl::CancelledError(absl::StrCat("relay session ", key.id, " ended: ", status.message())), true);
  }
  if (tell) {
    std::vector<std::string> to;
    if (r.origin()) {
      to.assign(r.path.begin() + 1, r.path.end());
    } else {
      to.push_back(r.path.front());
      if (!r.destination()) to.push_back(r.path.back());
    }
    for (const std::string& node : to) {
      v1::KeyDistributionMessage m;
      m.mutable_relay_abort()->set_code(static_cast<int32_t>(status.code()));
      m.mutable_relay_abort()->set_message(std::string(status.message()));
      (void)Send(node, key, std::move(m));  // best effort: the others have their deadlines
    }
  }
  if (r.origin() && r.done_handler) {
    ++stats_.sessions_failed;
    Post([done = std::move(r.done_handler), id = key.id, status] { done(id, status); });
  } else if (r.destination()) {
    ++stats_.sessions_failed;
    if (responder_handler_) {
      Post([handler = responder_handler_, key, status] { handler(key.initiator, key.id, status); });
    }
  }
}

void KeyDistribution::EraseRelay(const SessionKey& key) {
  auto it = relays_.find(key);
  if (it == relays_.end()) return;
  if (it->second.deadline != kNoTimer) context_.CancelTimer(it->second.deadline);
  relays_.erase(it);
}

// ---------------------------------------------------------------- plumbing

absl::Status KeyDistribution::Send(const std::string& to, const SessionKey& key,
                                   v1::KeyDistributionMessage message) {
  message.mutable_session()->set_initiator(key.initiator);
  message.mutable_session()->set_id(key.id);
  return network_.SendDatagram(to, options_.purpose_id, message.SerializeAsString());
}

void KeyDistribution::SendEnd(const std::string& to, const SessionKey& key, const absl::Status& status) {
  v1::KeyDistributionMessage m;
  m.mutable_end()->set_code(static_cast<int32_t>(status.code()));
  m.mutable_end()->set_message(std::string(status.message()));
  (void)Send(to, key, std::move(m));  // best effort: the peer has its own deadline
}

void KeyDistribution::Post(std::function<void()> fn) {
  std::weak_ptr<bool> alive = alive_;
  context_.StartTimer(Duration(0), [alive, fn = std::move(fn)] {
    if (!alive.expired()) fn();
  });
}

TimerId KeyDistribution::StartDeadline(Duration after, std::function<void()> fire) {
  std::weak_ptr<bool> alive = alive_;
  return context_.StartTimer(after, [alive, fire = std::move(fire)] {
    if (!alive.expired()) fire();
  });
}

}  // namespace qnet::keydist
