// Decoy-state analysis for BB84 with weak coherent pulses: from the gains and
// error rates Alice and Bob observe at each pulse intensity, bounds on what
// the single-photon pulses alone gave (their yield Y1 and error e1), which is
// the only part of the key an eavesdropper splitting photons off
// multi-photon pulses cannot know, and the key length those bounds allow.
//
// Two estimators, both for one signal, one weak decoy and one vacuum (or
// weak) intensity:
//  - asymptotic: the vacuum + weak decoy bounds of Ma, Qi, Zhao and Lo,
//    "Practical decoy state for quantum key distribution", PRA 72, 012326
//    (2005), eqs. (34)-(37) (the decoy method of Lo, Ma and Chen, PRL 94,
//    230504 (2005)), in the GLLP key rate
//    R = q [-Q_mu f h(E_mu) + Q_1 (1 - h(e_1))] (Gottesman, Lo, Lutkenhaus,
//    Preskill, QIC 4, 325 (2004));
//  - finite key: Lim, Curty, Walenta, Xu and Zbinden, "Concise security
//    bounds for practical decoy-state quantum key distribution", PRA 89,
//    022307 (2014), eqs. (2)-(5) and (A10)-(A12): Hoeffding bounds on the
//    counts per intensity, key from the Z basis, phase errors estimated in X.
// Everything here is arithmetic on counts (no qubits, no I/O); the photons
// come from physical/prepare_measure.h.
#pragma once

#include <array>
#include <optional>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace qnet::qkd {

// The three intensities in Lim et al.'s order: signal mu_1 > decoy mu_2 >
// vacuum mu_3 >= 0 with mu_1 > mu_2 + mu_3, each with the probability Alice
// picks it.
struct DecoyIntensities {
  std::array<double, 3> mean_photon_number{0.5, 0.1, 0.0};
  std::array<double, 3> probability{0.8, 0.1, 0.1};
};
// InvalidArgument unless the order above holds, probabilities are in (0, 1]
// and sum to 1.
absl::Status ValidateDecoyIntensities(const DecoyIntensities& intensities);

// What Alice and Bob observed at one intensity, after sifting (Alice's
// intensity and basis announcements, Bob's detections and bases).
struct IntensityCounts {
  uint64_t pulses = 0;      // Alice sent at this intensity
  uint64_t detections = 0;  // Bob clicked, in any basis
  // Detections in which both used Z (X), and how many of those bits differ.
  uint64_t sifted_z = 0, errors_z = 0;
  uint64_t sifted_x = 0, errors_x = 0;
  double gain() const { return pulses == 0 ? 0.0 : static_cast<double>(detections) / static_cast<double>(pulses); }
  // Over both bases.
  double error_rate() const;
};

// The asymptotic vacuum + weak decoy estimate (Ma et al. 2005).
struct AsymptoticDecoyEstimate {
  double gain_signal = 0.0, qber_signal = 0.0;  // Q_mu, E_mu
  double gain_decoy = 0.0, qber_decoy = 0.0;    // Q_nu, E_nu
  double yield_vacuum = 0.0;                    // Y_0 (the vacuum gain)
  double yield_single_lower = 0.0;              // Y_1^L, eq. (34)
  double error_single_upper = 0.0;              // e_1^U, eq. (37), capped at 1/2
  double gain_single_lower = 0.0;               // Q_1^L = Y_1^L mu e^-mu
  // GLLP, per pulse Alice sends (any intensity): p_mu q [-Q_mu f h(E_mu) +
  // Q_1^L (1 - h(e_1^U))] with q = 1/2 for uniform bases; may be negative
  // (no key).
  double key_rate_per_pulse = 0.0;
};
// Needs the third intensity to be vacuum (0): that is the estimator's Y_0.
// InvalidArgument for invalid intensities or no pulses at some intensity.
absl::StatusOr<AsymptoticDecoyEstimate> EstimateAsymptotic(const DecoyIntensities& intensities,
                                                            const std::array<IntensityCounts, 3>& counts,
                                                            double error_correction_efficiency);

