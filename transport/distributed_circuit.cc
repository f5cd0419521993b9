#include "transport/distributed_circuit.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace qnet::transport {

// Datagram payloads, one line of space-separated fields (node and qubit
// names never contain spaces):
//   coordinator -> node (the run is the coordinator's):
//     BEGIN <run> <timeout_ns>
//     GATE <run> <step> <qubit> <gate kind> <angle>
//     CX <run> <step> <control> <target>
//     MEAS <run> <step> <qubit> <x|y|z>
//     RCX <run> <step> <control> <target node> <target> <min fidelity> <max time ns>
//     FREE <run> | END <run> | ABORT <run> <status code> <message...>
//   node -> coordinator:
//     DONE <run> <step> <outcome or -1> <pairs used>
//     FAIL <run> <step> <status code> <message...>
//   control node <-> target node of a remote CNOT:
//     RCXB <coordinator> <run> <step> <head> <tail> <circuit> <sequence> <m1> <x> <z> <target>
//     DISCARD <coordinator> <run> <head> <tail> <circuit> <sequence>
//     RCXZ <coordinator> <run> <step> <m2>
//     RCXFAIL <coordinator> <run> <step> <status code> <message...>

struct DistributedCircuit::CoordinatedRun {
  CircuitRunId id = 0;
  CircuitRequest request;
  CircuitHandler handler;
  bool started = false;
  TimerId deadline = kNoTimer;
  TimePoint deadline_at;
  TimePoint began;
  uint64_t step = 0;  // the instruction in flight (or next)
  std::string outcomes;
  CircuitReport report;
};

namespace {

std::string PairFields(const network::EndToEndId& id) {
  return absl::StrCat(id.head, " ", id.tail, " ", id.circuit, " ", id.sequence);
}

std::string StatusFields(const absl::Status& s) {
  return absl::StrCat(static_cast<int>(s.code()), " ", std::string(s.message()));
}

bool ParsePair(const std::vector<std::string>& f, size_t at, network::EndToEndId& pair) {
  if (f.size() < at + 4) return false;
  pair.head = f[at];
  pair.tail = f[at + 1];
  return absl::SimpleAtoi(f[at + 2], &pair.circuit) && absl::SimpleAtoi(f[at + 3], &pair.sequence);
}

quantum::Basis BasisOf(char b) {
  return b == 'x' ? quantum::Basis::X() : b == 'y' ? quantum::Basis::Y() : quantum::Basis::Z();
}

int64_t ToNs(Duration d) { return std::chrono::duration_cast<Duration>(d).count(); }

// A timeout in a message is at most a request's largest (core/time.h): a
// larger one would overflow the clock's arithmetic.
constexpr int64_t kMaxTimeoutNs = static_cast<int64_t>(kMaxRequestTimeoutS * 1e9);

// The rest of a payload after its first `fields` space-separated fields.
std::string Tail(const std::string& payload, int fields) {
  size_t at = 0;
  for (int i = 0; i < fields && at != std::string::npos; ++i) {
    at = payload.find(' ', at);
    if (at != std::string::npos) ++at;
  }
  return at == std::string::npos ? "" : payload.substr(at);
}

}  // namespace

absl::StatusOr<std::unique_ptr<DistributedCircuit>> DistributedCircuit::Build(NodeContext& context,
                                                                              physical::QuantumDevice& device,
                                                                              network::NetworkLayer& network) {
  std::unique_ptr<DistributedCircuit> c(new DistributedCircuit(context, device, network));
  DistributedCircuit* self = c.get();
  absl::Status s = network.RegisterReceiver(
      kCircuitPurposeId, [self](const network::NetworkEvent& event) { self->OnPairAsTarget(event); });
  if (!s.ok()) {
    return absl::AlreadyExistsError(
        absl::StrCat("circuits cannot receive pairs on purpose id ", kCircuitPurposeId, ": ", s.message()));
  }
  s = network.RegisterDatagramReceiver(kCircuitPurposeId, [self](const std::string& source, const std::string& payload) {
    self->OnDatagram(source, payload);
  });
  if (!s.ok()) {
    (void)network.UnregisterReceiver(kCircuitPurposeId);
    return absl::AlreadyExistsError(
        absl::StrCat("circuits cannot receive datagrams on purpose id ", kCircuitPurposeId, ": ", s.message()));
  }
  return c;
}

