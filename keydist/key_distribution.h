// Quantum key distribution between nodes: BBM92 and E91 over the network
// layer's end-to-end MEASURE pairs, a trusted-node relay that joins BBM92 hop
// keys along a path, and BB84 prepare-and-measure with single photons between
// neighbours over the physical layer's photon channel. One KeyDistribution
// runs per node; it answers sessions other nodes start and starts its own.
// Classical messages are network-layer datagrams
// (proto/qnet/v1/qkd_messages.proto); the key itself comes out of the
// sans-I/O post-processing pipeline (qkd/post_processing.h), initiator =
// Alice, responder = Bob.
//
// Every two-party session runs the same frame (key_distribution.cc): the
// initiator I sends an OFFER (protocol, pairs, timeout, post-processing
// options: both ends must use the same), the responder R answers ACCEPT (or
// END with why not), both ends measure, then run post-processing on their
// Z/X detections with its messages as datagrams; the result reaches I's done
// handler and R's responder handler. How the measuring works is the
// protocol's: BBM92 and E91 in entangled_sessions.cc, BB84 in bb84.cc, the
// trusted-node relay (which runs BBM92 hop sessions) in relay.h.
//
// Failures (network errors, timeouts, a peer that never answers, QBER or
// CHSH aborts, cancels) end the session at both ends with a status that says
// why; the network request is cancelled and the pair receiver released
// (BB84 photons already in the fibre still arrive and are ignored).
// Datagrams that do not parse are ignored and counted; a malformed message
// inside a live session aborts that session.
//
// End-to-end authentication (delayed): every message of a two-party session
// that the protocol acts on (offer, accept, E91 test outcomes, every
// post-processing message) travels in an authenticated envelope and goes
// into its sender's running Wegman-Carter transcript hash
// (qkd/wegman_carter.h), keyed from the authentication pool the two ends
// share (keydist/authentication.h); the receiver hashes what it receives.
// Three messages carry a tag covering everything their sender sent since
// its previous tag: the offer (with the session's hash key), and each end's
// closing message - the one it sends as its post-processing finishes, or,
// if it has nothing left to send (Bob once he has the privacy
// amplification seed), its closing tag alone. A tag is verified before its
// message is acted on; one that fails (or a message without an envelope)
// ends the session at both ends with Unauthenticated "... message N from X
// failed authentication ...". An end delivers its key only when its
// post-processing is done AND the peer's closing tag has verified (Alice,
// who sends the last message, waits one one-way delay for Bob's tag), so no
// key rests on an unverified message. Cost: the hash key and three pads,
// auth_bits_consumed = 256 per block at both ends. The session refills the
// pool with that many bits off the front of its key,
// and delivers the rest (QkdResult::key); a key too short to pay for its
// authentication goes to the pool whole and the session fails
// (FailedPrecondition). END and relay control messages are not
// authenticated: forging one only denies service, which anyone on the path
// can do by dropping messages; relay announcements travel along the relay
// path, whose nodes are trusted with the key anyway.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/lifetime.h"
#include "core/node_context.h"
#include "core/rng.h"
#include "core/time.h"
#include "keydist/authentication.h"
#include "qkd/wegman_carter.h"
#include "link/link_service.h"
#include "network/network_layer.h"
#include "network/network_service.h"
#include "physical/physical_layer.h"
#include "qkd/bit_string.h"
#include "qkd/post_processing.h"
#include "qnet/v1/qkd_messages.pb.h"

