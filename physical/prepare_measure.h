// The physics of BB84 prepare-and-measure with single photons over one fibre
// link, split into the three places it happens so each part can live at a
// different daemon: the PhotonSource (Alice) prepares polarisation qubits in a
// random basis and bit, the FibreChannel loses them, lets an intercept-resend
// eavesdropper act on a fraction of them and misaligns them, and the
// PhotonDetector (Bob) measures each in a random basis with two threshold
// detectors (efficiency, dark counts, double clicks squashed to a random bit).
// Every figure a user sees (detection rate, QBER) emerges from sampling these
// components with seeded qnet::Rng streams; the closed forms live in the tests.
//
// Polarisation convention: basis 0 is Z (H/V), basis 1 is X (D/A); bit 0 is
// the +1 eigenstate of that Pauli operator (H or D). These numbers match
// qkd::Basis (kZ = 0, kX = 1), so a caller converts a MeasuredPulse into a
// qkd::Detection with static_casts (physical does not depend on qkd/).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/rng.h"
#include "core/time.h"
#include "physical/params.h"

namespace qnet::physical {

inline constexpr uint8_t kPolarisationBasisZ = 0;
inline constexpr uint8_t kPolarisationBasisX = 1;

// One pulse as Alice prepared it (her private record for sifting).
struct PreparedPulse {
  uint64_t pulse_id = 0;
  uint8_t basis = kPolarisationBasisZ;
  uint8_t bit = 0;
  // Index of the intensity the source chose (weak coherent sources; 0 for a
  // single-photon source). Alice knows it and announces it after detection.
  uint8_t intensity = 0;
  // SIMULATION ONLY: how many photons the pulse carries. A real Alice does
  // not know it (a laser pulse's photon number is Poisson); the fibre uses it,
  // and tests compare the decoy-state bounds with it. Protocol code must not
  // read it.
  uint32_t photon_number = 1;
};

// One pulse as someone measured it: Bob's detections, Eve's interceptions.
struct MeasuredPulse {
  uint64_t pulse_id = 0;
  uint8_t basis = kPolarisationBasisZ;
  uint8_t bit = 0;
};

// A polarisation qubit as its Bloch vector: rho = (I + x X + y Y + z Z) / 2,
// |r| <= 1 (shorter than 1 for a mixed state). Three doubles describe any
// single-photon polarisation exactly, which is all BB84 needs.
struct BlochVector {
  double x = 0.0;
  double y = 0.0;
  double z = 0.0;
};

// The pure state Alice prepares for (basis, bit): +-Z or +-X.
BlochVector PreparedPolarisation(uint8_t basis, uint8_t bit);

// SIMULATION ONLY. What leaves the fibre towards the receiver for one batch of
// pulses: a real quantum channel carries photons, not their description, so
// protocol code must only hand this to a PhotonDetector, never read it.
// The receiver's detectors are gated once per pulse in [first_pulse_id,
// first_pulse_id + num_pulses) whether or not a photon arrives (dark counts
// happen in every gate); `photons` lists the pulses that did arrive, in
// increasing pulse-id order.
struct PhotonBatch {
  struct Photon {
    uint64_t pulse_id = 0;
    BlochVector polarisation;
    uint32_t count = 1;  // photons of this pulse that arrived, all in `polarisation`
  };
  uint64_t first_pulse_id = 0;
  uint64_t num_pulses = 0;
  std::vector<Photon> photons;
};

// One intensity setting of a weak coherent source: the mean photon number of
// its pulses and how often the source picks it.
struct PulseIntensity {
  double mean_photon_number = 0.0;  // mu, >= 0 (0: vacuum, the laser blocked)
  double probability = 0.0;         // of a pulse, > 0; a source's sum to 1
  bool operator==(const PulseIntensity&) const = default;
};

// Alice: a photon source emitting pulses at a fixed repetition rate, each in
// a uniformly random basis and bit. Either an ideal single-photon source
// (exactly one photon per pulse) or a weak coherent one: an attenuated,
// phase-randomised laser whose pulses carry a Poisson number of photons with
// mean mu_k, the intensity k chosen at random per pulse (decoy states).
class PhotonSource {
 public:
  // Single photons. InvalidArgument unless repetition_rate_hz is positive and
  // finite. `rng` should be this source's own stream (e.g. a
  // Fork("bb84-source")).
  static absl::StatusOr<PhotonSource> Create(double repetition_rate_hz, Rng rng);
  // Weak coherent pulses. InvalidArgument unless there are 1 to 8 intensities,
  // each mu in [0, 100] and probability in (0, 1], summing to 1 within 1e-9.
  static absl::StatusOr<PhotonSource> CreateWeakCoherent(double repetition_rate_hz,
                                                          std::vector<PulseIntensity> intensities, Rng rng);

  // Switches between single photons (empty) and weak coherent pulses (as
  // CreateWeakCoherent checks them) from the next pulse on; the random
  // stream goes on. InvalidArgument leaves the source as it was.
  absl::Status SetIntensities(std::vector<PulseIntensity> intensities);

  // The next `count` pulses, with consecutive ids continuing from the last batch.
  std::vector<PreparedPulse> EmitBatch(size_t count);

