#include "daemon/teleport_service.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace qnet::daemon {
namespace {

constexpr const char* kAxisNames[3] = {"X", "Y", "Z"};
constexpr Duration kDefaultShotTimeout = std::chrono::seconds(10);

}  // namespace

TeleportService::TeleportService(NodeContext& context, transport::TransportLayer& transport,
                                 network::NetworkLayer& network, physical::QuantumDevice& device,
                                 physical::SimulatedDevice* truth, const LagMonitor& lag, const Logger& log)
    : context_(context),
      transport_(transport),
      network_(network),
      device_(device),
      truth_(truth),
      lag_(lag),
      log_(log) {}

TeleportService::~TeleportService() {
  lifetime_.End();
  for (auto& [id, shot] : shots_) {
    if (shot.report_deadline != kNoTimer) context_.CancelTimer(shot.report_deadline);
  }
  (void)transport_.UnregisterReceiver();
  (void)network_.UnregisterDatagramReceiver(kTeleportReportPurposeId);
}

absl::Status TeleportService::Start() {
  if (absl::Status s = transport_.RegisterReceiver(
          lifetime_.Guard([this](const transport::ReceiveEvent& event) { OnQubit(event); }));
      !s.ok()) {
    return s;
  }
  return network_.RegisterDatagramReceiver(
      kTeleportReportPurposeId,
      lifetime_.Guard([this](const std::string& source, const std::string& payload) { OnReport(source, payload); }));
}

absl::StatusOr<TeleportService::CallHandle> TeleportService::Teleport(const v1::TeleportRequest& request,
                                                                      Stream stream) {
  if (request.destination().empty()) return absl::InvalidArgumentError("destination is required");
  if (request.destination() == context_.node_name()) {
    return absl::InvalidArgumentError(
        absl::StrCat("destination '", request.destination(), "' is this node: teleport to another node"));
  }
  transport::BlochAngles state;
  switch (request.state_case()) {
    case v1::TeleportRequest::kNamedState: {
      absl::StatusOr<transport::NamedState> named = transport::ParseNamedState(request.named_state());
      if (!named.ok()) return named.status();
      state = transport::ToAngles(*named);
      break;
    }
    case v1::TeleportRequest::kAngles:
      if (!std::isfinite(request.angles().theta()) || !std::isfinite(request.angles().phi())) {
        return absl::InvalidArgumentError("angles: theta and phi must be finite numbers (radians)");
      }
      state = {request.angles().theta(), request.angles().phi()};
      break;
    default:
      return absl::InvalidArgumentError("a state is required: named_state (0, 1, +, -, +i, -i) or angles");
  }
  if (request.shots() < 1 || request.shots() > kMaxTeleportShots) {
    return absl::InvalidArgumentError(absl::StrCat("shots must be in 1..", kMaxTeleportShots, ", got ",
                                                   request.shots()));
  }
  if (!(request.min_fidelity() >= 0.0 && request.min_fidelity() <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("min_fidelity must be in [0, 1], got ", request.min_fidelity()));
  }
  if (!(request.timeout_s() >= 0.0 && request.timeout_s() <= kMaxRequestTimeoutS)) {
    return absl::InvalidArgumentError(absl::StrCat("timeout_s must be in [0, ", kMaxRequestTimeoutS,
                                                   "] (0 = 10 s per shot), got ", request.timeout_s()));
  }
  // The transport refuses an unknown or unreachable destination at once;
  // ask it up front so the call fails before streaming anything.
  absl::StatusOr<network::Route> route = network_.routes().PathTo(context_.node_name(), request.destination());
  if (!route.ok()) {
    return network::ToStatus(network::NetworkError::kNoRoute,
                             absl::StrCat("cannot teleport to '", request.destination(), "': ",
                                          route.status().message()));
  }
  const CallHandle handle = next_call_++;
  Call& call = calls_[handle];
  call.request = request;
  call.state = state;
  call.stream = std::move(stream);
  call.started = context_.Now();
  call.lag_mark = lag_.Begin(LagMonitor::Clock::now());
  call.last_shot_wall = LagMonitor::Clock::now();
  Submit(handle);
  ScheduleProgress(handle);
  return handle;
}

void TeleportService::EnableProgress(WallTimerStarter start_timer, std::chrono::milliseconds every) {
  start_wall_timer_ = std::move(start_timer);
  progress_every_ = every;
}

