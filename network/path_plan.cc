#include "network/path_plan.h"

#include <algorithm>
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
  return r;
}

}  // namespace

double ChainFidelity(const Route& route, const LinkStateDatabase& database, double link_fidelity, Duration wait) {
  BellDiagonal chain;
  for (size_t i = 0; i + 1 < route.path.size(); ++i) {
    const double f = link_fidelity < 0 ? route.link_fidelity[i] : link_fidelity;
    BellDiagonal pair = Decay(BellDiagonal::Werner(f), wait, RatesOf(database.Find(route.path[i])), wait,
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
  plan.best_fidelity = ChainFidelity(route, database, -1.0, Duration(0));
  if (plan.best_fidelity < min_fidelity) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "UNSUPPORTED: min_fidelity %.4f is out of reach over %d hop(s) %s: the best this path delivers by "
        "swapping alone is %.4f (purification is not implemented yet)",
        min_fidelity, static_cast<int>(route.hops()), absl::StrJoin(route.path, "-"), plan.best_fidelity));
  }
  const double weakest = *std::min_element(route.link_fidelity.begin(), route.link_fidelity.end());
  if (min_fidelity <= 0.25) {
    // Anything goes: fastest links, no cutoff.
    plan.link_min_fidelity = 0.0;
    plan.planned_fidelity = ChainFidelity(route, database, -1.0, Duration(0));
    return plan;
  }
  if (ChainFidelity(route, database, weakest, Duration(0)) < min_fidelity) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "UNSUPPORTED: min_fidelity %.4f needs more than the weakest link of %s delivers (%.4f) on the "
        "others as well; the best over the path is %.4f",
        min_fidelity, absl::StrJoin(route.path, "-"), weakest, plan.best_fidelity));
  }
  // The link fidelity that leaves half of the headroom for waiting.
  const double goal = min_fidelity + (ChainFidelity(route, database, weakest, Duration(0)) - min_fidelity) / 2;
  double lo = 0.25, hi = weakest;
  for (int i = 0; i < 60; ++i) {
    const double mid = (lo + hi) / 2;
    (ChainFidelity(route, database, mid, Duration(0)) >= goal ? hi : lo) = mid;
  }
  plan.link_min_fidelity = hi;
  plan.planned_fidelity = ChainFidelity(route, database, hi, Duration(0));
  // The longest wait per link pair that keeps the chain above the minimum.
  const Duration longest = std::chrono::hours(24);
  if (ChainFidelity(route, database, hi, longest) >= min_fidelity) return plan;  // memories do not decay
  int64_t wait_lo = 0, wait_hi = longest.count();
  while (wait_hi - wait_lo > 1000) {
    const int64_t mid = wait_lo + (wait_hi - wait_lo) / 2;
    (ChainFidelity(route, database, hi, Duration(mid)) >= min_fidelity ? wait_lo : wait_hi) = mid;
  }
  plan.cutoff = Duration(std::max<int64_t>(wait_lo, 1));
  return plan;
}

}  // namespace qnet::network