DistributedCircuit::DistributedCircuit(NodeContext& context, physical::QuantumDevice& device,
                                       network::NetworkLayer& network)
    : context_(context), device_(device), network_(network) {
  // As the transport layer: a restarted coordinator numbers its runs from
  // its clock, so no node mistakes a new run for an old one.
  const int64_t now_us = std::max<int64_t>(0, context.Now().time_since_epoch().count() / 1000);
  next_id_ = (static_cast<uint64_t>(now_us) << 16) + 1;
}

DistributedCircuit::~DistributedCircuit() {
  lifetime_.End();
  for (auto& [id, run] : runs_) {
    if (run->deadline != kNoTimer) context_.CancelTimer(run->deadline);
  }
  for (auto& [key, part] : parts_) {
    if (part.deadline != kNoTimer) context_.CancelTimer(part.deadline);
    if (part.request != 0) (void)network_.Cancel(part.request);
    FreeQubits(part);
  }
  for (auto& [key, half] : target_halves_) FreeSlot(half.slot);
  (void)network_.UnregisterReceiver(kCircuitPurposeId);
  (void)network_.UnregisterDatagramReceiver(kCircuitPurposeId);
}

uint32_t DistributedCircuit::shots_done(CircuitRunId id) const {
  auto it = runs_.find(id);
  return it == runs_.end() ? 0 : it->second->report.shots;
}

int DistributedCircuit::held_slots() const {
  int n = 0;
  for (const auto& [key, part] : parts_) {
    n += static_cast<int>(part.qubits.size()) + (part.half >= 0 ? 1 : 0);
  }
  for (const auto& [key, half] : target_halves_) n += half.slot >= 0 ? 1 : 0;
  return n;
}

// ---------------------------------------------------------------- coordinator

absl::StatusOr<CircuitRunId> DistributedCircuit::Run(const CircuitRequest& request, CircuitHandler handler) {
  if (request.program.instructions.empty() || request.program.measurements == 0) {
    return absl::InvalidArgumentError("the circuit measures nothing");
  }
  if (request.shots == 0) return absl::InvalidArgumentError("a circuit request needs at least 1 shot");
  if (!(request.min_fidelity >= 0.0 && request.min_fidelity <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("min_fidelity must be in [0, 1], not ", request.min_fidelity));
  }
  if (request.timeout <= Duration(0)) return absl::InvalidArgumentError("a circuit request needs a positive timeout");
  if (!handler) return absl::InvalidArgumentError("a circuit request needs a handler for its outcome");
  for (const std::string& node : request.program.nodes) {
    if (node == Where()) continue;
    absl::StatusOr<network::Route> route = network_.routes().PathTo(Where(), node);
    if (!route.ok()) {
      return network::ToStatus(network::NetworkError::kNoRoute, absl::StrCat("the circuit names node '", node,
                                                                             "': ", route.status().message()));
    }
  }
  const CircuitRunId id = next_id_++;
  auto run = std::make_unique<CoordinatedRun>();
  run->id = id;
  run->request = request;
  run->handler = std::move(handler);
  run->report.id = id;
  run->report.measurements = request.program.MeasurementLabels();
  run->deadline_at = context_.Now() + request.timeout;
  run->deadline = context_.StartTimer(request.timeout, lifetime_.Guard([this, id] {
    CoordinatedRun* r = FindRun(id);
    if (r == nullptr) return;
    r->deadline = kNoTimer;
    FailRun(id, absl::DeadlineExceededError(absl::StrCat(
                    "TIMEOUT: circuit request ", id, " ran ", r->report.shots, " of ", r->request.shots, " shots within ",
                    std::chrono::duration<double>(r->request.timeout).count(), " s")));
  }));
  runs_[id] = std::move(run);
  queue_.push_back(id);
  Post([this] { StartNext(); });
  return id;
}

void DistributedCircuit::Cancel(CircuitRunId id) {
  FailRun(id, absl::CancelledError(absl::StrCat("circuit request ", id, " was cancelled at ", Where())));
}

DistributedCircuit::CoordinatedRun* DistributedCircuit::FindRun(CircuitRunId id) {
  auto it = runs_.find(id);
  return it == runs_.end() ? nullptr : it->second.get();
}

void DistributedCircuit::StartNext() {
  if (queue_.empty()) return;
  CoordinatedRun* run = FindRun(queue_.front());
  if (run == nullptr || run->started) return;
  run->started = true;
  run->began = context_.Now();
  const Duration left = std::max(Duration(1), run->deadline_at - context_.Now());
  for (const std::string& node : run->request.program.nodes) {
    Deliver(node, absl::StrCat("BEGIN ", run->id, " ", ToNs(left)));
  }
  run->step = 0;
  NextStep(run->id);
}