void TeleportService::ScheduleProgress(CallHandle handle) {
  if (!start_wall_timer_) return;
  start_wall_timer_(progress_every_ / 2, lifetime_.Guard([this, handle] {
    auto it = calls_.find(handle);
    if (it == calls_.end()) return;  // ended: no more ticks
    Call& call = it->second;
    const LagMonitor::Clock::time_point now = LagMonitor::Clock::now();
    if (call.stream.event && now - call.last_shot_wall >= progress_every_ &&
        now - call.last_progress_wall >= progress_every_) {
      call.last_progress_wall = now;
      v1::TeleportEvent event;
      *event.mutable_progress() = Progress(call);
      call.stream.event(std::move(event));
    }
    ScheduleProgress(handle);
  }));
}

v1::TeleportProgress TeleportService::Progress(const Call& call) const {
  const LagMonitor::Clock::time_point now = LagMonitor::Clock::now();
  v1::TeleportProgress p;
  p.set_shots_done(call.done);
  p.set_shots_requested(call.request.shots());
  p.set_elapsed_s(ToSeconds(context_.Now() - call.started));
  p.set_wall_since_last_shot_s(std::chrono::duration<double>(now - call.last_shot_wall).count());
  const int slots = device_.num_slots();
  const int in_use = physical::AllocatedSlots(device_);
  p.set_memory_qubits(static_cast<uint32_t>(slots));
  p.set_memory_qubits_in_use(static_cast<uint32_t>(in_use));
  const std::string& self = context_.node_name();
  std::string waiting;
  if (slots > 0 && in_use >= slots) {
    waiting = absl::StrCat("free memory: all ", slots, " memory qubits at ", self,
                           " are in use (KEEP pairs held for clients free theirs when measured with `qnetctl "
                           "measure` or when their hold passes; `qnetctl status` shows them)");
  } else {
    waiting = absl::StrCat("an entangled pair with ", call.request.destination(), " (", in_use, " of ", slots,
                           " memory qubits in use at ", self, "; a node on the path may be out of memory)");
  }
  if (lag_.Since(call.lag_mark, now).behind()) {
    absl::StrAppend(&waiting, "; the daemons run behind the physics (software speed)");
  }
  p.set_waiting_for(std::move(waiting));
  return p;
}

void TeleportService::Cancel(CallHandle handle) {
  auto it = calls_.find(handle);
  if (it == calls_.end()) return;
  Call call = std::move(it->second);
  calls_.erase(it);
  // Shots already submitted run to their end (the transport frees their
  // qubits); their reports are dropped.
  call.stream.end(absl::CancelledError("the client cancelled the call"));
}

void TeleportService::Submit(CallHandle handle) {
  while (true) {
    auto it = calls_.find(handle);
    if (it == calls_.end()) return;
    Call& call = it->second;
    if (call.submitted >= call.request.shots() || call.in_flight >= kTeleportShotsInFlight) return;
    transport::TeleportOptions options;
    options.min_fidelity = call.request.min_fidelity();
    options.timeout = call.request.timeout_s() > 0 ? FromSeconds(call.request.timeout_s()) : kDefaultShotTimeout;
    // The transport's deadline counts from submission, so a queued shot
    // waits for the one ahead of it inside its own budget: give it both.
    options.timeout *= kTeleportShotsInFlight;
    absl::StatusOr<transport::TransferId> id = transport_.Teleport(
        call.request.destination(), call.state, options,
        lifetime_.Guard([this](transport::TransferId transfer, absl::StatusOr<transport::TeleportReport> result) {
          OnTransferDone(transfer, std::move(result));
        }));
    if (!id.ok()) {
      EndCall(handle, id.status());
      return;
    }
    Shot& shot = shots_[*id];
    shot.call = handle;
    shot.started = context_.Now();
    ++call.submitted;
    ++call.in_flight;
  }
}

