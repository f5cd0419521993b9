#include "physical/prepare_measure.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "physical/heralding_model.h"

namespace qnet::physical {
namespace {

absl::Status RequireInRange(double value, double lo, double hi, const std::string& who, const char* field) {
  if (value >= lo && value <= hi) return absl::OkStatus();  // false for NaN
  return absl::InvalidArgumentError(
      absl::StrCat(who, ": ", field, " = ", value, " is outside [", lo, ", ", hi, "]"));
}

absl::Status RequireNonNegativeFinite(double value, const std::string& who, const char* field) {
  if (value >= 0.0 && std::isfinite(value)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(who, ": ", field, " = ", value, " must be a finite number >= 0"));
}

double FibreTransmittance(double attenuation_db_per_km, double length_km) {
  return std::pow(10.0, -attenuation_db_per_km * length_km / 10.0);
}

// Born rule for a projective polarisation measurement: outcome 0 is the +1
// eigenstate of the basis' Pauli operator, P(0) = (1 + r . n) / 2.
uint8_t SampleOutcome(const BlochVector& r, uint8_t basis, Rng& rng) {
  const double component = basis == kPolarisationBasisZ ? r.z : r.x;
  return rng.Uniform() < 0.5 * (1.0 + component) ? 0 : 1;
}

}  // namespace

BlochVector PreparedPolarisation(uint8_t basis, uint8_t bit) {
  const double sign = bit == 0 ? 1.0 : -1.0;
  if (basis == kPolarisationBasisZ) return {0.0, 0.0, sign};
  return {sign, 0.0, 0.0};
}

// ---- PhotonSource ----

absl::StatusOr<PhotonSource> PhotonSource::Create(double repetition_rate_hz, Rng rng) {
  if (!(repetition_rate_hz > 0.0 && std::isfinite(repetition_rate_hz))) {
    return absl::InvalidArgumentError(absl::StrCat("photon source: repetition_rate_hz = ", repetition_rate_hz,
                                                   " must be a positive, finite pulse rate"));
  }
  return PhotonSource(repetition_rate_hz, {}, rng);
}

absl::StatusOr<PhotonSource> PhotonSource::CreateWeakCoherent(double repetition_rate_hz,
                                                             std::vector<PulseIntensity> intensities, Rng rng) {
  QNET_ASSIGN_OR_RETURN(PhotonSource source, Create(repetition_rate_hz, rng));
  if (intensities.empty()) {
    return absl::InvalidArgumentError("weak coherent source: needs 1 to 8 intensities, got 0");
  }
  QNET_RETURN_IF_ERROR(source.SetIntensities(std::move(intensities)));
  return source;
}

absl::Status PhotonSource::SetIntensities(std::vector<PulseIntensity> intensities) {
  const std::string kWho = "weak coherent source";
  if (intensities.size() > 8) {
    return absl::InvalidArgumentError(absl::StrCat(kWho, ": needs 1 to 8 intensities, got ", intensities.size()));
  }
  double total = 0.0;
  for (size_t k = 0; k < intensities.size(); ++k) {
    const std::string who = absl::StrCat(kWho, " intensity ", k);
    QNET_RETURN_IF_ERROR(RequireInRange(intensities[k].mean_photon_number, 0.0, 100.0, who, "mean_photon_number"));
    if (!(intensities[k].probability > 0.0 && intensities[k].probability <= 1.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat(who, ": probability = ", intensities[k].probability, " must be in (0, 1]"));
    }
    total += intensities[k].probability;
  }
  if (!intensities.empty() && std::abs(total - 1.0) > 1e-9) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWho, ": the intensities' probabilities sum to ", total, ", not 1"));
  }
  intensities_ = std::move(intensities);
  return absl::OkStatus();
}

namespace {

// Poisson(mean) by inversion of the CDF: exact, and cheap for the small means
// (< 1 photon) of QKD sources.
uint32_t SamplePoisson(double mean, Rng& rng) {
  if (mean <= 0.0) return 0;
  const double u = rng.Uniform();
  double p = std::exp(-mean);
  double cdf = p;
  uint32_t n = 0;
  while (u >= cdf && n < 100000) {
    ++n;
    p *= mean / n;
    cdf += p;
    if (p == 0.0 && cdf < u) break;  // rounding left the CDF short of 1: u is in the far tail
  }
  return n;
}

}  // namespace

