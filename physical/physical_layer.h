// The physical layer of one node: heralded entanglement generation on each of
// its links, offered to the link layer above, and prepare-and-measure (BB84)
// photons sent over a link (see "Prepare-and-measure" below).
//
// Heralded generation: both ends of a link call StartGeneration with the same
// generation id; the link's node_a also hosts the simulated heralding station,
// which starts attempts once both ends are ready and heralds the outcome to
// both. A success leaves the two memory
// slots holding the entangled pair, labelled with the Bell state the station
// announced; both ends learn the same label.
//
// Timing: the station's click happens at t_click = t_start + K x attempt
// duration, where t_start is when the host knows both ends are ready. Each end
// hears the herald at t_click + (its distance to the station)/c. Each memory
// qubit decoheres from its emission in the successful attempt,
// t_click - (its distance)/c, so waiting for the herald costs fidelity. (An
// approximation: the attempt model's state is taken as the state at emission,
// and the emission of earlier, failed attempts is not modelled as memory
// time, since each attempt re-initialises the qubit.)
//
// Ownership: the slot stays allocated to the caller on every path (the caller
// frees it); a generation that does not succeed leaves no qubit state behind.
//
// Eavesdropper (a fault to inject; physical/heralding_station.h has the
// physics): she acts at the station, so only the station host's setting
// matters. The host is the link's node_a, the first node of the link's
// `between` in the network file. Each daemon has its own PhysicalLayer, so a
// run-time switch is applied at both ends and the host's call reports that
// it took effect.
//
// Prepare-and-measure (BB84 with single photons; the physics is in
// physical/prepare_measure.h): either end of a link may send photons to the
// other. SendPhotons runs this node's photon source and the fibre towards the
// neighbour (loss, misalignment e_d = (1 - V) / 2, intercept-resend
// eavesdropper); the photons that survive cross to the neighbour as
// PhotonPulses messages, the simulated quantum channel, whose physical layer
// measures them with its detectors (the link's detector efficiency and dark
// counts) and hands the detections to its registered photon receiver. The
// source, the outgoing fibre and the detectors of each link draw from their
// own streams forked from the node's seed, so a seed reproduces a run.
// Eavesdropper: she acts on the photons the SENDER emits, so for
// prepare-and-measure the fraction in force is the one recorded at the sending
// end, whichever end hosts the station.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/lifetime.h"
#include "core/node_context.h"
#include "core/recent_id_map.h"
#include "core/time.h"
#include "physical/heralding_station.h"
#include "physical/params.h"
#include "physical/prepare_measure.h"
#include "physical/quantum_device.h"
#include "physical/state_backend.h"
#include "qnet/v1/peer_messages.pb.h"
#include "quantum/bell.h"