  uint64_t next_pulse_id() const { return next_pulse_id_; }
  double repetition_rate_hz() const { return repetition_rate_hz_; }
  // Empty for a single-photon source.
  const std::vector<PulseIntensity>& intensities() const { return intensities_; }
  // One pulse period, rounded to the runtime's 1 ns resolution (0 above
  // 2 GHz): for display. Schedule with EmissionOffset, which does not
  // accumulate the rounding.
  Duration pulse_period() const;
  // Time of pulse `pulse_id` after pulse 0.
  Duration EmissionOffset(uint64_t pulse_id) const;

 private:
  PhotonSource(double repetition_rate_hz, std::vector<PulseIntensity> intensities, Rng rng)
      : repetition_rate_hz_(repetition_rate_hz), intensities_(std::move(intensities)), rng_(rng) {}

  double repetition_rate_hz_;
  std::vector<PulseIntensity> intensities_;
  Rng rng_;
  uint64_t next_pulse_id_ = 0;
};

// SIMULATION ONLY. The pulses of a weak coherent source through a channel
// of transmittance T without an eavesdropper, for channels that lose almost
// every pulse (a satellite downlink at 30-40 dB sends 10^10 pulses a pass):
// only the pulses that deliver a photon are drawn, with geometric skips over
// the rest. Per pulse this is the law of PhotonSource + FibreChannel
// (Poisson thinning: a pulse of intensity k delivers Poisson(mu_k T) photons,
// independently of the Poisson(mu_k (1 - T)) it loses; misalignment as in
// FibreChannel), so the detector sees the same thing. How many of the
// pulses that deliver nothing had each intensity is a multinomial split:
// exact below 10^4 expected pulses, the binomial's normal limit above (its
// relative error there is below 10^-4 of a count, far inside any figure's
// statistics).
struct LossyChannelSample {
  std::vector<PreparedPulse> delivering;  // Alice's records (photon_number: as emitted)
  PhotonBatch to_receiver;                // their photons, gated over all `pulses`
  std::vector<uint64_t> pulses_per_intensity;
};
// InvalidArgument for T or e_d outside [0, 1] / [0, 0.5], or no intensities.
absl::StatusOr<LossyChannelSample> SampleWeakCoherentThroughLoss(const std::vector<PulseIntensity>& intensities,
                                                                 uint64_t first_pulse_id, uint64_t pulses,
                                                                 double transmittance, double misalignment_error,
                                                                 Rng& rng);

// Binomial(n, p) from `rng`: exact (geometric jumps) up to 10^4 expected
// successes, the normal limit above.
uint64_t SampleBinomial(uint64_t n, double p, Rng& rng);

struct FibreChannelParams {
  double length_km = 0.0;
  double attenuation_db_per_km = 0.2;
  // e_d: probability that a detected photon lands in the wrong detector
  // although Bob measured in Alice's basis (polarisation drift, imperfect
  // reference-frame alignment). Modelled as the channel that shrinks the
  // Bloch vector by (1 - 2 e_d), the same error in every basis. In [0, 0.5].
  double misalignment_error = 0.0;
  // x: fraction of the pulses reaching Eve that she intercepts, measures in a
  // uniformly random Z/X basis and resends as a fresh photon in the state she
  // found. In [0, 1]; 0 means no eavesdropper.
  double eavesdropper_fraction = 0.0;
  // Where Eve sits, as a fraction of the length from the sender (0 = at
  // Alice's output). Her own apparatus is ideal, so the loss the photons see
  // is the fibre's either way; only which pulses she can reach changes.
  double eavesdropper_position = 0.0;
  // The photon-number-splitting attack (Brassard, Lutkenhaus, Mor, Sanders,
  // PRL 85, 1330 (2000)), instead of intercept-resend: Eve, at Alice's
  // output (position must be 0, fraction 0), counts each pulse's photons
  // without disturbing their polarisation; she blocks every single-photon
  // pulse and keeps one photon of each multi-photon pulse (measured once the
  // bases are announced, so she learns its bit without error). With
  // probability `pns_forward_probability` she sends one of the other photons
  // on to Bob over a lossless channel, chosen so Bob sees the click rate
  // the lossy fibre would give (PnsForwardProbability).
  bool photon_number_splitting = false;
  double pns_forward_probability = 1.0;  // in [0, 1]
};

// The forwarding probability that makes the photon-number-splitting attack
// invisible in Bob's click rate for pulses of mean photon number `mu` over a
// fibre of transmittance T into detectors of efficiency eta_d (Eve knows
// the receiver's specification): honestly a pulse clicks with probability
// 1 - e^(-mu T eta_d); a forwarded photon clicks with eta_d, and only
// multi-photon pulses, 1 - e^(-mu) (1 + mu) of them, can be forwarded.
// Capped at 1 (then the attack lowers the gain visibly: a short fibre
// defeats it).
double PnsForwardProbability(double mu, double transmittance, double detector_efficiency);

// The channel parameters of `link` (full length, sender node_a, receiver
// node_b), with e_d = (1 - V) / 2 from the link's visibility V: a visibility
// V of the polarisation interference is a Bloch vector shrunk by V. (V is the
// link's two-photon visibility, the only contrast figure a link has.) Fails if
// the link does not pass ValidateLinkPhysics or x is outside [0, 1].
absl::StatusOr<FibreChannelParams> FibreChannelParamsFromLink(const LinkPhysics& link,
                                                              double eavesdropper_fraction);

struct FibreChannelStats {
  uint64_t pulses_in = 0;         // pulses Alice sent into the fibre
  uint64_t pulses_reaching_eavesdropper = 0;
  uint64_t pulses_intercepted = 0;  // intercept-resend; PNS: pulses split
  uint64_t pulses_blocked = 0;      // PNS: pulses Eve stopped
  uint64_t photons_out = 0;         // pulses with photons delivered to the receiver
};

// The fibre from Alice to Bob, with an optional intercept-resend eavesdropper.
class FibreChannel {
 public:
  // InvalidArgument naming the parameter when one is outside its range.
  static absl::StatusOr<FibreChannel> Create(const FibreChannelParams& params, Rng rng);

