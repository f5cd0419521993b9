#include "physical/heralding_station.h"

#include <algorithm>
#include <bit>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace qnet::physical {

HeraldingStation::HeraldingStation(NodeContext& host, StateBackend& backend, LinkPhysics link,
                                   NodeHardware a, NodeHardware b, Duration report_lead,
                                   OutcomeSink sink)
    : host_(host),
      backend_(backend),
      link_(std::move(link)),
      a_(std::move(a)),
      b_(std::move(b)),
      report_lead_(std::max(Duration{0}, report_lead)),
      sink_(std::move(sink)),
      // Per link, so adding a link elsewhere does not shift this one's draws.
      rng_(host.rng().Fork(absl::StrCat("heralding-station/", link_.name))),
      eavesdropper_rng_(host.rng().Fork(absl::StrCat("eavesdropper/", link_.name))) {}

HeraldingStation::~HeraldingStation() { CancelAll(); }

absl::StatusOr<const AttemptModel*> HeraldingStation::Model(double bright_state_alpha) {
  const uint64_t key = std::bit_cast<uint64_t>(bright_state_alpha);
  auto it = models_.find(key);
  if (it == models_.end()) {
    absl::StatusOr<AttemptModel> model = ComputeAttemptModel(a_, b_, link_, bright_state_alpha);
    if (!model.ok()) return model.status();
    it = models_.emplace(key, *std::move(model)).first;
  }
  return &it->second;
}

absl::Status HeraldingStation::SetEavesdropperFraction(double fraction) {
  if (!(fraction >= 0.0 && fraction <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("link ", link_.name, ": eavesdropper_fraction = ", fraction,
                                                   " is outside [0, 1] (the fraction of heralded pairs "
                                                   "she intercepts)"));
  }
  link_.eavesdropper_fraction = fraction;
  return absl::OkStatus();
}

absl::Status HeraldingStation::Eavesdrop(quantum::QuantumSystem& system, quantum::QubitId qubit_a) {
  ++eavesdropper_stats_.pairs_seen;
  const double x = link_.eavesdropper_fraction;
  // No draw while she is off: her stream only moves when she acts.
  if (x <= 0.0 || !eavesdropper_rng_.Bernoulli(x)) return absl::OkStatus();
  const int basis = static_cast<int>(eavesdropper_rng_.UniformInt(2));  // 0 = Z, 1 = X
  absl::StatusOr<int> outcome =
      system.Measure(qubit_a, basis == 0 ? quantum::Basis::Z() : quantum::Basis::X(), eavesdropper_rng_);
  if (!outcome.ok()) return outcome.status();
  ++eavesdropper_stats_.pairs_intercepted;
  ++eavesdropper_stats_.recorded[basis][*outcome];
  return absl::OkStatus();
}

absl::Status HeraldingStation::Ready(End end, uint64_t generation_id, const Request& request) {
  Generation& generation = generations_[generation_id];
  std::optional<Request>& slot = end == End::kA ? generation.a : generation.b;
  if (slot.has_value()) {
    return absl::AlreadyExistsError(absl::StrCat("generation ", generation_id, " on link ", link_.name,
                                                 " is already under way at ",
                                                 end == End::kA ? link_.node_a : link_.node_b));
  }
  slot = request;
  if (generation.a.has_value() && generation.b.has_value()) Start(generation_id, generation);
  return absl::OkStatus();
}

bool HeraldingStation::Cancel(uint64_t generation_id) {
  auto it = generations_.find(generation_id);
  if (it == generations_.end()) return false;
  if (it->second.timer != kNoTimer) host_.CancelTimer(it->second.timer);
  generations_.erase(it);
  return true;
}

void HeraldingStation::CancelAll() {
  for (auto& [id, generation] : generations_) {
    if (generation.timer != kNoTimer) host_.CancelTimer(generation.timer);
  }
  generations_.clear();
}