void DistributedCircuit::NextStep(CircuitRunId id) {
  CoordinatedRun* run = FindRun(id);
  if (run == nullptr) return;
  const CircuitProgram& p = run->request.program;
  if (run->step >= p.instructions.size()) {
    // The shot is done: its qubits are freed everywhere (in order before the
    // next shot's instructions, which follow the same routes).
    ++run->report.counts[run->outcomes];
    ++run->report.shots;
    run->report.pairs_used += static_cast<uint64_t>(p.remote_cnots);
    run->report.simulated_time = context_.Now() - run->began;
    run->outcomes.clear();
    run->step = 0;
    const bool last = run->report.shots >= run->request.shots;
    for (const std::string& node : p.nodes) Deliver(node, absl::StrCat(last ? "END " : "FREE ", id));
    if (!last) {
      Post(lifetime_.Guard([this, id] { NextStep(id); }));
      return;
    }
    auto it = runs_.find(id);
    std::unique_ptr<CoordinatedRun> done = std::move(it->second);
    runs_.erase(it);
    queue_.erase(std::remove(queue_.begin(), queue_.end(), id), queue_.end());
    if (done->deadline != kNoTimer) context_.CancelTimer(done->deadline);
    Post([handler = std::move(done->handler), id, report = std::move(done->report)] { handler(id, report); });
    Post([this] { StartNext(); });
    return;
  }
  const CircuitInstruction& in = p.instructions[run->step];
  const CircuitQubit& q = p.qubits[static_cast<size_t>(in.qubit)];
  // Orders carry a sequence number over the whole run (not the step, which
  // repeats every shot), so a late or repeated message is never taken for
  // the current one.
  const uint64_t seq = Sequence(*run);
  switch (in.kind) {
    case CircuitInstruction::Kind::kGate:
      Deliver(q.node, absl::StrFormat("GATE %d %d %s %d %.17g", id, seq, q.name, static_cast<int>(in.gate.kind),
                                      in.gate.angle));
      return;
    case CircuitInstruction::Kind::kMeasure:
      Deliver(q.node, absl::StrCat("MEAS ", id, " ", seq, " ", q.name, " ", std::string(1, in.basis)));
      return;
    case CircuitInstruction::Kind::kCnot: {
      const CircuitQubit& t = p.qubits[static_cast<size_t>(in.target)];
      if (t.node == q.node) {
        Deliver(q.node, absl::StrCat("CX ", id, " ", seq, " ", q.name, " ", t.name));
      } else {
        const Duration left = std::max(Duration(1), run->deadline_at - context_.Now());
        Deliver(q.node, absl::StrFormat("RCX %d %d %s %s %s %.17g %d", id, seq, q.name, t.node, t.name,
                                        run->request.min_fidelity, ToNs(left)));
      }
      return;
    }
  }
}

uint64_t DistributedCircuit::Sequence(const CoordinatedRun& run) {
  return static_cast<uint64_t>(run.report.shots) * run.request.program.instructions.size() + run.step;
}

void DistributedCircuit::OnDone(const std::string& from, CircuitRunId id, uint64_t seq, int outcome, int pairs) {
  CoordinatedRun* run = FindRun(id);
  if (run == nullptr || run->step >= run->request.program.instructions.size() || seq != Sequence(*run)) return;
  const CircuitProgram& p = run->request.program;
  const CircuitInstruction& in = p.instructions[run->step];
  if (p.qubits[static_cast<size_t>(in.qubit)].node != from) return;  // only the instruction's node answers
  if (in.kind == CircuitInstruction::Kind::kMeasure) {
    if (outcome != 0 && outcome != 1) return;
    run->outcomes.push_back(outcome == 0 ? '0' : '1');
  }
  if (pairs > 0) run->report.pairs_discarded += static_cast<uint64_t>(pairs - 1);
  ++run->step;
  NextStep(id);
}

void DistributedCircuit::FailRun(CircuitRunId id, absl::Status error) {
  auto it = runs_.find(id);
  if (it == runs_.end()) return;
  std::unique_ptr<CoordinatedRun> run = std::move(it->second);
  runs_.erase(it);
  queue_.erase(std::remove(queue_.begin(), queue_.end(), id), queue_.end());
  if (run->deadline != kNoTimer) context_.CancelTimer(run->deadline);
  if (run->started) {
    for (const std::string& node : run->request.program.nodes) {
      Deliver(node, absl::StrCat("ABORT ", id, " ", StatusFields(error)));
    }
  }
  Post([handler = std::move(run->handler), id, error] { handler(id, error); });
  Post([this] { StartNext(); });
}

