#include "network/path_plan.h"

#include <algorithm>
#include <limits>
#include <cmath>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "network/bell_diagonal.h"

namespace qnet::network {
namespace {

MemoryDecayRates RatesOf(const v1::LinkStateAdvert* advert) {
  MemoryDecayRates r;
  if (advert == nullptr) return r;
  if (advert->t1_s() > 0) r.t1_s = advert->t1_s();
  if (advert->t2_s() > 0) r.t2_s = advert->t2_s();
  if (advert->depolarising_time_s() > 0) r.depolarising_time_s = advert->depolarising_time_s();
  return r;
}

}  // namespace

double ChainFidelity(const Route& route, const LinkStateDatabase& database, double link_fidelity, Duration wait,
                     uint32_t rounds) {
  BellDiagonal chain;
  for (size_t i = 0; i + 1 < route.path.size(); ++i) {
    const double f = link_fidelity < 0 ? route.link_fidelity[i] : link_fidelity;
    BellDiagonal link = BellDiagonal::Werner(f);
    for (uint32_t r = 0; r < rounds; ++r) link = BellDiagonal::Dejmps(link, link).first;
    BellDiagonal pair = Decay(link, wait, RatesOf(database.Find(route.path[i])), wait,
                              RatesOf(database.Find(route.path[i + 1])));
    if (i == 0) {
      chain = pair;
      continue;
    }
    const v1::LinkStateAdvert* repeater = database.Find(route.path[i]);
    BellDiagonal noise;
    if (repeater != nullptr) {
      noise = BellMeasurementErrors(repeater->single_qubit_gate_error(), repeater->two_qubit_gate_error(),
                                    repeater->readout_error_0(), repeater->readout_error_1());
    }
    chain = BellDiagonal::Swap(chain, pair).With(noise);
  }
  return chain.fidelity();
}

absl::StatusOr<PathPlan> PlanPath(const Route& route, const LinkStateDatabase& database, double min_fidelity) {
  PathPlan plan;
  if (route.hops() == 0) return absl::InvalidArgumentError("a path needs at least one link");
  plan.pairs_in_flight = std::numeric_limits<uint32_t>::max();
  for (size_t i = 0; i < route.path.size(); ++i) {
    const v1::LinkStateAdvert* advert = database.Find(route.path[i]);
    const uint32_t qubits = advert == nullptr ? 0 : advert->memory_qubits();
    const uint32_t sides = (i == 0 || i + 1 == route.path.size()) ? 1 : 2;
    plan.pairs_in_flight = std::min(plan.pairs_in_flight, std::max<uint32_t>(1, qubits / sides) - 1);
  }
  plan.pairs_in_flight = std::max<uint32_t>(1, plan.pairs_in_flight);
  plan.best_fidelity = ChainFidelity(route, database, -1.0, Duration(0));
  const double weakest = *std::min_element(route.link_fidelity.begin(), route.link_fidelity.end());
  if (min_fidelity <= 0.25) {
    // Anything goes: fastest links, no cutoff.
    plan.link_min_fidelity = 0.0;
    plan.planned_fidelity = plan.best_fidelity;
    return plan;
  }
  // The fewest purification rounds with which the weakest link's fidelity
  // on every link reaches the minimum.
  // Each round needs one more qubit per link side: an end holds one side,
  // a repeater two.
  uint32_t memory_rounds = kMaxPurificationRounds;
  for (size_t i = 0; i < route.path.size(); ++i) {
    const v1::LinkStateAdvert* advert = database.Find(route.path[i]);
    const uint32_t qubits = advert == nullptr ? 0 : advert->memory_qubits();
    const uint32_t sides = (i == 0 || i + 1 == route.path.size()) ? 1 : 2;
    const uint32_t per_side = qubits / sides;
    memory_rounds = std::min(memory_rounds, per_side == 0 ? 0 : per_side - 1);
  }
  uint32_t rounds = 0;
  double reach = ChainFidelity(route, database, weakest, Duration(0), 0);
  while (reach < min_fidelity && rounds < memory_rounds) {
    ++rounds;
    reach = std::max(reach, ChainFidelity(route, database, weakest, Duration(0), rounds));
  }
  if (reach < min_fidelity) {
    double best_purified = plan.best_fidelity;
    for (uint32_t r = 1; r <= memory_rounds; ++r) {
      best_purified = std::max(best_purified, ChainFidelity(route, database, weakest, Duration(0), r));
    }
    return absl::FailedPreconditionError(absl::StrFormat(
        "UNSUPPORTED: min_fidelity %.4f is out of reach over %d hop(s) %s: the best this path delivers is "
        "%.4f by swapping alone and %.4f with DEJMPS purification on every link (%d round(s): the nodes' "
        "memory allows %d of at most %d)",
        min_fidelity, static_cast<int>(route.hops()), absl::StrJoin(route.path, "-"), plan.best_fidelity,
        best_purified, static_cast<int>(memory_rounds), static_cast<int>(memory_rounds),
        static_cast<int>(kMaxPurificationRounds)));
  }
  plan.purification_rounds = rounds;
  // The link fidelity that leaves half of the headroom for waiting.
  const double goal = min_fidelity + (reach - min_fidelity) / 2;
  double lo = 0.25, hi = weakest;
  for (int i = 0; i < 60; ++i) {
    const double mid = (lo + hi) / 2;
    (ChainFidelity(route, database, mid, Duration(0), rounds) >= goal ? hi : lo) = mid;
  }
  plan.link_min_fidelity = hi;
  plan.planned_fidelity = ChainFidelity(route, database, hi, Duration(0), rounds);
  // The longest wait per link pair that keeps the chain above the minimum.
  const Duration longest = std::chrono::hours(24);
  if (ChainFidelity(route, database, hi, longest, rounds) >= min_fidelity) return plan;  // memories do not decay
  int64_t wait_lo = 0, wait_hi = longest.count();
  while (wait_hi - wait_lo > 1000) {
    const int64_t mid = wait_lo + (wait_hi - wait_lo) / 2;
    (ChainFidelity(route, database, hi, Duration(mid), rounds) >= min_fidelity ? wait_lo : wait_hi) = mid;
  }
  plan.cutoff = Duration(std::max<int64_t>(wait_lo, 1));
  return plan;
}

}  // namespace qnet::network
