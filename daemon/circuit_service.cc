#include "daemon/circuit_service.h"

#include "absl/strings/str_cat.h"
#include "core/time.h"

namespace qnet::daemon {

constexpr Duration kDefaultCircuitTimeout = std::chrono::seconds(60);

CircuitService::CircuitService(NodeContext& context, transport::DistributedCircuit& circuits, const LagMonitor& lag,
                               const Logger& log)
    : context_(context), circuits_(circuits), lag_(lag), log_(log) {}

CircuitService::~CircuitService() {
  lifetime_.End();
  for (auto& [handle, call] : calls_) circuits_.Cancel(call.run);
}

absl::StatusOr<CircuitService::CallHandle> CircuitService::RunCircuit(const v1::RunCircuitRequest& request,
                                                                      Stream stream) {
  if (request.program().size() > kMaxCircuitProgramBytes) {
    return absl::InvalidArgumentError(absl::StrCat("program: at most ", kMaxCircuitProgramBytes, " bytes, got ",
                                                   request.program().size()));
  }
  absl::StatusOr<transport::CircuitProgram> program = transport::ParseCircuit(request.program());
  if (!program.ok()) return absl::InvalidArgumentError(absl::StrCat("program: ", program.status().message()));
  if (request.shots() < 1 || request.shots() > kMaxCircuitShots) {
    return absl::InvalidArgumentError(absl::StrCat("shots must be in 1..", kMaxCircuitShots, ", got ", request.shots()));
  }
  if (!(request.timeout_s() >= 0.0 && request.timeout_s() <= kMaxRequestTimeoutS)) {
    return absl::InvalidArgumentError(absl::StrCat("timeout_s must be in [0, ", kMaxRequestTimeoutS,
                                                   "] (0 = 60 s), got ", request.timeout_s()));
  }
  transport::CircuitRequest r;
  r.program = *std::move(program);
  r.shots = request.shots();
  r.min_fidelity = request.min_fidelity();
  r.timeout = request.timeout_s() > 0 ? FromSeconds(request.timeout_s()) : kDefaultCircuitTimeout;
  const CallHandle handle = next_call_++;
  absl::StatusOr<transport::CircuitRunId> run = circuits_.Run(
      r, lifetime_.Guard([this, handle](transport::CircuitRunId, absl::StatusOr<transport::CircuitReport> report) {
        OnRunDone(handle, std::move(report));
      }));
  if (!run.ok()) return run.status();
  Call& call = calls_[handle];
  call.run = *run;
  call.stream = std::move(stream);
  call.lag_mark = lag_.Begin(LagMonitor::Clock::now());
  call.shots = request.shots();
  call.started = context_.Now();
  ScheduleProgress(handle);
  QNET_LOG(log_, kInfo, "circuit request %d: %d shots, %d instructions over %d nodes", *run, request.shots(),
           r.program.instructions.size(), r.program.nodes.size());
  return handle;
}

void CircuitService::EnableProgress(WallTimerStarter start_timer, std::chrono::milliseconds every) {
  start_wall_timer_ = std::move(start_timer);
  progress_every_ = every;
}

void CircuitService::ScheduleProgress(CallHandle handle) {
  if (!start_wall_timer_) return;
  start_wall_timer_(progress_every_, lifetime_.Guard([this, handle] {
    auto it = calls_.find(handle);
    if (it == calls_.end()) return;  // ended: no more ticks
    const Call& call = it->second;
    v1::RunCircuitEvent event;
    v1::ShotProgress* p = event.mutable_progress();
    p->set_shots_done(circuits_.shots_done(call.run));
    p->set_shots_requested(call.shots);
    p->set_elapsed_s(ToSeconds(context_.Now() - call.started));
    p->set_behind(lag_.Since(call.lag_mark, LagMonitor::Clock::now()).behind());
    if (call.stream.event) call.stream.event(std::move(event));
    ScheduleProgress(handle);
  }));
}

void CircuitService::Cancel(CallHandle handle) {
  auto it = calls_.find(handle);
  if (it == calls_.end()) return;
  Call call = std::move(it->second);
  calls_.erase(it);
  circuits_.Cancel(call.run);  // its handler finds no call and says nothing
  call.stream.end(absl::CancelledError("the client cancelled the call"));
}

void CircuitService::OnRunDone(CallHandle handle, absl::StatusOr<transport::CircuitReport> report) {
  auto it = calls_.find(handle);
  if (it == calls_.end()) return;
  Call call = std::move(it->second);
  calls_.erase(it);
  const v1::SoftwareLag lag = lag_.Since(call.lag_mark, LagMonitor::Clock::now());
  if (!report.ok()) {
    call.stream.end(WithLagNote(report.status(), lag));
    return;
  }
  v1::RunCircuitEvent event;
  v1::RunCircuitSummary* sum = event.mutable_summary();
  for (const std::string& m : report->measurements) sum->add_measurements(m);
  for (const auto& [outcome, n] : report->counts) {
    v1::CircuitOutcomeCount* c = sum->add_counts();
    c->set_outcome(outcome);
    c->set_shots(n);
  }
  sum->set_shots(report->shots);
  sum->set_pairs_used(report->pairs_used);
  sum->set_pairs_discarded(report->pairs_discarded);
  sum->set_duration_s(ToSeconds(report->simulated_time));
  sum->set_coordinator(context_.node_name());
  *sum->mutable_lag() = lag;
  call.stream.event(std::move(event));
  call.stream.end(absl::OkStatus());
}

}  // namespace qnet::daemon