// ---------------------------------------------------------------- every node

void DistributedCircuit::OnDatagram(const std::string& source, const std::string& payload) {
  std::vector<std::string> f = absl::StrSplit(payload, ' ');
  if (f.size() < 2) return;
  const std::string& verb = f[0];
  // Between the two ends of a remote CNOT: the run is the coordinator's.
  if (verb == "RCXB" || verb == "DISCARD" || verb == "RCXZ" || verb == "RCXFAIL") {
    PartKey key{f[1], 0};
    uint64_t step = 0;
    if (f.size() < 4 || !absl::SimpleAtoi(f[2], &key.run)) return;
    if (verb == "DISCARD") {
      network::EndToEndId pair;
      if (f.size() != 7 || !ParsePair(f, 3, pair) || pair.head != source) return;
      const std::string pair_key = pair.ToString();
      if (target_halves_.contains(pair_key)) {
        FreeTargetHalf(pair_key);
      } else if (parts_.contains(key)) {
        Order discard;
        discard.key = key;
        discard.step = UINT64_MAX;  // marks a discard
        early_orders_[pair_key] = discard;
      }
      return;
    }
    if (!absl::SimpleAtoi(f[3], &step)) return;
    if (verb == "RCXZ") {
      int m2 = -1;
      if (f.size() == 5 && absl::SimpleAtoi(f[4], &m2) && (m2 == 0 || m2 == 1)) OnRemoteCnotZ(key, step, m2);
      return;
    }
    if (verb == "RCXFAIL") {
      int code = 0;
      Part* part = FindPart(key);
      if (part == nullptr || !part->busy || part->step != step || part->target_node != source || f.size() < 5 ||
          !absl::SimpleAtoi(f[4], &code) || code < 1 || code > 16) {
        return;
      }
      FreeSlot(part->half);
      part->busy = false;
      Report(key, step, absl::Status(static_cast<absl::StatusCode>(code), Tail(payload, 5)));
      return;
    }
    // RCXB
    network::EndToEndId pair;
    Order order;
    order.key = key;
    order.step = step;
    order.control_node = source;
    if (f.size() != 12 || !ParsePair(f, 4, pair) || pair.head != source || !absl::SimpleAtoi(f[8], &order.m1) ||
        !absl::SimpleAtoi(f[9], &order.x) || !absl::SimpleAtoi(f[10], &order.z) || (order.m1 | order.x | order.z) > 1 ||
        std::min({order.m1, order.x, order.z}) < 0) {
      return;
    }
    order.target = f[11];
    const std::string pair_key = pair.ToString();
    if (!parts_.contains(key)) {
      FreeTargetHalf(pair_key);
      return;
    }
    if (target_halves_.contains(pair_key)) {
      RunTargetSide(pair_key, order);
    } else {
      early_orders_[pair_key] = order;
    }
    return;
  }
  CircuitRunId id = 0;
  if (!absl::SimpleAtoi(f[1], &id)) return;
  const PartKey key{source, id};
  // Answers to this node as the coordinator.
  if (verb == "DONE") {
    uint64_t seq = 0;
    int outcome = 0, pairs = 0;
    if (f.size() == 5 && absl::SimpleAtoi(f[2], &seq) && absl::SimpleAtoi(f[3], &outcome) &&
        absl::SimpleAtoi(f[4], &pairs) && pairs >= 0 && pairs < 1000000) {
      OnDone(source, id, seq, outcome, pairs);
    }
    return;
  }
  if (verb == "FAIL") {
    uint64_t seq = 0;
    int code = 0;
    CoordinatedRun* run = FindRun(id);
    if (run == nullptr || f.size() < 4 || !absl::SimpleAtoi(f[2], &seq) || !absl::SimpleAtoi(f[3], &code) ||
        run->step >= run->request.program.instructions.size() || seq != Sequence(*run) || code <= 0 || code > 16) {
      return;
    }
    const CircuitInstruction& failed = run->request.program.instructions[run->step];
    // Only the node that was asked can fail the instruction.
    if (run->request.program.qubits[static_cast<size_t>(failed.qubit)].node != source) return;
    const int line = failed.line;
    FailRun(id, absl::Status(static_cast<absl::StatusCode>(code),
                             absl::StrCat(Tail(payload, 4), " (line ", line, ", at ", source, ")")));
    return;
  }
  // Orders from a coordinator.
  if (verb == "BEGIN") {
    int64_t ns = 0;
    if (f.size() == 3 && absl::SimpleAtoi(f[2], &ns) && ns > 0 && ns <= kMaxTimeoutNs) OnBegin(key, Duration(ns));
    return;
  }
  if (verb == "FREE" || verb == "END" || verb == "ABORT") {
    Part* part = FindPart(key);
    if (part == nullptr) return;
    if (verb == "FREE") {
      if (part->request != 0) (void)network_.Cancel(part->request);
      part->request = 0;
      FreeSlot(part->half);
      FreeQubits(*part);
      part->busy = false;
    } else {
      EndPart(key);
    }
    return;
  }
  uint64_t step = 0;
  if (f.size() < 4 || !absl::SimpleAtoi(f[2], &step)) return;
  if (verb == "GATE" && f.size() == 6) {
    int kind = -1;
    double angle = 0;
    if (!absl::SimpleAtoi(f[4], &kind) || kind < 0 || kind > static_cast<int>(physical::Gate::Kind::kRz) ||
        !absl::SimpleAtod(f[5], &angle) || !std::isfinite(angle)) {
      return;
    }
    OnGate(key, step, f[3], physical::Gate{static_cast<physical::Gate::Kind>(kind), angle});
  } else if (verb == "CX" && f.size() == 5) {
    OnLocalCnot(key, step, f[3], f[4]);
  } else if (verb == "MEAS" && f.size() == 5 && f[4].size() == 1 && std::string("xyz").find(f[4][0]) != std::string::npos) {
    OnMeasure(key, step, f[3], f[4][0]);
  } else if (verb == "RCX" && f.size() == 8) {
    double min_fidelity = 0;
    int64_t ns = 0;
    if (!absl::SimpleAtod(f[6], &min_fidelity) || !(min_fidelity >= 0 && min_fidelity <= 1) ||
        !absl::SimpleAtoi(f[7], &ns) || ns <= 0 || ns > kMaxTimeoutNs || f[4] == Where()) {
      return;
    }
    OnRemoteCnot(key, step, f[3], f[4], f[5], min_fidelity, Duration(ns));
  }
}