namespace qnet::keydist {

class TrustedRelays;

// Purpose ids (the transport layer has 0x3F000001): datagrams on
// kKeyDistributionPurposeId; pairs on one id per responder session, from
// kFirstPairPurposeId up (kPairPurposeIds of them), chosen by the responder.
inline constexpr uint32_t kKeyDistributionPurposeId = 0x3F000002;
inline constexpr uint32_t kFirstPairPurposeId = 0x3F000100;
inline constexpr uint32_t kPairPurposeIds = 0xFF00;
// Largest post-processing message a session sends: a peer message between
// daemons is at most 4 MiB (daemon/peer_directory.h), and the datagram's
// envelopes add a little. A basis announcement costs ~1.1 bytes per
// detection, so this is ~2.8x10^6 detections per block.
inline constexpr size_t kMaxSessionMessageBytes = size_t{3} << 20;

// kBb84: prepare-and-measure with single photons, between neighbours only.
enum class QkdProtocol : uint8_t { kBbm92, kE91, kRelay, kBb84 };
std::string_view QkdProtocolName(QkdProtocol protocol);  // "BBM92", "E91", "relay", "BB84"

struct QkdSessionOptions {
  QkdProtocol protocol = QkdProtocol::kBbm92;
  // End-to-end pairs to measure (kRelay: on each hop), >= 1. BBM92 keeps
  // about half of them as sifted key, E91 a quarter; with the default
  // post-processing (eps 1e-10, 10% sample) the finite-size margins need
  // ~2x10^4 sifted bits for a useful key at a few % QBER.
  // kBb84: the photon pulses Alice sends; about p_click / 2 of them are sifted.
  // kBb84 with post_processing.decoy set is decoy-state BB84: Alice's source
  // sends weak coherent pulses at those intensities.
  uint32_t pairs = 40000;
  // Of every pair (network-layer estimate), in [0, 1]. Not used by kBb84.
  double min_fidelity = 0.0;
  // The whole session, > 0.
  Duration timeout = std::chrono::seconds(60);
  // Used by both ends (the responder takes the initiator's).
  qkd::PostProcessingOptions post_processing;
  // E91: abort when the measured CHSH value is below this.
  double e91_min_chsh = 2.0;
  // kBb84 without decoys: 0 sends single photons; mu > 0 an attenuated laser
  // of that mean photon number, analysed as if every pulse were one photon
  // (the deployed mistake the photon-number-splitting attack exploits).
  double laser_mean_photon_number = 0.0;
};

// Where a session stands (initiator only).
struct QkdProgress {
  // "offered", "measuring", "measured", "chsh" (E91), "sifted", "estimated",
  // "reconciled", "done"; a relay's origin adds "relaying" (its hop key is
  // ready and it waits for the destination).
  std::string stage;
  uint64_t raw_pairs = 0;  // pairs measured here
  uint64_t sifted_bits = 0;
  double qber = 0.0;  // measured on the sample, overall
  uint64_t reconciled_bits = 0;
  uint64_t final_key_bits = 0;
  std::optional<double> chsh_s;
};

struct QkdResult {
  QkdProtocol protocol = QkdProtocol::kBbm92;
  std::string peer;
  // This end's post-processing (kRelay: of its own hop, the first at the
  // origin and the last at the destination).
  qkd::PostProcessingReport report;
  qkd::BitString key;
  std::string key_id;  // the same at both ends
  // E91: the CHSH value of the test pairs and its standard error.
  std::optional<double> chsh_s;
  std::optional<double> chsh_s_stderr;
  Duration simulated_duration{0};  // from the start (or the offer) to the key, on the runtime's clock
  std::vector<std::string> path;   // initiator ... responder
  std::vector<std::string> relay_nodes;  // kRelay: the trusted nodes that learned the key
  // Bits of the session's authentication key (its messages' pads and hash
  // key): taken off the front of privacy amplification's output
  // (report.final_key_bits) back into the pair's pool; `key` is the rest.
  // kRelay: the origin's or destination's own hop.
  uint64_t auth_bits_consumed = 0;
};

using SessionId = uint64_t;  // unique per initiating node
// All run on the node's event loop, never inside a call to KeyDistribution.
using ProgressHandler = std::function<void(SessionId, const QkdProgress&)>;
// Errors: NotFound "NO_ROUTE: ...", DeadlineExceeded "TIMEOUT: ...",
// Aborted (QBER or CHSH too high/low, named with its value; keys that
// differ), Unavailable "PEER_DOWN: ..." and the other network errors as
// network::ToStatus makes them, Cancelled, FailedPrecondition (no key can be
// extracted), InvalidArgument (a malformed message or a refused offer).
using DoneHandler = std::function<void(SessionId, absl::StatusOr<QkdResult>)>;
// The responder's view of a session `initiator` started (its id there).
using ResponderHandler =
    std::function<void(const std::string& initiator, SessionId, absl::StatusOr<QkdResult>)>;

struct KeyDistributionOptions {
  uint32_t purpose_id = kKeyDistributionPurposeId;
  uint32_t first_pair_purpose_id = kFirstPairPurposeId;
  uint32_t pair_purpose_ids = kPairPurposeIds;
  // The node's authentication key pools (keydist/authentication.h); the node
  // stack keeps one across restarts of key distribution, so no pad is
  // reused. Null: key distribution makes its own, bootstrapped from
  // `authentication_secret`.
  std::shared_ptr<AuthenticationPools> authentication;
  uint64_t authentication_secret = 0;
};

struct KeyDistributionStats {
  uint64_t sessions_started = 0;    // by this node's user (any protocol)
  uint64_t sessions_accepted = 0;   // offers answered here (relay hops included)
  uint64_t sessions_succeeded = 0;  // user-visible results with a key, either role
  uint64_t sessions_failed = 0;     // user-visible failures, either role
  uint64_t hop_sessions = 0;        // relay hops, either role
  uint64_t relays_served = 0;       // relay sessions this node relayed (it learned the key)
  uint64_t key_bits = 0;            // final key bits handed to users here
  uint64_t malformed_messages = 0;  // datagrams that did not parse (ignored)
  uint64_t stray_messages = 0;      // for no session here, or from the wrong node (ignored)
  uint64_t stray_photon_batches = 0;  // photons for no BB84 session measuring here (e.g. after a cancel)
  uint64_t unauthenticated_messages = 0;  // failed or lacked end-to-end authentication (sessions aborted)
  uint64_t auth_bits_consumed = 0;        // pool bits this node's sessions used (either role, hops included)
  // Parameter estimation's samples of every session that ended here (either
  // role, hops included, aborted ones too): the measured error rate of a
  // basis is errors / bits.
  uint64_t z_sample_bits = 0;
  uint64_t z_sample_errors = 0;
  uint64_t x_sample_bits = 0;
  uint64_t x_sample_errors = 0;
  // The same samples by the session's other end: for a neighbour (a key
  // between them, or a relay hop over their link) the QBER of that link,
  // which is where an eavesdropper on it shows.
  struct Sample {
    uint64_t z_bits = 0, z_errors = 0, x_bits = 0, x_errors = 0;
  };
  std::map<std::string, Sample> samples_by_peer;
};

class KeyDistribution {
 public:
  // Registers the datagram receiver (AlreadyExists if the purpose id is
  // taken) and, given the node's physical layer, its photon receiver
  // (AlreadyExists if another one is registered there). Without `physical`
  // this node neither starts nor answers BB84 sessions (FailedPrecondition).
  static absl::StatusOr<std::unique_ptr<KeyDistribution>> Create(NodeContext& context,
                                                                 network::NetworkLayer& network,
                                                                 physical::PhysicalLayer* physical = nullptr,
                                                                 KeyDistributionOptions options = {});
  // Cancels this node's requests and releases its receivers; no handler runs.
  ~KeyDistribution();
  KeyDistribution(const KeyDistribution&) = delete;
  KeyDistribution& operator=(const KeyDistribution&) = delete;