std::vector<PreparedPulse> PhotonSource::EmitBatch(size_t count) {
  std::vector<PreparedPulse> pulses;
  pulses.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    // One uniform draw of 2 bits: basis and bit, independent and uniform.
    const uint64_t choice = rng_.UniformInt(4);
    PreparedPulse pulse{next_pulse_id_++, static_cast<uint8_t>(choice >> 1), static_cast<uint8_t>(choice & 1)};
    if (!intensities_.empty()) {
      // The intensity, then the photon number it gives; a single-photon
      // source draws neither, so its stream is what it always was.
      size_t k = 0;
      if (intensities_.size() > 1) {
        double u = rng_.Uniform();
        while (k + 1 < intensities_.size() && u >= intensities_[k].probability) u -= intensities_[k++].probability;
      }
      pulse.intensity = static_cast<uint8_t>(k);
      pulse.photon_number = SamplePoisson(intensities_[k].mean_photon_number, rng_);
    }
    pulses.push_back(pulse);
  }
  return pulses;
}

Duration PhotonSource::pulse_period() const { return FromSeconds(1.0 / repetition_rate_hz_); }

Duration PhotonSource::EmissionOffset(uint64_t pulse_id) const {
  return FromSeconds(static_cast<double>(pulse_id) / repetition_rate_hz_);
}

uint64_t SampleBinomial(uint64_t n, double p, Rng& rng) {
  if (n == 0 || !(p > 0.0)) return 0;
  if (p >= 1.0) return n;
  if (p > 0.5) return n - SampleBinomial(n, 1.0 - p, rng);
  const double mean = static_cast<double>(n) * p;
  if (mean < 1e4) {
    // Positions of the successes among n trials: geometric gaps.
    uint64_t successes = 0;
    uint64_t position = 0;
    while (true) {
      const uint64_t gap = rng.Geometric(p);
      if (gap > n - position) break;
      position += gap;
      ++successes;
    }
    return successes;
  }
  const double x = std::round(mean + std::sqrt(mean * (1.0 - p)) * rng.Normal());
  return static_cast<uint64_t>(std::clamp(x, 0.0, static_cast<double>(n)));
}

namespace {

// Poisson(mean) conditioned on at least one, by inversion.
uint32_t SampleZeroTruncatedPoisson(double mean, Rng& rng) {
  const double norm = -std::expm1(-mean);
  const double u = rng.Uniform() * norm;
  double p = std::exp(-mean) * mean;  // P(1)
  double cdf = p;
  uint32_t n = 1;
  while (u >= cdf && n < 100000) {
    ++n;
    p *= mean / n;
    cdf += p;
    if (p == 0.0) break;
  }
  return n;
}

}  // namespace