void DistributedCircuit::Deliver(const std::string& to, std::string payload) {
  if (to == Where()) {
    Post(lifetime_.Guard([this, payload = std::move(payload)] { OnDatagram(Where(), payload); }));
    return;
  }
  Send(to, std::move(payload));
}

bool DistributedCircuit::Accept(Part* part, uint64_t seq) {
  // One instruction at a time, each once: a repeated or late order is dropped.
  if (part == nullptr || part->busy || (part->executed && seq <= part->last_seq)) return false;
  part->executed = true;
  part->last_seq = seq;
  return true;
}

DistributedCircuit::Part* DistributedCircuit::FindPart(const PartKey& key) {
  auto it = parts_.find(key);
  return it == parts_.end() ? nullptr : &it->second;
}

void DistributedCircuit::OnBegin(const PartKey& key, Duration timeout) {
  if (parts_.contains(key)) return;
  // A coordinator runs its requests one after the other; more open at once
  // is a misbehaving peer: not kept.
  int from_coordinator = 0;
  for (const auto& [k, part] : parts_) from_coordinator += k.coordinator == key.coordinator ? 1 : 0;
  if (from_coordinator >= kMaxOpenCircuitRunsPerPeer) return;
  Part& part = parts_[key];
  // The coordinator's deadline fires first; this one frees what is held here
  // when the coordinator can no longer say so (it died).
  part.deadline = context_.StartTimer(timeout, lifetime_.Guard([this, key] {
    Part* p = FindPart(key);
    if (p == nullptr) return;
    p->deadline = kNoTimer;
    EndPart(key);
  }));
}

absl::StatusOr<int> DistributedCircuit::Qubit(Part& part, const std::string& name) {
  auto it = part.qubits.find(name);
  if (it != part.qubits.end()) return it->second;
  absl::StatusOr<int> slot = device_.Allocate();
  if (!slot.ok()) {
    return absl::ResourceExhaustedError(absl::StrCat("NO_RESOURCES: node ", Where(),
                                                     " has no free memory qubit for ", name, ": ",
                                                     slot.status().message()));
  }
  part.qubits[name] = *slot;
  return *slot;
}

void DistributedCircuit::Report(const PartKey& key, uint64_t step, absl::Status status, int outcome, int pairs) {
  Part* part = FindPart(key);
  if (part != nullptr) part->busy = false;
  if (status.ok()) {
    Deliver(key.coordinator, absl::StrCat("DONE ", key.run, " ", step, " ", outcome, " ", pairs));
  } else {
    Deliver(key.coordinator, absl::StrCat("FAIL ", key.run, " ", step, " ", StatusFields(status)));
  }
}