  // Immediate errors: InvalidArgument (self, pairs 0, min_fidelity outside
  // [0, 1], timeout <= 0, invalid post-processing options, no done handler,
  // kBb84 with a peer that is not a neighbour), FailedPrecondition (kBb84
  // without a physical layer), NotFound "NO_ROUTE: ..." (the peer is unknown
  // or unreachable now).
  // `progress` may be empty.
  absl::StatusOr<SessionId> StartSession(const std::string& peer, const QkdSessionOptions& options,
                                         ProgressHandler progress, DoneHandler done);
  // Ends a session this node started (its done handler gets Cancelled).
  absl::Status Cancel(SessionId id);
  // A neighbour's link went down (the node stack calls this). Session
  // messages are best-effort datagrams with no retransmission, and a
  // restarted peer has forgotten its sessions: a session that talks to that
  // neighbour, or whose messages took that link first, could only wait for
  // its deadline. It fails now with PEER_DOWN (both ends are told where a
  // route remains), so its caller can retry at once.
  void OnNeighbourDown(const std::string& neighbour);
  // Results of the sessions other nodes start with this one (relay
  // destinations included; relay hops are internal). Without a handler,
  // sessions are still served and their keys dropped.
  void SetResponderHandler(ResponderHandler handler) { responder_handler_ = std::move(handler); }