absl::StatusOr<LossyChannelSample> SampleWeakCoherentThroughLoss(const std::vector<PulseIntensity>& intensities,
                                                                 uint64_t first_pulse_id, uint64_t pulses,
                                                                 double transmittance, double misalignment_error,
                                                                 Rng& rng) {
  const std::string kWho = "lossy channel";
  if (intensities.empty()) return absl::InvalidArgumentError(absl::StrCat(kWho, ": no intensities"));
  QNET_RETURN_IF_ERROR(RequireInRange(transmittance, 0.0, 1.0, kWho, "transmittance"));
  QNET_RETURN_IF_ERROR(RequireInRange(misalignment_error, 0.0, 0.5, kWho, "misalignment_error"));
  const size_t k_count = intensities.size();
  std::vector<double> deliver(k_count), weight(k_count);
  double q = 0.0;
  for (size_t k = 0; k < k_count; ++k) {
    deliver[k] = -std::expm1(-intensities[k].mean_photon_number * transmittance);
    weight[k] = intensities[k].probability * deliver[k];
    q += weight[k];
  }
  LossyChannelSample out;
  out.pulses_per_intensity.assign(k_count, 0);
  out.to_receiver.first_pulse_id = first_pulse_id;
  out.to_receiver.num_pulses = pulses;
  const double shrink = 1.0 - 2.0 * misalignment_error;
  if (q > 0.0) {
    uint64_t position = 0;  // pulses before the next candidate
    while (true) {
      const uint64_t gap = rng.Geometric(std::min(1.0, q));
      if (gap > pulses - position) break;
      position += gap;
      double u = rng.Uniform() * q;
      size_t k = 0;
      while (k + 1 < k_count && u >= weight[k]) u -= weight[k++];
      const double mu = intensities[k].mean_photon_number;
      const uint32_t arriving = SampleZeroTruncatedPoisson(mu * transmittance, rng);
      const uint32_t lost = SamplePoisson(mu * (1.0 - transmittance), rng);
      const uint64_t choice = rng.UniformInt(4);
      PreparedPulse pulse{first_pulse_id + position - 1, static_cast<uint8_t>(choice >> 1),
                          static_cast<uint8_t>(choice & 1), static_cast<uint8_t>(k), arriving + lost};
      BlochVector r = PreparedPolarisation(pulse.basis, pulse.bit);
      r.x *= shrink;
      r.y *= shrink;
      r.z *= shrink;
      out.to_receiver.photons.push_back({pulse.pulse_id, r, arriving});
      out.delivering.push_back(pulse);
      ++out.pulses_per_intensity[k];
    }
  }
  // The rest delivered nothing: split them over the intensities.
  uint64_t rest = pulses - out.delivering.size();
  double mass = 1.0 - q;
  for (size_t k = 0; k < k_count; ++k) {
    const double share = intensities[k].probability * (1.0 - deliver[k]);
    const uint64_t n = k + 1 == k_count ? rest : SampleBinomial(rest, mass > 0.0 ? std::min(1.0, share / mass) : 0.0, rng);
    out.pulses_per_intensity[k] += n;
    rest -= n;
    mass -= share;
  }
  return out;
}

// ---- FibreChannel ----

absl::StatusOr<FibreChannelParams> FibreChannelParamsFromLink(const LinkPhysics& link,
                                                              double eavesdropper_fraction) {
  QNET_RETURN_IF_ERROR(ValidateLinkPhysics(link));
  const std::string who = link.name.empty() ? "link" : absl::StrCat("link ", link.name);
  QNET_RETURN_IF_ERROR(RequireInRange(eavesdropper_fraction, 0.0, 1.0, who, "eavesdropper_fraction"));
  FibreChannelParams params;
  params.length_km = link.length_km;
  params.attenuation_db_per_km = link.attenuation_db_per_km;
  params.misalignment_error = 0.5 * (1.0 - link.visibility);
  params.eavesdropper_fraction = eavesdropper_fraction;
  return params;
}

absl::StatusOr<FibreChannel> FibreChannel::Create(const FibreChannelParams& params, Rng rng) {
  const std::string kWho = "fibre channel";
  QNET_RETURN_IF_ERROR(RequireNonNegativeFinite(params.length_km, kWho, "length_km"));
  QNET_RETURN_IF_ERROR(RequireNonNegativeFinite(params.attenuation_db_per_km, kWho, "attenuation_db_per_km"));
  QNET_RETURN_IF_ERROR(RequireInRange(params.misalignment_error, 0.0, 0.5, kWho, "misalignment_error"));
  QNET_RETURN_IF_ERROR(RequireInRange(params.eavesdropper_fraction, 0.0, 1.0, kWho, "eavesdropper_fraction"));
  QNET_RETURN_IF_ERROR(RequireInRange(params.eavesdropper_position, 0.0, 1.0, kWho, "eavesdropper_position"));
  QNET_RETURN_IF_ERROR(RequireInRange(params.pns_forward_probability, 0.0, 1.0, kWho, "pns_forward_probability"));
  if (params.photon_number_splitting && (params.eavesdropper_position != 0.0 || params.eavesdropper_fraction != 0.0)) {
    return absl::InvalidArgumentError(
        "fibre channel: the photon-number-splitting eavesdropper sits at the sender's output "
        "(eavesdropper_position 0) and replaces intercept-resend (eavesdropper_fraction 0)");
  }
  return FibreChannel(params, rng);
}

