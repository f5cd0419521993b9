// Generations, one pair attempt each: the master starts one and assigns it to
// the far end, which allocates a slot and starts it too; both run the
// physical layer until the herald, report it to each other, and give up on a
// lost herald (the master's watchdog, the far end's grace timer). Failures
// are accounted at the master: retry, wait for memory, or end the request.
#include "link/link_layer.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "link/link_wire.h"

namespace qnet::link {

void LinkLayer::StartGeneration(LinkState& link, Request& request, int slot) {
  absl::StatusOr<Generation*> started =
      StartPhysical(link, link.generation_prefix | link.next_generation++, request.id, slot, request.alpha);
  if (!started.ok()) {
    EndRequest(request.id, LinkError::kDeviceError, std::string(started.status().message()), true);
    return;
  }
  Generation& g = **started;
  const uint64_t id = g.id;
  ++request.in_flight;
  g.timer = context_.StartTimer(WatchdogTimeout(link, g.alpha), lifetime_.Guard([this, name = link.name, id] {
    StepScope step(*this);
    OnWatchdog(name, id);
  }));
  v1::LinkMessage m;
  v1::LinkGenerationAssign* a = m.mutable_assign();
  a->set_generation_id(id);
  KeyToWire(request.key, a->mutable_key());
  a->set_bright_state_alpha(g.alpha);
  Send(link, std::move(m));
}

void LinkLayer::OnAssign(LinkState& link, const v1::LinkGenerationAssign& assign) {
  if (link.is_master) {
    ++ignored_messages_;
    return;
  }
  const uint64_t id = assign.generation_id();
  if (link.generations.contains(id)) return;
  std::optional<v1::LinkGenerationReport> early;
  if (v1::LinkGenerationReport* e = link.early_reports.Find(id); e != nullptr) {
    early = std::move(*e);
    link.early_reports.Erase(id);
    // The master already gave up on it: nothing to start.
    if (!early->success()) return;
  }
  const RequestKey key = KeyFromWire(assign.key());
  Request* r = FindRequest(link, key);
  const auto refuse = [&](LinkError error, bool transient, const std::string& message) {
    SendFailure(link, id, message, ErrorToWire(error), transient);
  };
  if (r == nullptr) {
    const v1::LinkErrorCode* ended = FindEnded(link, key);
    if (ended == nullptr) {
      return refuse(LinkError::kRejected, false,
                    absl::StrCat("node ", context_.node_name(), " does not know request ", key.origin, "/",
                                 key.number));
    }
    const std::optional<LinkError> why = ErrorFromWire(*ended);
    return refuse(why.value_or(LinkError::kDeviceError), false,
                  why.has_value() ? absl::StrCat("the request already ended at ", context_.node_name())
                                  : absl::StrCat("the request is already complete at ", context_.node_name()));
  }
  // The master assigns only accepted requests; its assignment may overtake
  // the acceptance.
  (void)NoteAccepted(link, *r);
  absl::StatusOr<int> slot = device_.Allocate();
  if (!slot.ok()) {
    if (device_.num_slots() == 0) {
      return refuse(LinkError::kNoResources, false,
                    absl::StrCat("node ", context_.node_name(), " has no memory qubits"));
    }
    // Busy slots come back when their generations end, held ones when the
    // layer above frees them: transient either way, so the master waits.
    link.memory_wait = AllSlotsInUse();
    return refuse(LinkError::kNoResources, true, absl::StrCat("no free memory slot at ", context_.node_name(), " (",
                                                              device_.num_slots(), " slots, all in use)"));
  }
  link.memory_wait.clear();
  ForgetKeptSlot(*slot);
  if (absl::StatusOr<Generation*> started = StartPhysical(link, id, r->id, *slot, assign.bright_state_alpha());
      !started.ok()) {
    return refuse(LinkError::kDeviceError, false, std::string(started.status().message()));
  }
  if (early.has_value()) OnReport(link, *early);
}

void LinkLayer::OnReport(LinkState& link, const v1::LinkGenerationReport& report) {
  const uint64_t id = report.generation_id();
  auto it = link.generations.find(id);
  if (it == link.generations.end()) {
    if (!link.is_master) link.early_reports.Insert(id, report);
    return;
  }
  Generation& g = it->second;
  g.peer_reported = true;
  g.peer = report;
  if (!report.success()) {
    return GenerationFailed(link, id,
                            absl::AbortedError(absl::StrCat("generation ", id, " failed at ", link.peer,
                                                            report.message().empty() ? "" : ": ", report.message())),
                            false, &report);
  }
  if (g.own == Own::kReady) return TryDeliver(link, id);
  if (g.own == Own::kRunning && !link.is_master && g.timer == kNoTimer) {
    // The master heard its herald; ours left the station at the same time,
    // so it is lost if it is not here within a retransmission timeout or two.
    g.timer = context_.StartTimer(2 * link.channel->retransmit_timeout(), lifetime_.Guard([this, name = link.name, id] {
      StepScope step(*this);
      OnGrace(name, id);
    }));
  }
}

// ---------------------------------------------------------------- the physical generation

absl::StatusOr<LinkLayer::Generation*> LinkLayer::StartPhysical(LinkState& link, uint64_t id, RequestId request,
                                                                int slot, double alpha) {
  Generation& g = link.generations[id];
  g.id = id;
  g.request = request;
  g.slot = slot;
  g.alpha = alpha;
  physical::GenerationParams params;
  params.bright_state_alpha = alpha;
  params.max_attempts = 0;  // the master's watchdog bounds it instead
  absl::Status started =
      physical_.StartGeneration(link.name, id, slot, params,
                                lifetime_.Guard([this, name = link.name, id](const physical::GenerationResult& result) {
                                  StepScope step(*this);
                                  OnPhysicalResult(name, id, result);
                                }));
  if (!started.ok()) {
    (void)device_.Free(slot);
    link.generations.erase(id);
    return absl::Status(started.code(), absl::StrCat("the physical layer at ", context_.node_name(),
                                                     " refused: ", started.message()));
  }
  g.physical_running = true;
  ++stats_.generations_started;
  return &g;
}

void LinkLayer::OnPhysicalResult(const std::string& link_name, uint64_t generation_id,
                                 const physical::GenerationResult& result) {
  LinkState* link = nullptr;
  Generation* g = FindGeneration(link_name, generation_id, &link);
  if (g == nullptr) return;
  g->physical_running = false;
  if (g->timer != kNoTimer) {
    context_.CancelTimer(g->timer);
    g->timer = kNoTimer;
  }
  if (!result.status.ok()) return GenerationFailed(*link, generation_id, result.status, true, nullptr);
  g->label = result.label;
  g->emitted_at = result.emitted_at;
  Request* r = FindRequest(g->request);
  if (r == nullptr) return DropGeneration(*link, generation_id);
  if (r->params.type == RequestType::kMeasure) {
    g->own = Own::kMeasuring;
    g->basis = ChooseBasis(*r);
    device_.Measure(g->slot, ToQuantumBasis(g->basis),
                    lifetime_.Guard([this, link_name, generation_id](absl::StatusOr<int> outcome) {
                      StepScope step(*this);
                      OnMeasured(link_name, generation_id, std::move(outcome));
                    }));
    return;
  }
  g->own = Own::kReady;
  SendReport(*link, *g);
  TryDeliver(*link, generation_id);
}

void LinkLayer::OnWatchdog(const std::string& link_name, uint64_t generation_id) {
  LinkState* link = nullptr;
  Generation* g = FindGeneration(link_name, generation_id, &link);
  if (g == nullptr) return;
  g->timer = kNoTimer;
  if (!g->physical_running) return;
  ++stats_.lost_heralds;
  GenerationFailed(*link, generation_id,
                   absl::DeadlineExceededError(absl::StrCat("generation ", generation_id, " on link ", link_name,
                                                            " heard no herald in time (a message was lost?)")),
                   true, nullptr);
}

void LinkLayer::OnGrace(const std::string& link_name, uint64_t generation_id) {
  LinkState* link = nullptr;
  Generation* g = FindGeneration(link_name, generation_id, &link);
  if (g == nullptr) return;
  g->timer = kNoTimer;
  if (g->own != Own::kRunning) return;
  ++stats_.lost_heralds;
  GenerationFailed(*link, generation_id,
                   absl::DeadlineExceededError(absl::StrCat("the herald of generation ", generation_id, " on link ",
                                                            link_name, " never reached ", context_.node_name())),
                   true, nullptr);
}

Duration LinkLayer::WatchdogTimeout(const LinkState& link, double alpha) const {
  // Long enough that a live generation is almost never abandoned (30 mean
  // generation times: e^-30), short enough that a lost herald costs little.
  double mean_s = 0.0;
  Duration attempt{0};
  if (link.table != nullptr) {
    if (const physical::LinkCalibration* c = link.table->Find(alpha); c != nullptr) {
      mean_s = c->MeanGenerationSeconds();
      attempt = c->attempt_duration;
    }
  }
  if (!std::isfinite(mean_s)) mean_s = 1e6;
  return 4 * link.channel->retransmit_timeout() + FromSeconds(std::min(1e6, 30.0 * mean_s)) + 2 * attempt;
}

// ---------------------------------------------------------------- reports and failures

void LinkLayer::SendReport(LinkState& link, const Generation& generation) {
  v1::LinkMessage m;
  v1::LinkGenerationReport* rep = m.mutable_report();
  rep->set_generation_id(generation.id);
  rep->set_success(true);
  rep->set_emitted_at_ns(ToNs(generation.emitted_at));
  if (generation.outcome >= 0) rep->set_measured_at_ns(ToNs(generation.measured_at));
  Send(link, std::move(m));
}

void LinkLayer::SendFailure(LinkState& link, uint64_t generation_id, const std::string& message,
                            v1::LinkErrorCode error, bool transient) {
  v1::LinkMessage m;
  v1::LinkGenerationReport* rep = m.mutable_report();
  rep->set_generation_id(generation_id);
  rep->set_success(false);
  rep->set_error(error);
  rep->set_transient(transient);
  rep->set_message(message);
  Send(link, std::move(m));
}

void LinkLayer::DropGeneration(LinkState& link, uint64_t generation_id) {
  auto it = link.generations.find(generation_id);
  if (it == link.generations.end()) return;
  Generation& g = it->second;
  if (g.timer != kNoTimer) context_.CancelTimer(g.timer);
  if (g.physical_running) physical_.AbortGeneration(link.name, generation_id);
  // Freeing a slot being measured makes the measurement complete Cancelled,
  // which finds no generation and does nothing.
  if (g.slot >= 0) (void)device_.Free(g.slot);
  link.generations.erase(it);
}

void LinkLayer::GenerationFailed(LinkState& link, uint64_t generation_id, const absl::Status& why, bool report,
                                 const v1::LinkGenerationReport* peer_report) {
  auto it = link.generations.find(generation_id);
  if (it == link.generations.end()) return;
  const RequestId request_id = it->second.request;
  ++stats_.generations_failed;
  if (report) SendFailure(link, generation_id, std::string(why.message()));
  DropGeneration(link, generation_id);
  Request* r = link.is_master ? FindRequest(request_id) : nullptr;
  if (r == nullptr) return ScheduleAll();
  --r->in_flight;
  const std::optional<LinkError> peer_error =
      peer_report != nullptr ? ErrorFromWire(peer_report->error()) : std::nullopt;
  if (peer_error.has_value()) {
    if (*peer_error == LinkError::kNoResources && peer_report->transient()) {
      // The far end has no free slot now (busy generating on another link,
      // or held by its layer above): try again shortly.
      ++stats_.far_memory_waits;
      link.memory_wait = peer_report->message();
      StartMemoryRetry(link, /*own_memory=*/false);
      return ScheduleAll();
    }
    EndRequest(request_id, *peer_error, absl::StrCat(link.peer, ": ", peer_report->message()), true);
    return;
  }
  if (absl::IsInvalidArgument(why) || absl::IsInternal(why) || absl::IsFailedPrecondition(why)) {
    EndRequest(request_id, LinkError::kDeviceError,
               absl::StrCat("generation failed at ", context_.node_name(), ": ", why.message()), true);
    return;
  }
  if (++r->consecutive_failures >= options_.max_consecutive_failures) {
    EndRequest(request_id, LinkError::kDeviceError,
               absl::StrCat(r->consecutive_failures, " generations in a row failed on link ", link.name,
                            "; the last: ", why.message()),
               true);
    return;
  }
  ScheduleAll();
}

}  // namespace qnet::link