namespace qnet::physical {

// One of the node's links, as the node's physical layer needs it.
struct PhysicalLink {
  LinkPhysics physics;      // node_a / node_b name the ends; this node is one of them
  NodeHardware far_end;     // the hardware of the other end
};

// The eavesdropper on one of the node's links, as this end knows it.
struct LinkEavesdropper {
  std::string link;           // the link's name
  bool station_here = false;  // this node hosts the station: `fraction` is in force, `stats` count here
  double fraction = 0.0;      // as last set at this end (from the network file, or at run time)
  EavesdropperStats stats;    // all zero unless station_here
  // Photon-number splitting on the photons this node sends (SetPhotonNumberSplitting).
  bool photon_number_splitting = false;
};

// Properties of this node's own equipment that no link describes.
struct PhysicalLayerOptions {
  // Pulse rate of the node's prepare-and-measure photon source (1 GHz, the
  // clock of current GHz-gated BB84 systems). It sets how long a batch takes
  // to emit (count / rate), and so the simulated duration of a key run.
  double photon_source_rate_hz = 1e9;
};

// Prepare-and-measure photons on one of the node's links, as counted here.
// Heralded generation on one link, as this end saw it (counted when a
// generation's herald reaches this node).
struct HeraldedLinkStats {
  std::string link;         // the link's name
  uint64_t attempts = 0;    // entanglement attempts the heralds reported
  uint64_t heralded = 0;    // generations that ended in a pair
  uint64_t failed = 0;      // generations that ended without one (max attempts, no slot)
};

struct PhotonLinkStats {
  std::string link;  // the link's name
  // Sent by this node's source into the fibre towards the neighbour.
  uint64_t pulses_sent = 0;
  uint64_t photons_delivered = 0;   // survived the fibre and went on to the neighbour
  uint64_t pulses_intercepted = 0;  // by the eavesdropper on that fibre (PNS: pulses she split)
  uint64_t pulses_blocked = 0;      // PNS: pulses she stopped
  // Received by this node's detectors from the neighbour.
  uint64_t gates = 0;               // detector gates opened (one per pulse id)
  uint64_t photons_received = 0;
  uint64_t detections = 0;          // gates with a click (photon or dark count)
  uint64_t photons_dropped = 0;     // arrived while no photon receiver was registered (or the
                                    // link's physics could not make detectors)
  uint64_t malformed_batches = 0;   // PhotonPulses ignored: ids out of range, not a state
};

struct GenerationParams {
  // Single-click bright-state parameter: P(emitting) per attempt; trades rate
  // for fidelity. Both ends must pass the same value. Ignored by double-click
  // models.
  double bright_state_alpha = 0.1;
  // Give up after this many attempts (DeadlineExceeded); 0 = until aborted.
  // Both ends must pass the same value.
  uint64_t max_attempts = 0;
};

struct GenerationResult {
  // OK: the slot holds a heralded qubit entangled with the far end's slot.
  // Cancelled: the far end aborted. Unavailable: the link went down.
  // DeadlineExceeded: max_attempts without success. InvalidArgument: the ends
  // disagree on the parameters or the link cannot generate with them.
  absl::Status status;
  quantum::BellState label = quantum::BellState::kPhiPlus;  // the heralded Bell state (OK only)
  int slot = -1;
  TimePoint heralded_at;  // when the herald reached this node
  TimePoint emitted_at;   // when this node's qubit left for the successful attempt (OK only)
  uint64_t attempts = 0;  // attempts the station made (0 if it never started)
};

class PhysicalLayer {
 public:
  using GenerationCallback = std::function<void(const GenerationResult&)>;
  // Detections of one PhotonPulses message from neighbour `from`: the
  // detector was gated `gates` times (once per pulse id of the message),
  // `detections` are the gates that clicked, in increasing pulse-id order.
  using PhotonReceiver = std::function<void(const std::string& from, uint64_t session,
                                            std::vector<MeasuredPulse> detections, uint64_t gates)>;

  // Most pulses one SendPhotons call emits: bounds the memory of a batch
  // (Alice's record is 16 bytes a pulse); a longer run takes several calls.
  static constexpr uint32_t kMaxPulsesPerSend = 1u << 20;
  // Most photons one PhotonPulses message carries (~150 kB on the wire).
  static constexpr size_t kMaxPhotonsPerMessage = 4096;
  // Most photons one arriving pulse may carry (PhotonPulses.Photon.count).
  static constexpr uint32_t kMaxPhotonsPerPulse = 1000;

  // InvalidArgument if this node (context.node_name()) is not an end of a
  // link, two links share a name or a neighbour, or a link's geometry is
  // impossible (negative length, station outside the fibre), or the photon
  // source rate is not a positive, finite number.
  static absl::StatusOr<std::unique_ptr<PhysicalLayer>> Create(NodeContext& context,
                                                               QuantumDevice& device,
                                                               StateBackend& backend,
                                                               NodeHardware hardware,
                                                               std::vector<PhysicalLink> links,
                                                               const PhysicalLayerOptions& options = {});
  ~PhysicalLayer();
  PhysicalLayer(const PhysicalLayer&) = delete;
  PhysicalLayer& operator=(const PhysicalLayer&) = delete;