absl::Status FibreChannel::SetEavesdropperFraction(double fraction) {
  QNET_RETURN_IF_ERROR(RequireInRange(fraction, 0.0, 1.0, "fibre channel", "eavesdropper_fraction"));
  params_.eavesdropper_fraction = fraction;
  return absl::OkStatus();
}

absl::Status FibreChannel::SetPhotonNumberSplitting(bool enabled, double forward_probability) {
  QNET_RETURN_IF_ERROR(RequireInRange(forward_probability, 0.0, 1.0, "fibre channel", "pns_forward_probability"));
  if (enabled && (params_.eavesdropper_fraction > 0.0 || params_.eavesdropper_position > 0.0)) {
    return absl::FailedPreconditionError(
        "fibre channel: photon-number splitting needs Eve at Alice's output and no intercept-resend "
        "(set the eavesdropper fraction to 0 first)");
  }
  params_.photon_number_splitting = enabled;
  params_.pns_forward_probability = forward_probability;
  return absl::OkStatus();
}

double PnsForwardProbability(double mu, double transmittance, double detector_efficiency) {
  const double honest = -std::expm1(-mu * transmittance * detector_efficiency);
  const double forwarded = detector_efficiency * (-std::expm1(-mu) - mu * std::exp(-mu));
  if (!(forwarded > 0.0)) return 1.0;
  return std::min(1.0, honest / forwarded);
}

double FibreChannel::transmittance() const {
  return FibreTransmittance(params_.attenuation_db_per_km, params_.length_km);
}

absl::StatusOr<FibreChannel::Output> FibreChannel::Transmit(std::span<const PreparedPulse> pulses) {
  Output out;
  if (pulses.empty()) return out;
  const uint64_t first = pulses.front().pulse_id;
  if (first + (pulses.size() - 1) < first) {
    return absl::InvalidArgumentError(absl::StrCat("fibre channel: a batch of ", pulses.size(),
                                                   " pulses from id ", first, " overflows the pulse ids"));
  }
  for (size_t i = 0; i < pulses.size(); ++i) {
    const PreparedPulse& p = pulses[i];
    if (p.pulse_id != first + i) {
      return absl::InvalidArgumentError(absl::StrCat(
          "fibre channel: pulse ids of a batch must be consecutive; expected ", first + i, " at position ", i,
          ", got ", p.pulse_id, " (send a gap as separate batches)"));
    }
    if (p.basis > 1 || p.bit > 1) {
      return absl::InvalidArgumentError(absl::StrCat("fibre channel: pulse ", p.pulse_id, " has basis ",
                                                     int{p.basis}, " and bit ", int{p.bit}, "; both must be 0 or 1"));
    }
  }

  const double before_eve = params_.length_km * params_.eavesdropper_position;
  const double transmit_to_eve = FibreTransmittance(params_.attenuation_db_per_km, before_eve);
  const double transmit_from_eve =
      FibreTransmittance(params_.attenuation_db_per_km, params_.length_km - before_eve);
  const double shrink = 1.0 - 2.0 * params_.misalignment_error;
  const double x = params_.eavesdropper_fraction;

  out.to_receiver.first_pulse_id = first;
  out.to_receiver.num_pulses = pulses.size();
  // Photons of one pulse are lost independently. A single photon costs one
  // coin, as it always has, so single-photon runs keep their random streams.
  auto survivors = [&](uint32_t photons, double transmittance) {
    if (photons == 1) return rng_.Bernoulli(transmittance) ? 1u : 0u;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < photons; ++i) kept += rng_.Bernoulli(transmittance) ? 1 : 0;
    return kept;
  };
  auto misalign = [&](BlochVector r) {
    // The channel rho -> (1 - 2 e_d) rho + 2 e_d I/2.
    r.x *= shrink;
    r.y *= shrink;
    r.z *= shrink;
    return r;
  };
  for (const PreparedPulse& p : pulses) {
    ++stats_.pulses_in;
    if (params_.photon_number_splitting) {
      if (p.photon_number == 0) continue;
      ++stats_.pulses_reaching_eavesdropper;
      if (p.photon_number == 1) {
        ++stats_.pulses_blocked;
        continue;
      }
      // She keeps one photon, in Alice's state, and measures it in the basis
      // Alice announces later: a pure eigenstate of that basis gives Alice's
      // bit every time (Born rule, sampled all the same).
      ++stats_.pulses_intercepted;
      const BlochVector prepared = PreparedPolarisation(p.basis, p.bit);
      out.intercepted.push_back({p.pulse_id, p.basis, SampleOutcome(prepared, p.basis, rng_)});
      if (!rng_.Bernoulli(params_.pns_forward_probability)) {
        ++stats_.pulses_blocked;
        continue;
      }
      out.to_receiver.photons.push_back({p.pulse_id, misalign(prepared), 1});
      ++stats_.photons_out;
      continue;
    }
    uint32_t photons = survivors(p.photon_number, transmit_to_eve);
    if (photons == 0) continue;
    ++stats_.pulses_reaching_eavesdropper;
    BlochVector r = PreparedPolarisation(p.basis, p.bit);
    if (x > 0.0 && rng_.Bernoulli(x)) {
      // Intercept-resend: Eve measures the photon's actual state and sends on
      // a fresh photon in the eigenstate she found.
      ++stats_.pulses_intercepted;
      const auto eve_basis = static_cast<uint8_t>(rng_.UniformInt(2));
      const uint8_t eve_bit = SampleOutcome(r, eve_basis, rng_);
      out.intercepted.push_back({p.pulse_id, eve_basis, eve_bit});
      r = PreparedPolarisation(eve_basis, eve_bit);
      photons = 1;
    }
    photons = survivors(photons, transmit_from_eve);
    if (photons == 0) continue;
    out.to_receiver.photons.push_back({p.pulse_id, misalign(r), photons});
    ++stats_.photons_out;
  }
  return out;
}

