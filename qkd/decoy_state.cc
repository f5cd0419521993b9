#include "qkd/decoy_state.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "qkd/binary_entropy.h"

namespace qnet::qkd {
namespace {

// Gains and error rates per intensity: observed (from counts) or expected.
struct Rates {
  std::array<double, 3> gain{};
  std::array<double, 3> error{};
};

AsymptoticDecoyEstimate AsymptoticFromRates(const DecoyIntensities& in, const Rates& r, double f) {
  const double mu = in.mean_photon_number[0];
  const double nu = in.mean_photon_number[1];
  AsymptoticDecoyEstimate e;
  e.gain_signal = r.gain[0];
  e.qber_signal = r.error[0];
  e.gain_decoy = r.gain[1];
  e.qber_decoy = r.error[1];
  e.yield_vacuum = r.gain[2];
  // The vacuum's detections are dark counts: a random bit, e_0 = 1/2 (Ma et
  // al.). Not the observed rate: a handful of sifted vacuum events give a
  // noisy one, and a larger e_0 would make e_1's bound optimistic.
  const double e0 = 0.5;
  // Eq. (34).
  e.yield_single_lower = mu / (mu * nu - nu * nu) *
                         (r.gain[1] * std::exp(nu) - r.gain[0] * std::exp(mu) * nu * nu / (mu * mu) -
                          (mu * mu - nu * nu) / (mu * mu) * e.yield_vacuum);
  e.yield_single_lower = std::max(0.0, e.yield_single_lower);
  e.error_single_upper = 0.5;
  if (e.yield_single_lower > 0.0) {
    // Eq. (37).
    e.error_single_upper = std::clamp(
        (r.error[1] * r.gain[1] * std::exp(nu) - e0 * e.yield_vacuum) / (e.yield_single_lower * nu), 0.0, 0.5);
  }
  e.gain_single_lower = e.yield_single_lower * mu * std::exp(-mu);
  e.key_rate_per_pulse =
      in.probability[0] * 0.5 *
      (-r.gain[0] * f * BinaryEntropy(r.error[0]) +
       e.gain_single_lower * (1.0 - BinaryEntropyOfUpperBound(e.error_single_upper)));
  return e;
}

// gamma(a, b, c, d) of Lim et al. eq. (A12): the sampling penalty on the
// phase error rate b estimated from d events and applied to c.
double Gamma(double a, double b, double c, double d) {
  if (!(b > 0.0 && b < 1.0) || !(c > 0.0) || !(d > 0.0)) return 0.0;
  const double inner = (c + d) / (c * d * (1.0 - b) * b) * (21.0 * 21.0) / (a * a);
  if (!(inner > 1.0)) return 0.0;
  return std::sqrt((c + d) * (1.0 - b) * b / (c * d * std::log(2.0)) * std::log2(inner));
}

}  // namespace

absl::Status ValidateDecoyIntensities(const DecoyIntensities& in) {
  const auto& m = in.mean_photon_number;
  for (int k = 0; k < 3; ++k) {
    if (!(m[k] >= 0.0 && m[k] <= 100.0)) {
      return absl::InvalidArgumentError(absl::StrCat("decoy intensity ", k, ": mean photon number ", m[k],
                                                     " is outside [0, 100]"));
    }
    if (!(in.probability[k] > 0.0 && in.probability[k] <= 1.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("decoy intensity ", k, ": probability ", in.probability[k], " must be in (0, 1]"));
    }
  }
  if (!(m[1] > m[2]) || !(m[0] > m[1] + m[2])) {
    return absl::InvalidArgumentError(absl::StrCat(
        "decoy intensities must satisfy signal > decoy + vacuum and decoy > vacuum (Lim et al. 2014); got mu = ",
        m[0], ", nu = ", m[1], ", vacuum = ", m[2]));
  }
  const double total = in.probability[0] + in.probability[1] + in.probability[2];
  if (std::abs(total - 1.0) > 1e-9) {
    return absl::InvalidArgumentError(absl::StrCat("decoy intensity probabilities sum to ", total, ", not 1"));
  }
  return absl::OkStatus();
}

double IntensityCounts::error_rate() const {
  const uint64_t sifted = sifted_z + sifted_x;
  return sifted == 0 ? 0.0 : static_cast<double>(errors_z + errors_x) / static_cast<double>(sifted);
}

absl::StatusOr<AsymptoticDecoyEstimate> EstimateAsymptotic(const DecoyIntensities& intensities,
                                                            const std::array<IntensityCounts, 3>& counts,
                                                            double error_correction_efficiency) {
  const DecoyIntensities& in = intensities;
  if (absl::Status s = ValidateDecoyIntensities(intensities); !s.ok()) return s;
  if (intensities.mean_photon_number[2] != 0.0) {
    return absl::InvalidArgumentError(
        "the asymptotic vacuum + weak decoy estimate needs the third intensity to be vacuum (0)");
  }
  Rates r;
  for (int k = 0; k < 3; ++k) {
    if (counts[k].pulses == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "no pulses were sent at decoy intensity ", k, " (", in.mean_photon_number[k],
          " photons): too few pulses in all for three intensities; send more"));
    }
    r.gain[k] = counts[k].gain();
    r.error[k] = counts[k].error_rate();
  }
  return AsymptoticFromRates(intensities, r, error_correction_efficiency);
}

