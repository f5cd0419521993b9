// Parameter sweeps over a network file: one experiment rerun, with the same
// seed, as one parameter changes (a link's length, or how many hops away the
// far end is), so a user sees rate, fidelity or key rate against that
// parameter. `qnetsim --sweep` drives it; this part parses the range, makes
// each point's network and names the bounds a plot is drawn against.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "config/network_config.h"
#include "physical/params.h"

namespace qnet::netsim {

// The parameters a sweep can vary.
inline constexpr std::string_view kSweepLengthKm = "length_km";  // a link's length (or every link's)
inline constexpr std::string_view kSweepHops = "hops";           // hops from --from to the far end

inline constexpr size_t kMaxSweepPoints = 200;

struct SweepRange {
  std::string parameter;  // kSweepLengthKm or kSweepHops
  double start = 0.0;
  double stop = 0.0;
  double step = 1.0;
  // start, start + step, ... up to stop (included, within rounding).
  std::vector<double> Values() const;
};

// "PARAM=START:STOP:STEP", e.g. "length_km=0:100:10" or "hops=1:8:1" (STEP
// may be left out: 1). InvalidArgument naming what is wrong: an unknown
// parameter, STOP < START, STEP <= 0, more than kMaxSweepPoints points, a
// negative length, hops that are not whole numbers >= 1.
absl::StatusOr<SweepRange> ParseSweep(const std::string& spec);

// `config` with link `link` (a name such as "alice-bob", or "all" for every
// link) set to `length_km`; NotFound for an unknown link.
absl::StatusOr<config::NetworkConfig> WithLinkLength(const config::NetworkConfig& config, const std::string& link,
                                                     double length_km);

// The first node in file order whose shortest path from `origin` has
// exactly `hops` links; NotFound (saying how far the farthest node is) if
// none has.
absl::StatusOr<std::string> NodeAtHops(const config::NetworkConfig& config, const std::string& origin, int hops);

// Fibre transmittance of a link end to end, 10^(-attenuation * length / 10):
// the photon loss a repeaterless channel over its whole length would have.
double FibreTransmittance(const physical::LinkPhysics& link);

// The PLOB bound: no repeaterless protocol can distil more than -log2(1 - eta)
// secret bits per use of a pure-loss channel of transmittance eta
// (Pirandola, Laurenza, Ottaviani, Banchi, Nat. Commun. 8, 15043 (2017)).
double PlobBoundBitsPerUse(double transmittance);

}  // namespace qnet::netsim
