// Parameter sweeps over a network file in the simulator: one experiment
// rerun, with the same seed, as a link's length changes, so a user sees
// rate, fidelity or key rate against it. `qnetsim --sweep` drives it (the
// range itself: plot/sweep_range.h); this part makes each point's network
// and computes the bound a key rate is drawn against.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "config/network_config.h"
#include "physical/params.h"

namespace qnet::netsim {

// `config` with link `link` (a name such as "alice-bob", or "all" for every
// link) set to `length_km`; NotFound for an unknown link.
absl::StatusOr<config::NetworkConfig> WithLinkLength(const config::NetworkConfig& config, const std::string& link,
                                                     double length_km);

// Fibre transmittance of a link end to end, 10^(-attenuation * length / 10):
// the photon loss a repeaterless channel over its whole length would have.
double FibreTransmittance(const physical::LinkPhysics& link);

// The PLOB bound: no repeaterless protocol can distil more than -log2(1 - eta)
// secret bits per use of a pure-loss channel of transmittance eta
// (Pirandola, Laurenza, Ottaviani, Banchi, Nat. Commun. 8, 15043 (2017)).
double PlobBoundBitsPerUse(double transmittance);

// The same bound for a chain of pure-loss channels joined by nodes that may
// do anything (Pirandola, Commun. Phys. 2, 51 (2019)): -log2(1 - min eta_i)
// bits per use, set by the chain's weakest channel. A heralded link is such
// a chain of two, its halves to the heralding station: single-click
// heralding scales with sqrt(eta) of the whole link (as twin-field QKD does)
// and can beat the point-to-point PLOB bound, never this one.
double ChainBoundBitsPerUse(const std::vector<double>& transmittances);

// Fibre transmittance from node_a to the heralding station and from node_b.
std::pair<double, double> HalfTransmittances(const physical::LinkPhysics& link);

}  // namespace qnet::netsim