double AsymptoticKeyRateStandardError(const DecoyIntensities& intensities, const std::array<IntensityCounts, 3>& counts,
                                      double error_correction_efficiency) {
  auto rate = [&](const std::array<IntensityCounts, 3>& c) {
    auto e = EstimateAsymptotic(intensities, c, error_correction_efficiency);
    return e.ok() ? e->key_rate_per_pulse : 0.0;
  };
  const double base = rate(counts);
  double variance = 0.0;
  // The derivative by a step of whole counts (at least one), times the
  // binomial standard deviation.
  auto contribution = [&](const std::array<IntensityCounts, 3>& moved, double step, double sigma) {
    return step > 0.0 ? std::pow((rate(moved) - base) / step * sigma, 2) : 0.0;
  };
  for (int k = 0; k < 3; ++k) {
    std::array<IntensityCounts, 3> moved = counts;
    const double d = static_cast<double>(counts[k].detections);
    const double n = static_cast<double>(counts[k].pulses);
    if (n > 0) {
      const double sigma = std::sqrt(d * (1.0 - d / n));
      const double step = std::max(1.0, std::round(sigma));
      moved[k].detections += static_cast<uint64_t>(step);
      variance += contribution(moved, step, sigma);
    }
    moved = counts;
    const double errors = static_cast<double>(counts[k].errors_z + counts[k].errors_x);
    const double sifted = static_cast<double>(counts[k].sifted_z + counts[k].sifted_x);
    if (sifted > 0) {
      const double sigma = std::sqrt(errors * (1.0 - errors / sifted));
      const double step = std::max(1.0, std::round(sigma));
      moved[k].errors_z += static_cast<uint64_t>(step);
      variance += contribution(moved, step, sigma);
    }
  }
  return std::sqrt(variance);
}

double SinglePhotonAssumptionKeyRate(const IntensityCounts& signal, double signal_probability,
                                     double error_correction_efficiency) {
  const double q = signal.gain();
  const double e = signal.error_rate();
  return signal_probability * 0.5 *
         (q * (1.0 - BinaryEntropy(e)) - q * error_correction_efficiency * BinaryEntropy(e));
}

