#include "netsim/decoy_experiment.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/rng.h"
#include "core/status.h"
#include "netsim/sweep.h"

namespace qnet::netsim {

absl::StatusOr<WeakCoherentBb84Result> RunWeakCoherentBb84(const physical::LinkPhysics& link,
                                                           const WeakCoherentBb84Options& options) {
  if (options.pulses == 0) return absl::InvalidArgumentError("weak coherent BB84 needs at least one pulse");
  if (options.decoys) QNET_RETURN_IF_ERROR(qkd::ValidateDecoyIntensities(options.intensities));
  std::vector<physical::PulseIntensity> intensities;
  const int classes = options.decoys ? 3 : 1;
  for (int k = 0; k < classes; ++k) {
    intensities.push_back({options.intensities.mean_photon_number[k],
                           options.decoys ? options.intensities.probability[k] : 1.0});
  }
  QNET_ASSIGN_OR_RETURN(physical::FibreChannelParams fibre_params, physical::FibreChannelParamsFromLink(link, 0.0));
  QNET_ASSIGN_OR_RETURN(physical::PhotonDetectorParams detector_params, physical::PhotonDetectorParamsFromLink(link));

  WeakCoherentBb84Result result;
  result.fibre_transmittance = FibreTransmittance(link);
  if (options.photon_number_splitting) {
    // Eve matches the click rate of the intensity she sees most: the signal.
    fibre_params.photon_number_splitting = true;
    fibre_params.pns_forward_probability =
        physical::PnsForwardProbability(options.intensities.mean_photon_number[0], result.fibre_transmittance,
                                        detector_params.efficiency);
  }
  const Rng root(options.seed);
  QNET_ASSIGN_OR_RETURN(physical::PhotonSource source,
                        physical::PhotonSource::CreateWeakCoherent(options.pulse_rate_hz, std::move(intensities),
                                                                  root.Fork("wcp-source")));
  QNET_ASSIGN_OR_RETURN(physical::FibreChannel fibre, physical::FibreChannel::Create(fibre_params, root.Fork("fibre")));
  QNET_ASSIGN_OR_RETURN(physical::PhotonDetector detector,
                        physical::PhotonDetector::Create(detector_params, root.Fork("detector")));

  constexpr uint64_t kBatch = 1 << 16;
  for (uint64_t sent = 0; sent < options.pulses; sent += kBatch) {
    const auto count = static_cast<size_t>(std::min<uint64_t>(kBatch, options.pulses - sent));
    const std::vector<physical::PreparedPulse> prepared = source.EmitBatch(count);
    QNET_ASSIGN_OR_RETURN(physical::FibreChannel::Output out, fibre.Transmit(prepared));
    QNET_ASSIGN_OR_RETURN(std::vector<physical::MeasuredPulse> detections, detector.Detect(out.to_receiver));
    const uint64_t first = prepared.front().pulse_id;
    for (const physical::PreparedPulse& p : prepared) {
      ++result.counts[p.intensity].pulses;
      ++result.by_photon_number[std::min<uint32_t>(p.photon_number, 2)].pulses;
    }
    size_t next_intercept = 0;
    for (const physical::MeasuredPulse& d : detections) {
      const physical::PreparedPulse& a = prepared[d.pulse_id - first];
      qkd::IntensityCounts& c = result.counts[a.intensity];
      PhotonNumberTruth& truth = result.by_photon_number[std::min<uint32_t>(a.photon_number, 2)];
      ++c.detections;
      ++truth.detections;
      if (d.basis != a.basis) continue;  // sifted away
      const bool error = d.bit != a.bit;
      ++truth.sifted;
      truth.errors += error ? 1 : 0;
      if (a.basis == physical::kPolarisationBasisZ) {
        ++c.sifted_z;
        c.errors_z += error ? 1 : 0;
      } else {
        ++c.sifted_x;
        c.errors_x += error ? 1 : 0;
      }
      if (a.photon_number == 1) {
        if (a.basis == physical::kPolarisationBasisZ) {
          ++result.single_photon_sifted_z;
        } else {
          ++result.single_photon_sifted_x;
          result.single_photon_errors_x += error ? 1 : 0;
        }
      }
      if (a.intensity == 0) {
        ++result.sifted_signal_bits;
        // Eve's record of this pulse, if she has one (both lists increase).
        while (next_intercept < out.intercepted.size() && out.intercepted[next_intercept].pulse_id < d.pulse_id) {
          ++next_intercept;
        }
        if (next_intercept < out.intercepted.size() && out.intercepted[next_intercept].pulse_id == d.pulse_id) {
          const physical::MeasuredPulse& eve = out.intercepted[next_intercept];
          // The key is Alice's bits once errors are corrected.
          if (eve.basis == a.basis && eve.bit == a.bit) ++result.eavesdropper_known_bits;
        }
      }
    }
  }
  result.fibre = fibre.stats();
  result.detector = detector.stats();
  result.simulated_seconds = static_cast<double>(options.pulses) / options.pulse_rate_hz;

  const double f = options.finite_key.error_correction_efficiency;
  result.single_photon_assumption_rate =
      SinglePhotonAssumptionKeyRate(result.counts[0], options.decoys ? options.intensities.probability[0] : 1.0, f);
  if (options.decoys) {
    QNET_ASSIGN_OR_RETURN(result.asymptotic, qkd::EstimateAsymptotic(options.intensities, result.counts, f));
    result.asymptotic_standard_error = qkd::AsymptoticKeyRateStandardError(options.intensities, result.counts, f);
    QNET_ASSIGN_OR_RETURN(result.finite_key,
                          qkd::EstimateFiniteKey(options.intensities, result.counts, options.finite_key));
  }
  result.link_model.eta = result.fibre_transmittance * detector_params.efficiency;
  result.link_model.dark_count_probability = detector_params.dark_count_probability;
  result.link_model.misalignment_error = fibre_params.misalignment_error;
  qkd::DecoyIntensities model_intensities = options.intensities;
  if (!options.decoys) model_intensities.probability = {1.0, 0.0, 0.0};
  if (options.decoys) {
    result.analytic_rate = qkd::AnalyticDecoyKeyRate(result.link_model, model_intensities, f);
  }
  result.infinite_decoy_rate = qkd::InfiniteDecoyKeyRate(result.link_model, model_intensities, f);
  result.single_photon_source_rate = qkd::SinglePhotonSourceKeyRate(result.link_model, f);
  result.plob_bound = PlobBoundBitsPerUse(result.fibre_transmittance);
  return result;
}

absl::StatusOr<SatellitePassResult> RunSatellitePass(const physical::SatelliteLink& link,
                                                     const SatellitePassOptions& options) {
  QNET_RETURN_IF_ERROR(physical::ValidateSatelliteLink(link.channel, absl::StrCat("satellite link ", link.name)));
  QNET_RETURN_IF_ERROR(qkd::ValidateDecoyIntensities(options.bb84.intensities));
  if (!(options.segment_s >= 0.01 && options.segment_s <= 60.0)) {
    return absl::InvalidArgumentError(absl::StrCat("a pass segment of ", options.segment_s,
                                                   " s is outside [0.01, 60] s"));
  }
  if (!(link.source_rate_hz * options.segment_s >= 1000.0)) {
    return absl::InvalidArgumentError(absl::StrCat("link ", link.name, ": a segment of ", options.segment_s,
                                                   " s at source_rate_hz ", link.source_rate_hz, " holds ",
                                                   link.source_rate_hz * options.segment_s,
                                                   " pulses; at least 1000 are needed (longer segments or a faster "
                                                   "source)"));
  }
  QNET_ASSIGN_OR_RETURN(physical::SatellitePass pass, physical::SatellitePass::Create(link.channel));
  std::vector<physical::PulseIntensity> intensities;
  for (int k = 0; k < 3; ++k) {
    intensities.push_back({options.bb84.intensities.mean_photon_number[k], options.bb84.intensities.probability[k]});
  }
  SatellitePassResult result;
  result.dark_count_probability = physical::SatelliteDarkCountProbability(link);
  const double misalignment = 0.5 * (1.0 - link.visibility);
  // Streams per link, so the two passes of a relay are independent.
  const Rng root = Rng(options.bb84.seed).Fork(absl::StrCat("satellite-link/", link.name));
  Rng channel_rng = root.Fork("satellite-channel");
  QNET_ASSIGN_OR_RETURN(
      physical::PhotonDetector detector,
      physical::PhotonDetector::Create({link.detector_efficiency, result.dark_count_probability}, root.Fork("detector")));

  // Horizon to horizon, in whole segments centred on culmination.
  const double horizon = pass.SecondsAbove(0.0);
  const auto half_segments = static_cast<int64_t>(std::ceil(horizon / options.segment_s - 0.5));
  const auto pulses_per_segment = static_cast<uint64_t>(std::llround(link.source_rate_hz * options.segment_s));
  uint64_t next_pulse = 0;
  for (int64_t i = -half_segments; i <= half_segments; ++i) {
    PassSegment seg;
    seg.t_s = static_cast<double>(i) * options.segment_s;
    seg.elevation_deg = pass.ElevationDeg(seg.t_s);
    seg.range_km = pass.SlantRangeKmAt(seg.t_s);
    seg.link_up = seg.elevation_deg >= link.channel.min_elevation_deg;
    if (seg.link_up) {
      seg.transmittance = physical::SatelliteChannelTransmittance(link.channel, seg.elevation_deg);
      seg.pulses = pulses_per_segment;
    }
    // In chunks of at most 10^7 pulses, so memory stays bounded whatever the
    // source rate.
    constexpr uint64_t kChunk = 10'000'000;
    for (uint64_t chunk_start = 0; chunk_start < seg.pulses; chunk_start += kChunk) {
      const uint64_t chunk = std::min(kChunk, seg.pulses - chunk_start);
      QNET_ASSIGN_OR_RETURN(physical::LossyChannelSample sample,
                            physical::SampleWeakCoherentThroughLoss(intensities, next_pulse, chunk,
                                                                    seg.transmittance, misalignment, channel_rng));
      QNET_ASSIGN_OR_RETURN(std::vector<physical::MeasuredPulse> detections, detector.Detect(sample.to_receiver));
      for (int k = 0; k < 3; ++k) {
        seg.pulses_per_intensity[k] += sample.pulses_per_intensity[k];
        result.counts[k].pulses += sample.pulses_per_intensity[k];
      }
      std::array<uint64_t, 3> delivering_per_intensity{};
      for (const physical::PreparedPulse& p : sample.delivering) ++delivering_per_intensity[p.intensity];
      // Alice's record of each detected gate: a delivering pulse, or else a
      // pulse whose photons were all lost (a dark count or background), of
      // an intensity Alice chose at random, in a basis and bit she chose.
      size_t next_delivering = 0;
      for (const physical::MeasuredPulse& d : detections) {
        while (next_delivering < sample.delivering.size() && sample.delivering[next_delivering].pulse_id < d.pulse_id) {
          ++next_delivering;
        }
        physical::PreparedPulse a;
        if (next_delivering < sample.delivering.size() && sample.delivering[next_delivering].pulse_id == d.pulse_id) {
          a = sample.delivering[next_delivering];
        } else {
          // The pulse delivered nothing: its intensity is drawn as the
          // split of non-delivering pulses, its basis and bit uniformly.
          double u = channel_rng.Uniform() * static_cast<double>(chunk - sample.delivering.size());
          uint8_t k = 0;
          for (; k < 2; ++k) {
            const double n = static_cast<double>(sample.pulses_per_intensity[k] - delivering_per_intensity[k]);
            if (u < n) break;
            u -= n;
          }
          const uint64_t choice = channel_rng.UniformInt(4);
          a = {d.pulse_id, static_cast<uint8_t>(choice >> 1), static_cast<uint8_t>(choice & 1), k, 0};
        }
        qkd::IntensityCounts& c = result.counts[a.intensity];
        ++c.detections;
        ++seg.detections[a.intensity];
        if (d.basis != a.basis) continue;
        ++seg.sifted;
        const bool error = d.bit != a.bit;
        if (a.basis == physical::kPolarisationBasisZ) {
          ++c.sifted_z;
          c.errors_z += error ? 1 : 0;
        } else {
          ++c.sifted_x;
          c.errors_x += error ? 1 : 0;
        }
      }
      next_pulse += chunk;
    }
    if (seg.link_up) {
      result.pulses += seg.pulses;
      result.sifted_bits += seg.sifted;
      result.seconds_up += options.segment_s;
    }
    result.segments.push_back(seg);
  }
  const double f = options.bb84.finite_key.error_correction_efficiency;
  if (result.pulses > 0) {
    QNET_ASSIGN_OR_RETURN(result.asymptotic, qkd::EstimateAsymptotic(options.bb84.intensities, result.counts, f));
    result.asymptotic_standard_error =
        qkd::AsymptoticKeyRateStandardError(options.bb84.intensities, result.counts, f);
    QNET_ASSIGN_OR_RETURN(result.finite_key,
                          qkd::EstimateFiniteKey(options.bb84.intensities, result.counts, options.bb84.finite_key));
  }
  return result;
}

}  // namespace qnet::netsim