// The statistical standard error of EstimateAsymptotic's key rate, by the
// delta method: each intensity's detections and errors moved by one
// binomial standard deviation, the changes in the rate added in quadrature.
// The asymptotic formulas applied to finite counts are an estimate, not a
// bound: this says how far the counts alone may move it.
double AsymptoticKeyRateStandardError(const DecoyIntensities& intensities, const std::array<IntensityCounts, 3>& counts,
                                      double error_correction_efficiency);

// The same key rate for a single-photon analysis of the signal pulses alone
// (no decoys): every detection is taken for a single photon, Y_1 = Q_mu,
// e_1 = E_mu. What BB84 without decoys claims; wrong for a laser source.
double SinglePhotonAssumptionKeyRate(const IntensityCounts& signal, double signal_probability,
                                     double error_correction_efficiency);

struct FiniteKeyOptions {
  double epsilon_secrecy = 1e-9;     // eps_sec
  double epsilon_correctness = 1e-15;  // eps_cor
  double error_correction_efficiency = 1.16;  // f of lambda_EC = f n_Z h(E_Z)
  // Set when a real run measured it (the bits its error correction and
  // verification disclosed): used as lambda_EC instead of f n_Z h(E_Z).
  std::optional<double> error_correction_bits;
};

// Lim et al. 2014's bounds and key length.
struct FiniteKeyDecoyEstimate {
  double vacuum_events_z_lower = 0.0;         // s_Z,0^-
  double single_photon_events_z_lower = 0.0;  // s_Z,1^-
  double single_photon_events_x_lower = 0.0;  // s_X,1^-
  double single_photon_errors_x_upper = 0.0;  // v_X,1^+
  double phase_error_upper = 0.0;             // phi_Z^+, capped at 1/2
  double qber_z = 0.0;                        // E_Z observed
  double error_correction_bits = 0.0;         // lambda_EC
  double min_entropy_bits = 0.0;              // s_Z0 + s_Z1 (1 - h(phi_Z))
  double security_bits = 0.0;                 // 6 log2(21/eps_sec) + log2(2/eps_cor)
  // floor(min_entropy_bits - lambda_EC - security_bits), 0 when negative
  // (abort: no secret key).
  uint64_t key_bits = 0;
  double key_length_bound = 0.0;  // the same before the floor at 0
};
absl::StatusOr<FiniteKeyDecoyEstimate> EstimateFiniteKey(const DecoyIntensities& intensities,
                                                         const std::array<IntensityCounts, 3>& counts,
                                                         const FiniteKeyOptions& options);

// The closed form of what the simulated link gives (physical/prepare_measure.h
// exactly: Poisson photon numbers, each photon lost, registered with the
// detector efficiency and flipped by misalignment independently, two
// threshold detectors with dark-count probability p_d per gate each, double
// clicks squashed to a random bit). eta = fibre transmittance x detector
// efficiency.
struct WeakCoherentLink {
  double eta = 1.0;
  double dark_count_probability = 0.0;  // per detector per gate
  double misalignment_error = 0.0;      // e_d
};
// Expected gain Q_mu = 1 - (1 - p_d)^2 e^(-eta mu) and error rate E_mu.
struct ExpectedCounts {
  double gain = 0.0;
  double error_rate = 0.0;
};
ExpectedCounts ExpectedWeakCoherent(const WeakCoherentLink& link, double mu);
// The true single-photon yield and error rate of the same link.
ExpectedCounts ExpectedSinglePhoton(const WeakCoherentLink& link);
// The analytic curves drawn against simulated points:
//  - the vacuum + weak estimator on the expected gains and errors
//    (EstimateAsymptotic on exact counts: what the simulation should give
//    with infinitely many pulses);
//  - GLLP with the true Y_1 and e_1 (infinitely many decoys).
double AnalyticDecoyKeyRate(const WeakCoherentLink& link, const DecoyIntensities& intensities,
                            double error_correction_efficiency);
double InfiniteDecoyKeyRate(const WeakCoherentLink& link, const DecoyIntensities& intensities,
                            double error_correction_efficiency);
// BB84 from an ideal single-photon source (one photon per pulse) over the
// same link: (1/2) Y_1 [1 - h(e_1) - f h(e_1)] per pulse, what decoys strive
// for with a laser.
double SinglePhotonSourceKeyRate(const WeakCoherentLink& link, double error_correction_efficiency);

}  // namespace qnet::qkd
