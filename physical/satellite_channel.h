// The free-space channel of a satellite downlink and the pass that makes it
// time-varying: how much of a pulse's light a ground telescope collects as a
// low-Earth-orbit satellite rises, culminates and sets.
//
// Transmittance at elevation e (each factor a closed form, in the .cc):
//   T(e) = T_geo(d(e)) x T_atm(e) x optics
//   d(e)     slant range to a satellite at altitude h over a spherical Earth
//            (R = 6371 km): sqrt((R + h)^2 - R^2 cos^2 e) - R sin e;
//   T_geo(d) the share of a Gaussian beam of full divergence theta (1/e^2)
//            that a receiver aperture of diameter D collects at range d, the
//            beam broadened by a pointing jitter of sigma per axis (a
//            Gaussian convolved with Gaussian jitter stays Gaussian):
//            1 - exp(-2 (D/2)^2 / w^2), w^2 = (theta d / 2)^2 + 4 (sigma d)^2;
//   T_atm(e) plane-parallel atmosphere: the zenith transmission raised to
//            the air mass 1 / sin e.
// Turbulence (scintillation, beam wander beyond the pointing jitter) is not
// modelled: it would add loss at low elevation.
//
// The pass: a circular orbit at altitude h (period from Kepler's law,
// Earth's rotation neglected), culminating at `max_elevation_deg` at t = 0.
// The link is up (the telescopes track) only above `min_elevation_deg`.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/time.h"

namespace qnet::physical {

struct SatelliteLinkParams {
  double altitude_km = 500.0;
  double beam_divergence_urad = 10.0;  // full angle at 1/e^2 intensity
  double receiver_aperture_m = 1.0;    // telescope diameter
  double pointing_error_urad = 1.0;    // rms jitter per axis
  double zenith_transmission = 0.5;    // of the atmosphere, at the wavelength used
  double optics_efficiency = 1.0;      // both telescopes and the receiver's optics
  // Stray light (moon, city, sky) reaching each detector: mean counts per
  // gate (Poissonian), in [0, 1]; adds to the dark counts.
  double background_counts_per_gate = 0.0;
  double min_elevation_deg = 10.0;  // the link is up above this
  double max_elevation_deg = 90.0;  // the pass's culmination
};

// InvalidArgument naming the parameter that is outside its range.
absl::Status ValidateSatelliteLink(const SatelliteLinkParams& params, const std::string& who);

// A prepare-and-measure downlink of a network file (`satellite_links:`):
// the satellite's weak coherent source, the channel above and the ground
// station's detectors (one threshold detector per outcome, as a fibre
// link's receiver: physical/prepare_measure.h).
struct SatelliteLink {
  std::string name;       // "satellite-ground"
  std::string satellite;  // the sender
  std::string ground;     // the receiver
  SatelliteLinkParams channel;
  double source_rate_hz = 1e8;
  double detector_efficiency = 0.5;
  double dark_count_rate_hz = 100.0;  // per detector
  Duration detection_window = FromSeconds(2e-9);
  double visibility = 0.98;  // polarisation contrast: misalignment e_d = (1 - V) / 2
};

// Per detector and gate: a dark count or background light.
double SatelliteDarkCountProbability(const SatelliteLink& link);

// The Micius downlink to the Xinglong station: altitude (~500 km) and
// source rate (100 MHz) from Liao et al., "Satellite-to-ground quantum key
// distribution", Nature 549, 43 (2017); the 10 urad beam divergence and 1 m
// telescope as described there. The intensities are not the link's: the
// paper's signal and decoy (0.8, 0.1) go on the command line (--mu 0.8
// --nu 0.1). Pointing jitter,
// atmosphere, optics and detector figures are qnet's assumptions, chosen so
// the model's channel loss at 645 km is the 22 dB the paper reports (it
// reports 35 dB at 1200 km; the model gives about 32: the turbulence it
// leaves out costs most at low elevation). "micius" is the preset name.
absl::StatusOr<SatelliteLink> SatelliteLinkPreset(const std::string& name);

inline constexpr double kEarthRadiusKm = 6371.0;
inline constexpr double kEarthGravitationalParameterKm3PerS2 = 398600.4418;

double SlantRangeKm(double altitude_km, double elevation_deg);
double GeometricTransmittance(const SatelliteLinkParams& params, double range_km);
double AtmosphericTransmittance(const SatelliteLinkParams& params, double elevation_deg);
// T(e), the product above; 0 below the horizon.
double SatelliteChannelTransmittance(const SatelliteLinkParams& params, double elevation_deg);

class SatellitePass {
 public:
  // InvalidArgument as ValidateSatelliteLink.
  static absl::StatusOr<SatellitePass> Create(const SatelliteLinkParams& params);

  // Elevation in degrees at t seconds from culmination (negative below the
  // horizon).
  double ElevationDeg(double t_s) const;
  // Seconds from culmination until the satellite sinks to `elevation_deg`
  // (0 if the pass never reaches it).
  double SecondsAbove(double elevation_deg) const;
  double SlantRangeKmAt(double t_s) const;
  const SatelliteLinkParams& params() const { return params_; }

 private:
  explicit SatellitePass(const SatelliteLinkParams& params);

  SatelliteLinkParams params_;
  double angular_rate_ = 0.0;  // orbital, rad/s
  double cross_track_ = 0.0;   // central angle between the ground track and the station at culmination, rad
};

}  // namespace qnet::physical