  struct Output {
    PhotonBatch to_receiver;                // SIMULATION ONLY, see PhotonBatch
    std::vector<MeasuredPulse> intercepted;  // Eve's record, increasing pulse id
  };
  // Sends one batch through the fibre. Each photon survives the fibre with
  // probability 10^(-alpha L / 10) (in two independent segments around Eve);
  // Eve acts on a pulse reaching her with probability x (Born-rule
  // measurement of its actual state, one photon resent); misalignment acts
  // on every surviving photon. Under photon-number splitting the record of
  // the split pulses is Eve's, in Alice's basis. `pulses` must have consecutive ids and bases/bits in {0, 1}
  // (InvalidArgument otherwise); an empty batch gives an empty output.
  absl::StatusOr<Output> Transmit(std::span<const PreparedPulse> pulses);

  // Switches the eavesdropper for the batches transmitted from now on (a
  // fault injected at run time). InvalidArgument unless x is in [0, 1].
  absl::Status SetEavesdropperFraction(double fraction);
  // Switches photon-number splitting on (with its forwarding probability)
  // or off for the batches from now on. FailedPrecondition while an
  // intercept-resend eavesdropper acts or Eve is not at Alice's output;
  // InvalidArgument unless the probability is in [0, 1].
  absl::Status SetPhotonNumberSplitting(bool enabled, double forward_probability);

  const FibreChannelParams& params() const { return params_; }
  // 10^(-alpha L / 10) end to end.
  double transmittance() const;
  const FibreChannelStats& stats() const { return stats_; }

 private:
  FibreChannel(const FibreChannelParams& params, Rng rng) : params_(params), rng_(rng) {}

  FibreChannelParams params_;
  Rng rng_;
  FibreChannelStats stats_;
};

struct PhotonDetectorParams {
  double efficiency = 1.0;              // eta_d, each detector
  double dark_count_probability = 0.0;  // p_d per gate, each detector independently
};

// Bob's detectors as the link describes them: detector_efficiency and the
// dark-count probability per detection window (DarkCountProbability). Fails
// if the link does not pass ValidateLinkPhysics.
absl::StatusOr<PhotonDetectorParams> PhotonDetectorParamsFromLink(const LinkPhysics& link);

struct PhotonDetectorStats {
  uint64_t gates = 0;
  uint64_t photons_arrived = 0;
  uint64_t detections = 0;     // gates with at least one click
  uint64_t double_clicks = 0;  // gates where both detectors clicked
};

// Bob: an active-basis-choice receiver (a polarisation modulator in front of
// a polarising beam splitter) with one threshold detector per outcome. Per
// gate he picks Z or X uniformly; each arriving photon reaches the
// detector of its Born-rule outcome (P(bit 0) = (1 + r_basis) / 2) and is
// registered with the detector efficiency; each detector also fires a dark
// count with probability p_d, independently. One click gives that detector's
// bit, two clicks a uniformly random bit (squashing, so a double click is
// not discarded, which an eavesdropper could exploit), none no record.
class PhotonDetector {
 public:
  // InvalidArgument naming the parameter when one is outside [0, 1].
  static absl::StatusOr<PhotonDetector> Create(const PhotonDetectorParams& params, Rng rng);

  // Detected pulses only, in increasing pulse-id order. InvalidArgument for a
  // malformed batch (photons outside the gated range, not increasing, or a
  // Bloch vector longer than 1 or not finite).
  absl::StatusOr<std::vector<MeasuredPulse>> Detect(const PhotonBatch& batch);

  const PhotonDetectorParams& params() const { return params_; }
  const PhotonDetectorStats& stats() const { return stats_; }

 private:
  PhotonDetector(const PhotonDetectorParams& params, Rng rng);

  PhotonDetectorParams params_;
  // Separate streams, so that how many dark counts one detector draws does
  // not shift the photons' outcomes or the other detector's dark counts.
  Rng measurement_rng_;
  Rng dark_rng_[2];
  PhotonDetectorStats stats_;
};

}  // namespace qnet::physical