void DistributedCircuit::OnGate(const PartKey& key, uint64_t step, const std::string& qubit,
                                const physical::Gate& gate) {
  Part* part = FindPart(key);
  if (!Accept(part, step)) return;
  absl::StatusOr<int> slot = Qubit(*part, qubit);
  if (!slot.ok()) {
    Report(key, step, slot.status());
    return;
  }
  part->busy = true;
  device_.ApplyGate(*slot, gate, lifetime_.Guard([this, key, step](absl::Status s) {
    if (FindPart(key) == nullptr) return;
    Report(key, step, s.ok() ? s : absl::InternalError(absl::StrCat("DEVICE_ERROR: ", s.message())));
  }));
}

void DistributedCircuit::OnLocalCnot(const PartKey& key, uint64_t step, const std::string& control,
                                     const std::string& target) {
  Part* part = FindPart(key);
  if (control == target || !Accept(part, step)) return;
  absl::StatusOr<int> c = Qubit(*part, control);
  absl::StatusOr<int> t = c.ok() ? Qubit(*part, target) : c;
  if (!t.ok()) {
    Report(key, step, t.status());
    return;
  }
  part->busy = true;
  device_.ApplyTwoQubitGate(*c, *t, physical::TwoQubitGate::kCnot, lifetime_.Guard([this, key, step](absl::Status s) {
    if (FindPart(key) == nullptr) return;
    Report(key, step, s.ok() ? s : absl::InternalError(absl::StrCat("DEVICE_ERROR: ", s.message())));
  }));
}

void DistributedCircuit::OnMeasure(const PartKey& key, uint64_t step, const std::string& qubit, char basis) {
  Part* part = FindPart(key);
  if (!Accept(part, step)) return;
  absl::StatusOr<int> slot = Qubit(*part, qubit);
  if (!slot.ok()) {
    Report(key, step, slot.status());
    return;
  }
  part->busy = true;
  device_.Measure(*slot, BasisOf(basis), lifetime_.Guard([this, key, step](absl::StatusOr<int> m) {
    if (FindPart(key) == nullptr) return;
    if (!m.ok()) {
      Report(key, step, absl::InternalError(absl::StrCat("DEVICE_ERROR: ", m.status().message())));
      return;
    }
    Report(key, step, absl::OkStatus(), *m);
  }));
}

// ---------------------------------------------------------------- remote CNOT

void DistributedCircuit::OnRemoteCnot(const PartKey& key, uint64_t step, const std::string& control,
                                      const std::string& target_node, const std::string& target, double min_fidelity,
                                      Duration max_time) {
  Part* part = FindPart(key);
  if (!Accept(part, step)) return;
  absl::StatusOr<int> c = Qubit(*part, control);
  if (!c.ok()) {
    Report(key, step, c.status());
    return;
  }
  part->busy = true;
  part->step = step;
  part->control = control;
  part->target_node = target_node;
  part->target = target;
  part->min_fidelity = min_fidelity;
  part->pair_deadline = context_.Now() + max_time;
  part->pairs_discarded = 0;
  FreeSlot(part->half);
  RequestPair(key);
}

void DistributedCircuit::RequestPair(const PartKey& key) {
  Part* part = FindPart(key);
  if (part == nullptr) return;
  network::EndToEndRequest r;
  r.remote_node = part->target_node;
  r.number = 1;
  r.type = link::RequestType::kKeep;
  r.min_fidelity = part->min_fidelity;
  r.max_time = std::max(Duration(1), part->pair_deadline - context_.Now());
  r.purpose_id = kCircuitPurposeId;
  absl::StatusOr<network::RequestId> request = network_.Create(
      r, lifetime_.Guard([this, key](const network::NetworkEvent& event) { OnPairAsControl(key, event); }));
  if (!request.ok()) {
    Report(key, part->step, request.status());
    return;
  }
  part->request = *request;
}

