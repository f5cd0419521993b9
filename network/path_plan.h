// Turns an end-to-end fidelity requirement into what each link of a path is
// asked for: the link fidelity every link must deliver and the cutoff after
// which a repeater discards a waiting link pair. Uses the routing adverts'
// figures (links' best fidelities, repeaters' gate and readout errors,
// memories' T1/T2) and the Bell-diagonal model of network/bell_diagonal.h.
// Half of the headroom between the requirement and the best the path can do
// goes to the links (a lower link fidelity means a faster link), the other
// half to memory waiting (the cutoff).
#pragma once

#include "absl/status/statusor.h"
#include "core/time.h"
#include "network/routing.h"

namespace qnet::network {

struct PathPlan {
  uint32_t purification_rounds = 0;  // DEJMPS rounds per link (0 = swapping alone)
  double link_min_fidelity = 0.0;
  Duration cutoff{0};                // 0 = none
  double best_fidelity = 0.0;        // end to end, best links, no waiting
  double planned_fidelity = 0.0;     // end to end at link_min_fidelity, no waiting
  // Without purification: end-to-end pairs in flight the path's memories
  // allow while leaving one qubit per circuit side free for another circuit
  // (min over the nodes of qubits / sides - 1, at least 1).
  uint32_t pairs_in_flight = 1;
};

// Tries swapping alone, then up to kMaxPurificationRounds rounds of DEJMPS
// purification on every link (each round halves the rate at best).
// FailedPrecondition "UNSUPPORTED: ..." naming the best reachable fidelity
// when no configuration reaches `min_fidelity`. The adverts of every node on
// the route must be in `database`.
inline constexpr uint32_t kMaxPurificationRounds = 2;
absl::StatusOr<PathPlan> PlanPath(const Route& route, const LinkStateDatabase& database, double min_fidelity);

// End-to-end fidelity of `route` if every link delivers `link_fidelity`
// (or its advertised best when `link_fidelity` < 0), purified `rounds`
// times (DEJMPS of two such pairs, as Werner states), and each link pair's
// two qubits wait `wait` before being swapped (the model PlanPath uses).
double ChainFidelity(const Route& route, const LinkStateDatabase& database, double link_fidelity, Duration wait,
                     uint32_t rounds = 0);

}  // namespace qnet::network