void HeraldingStation::Start(uint64_t generation_id, Generation& generation) {
  generation.serial = next_serial_++;
  const Request& a = *generation.a;
  const Request& b = *generation.b;
  const TimePoint now = host_.Now();
  Outcome outcome;
  outcome.generation_id = generation_id;
  outcome.qubit_a = a.qubit;
  outcome.qubit_b = b.qubit;
  outcome.click_time = now;

  if (a.bright_state_alpha != b.bright_state_alpha) {
    outcome.status = absl::InvalidArgumentError(absl::StrCat(
        "the ends of link ", link_.name, " disagree on bright_state_alpha for generation ", generation_id,
        " (", link_.node_a, ": ", a.bright_state_alpha, ", ", link_.node_b, ": ", b.bright_state_alpha, ")"));
    return ReportAt(now, generation, std::move(outcome), nullptr);
  }
  if (a.max_attempts != b.max_attempts) {
    outcome.status = absl::InvalidArgumentError(absl::StrCat(
        "the ends of link ", link_.name, " disagree on max_attempts for generation ", generation_id, " (",
        link_.node_a, ": ", a.max_attempts, ", ", link_.node_b, ": ", b.max_attempts, ")"));
    return ReportAt(now, generation, std::move(outcome), nullptr);
  }
  absl::StatusOr<const AttemptModel*> model = Model(a.bright_state_alpha);
  if (!model.ok()) {
    outcome.status = absl::InvalidArgumentError(
        absl::StrCat("link ", link_.name, " cannot generate entanglement: ", model.status().message()));
    return ReportAt(now, generation, std::move(outcome), nullptr);
  }
  const AttemptModel& m = **model;
  const double p = m.success_probability;
  if (p > 0.0 && m.outcomes.empty()) {
    outcome.status = absl::InternalError(absl::StrCat(
        "the attempt model of link ", link_.name, " has success probability ", p, " but no outcomes"));
    return ReportAt(now, generation, std::move(outcome), nullptr);
  }

  // Attempts up to and including the first success: one exact draw.
  constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();
  uint64_t attempts = p > 0.0 ? rng_.Geometric(p) : kNever;
  bool success = true;
  if (a.max_attempts > 0 && attempts > a.max_attempts) {
    attempts = a.max_attempts;
    success = false;
  }
  const double period_ns = static_cast<double>(std::max<int64_t>(0, m.attempt_duration.count()));
  const double limit_ns =
      static_cast<double>(std::numeric_limits<int64_t>::max()) / 2 - static_cast<double>(now.time_since_epoch().count());
  if (attempts == kNever || static_cast<double>(attempts) * period_ns > limit_ns) {
    // No success within the runtime's time line: the generation waits until
    // it is cancelled.
    return;
  }
  outcome.attempts = attempts;
  outcome.click_time = now + Duration(static_cast<int64_t>(attempts) * m.attempt_duration.count());
  if (!success) {
    outcome.status = absl::DeadlineExceededError(absl::StrCat(
        "no heralded success in ", attempts, " attempts on link ", link_.name));
    return ReportAt(outcome.click_time - report_lead_, generation, std::move(outcome), nullptr);
  }
  // Which success pattern: each by its share of the success probability.
  double u = rng_.Uniform() * p;
  const HeraldedOutcome* chosen = &m.outcomes.back();
  for (const HeraldedOutcome& o : m.outcomes) {
    if (u < o.probability) {
      chosen = &o;
      break;
    }
    u -= o.probability;
  }
  outcome.label = chosen->label;
  ReportAt(outcome.click_time - report_lead_, generation, std::move(outcome), &chosen->state);
}

void HeraldingStation::ReportAt(TimePoint at, Generation& generation, Outcome outcome,
                                const Eigen::Matrix4cd* state) {
  std::optional<Eigen::Matrix4cd> prepared;
  if (state != nullptr) prepared = *state;
  const Duration after = std::max(Duration{0}, at - host_.Now());
  generation.timer = host_.StartTimer(
      after, lifetime_.Guard([this, serial = generation.serial, outcome = std::move(outcome), prepared]() mutable {
        Report(serial, std::move(outcome), std::move(prepared));
      }));
}

void HeraldingStation::Report(uint64_t serial, Outcome outcome, std::optional<Eigen::Matrix4cd> state) {
  auto it = generations_.find(outcome.generation_id);
  if (it == generations_.end() || it->second.serial != serial) return;
  it->second.timer = kNoTimer;
  if (!state.has_value()) {
    generations_.erase(it);
    sink_(outcome);
    return;
  }
  // The pair's state is the one the heralded click pattern implies, not an
  // idealised Bell state. Both memory qubits are fresh (AwaitHerald).
  backend_.WithFreshQubits(
      {outcome.qubit_a, outcome.qubit_b},
      lifetime_.Guard([this, serial, outcome = std::move(outcome),
                       rho = quantum::Matrix(*state)](absl::StatusOr<quantum::QuantumSystem*> system) mutable {
        auto live = generations_.find(outcome.generation_id);
        if (live == generations_.end() || live->second.serial != serial) return;  // cancelled meanwhile
        generations_.erase(live);
        if (!system.ok()) {
          outcome.status = absl::UnavailableError(absl::StrCat(
              "the heralding station of link ", link_.name, " cannot reach the memory qubits' state: ",
              system.status().message()));
        } else {
          const quantum::QubitId ids[2] = {outcome.qubit_a, outcome.qubit_b};
          if (absl::Status prepared = (*system)->Prepare(ids, rho); !prepared.ok()) {
            outcome.status = absl::InternalError(absl::StrCat(
                "the heralding station of link ", link_.name, " could not prepare the pair: ",
                prepared.message()));
          } else if (absl::Status eve = Eavesdrop(**system, outcome.qubit_a); !eve.ok()) {
            outcome.status = absl::InternalError(absl::StrCat(
                "the eavesdropper on link ", link_.name, " could not measure the pair: ", eve.message()));
          }
        }
        sink_(outcome);
      }));
}

}  // namespace qnet::physical