void DistributedCircuit::OnPairAsControl(const PartKey& key, const network::NetworkEvent& event) {
  Part* part = FindPart(key);
  if (const auto* p = std::get_if<network::PairDelivered>(&event)) {
    int slot = p->slot;
    if (part == nullptr || part->request != p->request_id || part->half >= 0) {
      FreeSlot(slot);
      Send(p->remote_node, absl::StrCat("DISCARD ", key.coordinator, " ", key.run, " ", PairFields(p->id)));
      return;
    }
    if (p->fidelity_estimate < part->min_fidelity) {
      FreeSlot(slot);
      ++part->pairs_discarded;
      Send(p->remote_node, absl::StrCat("DISCARD ", key.coordinator, " ", key.run, " ", PairFields(p->id)));
      return;  // asked for again when the request completes
    }
    part->half = slot;
    part->request = 0;
    part->pair = p->id;
    part->frame = p->bell_state;
    const uint64_t step = part->step;
    auto control = part->qubits.find(part->control);
    if (control == part->qubits.end()) return;  // freed meanwhile (FREE)
    device_.ApplyTwoQubitGate(
        control->second, part->half, physical::TwoQubitGate::kCnot,
        lifetime_.Guard([this, key, step](absl::Status s) {
          Part* q = FindPart(key);
          if (q == nullptr || q->step != step || q->half < 0) return;
          if (!s.ok()) {
            FreeSlot(q->half);
            Report(key, step, absl::InternalError(absl::StrCat("DEVICE_ERROR: remote CNOT: ", s.message())));
            return;
          }
          device_.Measure(q->half, quantum::Basis::Z(), lifetime_.Guard([this, key, step](absl::StatusOr<int> m1) {
            Part* r = FindPart(key);
            if (r == nullptr || r->step != step || r->half < 0) return;
            FreeSlot(r->half);
            if (!m1.ok()) {
              Report(key, step, absl::InternalError(absl::StrCat("DEVICE_ERROR: remote CNOT: ", m1.status().message())));
              return;
            }
            Send(r->target_node, absl::StrCat("RCXB ", key.coordinator, " ", key.run, " ", step, " ",
                                              PairFields(r->pair), " ", *m1, " ", quantum::XBit(r->frame), " ",
                                              quantum::ZBit(r->frame), " ", r->target));
          }));
        }));
    return;
  }
  if (part == nullptr) return;
  if (const auto* c = std::get_if<network::RequestCompleted>(&event)) {
    if (part->request == c->request_id && part->half < 0) {
      part->request = 0;
      RequestPair(key);  // its pair was discarded
    }
    return;
  }
  if (const auto* f = std::get_if<network::RequestFailed>(&event)) {
    if (part->request != f->request_id) return;
    part->request = 0;
    Report(key, part->step,
           network::ToStatus(f->error, absl::StrCat("remote CNOT from ", Where(), " to ", part->target_node,
                                                    ": no end-to-end pair: ", f->message)));
  }
}

void DistributedCircuit::OnPairAsTarget(const network::NetworkEvent& event) {
  const auto* p = std::get_if<network::PairDelivered>(&event);
  if (p == nullptr) return;  // the control end owns the request
  int slot = p->slot;
  if (parts_.empty() || p->type != link::RequestType::kKeep || slot < 0) {
    FreeSlot(slot);  // no circuit runs here
    return;
  }
  const std::string pair_key = p->id.ToString();
  target_halves_[pair_key] = TargetHalf{p->remote_node, slot};
  auto early = early_orders_.find(pair_key);
  if (early != early_orders_.end()) {
    Order order = early->second;
    early_orders_.erase(early);
    if (order.step == UINT64_MAX) {
      FreeTargetHalf(pair_key);
    } else {
      RunTargetSide(pair_key, order);
    }
  }
}