// ---- PhotonDetector ----

absl::StatusOr<PhotonDetectorParams> PhotonDetectorParamsFromLink(const LinkPhysics& link) {
  QNET_RETURN_IF_ERROR(ValidateLinkPhysics(link));
  return PhotonDetectorParams{link.detector_efficiency, DarkCountProbability(link)};
}

PhotonDetector::PhotonDetector(const PhotonDetectorParams& params, Rng rng)
    : params_(params),
      measurement_rng_(rng.Fork("measurement")),
      dark_rng_{rng.Fork("dark-count-0"), rng.Fork("dark-count-1")} {}

absl::StatusOr<PhotonDetector> PhotonDetector::Create(const PhotonDetectorParams& params, Rng rng) {
  const std::string kWho = "photon detector";
  QNET_RETURN_IF_ERROR(RequireInRange(params.efficiency, 0.0, 1.0, kWho, "efficiency"));
  QNET_RETURN_IF_ERROR(RequireInRange(params.dark_count_probability, 0.0, 1.0, kWho, "dark_count_probability"));
  return PhotonDetector(params, rng);
}

absl::StatusOr<std::vector<MeasuredPulse>> PhotonDetector::Detect(const PhotonBatch& batch) {
  const uint64_t first = batch.first_pulse_id;
  const uint64_t n = batch.num_pulses;
  if (n > 0 && first + (n - 1) < first) {
    return absl::InvalidArgumentError(
        absl::StrCat("photon detector: a batch of ", n, " gates from id ", first, " overflows the pulse ids"));
  }
  for (size_t i = 0; i < batch.photons.size(); ++i) {
    const PhotonBatch::Photon& photon = batch.photons[i];
    if (photon.pulse_id < first || photon.pulse_id - first >= n) {
      return absl::InvalidArgumentError(absl::StrCat("photon detector: photon of pulse ", photon.pulse_id,
                                                     " is outside the batch's gates [", first, ", ", first + n,
                                                     ")"));
    }
    if (i > 0 && photon.pulse_id <= batch.photons[i - 1].pulse_id) {
      return absl::InvalidArgumentError(absl::StrCat("photon detector: photon pulse ids must increase; ",
                                                     photon.pulse_id, " follows ",
                                                     batch.photons[i - 1].pulse_id));
    }
    if (photon.count == 0 || photon.count > 100000) {
      return absl::InvalidArgumentError(absl::StrCat("photon detector: pulse ", photon.pulse_id, " carries ",
                                                     photon.count, " photons; a pulse carries 1 to 100000"));
    }
    const BlochVector& r = photon.polarisation;
    const double norm2 = r.x * r.x + r.y * r.y + r.z * r.z;
    if (!(norm2 <= 1.0 + 1e-9)) {  // also rejects NaN
      return absl::InvalidArgumentError(absl::StrCat("photon detector: photon of pulse ", photon.pulse_id,
                                                     " has Bloch vector (", r.x, ", ", r.y, ", ", r.z,
                                                     "), which is not a state (length must be <= 1)"));
    }
  }

  // Dark counts are a Bernoulli(p_d) process over gates, per detector: draw
  // the gaps between them (geometric) rather than one coin per gate, so a long
  // link's mostly empty gates cost nothing. Restarting at each batch is exact
  // (the process is memoryless).
  std::vector<uint64_t> dark_gates[2];
  const double p_dark = params_.dark_count_probability;
  if (p_dark > 0.0) {
    for (int d = 0; d < 2; ++d) {
      uint64_t gate = dark_rng_[d].Geometric(p_dark) - 1;
      while (gate < n) {
        dark_gates[d].push_back(gate);
        const uint64_t gap = dark_rng_[d].Geometric(p_dark);
        if (gap >= n - gate) break;
        gate += gap;
      }
    }
  }

  std::vector<MeasuredPulse> records;
  size_t next_photon = 0;
  size_t next_dark[2] = {0, 0};
  constexpr uint64_t kNone = ~uint64_t{0};
  auto next_gate_of = [&](const std::vector<uint64_t>& gates, size_t index) {
    return index < gates.size() ? gates[index] : kNone;
  };
  while (true) {
    const uint64_t photon_gate =
        next_photon < batch.photons.size() ? batch.photons[next_photon].pulse_id - first : kNone;
    const uint64_t dark0 = next_gate_of(dark_gates[0], next_dark[0]);
    const uint64_t dark1 = next_gate_of(dark_gates[1], next_dark[1]);
    const uint64_t gate = std::min({photon_gate, dark0, dark1});
    if (gate == kNone) break;

    const auto basis = static_cast<uint8_t>(measurement_rng_.UniformInt(2));
    bool click[2] = {false, false};
    if (photon_gate == gate) {
      // Each photon of the pulse is registered or not, and goes to its own
      // Born-rule outcome: a multi-photon pulse can click both detectors.
      const PhotonBatch::Photon& photon = batch.photons[next_photon];
      for (uint32_t i = 0; i < photon.count; ++i) {
        ++stats_.photons_arrived;
        if (measurement_rng_.Bernoulli(params_.efficiency)) {
          click[SampleOutcome(photon.polarisation, basis, measurement_rng_)] = true;
        }
      }
      ++next_photon;
    }
    for (int d = 0; d < 2; ++d) {
      if (next_gate_of(dark_gates[d], next_dark[d]) == gate) {
        click[d] = true;
        ++next_dark[d];
      }
    }
    if (!click[0] && !click[1]) continue;
    uint8_t bit = click[0] ? 0 : 1;
    if (click[0] && click[1]) {
      // Squashing: a double click becomes a uniformly random bit.
      ++stats_.double_clicks;
      bit = static_cast<uint8_t>(measurement_rng_.UniformInt(2));
    }
    ++stats_.detections;
    records.push_back({first + gate, basis, bit});
  }
  stats_.gates += n;
  return records;
}

}  // namespace qnet::physical
