#include "physical/satellite_channel.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace qnet::physical {
namespace {

constexpr double kPi = 3.14159265358979323846;
double Radians(double deg) { return deg * kPi / 180.0; }
double Degrees(double rad) { return rad * 180.0 / kPi; }

absl::Status InRange(double value, double lo, double hi, const std::string& who, const char* field) {
  if (value >= lo && value <= hi) return absl::OkStatus();  // false for NaN
  return absl::InvalidArgumentError(absl::StrCat(who, ": ", field, " = ", value, " is outside [", lo, ", ", hi, "]"));
}

// Earth-centred angle between the station and the sub-satellite point when
// the satellite is seen at elevation e.
double CentralAngle(double altitude_km, double elevation_rad) {
  const double r = kEarthRadiusKm + altitude_km;
  return std::acos(kEarthRadiusKm * std::cos(elevation_rad) / r) - elevation_rad;
}

}  // namespace

absl::Status ValidateSatelliteLink(const SatelliteLinkParams& p, const std::string& who) {
  if (absl::Status s = InRange(p.altitude_km, 100.0, 40000.0, who, "altitude_km"); !s.ok()) return s;
  if (absl::Status s = InRange(p.beam_divergence_urad, 0.1, 10000.0, who, "beam_divergence_urad"); !s.ok()) return s;
  if (absl::Status s = InRange(p.receiver_aperture_m, 0.001, 100.0, who, "receiver_aperture_m"); !s.ok()) return s;
  if (absl::Status s = InRange(p.pointing_error_urad, 0.0, 10000.0, who, "pointing_error_urad"); !s.ok()) return s;
  if (absl::Status s = InRange(p.zenith_transmission, 0.0, 1.0, who, "zenith_transmission"); !s.ok()) return s;
  if (absl::Status s = InRange(p.optics_efficiency, 0.0, 1.0, who, "optics_efficiency"); !s.ok()) return s;
  if (absl::Status s = InRange(p.background_counts_per_gate, 0.0, 1.0, who, "background_counts_per_gate"); !s.ok()) {
    return s;
  }
  if (absl::Status s = InRange(p.min_elevation_deg, 0.0, 89.0, who, "min_elevation_deg"); !s.ok()) return s;
  if (absl::Status s = InRange(p.max_elevation_deg, 1.0, 90.0, who, "max_elevation_deg"); !s.ok()) return s;
  if (p.max_elevation_deg <= p.min_elevation_deg) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": the pass culminates at max_elevation_deg = ",
                                                   p.max_elevation_deg, ", not above min_elevation_deg = ",
                                                   p.min_elevation_deg, ": the link would never come up"));
  }
  return absl::OkStatus();
}

double SatelliteDarkCountProbability(const SatelliteLink& link) {
  const double dark = -std::expm1(-link.dark_count_rate_hz * ToSeconds(link.detection_window));
  // Background photons are Poissonian too: b counts per gate on average.
  const double background = -std::expm1(-link.channel.background_counts_per_gate);
  return 1.0 - (1.0 - dark) * (1.0 - background);
}

absl::StatusOr<SatelliteLink> SatelliteLinkPreset(const std::string& name) {
  if (name != "micius") {
    return absl::NotFoundError(absl::StrCat("unknown satellite preset '", name, "'; known: micius"));
  }
  SatelliteLink link;
  link.channel.altitude_km = 500.0;
  link.channel.beam_divergence_urad = 10.0;
  link.channel.receiver_aperture_m = 1.0;
  link.channel.pointing_error_urad = 1.0;
  link.channel.zenith_transmission = 0.5;
  link.channel.optics_efficiency = 0.39;  // -4.1 dB: 22.0 dB at 645 km with the rest
  link.channel.background_counts_per_gate = 2e-7;
  link.channel.min_elevation_deg = 10.0;
  link.channel.max_elevation_deg = 80.0;
  link.source_rate_hz = 1e8;
  link.detector_efficiency = 0.1;  // detectors, filters and the receiver's optics
  link.dark_count_rate_hz = 100.0;
  link.detection_window = FromSeconds(2e-9);
  link.visibility = 0.98;
  return link;
}

double SlantRangeKm(double altitude_km, double elevation_deg) {
  const double r = kEarthRadiusKm + altitude_km;
  const double e = Radians(elevation_deg);
  const double c = kEarthRadiusKm * std::cos(e);
  return std::sqrt(r * r - c * c) - kEarthRadiusKm * std::sin(e);
}

double GeometricTransmittance(const SatelliteLinkParams& p, double range_km) {
  const double d = range_km * 1e3;  // metres
  const double half_divergence = p.beam_divergence_urad * 1e-6 / 2.0;
  const double jitter = p.pointing_error_urad * 1e-6;
  const double w2 = std::pow(half_divergence * d, 2) + 4.0 * std::pow(jitter * d, 2);
  const double a = p.receiver_aperture_m / 2.0;
  return -std::expm1(-2.0 * a * a / w2);
}

double AtmosphericTransmittance(const SatelliteLinkParams& p, double elevation_deg) {
  if (elevation_deg <= 0.0) return 0.0;
  return std::pow(p.zenith_transmission, 1.0 / std::sin(Radians(elevation_deg)));
}

double SatelliteChannelTransmittance(const SatelliteLinkParams& p, double elevation_deg) {
  if (elevation_deg <= 0.0) return 0.0;
  return GeometricTransmittance(p, SlantRangeKm(p.altitude_km, elevation_deg)) *
         AtmosphericTransmittance(p, elevation_deg) * p.optics_efficiency;
}

SatellitePass::SatellitePass(const SatelliteLinkParams& params) : params_(params) {
  const double r = kEarthRadiusKm + params.altitude_km;
  angular_rate_ = std::sqrt(kEarthGravitationalParameterKm3PerS2 / (r * r * r));
  cross_track_ = CentralAngle(params.altitude_km, Radians(params.max_elevation_deg));
}

absl::StatusOr<SatellitePass> SatellitePass::Create(const SatelliteLinkParams& params) {
  if (absl::Status s = ValidateSatelliteLink(params, "satellite pass"); !s.ok()) return s;
  return SatellitePass(params);
}

double SatellitePass::ElevationDeg(double t_s) const {
  // Along-track angle phi and cross-track psi: cos(gamma) = cos(phi) cos(psi).
  const double gamma = std::acos(std::cos(angular_rate_ * t_s) * std::cos(cross_track_));
  const double r = kEarthRadiusKm + params_.altitude_km;
  return Degrees(std::atan2(r * std::cos(gamma) - kEarthRadiusKm, r * std::sin(gamma)));
}

double SatellitePass::SecondsAbove(double elevation_deg) const {
  if (elevation_deg >= params_.max_elevation_deg) return 0.0;
  const double gamma = CentralAngle(params_.altitude_km, Radians(elevation_deg));
  const double c = std::cos(gamma) / std::cos(cross_track_);
  if (c >= 1.0) return 0.0;
  return std::acos(c) / angular_rate_;
}

double SatellitePass::SlantRangeKmAt(double t_s) const {
  const double gamma = std::acos(std::cos(angular_rate_ * t_s) * std::cos(cross_track_));
  const double r = kEarthRadiusKm + params_.altitude_km;
  // Law of cosines in the Earth-centred triangle.
  return std::sqrt(r * r + kEarthRadiusKm * kEarthRadiusKm - 2.0 * r * kEarthRadiusKm * std::cos(gamma));
}

}  // namespace qnet::physical