void DistributedCircuit::RunTargetSide(const std::string& pair_key, const Order& order) {
  auto half = target_halves_.find(pair_key);
  Part* part = FindPart(order.key);
  if (half == target_halves_.end() || half->second.in_use) return;  // a repeated RCXB
  if (part == nullptr) {
    FreeTargetHalf(pair_key);
    return;
  }
  half->second.in_use = true;
  half->second.claimed = true;
  half->second.key = order.key;
  const int b = half->second.slot;
  const PartKey key = order.key;
  auto fail = [this, key, order, pair_key](const absl::Status& s) {
    FreeTargetHalf(pair_key);
    Send(order.control_node,
         absl::StrCat("RCXFAIL ", key.coordinator, " ", key.run, " ", order.step, " ", StatusFields(s)));
  };
  absl::StatusOr<int> t = Qubit(*part, order.target);
  if (!t.ok()) {
    fail(t.status());
    return;
  }
  const int target = *t;
  // X^(m1 ^ x) Z^z: b now carries the control's Z value.
  device_.ApplyPauli(b, order.m1 ^ order.x, order.z, lifetime_.Guard([this, key, order, pair_key, b, target, fail](
                                                                       absl::Status s) {
    if (!target_halves_.contains(pair_key)) return;
    if (FindPart(key) == nullptr) {
      FreeTargetHalf(pair_key);  // the run ended meanwhile
      return;
    }
    if (!s.ok()) {
      fail(absl::InternalError(absl::StrCat("DEVICE_ERROR: remote CNOT at ", Where(), ": ", s.message())));
      return;
    }
    device_.ApplyTwoQubitGate(b, target, physical::TwoQubitGate::kCnot,
                              lifetime_.Guard([this, key, order, pair_key, b, fail](absl::Status s2) {
      if (!target_halves_.contains(pair_key)) return;
      if (FindPart(key) == nullptr) {
        FreeTargetHalf(pair_key);
        return;
      }
      if (!s2.ok()) {
        fail(absl::InternalError(absl::StrCat("DEVICE_ERROR: remote CNOT at ", Where(), ": ", s2.message())));
        return;
      }
      device_.Measure(b, quantum::Basis::X(), lifetime_.Guard([this, key, order, pair_key, fail](absl::StatusOr<int> m2) {
        if (!target_halves_.contains(pair_key)) return;
        if (FindPart(key) == nullptr) {
          FreeTargetHalf(pair_key);
          return;
        }
        if (!m2.ok()) {
          fail(absl::InternalError(absl::StrCat("DEVICE_ERROR: remote CNOT at ", Where(), ": ", m2.status().message())));
          return;
        }
        FreeTargetHalf(pair_key);
        Send(order.control_node, absl::StrCat("RCXZ ", key.coordinator, " ", key.run, " ", order.step, " ", *m2));
      }));
    }));
  }));
}

void DistributedCircuit::OnRemoteCnotZ(const PartKey& key, uint64_t step, int m2) {
  Part* part = FindPart(key);
  if (part == nullptr || !part->busy || part->step != step || part->half >= 0 || part->request != 0) return;
  auto control = part->qubits.find(part->control);
  if (control == part->qubits.end()) return;
  device_.ApplyPauli(control->second, 0, m2, lifetime_.Guard([this, key, step](absl::Status s) {
    Part* p = FindPart(key);
    if (p == nullptr || p->step != step) return;
    Report(key, step, s.ok() ? s : absl::InternalError(absl::StrCat("DEVICE_ERROR: remote CNOT: ", s.message())), -1,
           1 + p->pairs_discarded);
  }));
}

void DistributedCircuit::FreeQubits(Part& part) {
  for (auto& [name, slot] : part.qubits) {
    int s = slot;
    FreeSlot(s);
  }
  part.qubits.clear();
}

void DistributedCircuit::EndPart(const PartKey& key) {
  auto it = parts_.find(key);
  if (it == parts_.end()) return;
  Part& part = it->second;
  if (part.deadline != kNoTimer) context_.CancelTimer(part.deadline);
  if (part.request != 0) (void)network_.Cancel(part.request);
  FreeSlot(part.half);
  FreeQubits(part);
  parts_.erase(it);
  // Halves this run claimed go now; unclaimed ones when no run is left that
  // could claim them.
  std::vector<std::string> held;
  for (const auto& [pair_key, half] : target_halves_) {
    if ((half.claimed && half.key == key) || parts_.empty()) held.push_back(pair_key);
  }
  for (const std::string& pair_key : held) FreeTargetHalf(pair_key);
  std::vector<std::string> stale;
  for (const auto& [pair_key, order] : early_orders_) {
    if (order.key == key || parts_.empty()) stale.push_back(pair_key);
  }
  for (const std::string& pair_key : stale) early_orders_.erase(pair_key);
}

void DistributedCircuit::FreeTargetHalf(const std::string& pair_key) {
  auto it = target_halves_.find(pair_key);
  if (it == target_halves_.end()) return;
  FreeSlot(it->second.slot);
  target_halves_.erase(it);
}

// ---------------------------------------------------------------- plumbing

void DistributedCircuit::Send(const std::string& to, std::string payload) {
  // Best effort: without a route the far end learns by its own deadline.
  (void)network_.SendDatagram(to, kCircuitPurposeId, std::move(payload));
}

void DistributedCircuit::Post(std::function<void()> fn) {
  context_.StartTimer(Duration(0), lifetime_.Guard(std::move(fn)));
}

void DistributedCircuit::FreeSlot(int& slot) {
  if (slot >= 0 && device_.IsAllocated(slot)) (void)device_.Free(slot);
  slot = -1;
}

}  // namespace qnet::transport