absl::StatusOr<FiniteKeyDecoyEstimate> EstimateFiniteKey(const DecoyIntensities& intensities,
                                                         const std::array<IntensityCounts, 3>& counts,
                                                         const FiniteKeyOptions& options) {
  if (absl::Status s = ValidateDecoyIntensities(intensities); !s.ok()) return s;
  if (!(options.epsilon_secrecy > 0.0 && options.epsilon_secrecy < 1.0) ||
      !(options.epsilon_correctness > 0.0 && options.epsilon_correctness < 1.0)) {
    return absl::InvalidArgumentError("finite-key epsilons must be in (0, 1)");
  }
  const auto& mu = intensities.mean_photon_number;
  const auto& p = intensities.probability;
  const double log_term = std::log(21.0 / options.epsilon_secrecy);
  double tau0 = 0.0, tau1 = 0.0;
  for (int k = 0; k < 3; ++k) {
    tau0 += p[k] * std::exp(-mu[k]);
    tau1 += p[k] * std::exp(-mu[k]) * mu[k];
  }
  // Hoeffding: n^{+-}_k = e^{mu_k} / p_k (n_k +- sqrt(n / 2 ln(21 / eps_sec))), eq. (A10).
  auto bounded = [&](const std::array<double, 3>& n, double total, double sign) {
    std::array<double, 3> out{};
    const double delta = std::sqrt(total / 2.0 * log_term);
    for (int k = 0; k < 3; ++k) out[k] = std::exp(mu[k]) / p[k] * (n[k] + sign * delta);
    return out;
  };
  // s_0^- and s_1^- of one basis, eqs. (2) and (3).
  auto single_photon_events = [&](const std::array<double, 3>& n, double& s0, double& s1) {
    const double total = n[0] + n[1] + n[2];
    const auto lo = bounded(n, total, -1.0);
    const auto hi = bounded(n, total, +1.0);
    s0 = std::max(0.0, tau0 * (mu[1] * lo[2] - mu[2] * hi[1]) / (mu[1] - mu[2]));
    s1 = tau1 * mu[0] *
         (lo[1] - hi[2] - (mu[1] * mu[1] - mu[2] * mu[2]) / (mu[0] * mu[0]) * (hi[0] - s0 / tau0)) /
         (mu[0] * (mu[1] - mu[2]) - mu[1] * mu[1] + mu[2] * mu[2]);
    s1 = std::max(0.0, s1);
  };
  std::array<double, 3> nz{}, nx{}, mx{};
  double mz = 0.0;
  for (int k = 0; k < 3; ++k) {
    nz[k] = static_cast<double>(counts[k].sifted_z);
    nx[k] = static_cast<double>(counts[k].sifted_x);
    mx[k] = static_cast<double>(counts[k].errors_x);
    mz += static_cast<double>(counts[k].errors_z);
  }
  FiniteKeyDecoyEstimate e;
  double sx0 = 0.0;
  single_photon_events(nz, e.vacuum_events_z_lower, e.single_photon_events_z_lower);
  single_photon_events(nx, sx0, e.single_photon_events_x_lower);
  // v_X,1^+, eq. (4).
  const double m_total = mx[0] + mx[1] + mx[2];
  const auto m_lo = bounded(mx, m_total, -1.0);
  const auto m_hi = bounded(mx, m_total, +1.0);
  e.single_photon_errors_x_upper = std::max(0.0, tau1 * (m_hi[1] - m_lo[2]) / (mu[1] - mu[2]));
  // phi_Z^+, eq. (5).
  e.phase_error_upper = 0.5;
  if (e.single_photon_events_x_lower > 0.0 && e.single_photon_events_z_lower > 0.0) {
    const double ratio = e.single_photon_errors_x_upper / e.single_photon_events_x_lower;
    e.phase_error_upper = std::min(
        0.5, ratio + Gamma(options.epsilon_secrecy, ratio, e.single_photon_events_z_lower,
                           e.single_photon_events_x_lower));
  }
  const double n_z = nz[0] + nz[1] + nz[2];
  e.qber_z = n_z > 0.0 ? mz / n_z : 0.0;
  e.error_correction_bits = options.error_correction_bits.has_value()
                                ? *options.error_correction_bits
                                : options.error_correction_efficiency * n_z * BinaryEntropy(e.qber_z);
  e.min_entropy_bits = e.vacuum_events_z_lower +
                       e.single_photon_events_z_lower * (1.0 - BinaryEntropyOfUpperBound(e.phase_error_upper));
  e.security_bits = 6.0 * std::log2(21.0 / options.epsilon_secrecy) + std::log2(2.0 / options.epsilon_correctness);
  e.key_length_bound = e.min_entropy_bits - e.error_correction_bits - e.security_bits;
  e.key_bits = e.key_length_bound > 0.0 ? static_cast<uint64_t>(std::floor(e.key_length_bound)) : 0;
  return e;
}