  const KeyDistributionStats& stats() const { return stats_; }
  // Hop and end-to-end sessions in progress here (either role).
  size_t active_sessions() const { return sessions_.size(); }
  // Relay sessions this node takes part in now (any position).
  size_t active_relays() const;
  // The pools this node authenticates its sessions with.
  AuthenticationPools& authentication() { return *authentication_; }

 private:
  friend class TrustedRelays;  // runs its hops as sessions here

  struct SessionKey {
    std::string initiator;
    uint64_t id = 0;
    bool operator==(const SessionKey&) const = default;
    template <typename H>
    friend H AbslHashValue(H h, const SessionKey& k) {
      return H::combine(std::move(h), k.initiator, k.id);
    }
  };

  // One pair as this end measured it (the tail's in the PHI+ frame).
  struct Measured {
    uint64_t pair_id = 0;
    link::MeasurementBasis basis = link::MeasurementBasis::kZ;
    bool outcome = false;
    uint8_t intensity = 0;  // decoy-state BB84, Alice's pulses: the intensity index
  };

  struct TestOutcomes {
    std::vector<uint64_t> pair_ids;
    qkd::BitString second_setting;
    qkd::BitString outcomes;
  };

  enum class Stage : uint8_t { kOffered, kMeasuring, kTesting, kPostProcessing };

  // A hop of a relay session: which relay, and which side of this node.
  struct HopOf {
    SessionKey relay;
    bool left = false;  // this node is the hop's responder
  };

  struct Session {
    SessionKey key;
    bool initiator = false;
    std::string peer;
    QkdSessionOptions options;
    Stage stage = Stage::kOffered;
    TimePoint started;
    TimePoint deadline_at;
    TimerId deadline = kNoTimer;
    uint32_t pair_purpose = 0;         // responder: the receiver registered for the pairs
    network::RequestId request = 0;    // the network request in progress (either end)
    std::optional<uint64_t> circuit;   // of the pairs
    std::vector<Measured> measured;
    absl::flat_hash_set<uint64_t> pair_ids;  // of `measured`
    std::vector<std::string> path;
    std::string next_hop;  // of this end's messages to the peer when the session began
    uint64_t stray_pairs = 0;
    std::optional<TestOutcomes> peer_test;  // E91: came before this end's pairs were done
    std::optional<std::pair<double, double>> chsh;  // S, standard error
    std::optional<qkd::PostProcessing> post;
    std::vector<qkd::QkdMessage> early;  // post-processing messages before `post` exists
    int progress_stage = -1;
    ProgressHandler progress;
    DoneHandler done;
    std::optional<HopOf> hop;
    // BB84 responder: gates seen so far (pairs in all), the last detected pulse id.
    uint64_t gates = 0;
    std::optional<uint64_t> last_pulse;
    // End-to-end authentication (delayed): the session's hash key (from the
    // offer's first pool word), the pool words it used here, the
    // authenticated messages it received (to name one that fails), the
    // running transcripts of what it sent and received since the last tag
    // either way, whether it sent its closing tag and whether the peer's
    // closing tag verified (the key is delivered only after both).
    std::optional<uint64_t> auth_key;
    uint64_t auth_words = 0;
    uint64_t auth_received = 0;
    qkd::WegmanCarterTranscript sent_transcript;
    qkd::WegmanCarterTranscript received_transcript;
    uint64_t received_since_tag = 0;  // the number of the first message received_transcript holds
    bool closed = false;
    bool peer_closed = false;
  };

  KeyDistribution(NodeContext& context, network::NetworkLayer& network, KeyDistributionOptions options);

