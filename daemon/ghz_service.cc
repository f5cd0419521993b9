#include "daemon/ghz_service.h"

#include "absl/strings/str_cat.h"
#include "core/time.h"

namespace qnet::daemon {

constexpr Duration kDefaultGhzTimeout = std::chrono::seconds(60);

GhzService::GhzService(NodeContext& context, transport::GhzDistribution& ghz, const LagMonitor& lag,
                       const Logger& log)
    : context_(context), ghz_(ghz), lag_(lag), log_(log) {}

GhzService::~GhzService() {
  lifetime_.End();
  for (auto& [handle, call] : calls_) ghz_.Cancel(call.run);
}

absl::StatusOr<GhzService::CallHandle> GhzService::Ghz(const v1::GhzRequest& request, Stream stream) {
  const int nodes = request.members_size() + 1;
  if (nodes < 3 || nodes > transport::kMaxGhzNodes) {
    return absl::InvalidArgumentError(absl::StrCat("members: name 2 to ", transport::kMaxGhzNodes - 1,
                                                   " other nodes (this node is the root), got ",
                                                   request.members_size()));
  }
  // Every setting at least once, or the tallies give no estimate.
  const uint32_t settings = (1u << (nodes - 1)) + 1;
  if (request.shots() < settings || request.shots() > kMaxGhzShots) {
    return absl::InvalidArgumentError(absl::StrCat("shots must be in ", settings, "..", kMaxGhzShots, " for ", nodes,
                                                   " nodes (each of the ", settings,
                                                   " settings at least once), got ", request.shots()));
  }
  if (!(request.timeout_s() >= 0.0 && request.timeout_s() <= kMaxRequestTimeoutS)) {
    return absl::InvalidArgumentError(absl::StrCat("timeout_s must be in [0, ", kMaxRequestTimeoutS,
                                                   "] (0 = 60 s), got ", request.timeout_s()));
  }
  transport::GhzRequest r;
  r.members.assign(request.members().begin(), request.members().end());
  r.shots = request.shots();
  r.min_fidelity = request.min_fidelity();
  r.timeout = request.timeout_s() > 0 ? FromSeconds(request.timeout_s()) : kDefaultGhzTimeout;
  const CallHandle handle = next_call_++;
  // The distribution validates the rest (duplicates, the root among the
  // members, min_fidelity, routes) and answers only on the loop, later.
  absl::StatusOr<transport::GhzRunId> run =
      ghz_.Run(r, lifetime_.Guard([this, handle](transport::GhzRunId, absl::StatusOr<transport::GhzReport> report) {
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
  QNET_LOG(log_, kInfo, "GHZ request %d: %d shots over %s and %d members", *run, request.shots(),
           context_.node_name(), request.members_size());
  return handle;
}

void GhzService::EnableProgress(WallTimerStarter start_timer, std::chrono::milliseconds every) {
  start_wall_timer_ = std::move(start_timer);
  progress_every_ = every;
}

void GhzService::ScheduleProgress(CallHandle handle) {
  if (!start_wall_timer_) return;
  start_wall_timer_(progress_every_, lifetime_.Guard([this, handle] {
    auto it = calls_.find(handle);
    if (it == calls_.end()) return;  // ended: no more ticks
    const Call& call = it->second;
    v1::GhzEvent event;
    v1::ShotProgress* p = event.mutable_progress();
    p->set_shots_done(ghz_.shots_done(call.run));
    p->set_shots_requested(call.shots);
    p->set_elapsed_s(ToSeconds(context_.Now() - call.started));
    p->set_behind(lag_.Since(call.lag_mark, LagMonitor::Clock::now()).behind());
    if (call.stream.event) call.stream.event(std::move(event));
    ScheduleProgress(handle);
  }));
}

void GhzService::Cancel(CallHandle handle) {
  auto it = calls_.find(handle);
  if (it == calls_.end()) return;
  Call call = std::move(it->second);
  calls_.erase(it);
  ghz_.Cancel(call.run);  // its handler finds no call and says nothing
  call.stream.end(absl::CancelledError("the client cancelled the call"));
}

void GhzService::OnRunDone(CallHandle handle, absl::StatusOr<transport::GhzReport> report) {
  auto it = calls_.find(handle);
  if (it == calls_.end()) return;
  Call call = std::move(it->second);
  calls_.erase(it);
  const v1::SoftwareLag lag = lag_.Since(call.lag_mark, LagMonitor::Clock::now());
  if (!report.ok()) {
    call.stream.end(WithLagNote(report.status(), lag));
    return;
  }
  v1::GhzEvent event;
  v1::GhzSummary* sum = event.mutable_summary();
  for (const std::string& n : report->nodes) sum->add_nodes(n);
  sum->set_shots(report->shots);
  for (const transport::GhzSettingCounts& s : report->settings) {
    v1::GhzSettingTally* t = sum->add_settings();
    t->set_bases(s.bases);
    t->set_shots(s.shots);
    for (uint64_t c : s.counts) t->add_counts(c);
  }
  sum->set_pairs_used(report->pairs_used);
  sum->set_pairs_discarded(report->pairs_discarded);
  sum->set_mean_pair_fidelity_estimate(report->mean_pair_fidelity_estimate);
  sum->set_duration_s(ToSeconds(report->simulated_time));
  sum->set_construction(absl::StrCat("fusion at ", context_.node_name()));
  *sum->mutable_lag() = lag;
  call.stream.event(std::move(event));
  call.stream.end(absl::OkStatus());
}

}  // namespace qnet::daemon