void TeleportService::OnTransferDone(transport::TransferId id, absl::StatusOr<transport::TeleportReport> result) {
  auto it = shots_.find(id);
  if (it == shots_.end()) return;
  Shot& shot = it->second;
  if (!result.ok()) {
    const CallHandle handle = shot.call;
    if (shot.report_deadline != kNoTimer) context_.CancelTimer(shot.report_deadline);
    shots_.erase(it);
    auto call = calls_.find(handle);
    if (call == calls_.end()) return;
    --call->second.in_flight;
    EndCall(handle, absl::Status(result.status().code(),
                                 absl::StrCat("shot ", call->second.done + 1, " of ", call->second.request.shots(),
                                              " failed: ", result.status().message())));
    return;
  }
  shot.transfer = *std::move(result);
  if (!shot.measured) {
    // The destination reports right after the qubit arrives; if it never
    // does (it died), the shot fails after the transfer's own time budget.
    auto call = calls_.find(shot.call);
    const Duration wait = call != calls_.end() && call->second.request.timeout_s() > 0
                              ? FromSeconds(call->second.request.timeout_s())
                              : kDefaultShotTimeout;
    shot.report_deadline = context_.StartTimer(wait, lifetime_.Guard([this, id] {
      auto s = shots_.find(id);
      if (s == shots_.end()) return;
      s->second.report_deadline = kNoTimer;
      const CallHandle handle = s->second.call;
      const std::string destination = s->second.transfer->destination;
      shots_.erase(s);
      auto c = calls_.find(handle);
      if (c == calls_.end()) return;
      --c->second.in_flight;
      EndCall(handle, absl::DeadlineExceededError(absl::StrCat(
                          "TIMEOUT: the qubit of transfer ", id, " reached ", destination,
                          " but its measurement outcome never came back (is ", destination, " still running?)")));
    }));
  }
  MaybeFinishShot(id);
}

// Payload: "<transfer id> <axis 0..2> <outcome> <truth: 1 x y z | 0>".
void TeleportService::OnReport(const std::string& source, const std::string& payload) {
  std::istringstream in(payload);
  transport::TransferId id = 0;
  int axis = -1, outcome = -1, has_truth = 0;
  double x = 0, y = 0, z = 0;
  in >> id >> axis >> outcome >> has_truth;
  if (has_truth == 1) in >> x >> y >> z;
  if (in.fail() || axis < 0 || axis > 2 || (outcome != 0 && outcome != 1)) {
    QNET_LOG(log_, kWarn, "ignoring a malformed teleport report from %s", source);
    return;
  }
  auto it = shots_.find(id);
  if (it == shots_.end()) return;  // its call ended
  Shot& shot = it->second;
  auto call = calls_.find(shot.call);
  if (call == calls_.end() || call->second.request.destination() != source) return;
  shot.measured = true;
  shot.axis = axis;
  shot.outcome = outcome;
  if (has_truth == 1) {
    const std::array<double, 3> n = transport::BlochVector(call->second.state);
    shot.truth = (1.0 + n[0] * x + n[1] * y + n[2] * z) / 2.0;
  }
  MaybeFinishShot(id);
}

void TeleportService::MaybeFinishShot(transport::TransferId id) {
  auto it = shots_.find(id);
  if (it == shots_.end() || !it->second.measured || !it->second.transfer.has_value()) return;
  Shot shot = std::move(it->second);
  shots_.erase(it);
  if (shot.report_deadline != kNoTimer) context_.CancelTimer(shot.report_deadline);
  const CallHandle handle = shot.call;
  auto c = calls_.find(handle);
  if (c == calls_.end()) return;
  Call& call = c->second;
  --call.in_flight;
  transport::AxisCounts& counts = call.counts[shot.axis];
  ++counts.shots;
  counts.plus += shot.outcome == 0 ? 1 : 0;
  call.pair_fidelity_sum += shot.transfer->pair_fidelity_estimate;
  call.pairs_discarded += shot.transfer->pairs_discarded;
  if (shot.truth >= 0) {
    call.truth_sum += shot.truth;
    call.truth_min = std::min(call.truth_min, shot.truth);
    ++call.truth_shots;
  }
  v1::TeleportEvent event;
  v1::TeleportShot* s = event.mutable_shot();
  s->set_index(call.done);
  s->set_transfer_id(id);
  s->set_pair_id(shot.transfer->pair.ToString());
  s->set_pair_fidelity_estimate(shot.transfer->pair_fidelity_estimate);
  s->set_pairs_discarded(shot.transfer->pairs_discarded);
  s->set_basis(kAxisNames[shot.axis]);
  s->set_outcome(shot.outcome);
  s->set_latency_s(ToSeconds(context_.Now() - shot.started));
  s->set_simulated_fidelity(shot.truth);
  ++call.done;
  call.last_shot_wall = LagMonitor::Clock::now();
  call.stream.event(std::move(event));
  if (call.done < call.request.shots()) {
    Submit(handle);
    return;
  }
  v1::TeleportEvent last;
  v1::TeleportSummary* sum = last.mutable_summary();
  sum->set_shots(call.done);
  sum->set_destination(call.request.destination());
  sum->mutable_intended()->set_theta(call.state.theta);
  sum->mutable_intended()->set_phi(call.state.phi);
  for (int a = 0; a < 3; ++a) {
    v1::AxisEstimate* axis = sum->add_axes();
    axis->set_axis(kAxisNames[a]);
    axis->set_shots(call.counts[a].shots);
    axis->set_plus(call.counts[a].plus);
  }
  absl::StatusOr<transport::BlochEstimate> estimate =
      transport::EstimateFromOutcomes(call.counts[0], call.counts[1], call.counts[2], call.state);
  sum->set_estimate_available(estimate.ok());
  if (estimate.ok()) {
    for (int a = 0; a < 3; ++a) {
      sum->mutable_axes(a)->set_mean(estimate->r[a]);
      sum->mutable_axes(a)->set_standard_error(estimate->standard_error[a]);
    }
    sum->set_fidelity(estimate->fidelity);
    sum->set_fidelity_standard_error(estimate->fidelity_standard_error);
    sum->set_fidelity_ci_low(std::clamp(estimate->fidelity - 1.96 * estimate->fidelity_standard_error, 0.0, 1.0));
    sum->set_fidelity_ci_high(std::clamp(estimate->fidelity + 1.96 * estimate->fidelity_standard_error, 0.0, 1.0));
  }
  sum->set_mean_pair_fidelity_estimate(call.pair_fidelity_sum / call.done);
  sum->set_pairs_discarded(call.pairs_discarded);
  sum->set_simulated_mean_fidelity(call.truth_shots > 0 ? call.truth_sum / call.truth_shots : -1.0);
  sum->set_simulated_min_fidelity(call.truth_shots > 0 ? call.truth_min : -1.0);
  sum->set_duration_s(ToSeconds(context_.Now() - call.started));
  *sum->mutable_lag() = lag_.Since(call.lag_mark, LagMonitor::Clock::now());
  call.stream.event(std::move(last));
  EndCall(handle, absl::OkStatus());
}