  // The session core (key_distribution.cc).
  absl::StatusOr<SessionId> StartHopOrSession(const std::string& peer, const QkdSessionOptions& options,
                                              ProgressHandler progress, DoneHandler done, std::optional<HopOf> hop);
  void OnDatagram(const std::string& source, const std::string& payload);
  // `message` is a verified session message; `hash_key` is the key an offer brought.
  void Dispatch(const std::string& source, const SessionKey& key, const v1::KeyDistributionMessage& message,
                uint64_t hash_key);
  void OnAuthenticated(const std::string& source, const SessionKey& key, const v1::KeyDistributionAuthenticated& a);
  void OnOffer(const std::string& source, const SessionKey& key, const v1::KeyDistributionOffer& offer,
               uint64_t hash_key);
  void OnAccept(const std::string& source, const SessionKey& key, const v1::KeyDistributionAccept& accept);
  void OnEnd(const std::string& source, const SessionKey& key, const v1::KeyDistributionEnd& end);
  void OnPostProcessingMessage(const std::string& source, const SessionKey& key, const v1::QkdMessage& m);
  void StartPostProcessing(const SessionKey& key, const std::vector<uint64_t>& excluded);
  void Feed(const SessionKey& key, const qkd::QkdMessage& message);
  void CheckFinished(const SessionKey& key);
  void OnDeadline(const SessionKey& key);
  // Cancels the session's timer and network request, frees its receiver.
  void Release(Session& s);
  void Succeed(const SessionKey& key);
  void Fail(const SessionKey& key, absl::Status status, bool tell_peer);
  // Reports `stage` to the initiator's user once; `again` reports the current
  // stage anew (pairs measured so far, while measuring).
  void EmitProgress(Session& s, int stage, bool again = false);
  Session* FindSession(const SessionKey& key, const std::string& source);
  // Relay hops are sessions here; relay.h runs the relay sessions.
  // One hop session of `relay` here times out (it says best what is missing).
  void TimeOutHopOf(const SessionKey& relay);
  // Ends every hop session of `relay` here.
  void CancelHopsOf(const SessionKey& relay, const absl::Status& why);

  // BBM92 and E91: pairs from the network layer (entangled_sessions.cc).
  void OnHeadEvent(const SessionKey& key, const network::NetworkEvent& event);
  void OnTailEvent(const SessionKey& key, const network::NetworkEvent& event);
  void RecordPair(Session& s, const network::PairDelivered& pair);
  // Every pair (BB84: every pulse) is in: the CHSH test (E91) or post-processing.
  void OnPairsDone(const SessionKey& key);
  void OnTestOutcomes(const std::string& source, const SessionKey& key, const v1::KeyDistributionTestOutcomes& m);
  void HandleTest(const SessionKey& key);
  // CHSH test outcomes to the peer; false (the session failed) if it cannot be sent.
  bool SendTestOutcomes(const SessionKey& key, const std::vector<uint64_t>& ids, const qkd::BitString& second,
                        const qkd::BitString& outcomes);

  // BB84: Alice's pulses into the fibre, Bob's detections out of it (bb84.cc).
  void SendPulses(const SessionKey& key);
  void OnPhotons(const std::string& from, uint64_t session, const std::vector<physical::MeasuredPulse>& detections,
                 uint64_t gates);
  // Why this node cannot run BB84 with `peer` (OK if it can).
  absl::Status Bb84Possible(const std::string& peer) const;

  // Plumbing.
  // Session messages (offer, accept, test outcomes, post-processing) go
  // authenticated with the session's key (the session must exist); the
  // others go as they are.
  // `close`: the message carries this end's closing tag (see the header comment).
  absl::Status Send(const std::string& to, const SessionKey& key, v1::KeyDistributionMessage message,
                    bool close = false);
  absl::Status SendAuthenticated(Session& s, const std::string& bytes, bool close);
  // Sends post-processing's output; the last message carries this end's
  // closing tag when post-processing has finished. False if the session failed.
  bool SendPostMessages(const SessionKey& key, const std::vector<qkd::QkdMessage>& out);
  // After the peer's closing tag verified: delivers the key if this end is done too.
  void OnPeerClosed(const SessionKey& key);
  void SendEnd(const std::string& to, const SessionKey& key, const absl::Status& status);
  void Post(std::function<void()> fn);
  TimerId StartDeadline(Duration after, std::function<void()> fire);
  std::string Where() const { return context_.node_name(); }

  NodeContext& context_;
  network::NetworkLayer& network_;
  physical::PhysicalLayer* physical_ = nullptr;  // set once its photon receiver is ours
  bool receiving_datagrams_ = false;             // the datagram receiver is ours
  KeyDistributionOptions options_;
  Rng rng_;
  SessionId next_id_ = 1;
  uint32_t next_pair_purpose_ = 0;  // offset into the pair purpose range
  absl::flat_hash_map<SessionKey, Session> sessions_;
  std::unique_ptr<TrustedRelays> relays_;
  std::shared_ptr<AuthenticationPools> authentication_;
  ResponderHandler responder_handler_;
  KeyDistributionStats stats_;
  Lifetime lifetime_;  // last: ends before the rest goes
};

}  // namespace qnet::keydist