  // Starts generation `generation_id` on `link` into the allocated, idle
  // `slot`. `done` runs exactly once, on the event loop and never inside
  // this call, unless the caller itself aborts the generation. Fails at once
  // (and `done` never runs) for an unknown link, a generation id already
  // under way on the link, or a slot the device cannot use.
  absl::Status StartGeneration(const std::string& link, uint64_t generation_id, int slot,
                               const GenerationParams& params, GenerationCallback done);
  // Stops the generation at both ends: the far end's callback gets
  // Cancelled, this end's callback does not run, and the slot is left idle
  // (still allocated). Returns false if no such generation is under way here.
  // (A success the far end had already heard stands there.)
  bool AbortGeneration(const std::string& link, uint64_t generation_id);

  // Entry points for the node's stack dispatcher.
  void OnPhysicalMessage(const std::string& from, const v1::PhysicalMessage& message);
  // Fails every generation on links to `neighbour` with Unavailable.
  void OnNeighbourDown(const std::string& neighbour);

  // Sets the fraction of heralded pairs the eavesdropper on the link to
  // `neighbour` intercepts from now on. Returns true if it took effect here
  // for heralded generation (this node hosts the link's station), false if it
  // was only recorded (the far end hosts it; set it there too).
  // InvalidArgument unless `fraction` is a number in [0, 1]; NotFound if no
  // link goes to `neighbour`. Prepare-and-measure: the recorded value is the
  // fraction of the photons this node sends (SendPhotons) that she
  // intercepts, from the next batch on, at either end; the far end's value
  // governs the photons it sends.
  absl::StatusOr<bool> SetEavesdropperFraction(const std::string& neighbour, double fraction);
  // The photon-number-splitting eavesdropper (physical/prepare_measure.h) on
  // the photons this node sends to `neighbour`, on or off. She tunes her
  // forwarding to the signal intensity of each batch (intensities are
  // public) so Bob's click rate stays what the fibre would give. NotFound
  // for no such link; FailedPrecondition while an intercept-resend
  // eavesdropper is set on it.
  absl::Status SetPhotonNumberSplitting(const std::string& neighbour, bool enabled);
  // The eavesdropper on the link to `neighbour`; NotFound if there is none.
  absl::StatusOr<LinkEavesdropper> Eavesdropper(const std::string& neighbour) const;

  // ---- Prepare-and-measure ----

  // Emits `count` pulses with ids first_pulse_id, first_pulse_id + 1, ... from
  // this node's source into the fibre to `neighbour`, and returns what was
  // prepared (basis and bit per pulse id: the sender's private record for
  // sifting). The source emits at PhysicalLayerOptions::photon_source_rate_hz,
  // starting when its previous batch is done; each PhotonPulses message leaves
  // when the last pulse it covers has been emitted (at most
  // kMaxPhotonsPerMessage photons each), so the neighbour has the whole batch
  // at emission end + the fibre delay. `session` is passed to the neighbour's
  // receiver as is. InvalidArgument for count 0 or above kMaxPulsesPerSend,
  // or ids that would overflow; NotFound if no link goes to `neighbour`;
  // InvalidArgument naming the field if the link's physics cannot make a
  // fibre channel. `intensities` empty: single photons; otherwise weak
  // coherent pulses, an intensity drawn per pulse (decoy states; the
  // returned PreparedPulse::intensity indexes it), InvalidArgument as
  // PhotonSource::SetIntensities.
  absl::StatusOr<std::vector<PreparedPulse>> SendPhotons(const std::string& neighbour, uint64_t session,
                                                         uint64_t first_pulse_id, uint32_t count,
                                                         const std::vector<PulseIntensity>& intensities = {});
  // Where this node's detections of photons from any neighbour go. Photons
  // arriving while none is registered are dropped (counted in
  // PhotonLinkStats::photons_dropped), unmeasured. AlreadyExists if one is
  // registered (pass nullptr first to remove it).
  absl::Status RegisterPhotonReceiver(PhotonReceiver receiver);
  // Prepare-and-measure counts on the link to `neighbour`; NotFound if none.
  absl::StatusOr<PhotonLinkStats> PhotonStats(const std::string& neighbour) const;
  // Heralded generation counts on the link to `neighbour`; NotFound if none.
  absl::StatusOr<HeraldedLinkStats> HeraldStats(const std::string& neighbour) const;

