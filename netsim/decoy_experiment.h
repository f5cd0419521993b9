// BB84 with weak coherent pulses over one link of a network file, at the
// level of photons: an attenuated laser (Poisson photon numbers, an
// intensity chosen per pulse among signal, decoy and vacuum), the link's
// fibre (loss, misalignment, optionally a photon-number-splitting
// eavesdropper) and the receiver's threshold detectors (efficiency, dark
// counts), all sampled pulse by pulse from seeded streams
// (physical/prepare_measure.h). Sifting uses Alice's and Bob's bases and
// Alice's intensities as they would announce them; what the run observes
// per intensity goes into the decoy-state estimates (qkd/decoy_state.h).
// The simulator also knows each pulse's photon number, so the run reports
// the true single-photon yield and error beside the bounds, and how many
// sifted key bits the eavesdropper holds.
//
// What `qnetsim --qkd decoy-bb84` (and `bb84-wcp`, the same laser without
// decoys) runs. It stops at the key length the estimate allows: error
// correction and privacy amplification are qkd/'s and run in the node
// stack's BB84 sessions, which still send single photons.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "physical/params.h"
#include "physical/prepare_measure.h"
#include "physical/satellite_channel.h"
#include "qkd/decoy_state.h"

namespace qnet::netsim {

struct WeakCoherentBb84Options {
  qkd::DecoyIntensities intensities;
  // false: the source sends only the signal intensity (BB84 without decoys,
  // analysed as if every pulse were a single photon).
  bool decoys = true;
  uint64_t pulses = 10'000'000;
  double pulse_rate_hz = 1e9;
  bool photon_number_splitting = false;
  qkd::FiniteKeyOptions finite_key;
  uint64_t seed = 1;
};

// Counts by the pulse's true photon number (what no real Alice knows).
struct PhotonNumberTruth {
  uint64_t pulses = 0;
  uint64_t detections = 0;
  uint64_t sifted = 0;
  uint64_t errors = 0;
  double yield() const { return pulses == 0 ? 0.0 : static_cast<double>(detections) / static_cast<double>(pulses); }
  double error_rate() const { return sifted == 0 ? 0.0 : static_cast<double>(errors) / static_cast<double>(sifted); }
};

struct WeakCoherentBb84Result {
  // Per intensity (signal, decoy, vacuum); without decoys only [0].
  std::array<qkd::IntensityCounts, 3> counts{};
  // Truth per photon number: 0, 1 and >= 2 photons; and single-photon
  // events per basis for Lim et al.'s bounds (s_Z,1, s_X,1, v_X,1).
  std::array<PhotonNumberTruth, 3> by_photon_number{};
  uint64_t single_photon_sifted_z = 0, single_photon_sifted_x = 0, single_photon_errors_x = 0;
  std::optional<qkd::AsymptoticDecoyEstimate> asymptotic;  // with decoys
  double asymptotic_standard_error = 0.0;                  // of its key rate, from the counts' statistics
  std::optional<qkd::FiniteKeyDecoyEstimate> finite_key;   // with decoys
  // The key rate per pulse BB84 without decoys would claim.
  double single_photon_assumption_rate = 0.0;
  // The eavesdropper: sifted signal bits (both bases) whose value she holds
  // exactly (her record has Alice's basis and bit: the key after error
  // correction is Alice's).
  uint64_t sifted_signal_bits = 0;
  uint64_t eavesdropper_known_bits = 0;
  physical::FibreChannelStats fibre;
  physical::PhotonDetectorStats detector;
  qkd::WeakCoherentLink link_model;  // the closed form's parameters for this link
  double fibre_transmittance = 0.0;
  double simulated_seconds = 0.0;  // pulses / pulse rate
  // The analytic curves at this link (qkd/decoy_state.h) and the PLOB bound,
  // per pulse.
  double analytic_rate = 0.0;
  double infinite_decoy_rate = 0.0;
  double single_photon_source_rate = 0.0;  // an ideal single-photon source instead of the laser
  double plob_bound = 0.0;
};

// `link` from its node_a (Alice) to node_b (Bob). InvalidArgument for bad
// intensities, zero pulses, or a link that fails ValidateLinkPhysics.
absl::StatusOr<WeakCoherentBb84Result> RunWeakCoherentBb84(const physical::LinkPhysics& link,
                                                           const WeakCoherentBb84Options& options);

// One pass of a satellite over a ground station (physical/satellite_channel.h),
// simulated in segments of `segment_s`: in each the channel's transmittance
// is the one at the segment's mid-point elevation, and the source sends
// source_rate_hz x segment_s pulses while the link is up (above the minimum
// elevation). The pulses go through SampleWeakCoherentThroughLoss (only the
// ones that deliver a photon are drawn: a pass sends ~10^10) and the ground
// station's detectors; the decoy estimates use the whole pass's counts.
struct SatellitePassOptions {
  WeakCoherentBb84Options bb84;  // intensities, seed, finite key (pulses and rate: from the pass and the link)
  double segment_s = 1.0;
};

struct PassSegment {
  double t_s = 0.0;  // mid-point, from culmination
  double elevation_deg = 0.0;
  double range_km = 0.0;
  double transmittance = 0.0;  // the channel's, the closed form (0 when the link is down)
  bool link_up = false;
  uint64_t pulses = 0;
  std::array<uint64_t, 3> detections{};  // per intensity
  std::array<uint64_t, 3> pulses_per_intensity{};
  uint64_t sifted = 0;
};

struct SatellitePassResult {
  std::vector<PassSegment> segments;  // horizon to horizon
  std::array<qkd::IntensityCounts, 3> counts{};
  std::optional<qkd::AsymptoticDecoyEstimate> asymptotic;
  double asymptotic_standard_error = 0.0;
  std::optional<qkd::FiniteKeyDecoyEstimate> finite_key;
  double seconds_up = 0.0;  // with the link up
  uint64_t pulses = 0;
  uint64_t sifted_bits = 0;
  double dark_count_probability = 0.0;  // per detector per gate, dark counts and background
};

// InvalidArgument for a link that fails ValidateSatelliteLink, bad
// intensities, or a segment outside (0, 60] s.
absl::StatusOr<SatellitePassResult> RunSatellitePass(const physical::SatelliteLink& link,
                                                     const SatellitePassOptions& options);

}  // namespace qnet::netsim