ExpectedCounts ExpectedWeakCoherent(const WeakCoherentLink& link, double mu) {
  // Photons reaching the right and the wrong detector are independent
  // Poisson numbers (thinning); each detector also fires a dark count.
  const double dark_free = 1.0 - link.dark_count_probability;
  const double right = 1.0 - dark_free * std::exp(-mu * link.eta * (1.0 - link.misalignment_error));
  const double wrong = 1.0 - dark_free * std::exp(-mu * link.eta * link.misalignment_error);
  ExpectedCounts c;
  c.gain = 1.0 - (1.0 - right) * (1.0 - wrong);
  // A lone wrong click is an error, a double click a random bit.
  const double errors = wrong * (1.0 - right) + 0.5 * right * wrong;
  c.error_rate = c.gain > 0.0 ? errors / c.gain : 0.0;
  return c;
}

ExpectedCounts ExpectedSinglePhoton(const WeakCoherentLink& link) {
  const double pd = link.dark_count_probability;
  const double eta = link.eta;
  const double ed = link.misalignment_error;
  ExpectedCounts c;
  c.gain = 1.0 - (1.0 - pd) * (1.0 - pd) * (1.0 - eta);
  // Registered in the wrong detector: an error unless the right one fires a
  // dark count (then a random bit); in the right one: an error only as half
  // of a double click; lost: dark counts alone.
  const double errors = eta * ed * (1.0 - 0.5 * pd) + eta * (1.0 - ed) * 0.5 * pd +
                        (1.0 - eta) * (pd * (1.0 - pd) + 0.5 * pd * pd);
  c.error_rate = c.gain > 0.0 ? errors / c.gain : 0.0;
  return c;
}

double AnalyticDecoyKeyRate(const WeakCoherentLink& link, const DecoyIntensities& intensities,
                            double error_correction_efficiency) {
  Rates r;
  for (int k = 0; k < 3; ++k) {
    const ExpectedCounts c = ExpectedWeakCoherent(link, intensities.mean_photon_number[k]);
    r.gain[k] = c.gain;
    r.error[k] = c.error_rate;
  }
  return AsymptoticFromRates(intensities, r, error_correction_efficiency).key_rate_per_pulse;
}

double InfiniteDecoyKeyRate(const WeakCoherentLink& link, const DecoyIntensities& intensities,
                            double error_correction_efficiency) {
  const double mu = intensities.mean_photon_number[0];
  const ExpectedCounts signal = ExpectedWeakCoherent(link, mu);
  const ExpectedCounts single = ExpectedSinglePhoton(link);
  const double q1 = single.gain * mu * std::exp(-mu);
  return intensities.probability[0] * 0.5 *
         (-signal.gain * error_correction_efficiency * BinaryEntropy(signal.error_rate) +
          q1 * (1.0 - BinaryEntropy(single.error_rate)));
}

double SinglePhotonSourceKeyRate(const WeakCoherentLink& link, double error_correction_efficiency) {
  const ExpectedCounts single = ExpectedSinglePhoton(link);
  const double h = BinaryEntropy(single.error_rate);
  return 0.5 * single.gain * (1.0 - h - error_correction_efficiency * h);
}

}  // namespace qnet::qkd
