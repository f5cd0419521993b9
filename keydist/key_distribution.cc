// The session core: creating and ending sessions, offers and answers,
// deadlines, post-processing, results; the datagrams of all protocols come
// in here. The protocols' own parts are in entangled_sessions.cc, bb84.cc
// and relay.cc.
#include "keydist/key_distribution.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"
#include "keydist/qkd_wire.h"
#include "keydist/relay.h"
#include "keydist/session_internals.h"
#include "qkd/wegman_carter.h"

namespace qnet::keydist {
namespace {

using link::MeasurementBasis;

int PostStage(const qkd::PostProcessing& post) {
  const qkd::PostProcessingReport& r = post.report();
  if (post.state() == qkd::PostProcessing::State::kDone) return kDone;
  if (r.leaked_error_count_bits > 0 || r.leaked_verification_bits > 0) return kReconciled;
  if (r.qber.overall.sampled > 0) return kEstimated;
  if (r.sifted_bits > 0) return kSifted;
  return kMeasured;
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

// What a tag covers besides the message: who sent it to whom, so a message
// cannot be turned around or redirected.
std::string AuthenticatedBytes(const std::string& from, const std::string& to, const std::string& message) {
  return absl::StrCat("qnet-keydist-auth-v1", std::string(1, '\0'), from, std::string(1, '\0'), to,
                      std::string(1, '\0'), message);
}

// The session messages that must come authenticated.
bool NeedsAuthentication(v1::KeyDistributionMessage::BodyCase body) {
  return body == v1::KeyDistributionMessage::kOffer || body == v1::KeyDistributionMessage::kAccept ||
         body == v1::KeyDistributionMessage::kTestOutcomes || body == v1::KeyDistributionMessage::kPostProcessing;
}

// "offer", "post-processing (parity_request)", ...: names a message in errors.
std::string BodyName(const v1::KeyDistributionMessage& m) {
  const google::protobuf::FieldDescriptor* f = m.GetDescriptor()->FindFieldByNumber(m.body_case());
  if (f == nullptr) return "message";
  if (m.body_case() == v1::KeyDistributionMessage::kPostProcessing) {
    const google::protobuf::FieldDescriptor* inner =
        m.post_processing().GetDescriptor()->FindFieldByNumber(m.post_processing().body_case());
    return absl::StrCat("post-processing ", inner != nullptr ? inner->name() : "message");
  }
  return std::string(f->name());
}

std::optional<QkdProtocol> ProtocolFromWire(v1::KeyDistributionProtocol p) {
  if (p == v1::KEYDIST_BBM92) return QkdProtocol::kBbm92;
  if (p == v1::KEYDIST_E91) return QkdProtocol::kE91;
  if (p == v1::KEYDIST_BB84) return QkdProtocol::kBb84;
  return std::nullopt;
}

}  // namespace

void PostProcessingToWire(const qkd::PostProcessingOptions& o, v1::KeyDistributionPostProcessing* out) {
  out->set_sample_fraction(o.estimation.sample_fraction);
  out->set_estimation_failure_probability(o.estimation.failure_probability);
  out->set_abort_threshold(o.estimation.abort_threshold);
  out->set_cascade_passes(static_cast<uint32_t>(std::max(0, o.cascade.passes)));
  out->set_cascade_first_block_factor(o.cascade.first_block_factor);
  out->set_privacy_amplification_failure_probability(o.privacy_amplification_failure_probability);
  if (o.decoy.has_value()) {
    for (int k = 0; k < 3; ++k) {
      out->add_decoy_mean_photon_numbers(o.decoy->intensities.mean_photon_number[k]);
      out->add_decoy_probabilities(o.decoy->intensities.probability[k]);
    }
    out->set_decoy_epsilon_secrecy(o.decoy->finite_key.epsilon_secrecy);
    out->set_decoy_epsilon_correctness(o.decoy->finite_key.epsilon_correctness);
  }
}

qkd::PostProcessingOptions PostProcessingFromWire(const v1::KeyDistributionPostProcessing& w) {
  qkd::PostProcessingOptions o;
  o.estimation.sample_fraction = w.sample_fraction();
  o.estimation.failure_probability = w.estimation_failure_probability();
  o.estimation.abort_threshold = w.abort_threshold();
  o.cascade.passes = static_cast<int>(std::min<uint32_t>(w.cascade_passes(), INT_MAX));
  o.cascade.first_block_factor = w.cascade_first_block_factor();
  o.privacy_amplification_failure_probability = w.privacy_amplification_failure_probability();
  if (w.decoy_mean_photon_numbers_size() > 0 || w.decoy_probabilities_size() > 0) {
    // A wrong count leaves NaNs that the pipeline's validation refuses.
    qkd::PostProcessingOptions::Decoy d;
    for (int k = 0; k < 3; ++k) {
      d.intensities.mean_photon_number[k] =
          k < w.decoy_mean_photon_numbers_size() ? w.decoy_mean_photon_numbers(k) : std::nan("");
      d.intensities.probability[k] = k < w.decoy_probabilities_size() ? w.decoy_probabilities(k) : std::nan("");
    }
    if (w.decoy_mean_photon_numbers_size() != 3 || w.decoy_probabilities_size() != 3) {
      d.intensities.mean_photon_number[0] = std::nan("");
    }
    d.finite_key.epsilon_secrecy = w.decoy_epsilon_secrecy();
    d.finite_key.epsilon_correctness = w.decoy_epsilon_correctness();
    o.decoy = d;
  }
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
  if (!(o.laser_mean_photon_number >= 0.0 && o.laser_mean_photon_number <= 100.0)) {
    return absl::InvalidArgumentError(absl::StrCat("the laser's mean photon number must lie in [0, 100], got ",
                                                   o.laser_mean_photon_number));
  }
  if (o.laser_mean_photon_number > 0.0 && (o.protocol != QkdProtocol::kBb84 || o.post_processing.decoy)) {
    return absl::InvalidArgumentError(
        "a laser mean photon number is for BB84 without decoys (decoy-state BB84 takes its intensities)");
  }
  if (o.post_processing.decoy.has_value() && o.protocol != QkdProtocol::kBb84) {
    return absl::InvalidArgumentError(absl::StrCat("decoy states are for BB84's laser pulses; ",
                                                   std::string(QkdProtocolName(o.protocol)), " measures entangled pairs"));
  }
  // The pipeline validates its own options; with no detections this is cheap.
  return qkd::PostProcessing::Create(qkd::Role::kAlice, {}, o.post_processing, 0).status();
}

absl::Status StatusFromWire(int32_t code, const std::string& message, const std::string& source) {
  absl::StatusCode c = static_cast<absl::StatusCode>(code);
  if (code <= 0 || code > static_cast<int32_t>(absl::StatusCode::kUnauthenticated)) c = absl::StatusCode::kUnknown;
  return absl::Status(c, absl::StrCat(message, " (reported by ", source, ")"));
}

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
    s = physical->RegisterPhotonReceiver(
        kd->lifetime_.Guard([self](const std::string& from, uint64_t session,
                                   std::vector<physical::MeasuredPulse> detections,
                                   uint64_t gates) { self->OnPhotons(from, session, detections, gates); }));
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
    : context_(context),
      network_(network),
      options_(options),
      rng_(context.rng().Fork("key-distribution")),
      relays_(std::make_unique<TrustedRelays>(*this)),
      authentication_(options.authentication != nullptr
                          ? options.authentication
                          : std::make_shared<AuthenticationPools>(context.node_name(), options.authentication_secret)) {
  // A restarted node numbers its sessions from its clock, so a peer never
  // mistakes a new session for one of the previous incarnation's.
  const int64_t now_us = std::max<int64_t>(0, context.Now().time_since_epoch().count() / 1000);
  next_id_ = (static_cast<uint64_t>(now_us) << 16) + 1;
}

KeyDistribution::~KeyDistribution() {
  lifetime_.End();
  for (auto& [key, s] : sessions_) {
    if (s.deadline != kNoTimer) context_.CancelTimer(s.deadline);
    if (s.request != 0) (void)network_.Cancel(s.request);
    if (s.pair_purpose != 0) (void)network_.UnregisterReceiver(s.pair_purpose);
  }
  relays_.reset();  // cancels the relays' deadlines
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
                                     ? relays_->Start(peer, options, std::move(progress), std::move(done))
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
  offer->set_laser_mean_photon_number(options.laser_mean_photon_number);
  if (hop.has_value()) {
    const std::vector<std::string>* path = relays_->PathOf(hop->relay);
    if (path == nullptr) return absl::InternalError("a relay hop without its relay session");
    v1::KeyDistributionRelayTag* tag = offer->mutable_relay();
    tag->mutable_relay()->set_initiator(hop->relay.initiator);
    tag->mutable_relay()->set_id(hop->relay.id);
    for (const std::string& n : *path) tag->add_path(n);
  }
  Session s;
  s.key = key;
  s.initiator = true;
  s.peer = peer;
  s.next_hop = route->path.size() >= 2 ? route->path[1] : peer;
  s.options = options;
  s.started = context_.Now();
  s.deadline_at = s.started + options.timeout;
  s.progress = std::move(progress);
  s.done = std::move(done);
  s.hop = std::move(hop);
  sessions_.emplace(key, std::move(s));
  // The offer goes authenticated, with the session's hash key: it needs the session.
  if (absl::Status sent = Send(peer, key, std::move(m)); !sent.ok()) {
    sessions_.erase(key);
    return sent;
  }
  Session& stored = sessions_.at(key);
  stored.deadline = StartDeadline(options.timeout, [this, key] { OnDeadline(key); });
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
  if (relays_->Cancel(key)) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat("no QKD session ", id, " started at ", Where(), " is in progress"));
}

void KeyDistribution::OnNeighbourDown(const std::string& neighbour) {
  std::vector<SessionKey> cut;
  for (const auto& [key, s] : sessions_) {
    if (s.peer == neighbour || s.next_hop == neighbour) cut.push_back(key);
  }
  for (const SessionKey& key : cut) {
    auto it = sessions_.find(key);
    if (it == sessions_.end()) continue;  // a relay's failure took it already
    const std::string peer = it->second.peer;
    Fail(key,
         network::ToStatus(network::NetworkError::kPeerDown,
                           absl::StrCat("QKD session ", key.id, " of ", key.initiator, " with ", peer, ": the link ",
                                        Where(), "-", neighbour,
                                        " went down; the session's messages in flight are lost")),
         true);
  }
  relays_->OnNeighbourDown(neighbour);
}

void KeyDistribution::OnDatagram(const std::string& source, const std::string& payload) {
  v1::KeyDistributionMessage m;
  if (!m.ParseFromString(payload) || m.body_case() == v1::KeyDistributionMessage::BODY_NOT_SET ||
      m.session().initiator().empty()) {
    ++stats_.malformed_messages;
    return;
  }
  const SessionKey key{m.session().initiator(), m.session().id()};
  if (m.body_case() == v1::KeyDistributionMessage::kAuthenticated) return OnAuthenticated(source, key, m.authenticated());
  if (NeedsAuthentication(m.body_case())) {
    // Sent in the clear by someone who has no pad, or stripped of its tag on the way.
    ++stats_.unauthenticated_messages;
    const absl::Status why = absl::UnauthenticatedError(
        absl::StrCat("QKD session ", key.id, ": a ", BodyName(m), " message from ", source,
                     " without end-to-end authentication (forged or stripped on the way); the session is aborted"));
    if (m.body_case() == v1::KeyDistributionMessage::kOffer) {
      if (key.initiator == source && !sessions_.contains(key)) SendEnd(source, key, why);
      return;
    }
    if (FindSession(key, source) != nullptr) Fail(key, why, true);
    return;
  }
  Dispatch(source, key, m, 0);
}

void KeyDistribution::Dispatch(const std::string& source, const SessionKey& key,
                               const v1::KeyDistributionMessage& m, uint64_t hash_key) {
  switch (m.body_case()) {
    case v1::KeyDistributionMessage::kOffer: return OnOffer(source, key, m.offer(), hash_key);
    case v1::KeyDistributionMessage::kAccept: return OnAccept(source, key, m.accept());
    case v1::KeyDistributionMessage::kEnd: return OnEnd(source, key, m.end());
    case v1::KeyDistributionMessage::kTestOutcomes: return OnTestOutcomes(source, key, m.test_outcomes());
    case v1::KeyDistributionMessage::kPostProcessing: return OnPostProcessingMessage(source, key, m.post_processing());
    case v1::KeyDistributionMessage::kRelayStart:
    case v1::KeyDistributionMessage::kRelayAnnouncement:
    case v1::KeyDistributionMessage::kRelayDone:
    case v1::KeyDistributionMessage::kRelayAbort: return relays_->OnMessage(source, key, m);
    case v1::KeyDistributionMessage::kAuthenticated:  // not nested
    case v1::KeyDistributionMessage::BODY_NOT_SET: ++stats_.malformed_messages; return;
  }
}

void KeyDistribution::OnAuthenticated(const std::string& source, const SessionKey& key,
                                      const v1::KeyDistributionAuthenticated& a) {
  // An offer starts a session: it brings the session's hash key (its first
  // pool word) and its tag's pad. Every later message goes into the running
  // transcript of what the peer sent; a tagged one closes it with the tag's
  // pad and is verified before it is acted on.
  auto it = sessions_.find(key);
  const bool offer = it == sessions_.end();
  if ((offer && key.initiator != source) || (!offer && it->second.peer != source)) {
    ++stats_.stray_messages;  // late (the session ended here) or misdirected
    return;
  }
  const bool bare_close = a.message().empty();
  v1::KeyDistributionMessage inner;
  const bool parsed = !bare_close && inner.ParseFromString(a.message());
  if (offer && (!parsed || inner.body_case() != v1::KeyDistributionMessage::kOffer)) {
    // No session, and not an offer: a late message of a session that ended
    // here, such as the initiator's tagged abort notice arriving after this
    // end aborted on the same QBER. Taking an offer's two pool words for it
    // would move this end's count of the sender's words past the sender's,
    // and refuse its next offer as a replay.
    ++stats_.stray_messages;
    return;
  }
  Session* s = offer ? nullptr : &it->second;
  const uint64_t number = offer ? 1 : s->auth_received + 1;
  const uint64_t first = offer ? 1 : (s->received_transcript.messages() == 0 ? number : s->received_since_tag);
  std::string failure;
  if (offer && !a.tagged()) {
    failure = "an offer must carry its tag";
  } else if (!offer && s->peer_closed) {
    failure = "it came after the sender's closing tag";
  } else if (!offer && !s->auth_key.has_value()) {
    failure = "the session has no hash key";
  }
  uint64_t hash_key = offer ? 0 : s->auth_key.value_or(0);
  std::optional<uint64_t> pad;
  if (failure.empty() && a.tagged()) {
    const size_t words = offer ? 2 : 1;
    // Taken (and never handed out again) whether or not the tag verifies: a
    // word a forger aimed at is never used for another message.
    absl::StatusOr<std::vector<uint64_t>> pads =
        authentication_->TakeForReceiving(source, {a.pad_segment(), a.pad_index()}, words);
    if (!pads.ok()) {
      failure = std::string(pads.status().message());
    } else {
      if (!offer) s->auth_words += words;
      if (offer) hash_key = pads->front();
      pad = pads->back();
    }
  }
  if (failure.empty()) {
    qkd::WegmanCarterTranscript single;
    qkd::WegmanCarterTranscript& transcript = offer ? single : s->received_transcript;
    if (!offer && transcript.messages() == 0) s->received_since_tag = number;
    transcript.Append(hash_key, AuthenticatedBytes(source, Where(), a.message()));
    if (pad.has_value() && transcript.Close(hash_key, *pad) != a.tag()) {
      failure = absl::StrCat("its tag does not match: a message it covers (", source, "'s messages ", first, " to ",
                             number, ") or the tag was modified, injected, dropped or reordered on the way");
    }
  }
  if (failure.empty() && bare_close && (offer || !a.final())) {
    failure = "an empty message that is not a closing tag";
  } else if (failure.empty() && !bare_close &&
             (!parsed || inner.session().initiator() != key.initiator || inner.session().id() != key.id ||
              !NeedsAuthentication(inner.body_case()) ||
              (offer != (inner.body_case() == v1::KeyDistributionMessage::kOffer)))) {
    // Authentic but not a session message this end can use: the peer's bug.
    failure = "it is not a well-formed session message for this session";
  }
  if (!failure.empty()) {
    ++stats_.unauthenticated_messages;
    const absl::Status why = absl::UnauthenticatedError(absl::StrCat(
        "QKD session ", key.id, " of ", key.initiator, ": message ", number, " (",
        bare_close ? std::string("closing tag") : parsed ? BodyName(inner) : std::string("unparseable"), ") from ",
        source, " failed authentication: ", failure, "; the session is aborted"));
    if (offer) {
      SendEnd(source, key, why);
    } else {
      Fail(key, why, true);
    }
    return;
  }
  if (offer) return Dispatch(source, key, inner, hash_key);
  ++s->auth_received;
  if (a.final()) s->peer_closed = true;
  if (!bare_close) Dispatch(source, key, inner, hash_key);
  if (a.final()) OnPeerClosed(key);
}

void KeyDistribution::OnPeerClosed(const SessionKey& key) {
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return;  // done (delivered or failed) while handling the closing message
  Session& s = it->second;
  if (s.post.has_value() && s.post->state() == qkd::PostProcessing::State::kDone) {
    if (s.closed) Succeed(key);
    return;
  }
  if (!s.post.has_value() || !s.post->finished()) {
    // The peer says it is done but this end is not: nothing more will come.
    Fail(key,
         absl::InvalidArgumentError(absl::StrCat("QKD session ", key.id, ": ", s.peer,
                                                 " sent its closing tag before post-processing finished here")),
         true);
  }
}

void KeyDistribution::OnOffer(const std::string& source, const SessionKey& key,
                              const v1::KeyDistributionOffer& offer, uint64_t hash_key) {
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
  o.laser_mean_photon_number = offer.laser_mean_photon_number();
  absl::Status valid = ValidateSessionOptions(o);
  if (const auto& pp = offer.post_processing();
      (pp.decoy_mean_photon_numbers_size() > 0 || pp.decoy_probabilities_size() > 0) &&
      (pp.decoy_mean_photon_numbers_size() != 3 || pp.decoy_probabilities_size() != 3)) {
    valid = absl::InvalidArgumentError(absl::StrCat(
        "a decoy offer needs 3 mean photon numbers and 3 probabilities (signal, decoy, vacuum), got ",
        pp.decoy_mean_photon_numbers_size(), " and ", pp.decoy_probabilities_size()));
  }
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
  const bool needs_pairs = o.protocol != QkdProtocol::kBb84;
  for (uint32_t tries = 0; needs_pairs && tries < options_.pair_purpose_ids && purpose == 0; ++tries) {
    const uint32_t candidate = options_.first_pair_purpose_id + next_pair_purpose_;
    next_pair_purpose_ = (next_pair_purpose_ + 1) % options_.pair_purpose_ids;
    absl::Status registered = network_.RegisterReceiver(
        candidate, lifetime_.Guard([this, key](const network::NetworkEvent& event) { OnTailEvent(key, event); }));
    if (registered.ok()) purpose = candidate;
  }
  if (needs_pairs && purpose == 0) {
    SendEnd(source, key,
            absl::ResourceExhaustedError(absl::StrCat(Where(), " has no free pair purpose id for QKD session ",
                                                      key.id, " (", sessions_.size(), " sessions in progress)")));
    return;
  }
  if (hop.has_value()) relays_->Join(hop->relay, path, index, o.timeout);
  Session s;
  s.key = key;
  s.initiator = false;
  s.peer = source;
  if (absl::StatusOr<network::Route> back = network_.routes().PathTo(Where(), source);
      back.ok() && back->path.size() >= 2) {
    s.next_hop = back->path[1];
  }
  s.options = o;
  s.stage = Stage::kMeasuring;
  s.started = context_.Now();
  s.deadline_at = s.started + o.timeout;
  s.pair_purpose = purpose;
  s.hop = hop;
  s.auth_key = hash_key;
  s.auth_words = 2;  // the offer's hash key and pad
  s.auth_received = 1;  // the offer, verified
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
  absl::StatusOr<network::RequestId> request = network_.Create(
      r, lifetime_.Guard([this, key](const network::NetworkEvent& event) { OnHeadEvent(key, event); }));
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

void KeyDistribution::StartPostProcessing(const SessionKey& key, const std::vector<uint64_t>& excluded) {
  Session& s = sessions_.at(key);
  const absl::flat_hash_set<uint64_t> skip(excluded.begin(), excluded.end());
  // BB84: Alice's records are every pulse she sent; Bob's announcement (here
  // already) lists the ones he detected. Only those can sift, so she
  // announces only those: her message is the size of his, not of the block
  // (both must stay under kMaxSessionMessageBytes, which a lossless link
  // with millions of pulses per block can exceed: SendPostMessages says so).
  absl::flat_hash_set<uint64_t> detected_by_peer;
  const bool filter = s.initiator && s.options.protocol == QkdProtocol::kBb84 && !s.early.empty() &&
                      std::holds_alternative<qkd::BasisAnnouncement>(s.early.front());
  if (filter) {
    const auto& ids = std::get<qkd::BasisAnnouncement>(s.early.front()).pair_ids;
    detected_by_peer.reserve(ids.size());
    detected_by_peer.insert(ids.begin(), ids.end());
  }
  std::vector<qkd::Detection> detections;
  detections.reserve(filter ? detected_by_peer.size() : s.measured.size());
  for (const Measured& m : s.measured) {
    if (!IsKeyBasis(m.basis) || skip.contains(m.pair_id)) continue;
    if (filter && !detected_by_peer.contains(m.pair_id)) continue;
    detections.push_back(
        {m.pair_id, m.basis == MeasurementBasis::kX ? qkd::Basis::kX : qkd::Basis::kZ, m.outcome, m.intensity});
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
  if (!SendPostMessages(key, s.post->Start())) return;
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
  (void)SendPostMessages(key, s.post->Receive(message));
}

bool KeyDistribution::SendPostMessages(const SessionKey& key, const std::vector<qkd::QkdMessage>& out) {
  Session& s = sessions_.at(key);
  // Finished (done or aborted) with this output: its last message is this
  // end's last in the session and carries the closing tag.
  const bool closing = s.post->finished();
  for (size_t i = 0; i < out.size(); ++i) {
    v1::KeyDistributionMessage msg;
    QkdMessageToProto(key.id, out[i], msg.mutable_post_processing());
    if (const size_t bytes = msg.ByteSizeLong(); bytes > kMaxSessionMessageBytes) {
      Fail(key,
           absl::ResourceExhaustedError(absl::StrCat(
               "QKD session ", key.id, " with ", s.peer, ": its ", std::string(qkd::MessageName(out[i])), " would be ", bytes,
               " bytes, over the ", kMaxSessionMessageBytes, "-byte limit of a message between nodes; use smaller "
               "blocks (fewer pairs or pulses per block)")),
           true);
      return false;
    }
    if (absl::Status sent = Send(s.peer, key, std::move(msg), closing && i + 1 == out.size()); !sent.ok()) {
      Fail(key, WithContext(sent, absl::StrCat("QKD session ", key.id, " with ", s.peer)), false);
      return false;
    }
  }
  return true;
}

void KeyDistribution::CheckFinished(const SessionKey& key) {
  auto it = sessions_.find(key);
  if (it == sessions_.end() || !it->second.post.has_value()) return;
  Session& s = it->second;
  EmitProgress(s, PostStage(*s.post));
  if (!s.post->finished()) return;
  if (s.post->state() == qkd::PostProcessing::State::kDone) {
    // Done without a last message to carry the closing tag: it goes alone.
    if (!s.closed) {
      if (absl::Status sent = SendAuthenticated(s, std::string(), true); !sent.ok()) {
        Fail(key, WithContext(sent, absl::StrCat("QKD session ", key.id, " with ", s.peer)), false);
        return;
      }
    }
    // The key is released only once everything the peer sent is covered by
    // a verified tag: until its closing tag comes, wait (the deadline runs).
    if (s.peer_closed) Succeed(key);
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
  // Every session ends here once, succeeded or not: an aborted one's sample
  // (a QBER above the threshold) is what shows an eavesdropper.
  if (s.post.has_value()) {
    const qkd::ErrorEstimate& e = s.post->report().qber;
    stats_.z_sample_bits += e.z.sampled;
    stats_.z_sample_errors += e.z.errors;
    stats_.x_sample_bits += e.x.sampled;
    stats_.x_sample_errors += e.x.errors;
    KeyDistributionStats::Sample& by_peer = stats_.samples_by_peer[s.peer];
    by_peer.z_bits += e.z.sampled;
    by_peer.z_errors += e.z.errors;
    by_peer.x_bits += e.x.sampled;
    by_peer.x_errors += e.x.errors;
  }
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
  // The pool gets back what the session's messages used, off the front of
  // the key (both ends take the same bits: they counted the same messages).
  const uint64_t auth_bits = it->second.auth_words * qkd::kAuthenticationWordBits;
  const qkd::BitString& amplified = it->second.post->key();
  const uint64_t refill = std::min<uint64_t>(auth_bits, amplified.size());
  if (refill >= 2 * qkd::kAuthenticationWordBits) {
    // A key id names one key of this pair: a name collision would be a bug, and only costs the refill. A
    // save that fails loses the segment at the next restart only (words from it are then refused there).
    (void)authentication_->Refill(it->second.peer, it->second.post->report().key_id, amplified.Slice(0, refill));
  }
  if (amplified.size() <= auth_bits) {
    Fail(key,
         absl::FailedPreconditionError(absl::StrCat(
             "QKD session ", key.id, ": its ", amplified.size(), "-bit key does not pay for the ", auth_bits,
             " bits of authentication key (the hash key and ", it->second.auth_words - 1,
             " tags) it used; all of it went back to the authentication pool shared with ", it->second.peer,
             ". Use more pairs per session")),
         false);
    return;
  }
  Session s = std::move(it->second);
  sessions_.erase(it);
  Release(s);
  QkdResult r;
  r.protocol = s.options.protocol;
  r.peer = s.peer;
  r.report = s.post->report();
  r.key = s.post->key().Slice(refill, s.post->key().size() - refill);
  r.auth_bits_consumed = auth_bits;
  stats_.auth_bits_consumed += auth_bits;
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
    relays_->OnHopKey(*s.hop, TrustedRelays::HopKey{std::move(r.key), std::move(r.key_id), std::move(r.report),
                                                     r.auth_bits_consumed});
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
  stats_.auth_bits_consumed += s.auth_words * qkd::kAuthenticationWordBits;
  if (tell_peer) SendEnd(s.peer, key, status);
  if (s.hop.has_value()) {
    ++stats_.hop_sessions;
    const std::string a = s.initiator ? Where() : s.peer;
    const std::string b = s.initiator ? s.peer : Where();
    relays_->Fail(s.hop->relay, WithContext(status, absl::StrCat("relay hop ", a, "-", b)), true);
    return;
  }
  ++stats_.sessions_failed;
  if (s.initiator) {
    Post([done = std::move(s.done), id = key.id, status] { done(id, status); });
  } else if (responder_handler_) {
    Post([handler = responder_handler_, key, status] { handler(key.initiator, key.id, status); });
  }
}

void KeyDistribution::EmitProgress(Session& s, int stage, bool again) {
  if (!s.initiator || stage < s.progress_stage || (stage == s.progress_stage && !again)) return;
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
    if (stage != kDone) relays_->OnHopProgress(s.hop->relay, p);
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

void KeyDistribution::TimeOutHopOf(const SessionKey& relay) {
  for (const auto& [key, s] : sessions_) {
    if (s.hop.has_value() && s.hop->relay == relay) {
      OnDeadline(SessionKey(key));
      return;
    }
  }
}

void KeyDistribution::CancelHopsOf(const SessionKey& relay, const absl::Status& why) {
  std::vector<SessionKey> hops;
  for (const auto& [key, s] : sessions_) {
    if (s.hop.has_value() && s.hop->relay == relay) hops.push_back(key);
  }
  for (const SessionKey& key : hops) Fail(key, why, true);
}

size_t KeyDistribution::active_relays() const { return relays_->size(); }

// ---------------------------------------------------------------- plumbing

absl::Status KeyDistribution::Send(const std::string& to, const SessionKey& key,
                                   v1::KeyDistributionMessage message, bool close) {
  message.mutable_session()->set_initiator(key.initiator);
  message.mutable_session()->set_id(key.id);
  if (NeedsAuthentication(message.body_case())) {
    auto it = sessions_.find(key);
    if (it == sessions_.end() || it->second.peer != to) {
      return absl::InternalError(absl::StrCat("a ", BodyName(message), " for QKD session ", key.id, " to ", to,
                                              " with no such session here to authenticate it"));
    }
    return SendAuthenticated(it->second, message.SerializeAsString(), close);
  }
  return network_.SendDatagram(to, options_.purpose_id, message.SerializeAsString());
}

absl::Status KeyDistribution::SendAuthenticated(Session& s, const std::string& bytes, bool close) {
  if (s.closed) {
    return absl::InternalError(absl::StrCat("QKD session ", s.key.id, " sends a message after its closing tag"));
  }
  // Tagged: the offer (it brings the hash key, so a forged offer starts
  // nothing) and the closing message; the rest only go into the transcript.
  const bool offer = !s.auth_key.has_value();
  const bool tagged = offer || close;
  std::optional<qkd::AuthenticationKeyPool::Taken> taken;
  if (tagged) {
    const size_t words = offer ? 2 : 1;  // the offer also takes the hash key
    absl::StatusOr<qkd::AuthenticationKeyPool::Taken> t = authentication_->TakeForSending(s.peer, words);
    if (!t.ok()) {
      return WithContext(t.status(), absl::StrCat("QKD session ", s.key.id, " cannot authenticate its messages"));
    }
    taken = *std::move(t);
    if (offer) s.auth_key = taken->words.front();
    s.auth_words += words;
  }
  s.sent_transcript.Append(*s.auth_key, AuthenticatedBytes(Where(), s.peer, bytes));
  v1::KeyDistributionMessage outer;
  outer.mutable_session()->set_initiator(s.key.initiator);
  outer.mutable_session()->set_id(s.key.id);
  v1::KeyDistributionAuthenticated* a = outer.mutable_authenticated();
  a->set_message(bytes);
  if (tagged) {
    a->set_tagged(true);
    a->set_final(close);
    a->set_pad_segment(taken->position.segment);
    a->set_pad_index(taken->position.index);
    a->set_tag(s.sent_transcript.Close(*s.auth_key, taken->words.back()));
  }
  if (close) s.closed = true;
  return network_.SendDatagram(s.peer, options_.purpose_id, outer.SerializeAsString());
}

void KeyDistribution::SendEnd(const std::string& to, const SessionKey& key, const absl::Status& status) {
  v1::KeyDistributionMessage m;
  m.mutable_end()->set_code(static_cast<int32_t>(status.code()));
  m.mutable_end()->set_message(std::string(status.message()));
  (void)Send(to, key, std::move(m));  // best effort: the peer has its own deadline
}

void KeyDistribution::Post(std::function<void()> fn) {
  context_.StartTimer(Duration(0), lifetime_.Guard(std::move(fn)));
}

TimerId KeyDistribution::StartDeadline(Duration after, std::function<void()> fire) {
  return context_.StartTimer(after, lifetime_.Guard(std::move(fire)));
}

}  // namespace qnet::keydist
