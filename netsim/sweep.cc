#include "netsim/sweep.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"

namespace qnet::netsim {

absl::StatusOr<config::NetworkConfig> WithLinkLength(const config::NetworkConfig& config, const std::string& link,
                                                     double length_km) {
  config::NetworkConfig out = config;
  bool found = false;
  for (physical::LinkPhysics& l : out.links) {
    if (link == "all" || l.name == link) {
      l.length_km = length_km;
      found = true;
    }
  }
  if (!found) return absl::NotFoundError(absl::StrFormat("no link '%s' in %s", link, config.source));
  return out;
}

double FibreTransmittance(const physical::LinkPhysics& link) {
  return std::pow(10.0, -link.attenuation_db_per_km * link.length_km / 10.0);
}

double PlobBoundBitsPerUse(double transmittance) {
  if (transmittance >= 1.0) return INFINITY;
  return -std::log2(1.0 - transmittance);
}

double ChainBoundBitsPerUse(const std::vector<double>& transmittances) {
  double weakest = 1.0;
  for (double eta : transmittances) weakest = std::min(weakest, eta);
  return PlobBoundBitsPerUse(weakest);
}

std::pair<double, double> HalfTransmittances(const physical::LinkPhysics& link) {
  return {std::pow(10.0, -link.attenuation_db_per_km * link.length_a_km() / 10.0),
          std::pow(10.0, -link.attenuation_db_per_km * link.length_b_km() / 10.0)};
}

}  // namespace qnet::netsim