  // Generations under way at this end (started and not yet finished).
  size_t active_generations() const;
  // Messages that named an unknown link, came from the wrong node, did not
  // fit any generation's state (a protocol bug or a stale message), or were
  // malformed PhotonPulses.
  uint64_t ignored_messages() const { return ignored_messages_; }

 private:
  struct Generation {
    uint64_t id = 0;
    int slot = -1;
    GenerationCallback done;
    quantum::QubitId qubit = 0;
    TimerId delivery_timer = kNoTimer;  // herald heard, acting at its arrival time
    TimePoint started_at{};  // this end's start: its attempts' earliest time
  };
  struct Ended {
    absl::Status status;
    bool started_here = false;
  };
  struct LinkState {
    PhysicalLink link;
    bool is_station_host = false;
    std::string far_end;
    Duration to_station{0};  // fibre delay from this node to the station
    std::unique_ptr<HeraldingStation> station;  // station host only
    absl::flat_hash_map<uint64_t, Generation> generations;
    // Generations that ended here, or that the far end ended before this end
    // started (then a late StartGeneration fails with how it ended). Late
    // messages for them are ignored. The most recent kEndedMemory ids only
    // (the master numbers a link's generations densely).
    RecentIdMap<Ended> ended{kEndedMemory};
    // Prepare-and-measure, built on first use from the link's physics.
    std::optional<PhotonSource> photon_source;  // towards far_end
    std::optional<FibreChannel> fibre_out;      // this node -> far_end
    std::optional<PhotonDetector> photon_detector;  // photons from far_end
    bool photon_number_splitting = false;
    TimePoint source_free_at{};  // when the source has emitted its last batch
    PhotonLinkStats photon_stats;
    HeraldedLinkStats herald_stats;
  };
  static constexpr size_t kEndedMemory = 4096;

  PhysicalLayer(NodeContext& context, QuantumDevice& device, StateBackend& backend, NodeHardware hardware,
                const PhysicalLayerOptions& options);

  // The link to `neighbour`, or nullptr.
  LinkState* FindLinkTo(const std::string& neighbour) const;
  absl::Status NoLinkTo(const std::string& neighbour) const;
  void Send(const LinkState& link, v1::PhysicalMessage message);
  void NoteEnded(LinkState& link, uint64_t generation_id, const absl::Status& why, bool started_here);
  // Removes the generation, cancels its timer, releases its qubit unless it
  // succeeded (then the qubit is bound to the slot), and runs its callback.
  void Finish(LinkState& link, uint64_t generation_id, GenerationResult result);
  // Drops the generation without a callback (this end aborted it).
  void Drop(LinkState& link, uint64_t generation_id);
  // Frees the slot's wait and discards any state of the generation's qubit.
  void ReleaseQubit(const Generation& generation);

  void OnStationOutcome(LinkState& link, const HeraldingStation::Outcome& outcome);
  void OnReady(LinkState& link, const v1::GenerationReady& ready);
  void OnAbort(LinkState& link, uint64_t generation_id);
  void OnHerald(LinkState& link, const v1::Herald& herald);
  void OnStationError(LinkState& link, const v1::StationError& error);
  // Builds the link's photon source and outgoing fibre / its detectors.
  absl::Status BuildPhotonSender(LinkState& link);
  absl::Status BuildPhotonDetector(LinkState& link);
  void OnPhotonPulses(LinkState& link, const v1::PhotonPulses& pulses);
  // Acts on a herald (`failure` OK means success) at this node's arrival time.
  void ScheduleDelivery(LinkState& link, uint64_t generation_id, absl::Status failure,
                        quantum::BellState label, uint64_t attempts, TimePoint click_time);
  void Deliver(LinkState& link, uint64_t generation_id, const absl::Status& failure,
               quantum::BellState label, uint64_t attempts, TimePoint click_time);

  NodeContext& context_;
  QuantumDevice& device_;
  StateBackend& backend_;
  NodeHardware hardware_;
  PhysicalLayerOptions options_;
  PhotonReceiver photon_receiver_;
  absl::flat_hash_map<std::string, std::unique_ptr<LinkState>> links_;
  uint64_t ignored_messages_ = 0;
  Lifetime lifetime_;  // last: ends before the members its callbacks use
};

}  // namespace qnet::physical