void TeleportService::EndCall(CallHandle handle, absl::Status status) {
  auto it = calls_.find(handle);
  if (it == calls_.end()) return;
  Stream stream = std::move(it->second.stream);
  const v1::SoftwareLag lag = lag_.Since(it->second.lag_mark, LagMonitor::Clock::now());
  calls_.erase(it);
  stream.end(WithLagNote(std::move(status), lag));
}

void TeleportService::OnQubit(const transport::ReceiveEvent& event) {
  const auto* qubit = std::get_if<transport::QubitReceived>(&event);
  if (qubit == nullptr) return;  // a failed transfer: the source hears of it from the transport
  if (truth_ == nullptr) {
    MeasureAndReport(*qubit, 0, 0, -2);
    return;
  }
  transport::QubitReceived copy = *qubit;
  physical::SimulatedDevice::SimulationOnlyTrueState(
      {{truth_, qubit->slot}}, lifetime_.Guard([this, copy](absl::StatusOr<quantum::Matrix> rho) {
        if (!rho.ok() || rho->rows() != 2) {
          MeasureAndReport(copy, 0, 0, -2);
          return;
        }
        // rho = (I + x X + y Y + z Z)/2.
        const std::complex<double> off = (*rho)(0, 1);
        MeasureAndReport(copy, 2 * off.real(), -2 * off.imag(), ((*rho)(0, 0) - (*rho)(1, 1)).real());
      }));
}

void TeleportService::MeasureAndReport(const transport::QubitReceived& qubit, double bloch_x, double bloch_y,
                                       double bloch_z) {
  const int axis = transport::TeleportShotAxis(qubit.id);
  const bool has_truth = bloch_z >= -1.5;
  const int slot = qubit.slot;
  const std::string source = qubit.source;
  const transport::TransferId id = qubit.id;
  const quantum::Basis basis = transport::AxisBasis(axis);
  device_.Measure(slot, basis, lifetime_.Guard([this, slot, source, id, axis, has_truth, bloch_x, bloch_y,
                                                bloch_z](absl::StatusOr<int> outcome) {
    (void)device_.Free(slot);
    if (!outcome.ok()) {
      QNET_LOG(log_, kWarn, "measuring teleported qubit %d from %s: %s", id, source, outcome.status().message());
      return;  // the source's shot times out waiting for the report
    }
    std::string payload = has_truth ? absl::StrFormat("%d %d %d 1 %.17g %.17g %.17g", id, axis, *outcome, bloch_x,
                                                      bloch_y, bloch_z)
                                    : absl::StrFormat("%d %d %d 0", id, axis, *outcome);
    if (absl::Status s = network_.SendDatagram(source, kTeleportReportPurposeId, std::move(payload)); !s.ok()) {
      QNET_LOG(log_, kWarn, "cannot report teleported qubit %d to %s: %s", id, source, s.message());
    }
  }));
}

}  // namespace qnet::daemon
