#include "transport/ghz_distribution.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace qnet::transport {
namespace {

// Datagram payloads, one line of space-separated fields:
//   root -> member:
//     BEGIN <run> <timeout_ns>
//     MEASURE <run> <shot> <head> <tail> <circuit> <sequence> <x> <z> <X|Y|Z>
//     DISCARD <run> <head> <tail> <circuit> <sequence>
//     END <run>
//     ABORT <run> <status code> <message...>
//   member -> root:
//     OUTCOME <run> <shot> <0|1>
//     REFUSE <run> <status code> <message...>

std::string PairFields(const network::EndToEndId& id) {
  return absl::StrCat(id.head, " ", id.tail, " ", id.circuit, " ", id.sequence);
}

std::string StatusFields(const absl::Status& s) {
  return absl::StrCat(static_cast<int>(s.code()), " ", std::string(s.message()));
}

quantum::Basis BasisOf(char b) {
  switch (b) {
    case 'X':
      return quantum::Basis::X();
    case 'Y':
      return quantum::Basis::Y();
    default:
      return quantum::Basis::Z();
  }
}

bool ParsePair(const std::vector<std::string>& f, size_t at, network::EndToEndId& pair) {
  if (f.size() < at + 4) return false;
  pair.head = f[at];
  pair.tail = f[at + 1];
  return absl::SimpleAtoi(f[at + 2], &pair.circuit) && absl::SimpleAtoi(f[at + 3], &pair.sequence);
}

}  // namespace

std::vector<std::string> GhzSettings(int nodes) {
  std::vector<std::string> settings;
  if (nodes < 1 || nodes > kMaxGhzNodes) return settings;
  settings.push_back(std::string(static_cast<size_t>(nodes), 'Z'));
  for (uint32_t mask = 0; mask < (1u << nodes); ++mask) {
    if (__builtin_popcount(mask) % 2 != 0) continue;
    std::string s(static_cast<size_t>(nodes), 'X');
    for (int i = 0; i < nodes; ++i) {
      if ((mask >> i) & 1u) s[static_cast<size_t>(i)] = 'Y';
    }
    settings.push_back(std::move(s));
  }
  return settings;
}

int FrameFlip(int x, int z, char basis) {
  // X anticommutes with Z and Y, Z with X and Y.
  switch (basis) {
    case 'X':
      return z & 1;
    case 'Y':
      return (x ^ z) & 1;
    default:
      return x & 1;
  }
}

absl::StatusOr<std::unique_ptr<GhzDistribution>> GhzDistribution::Build(NodeContext& context,
                                                                        physical::QuantumDevice& device,
                                                                        network::NetworkLayer& network) {
  std::unique_ptr<GhzDistribution> ghz(new GhzDistribution(context, device, network));
  GhzDistribution* self = ghz.get();
  absl::Status s = network.RegisterReceiver(
      kGhzPurposeId, [self](const network::NetworkEvent& event) { self->OnNetworkEventAsMember(event); });
  if (!s.ok()) {
    return absl::AlreadyExistsError(
        absl::StrCat("GHZ distribution cannot receive pairs on purpose id ", kGhzPurposeId, ": ", s.message()));
  }
  s = network.RegisterDatagramReceiver(
      kGhzPurposeId, [self](const std::string& source, const std::string& payload) { self->OnDatagram(source, payload); });
  if (!s.ok()) {
    (void)network.UnregisterReceiver(kGhzPurposeId);
    return absl::AlreadyExistsError(
        absl::StrCat("GHZ distribution cannot receive datagrams on purpose id ", kGhzPurposeId, ": ", s.message()));
  }
  return ghz;
}

GhzDistribution::GhzDistribution(NodeContext& context, physical::QuantumDevice& device,
                                 network::NetworkLayer& network)
    : context_(context), device_(device), network_(network) {
  // As the transport layer: a restarted root numbers its runs from its clock,
  // so no member mistakes a new run for one of the previous incarnation's.
  const int64_t now_us = std::max<int64_t>(0, context.Now().time_since_epoch().count() / 1000);
  next_id_ = (static_cast<uint64_t>(now_us) << 16) + 1;
}

GhzDistribution::~GhzDistribution() {
  lifetime_.End();
  for (auto& [id, run] : runs_) {
    if (run.deadline != kNoTimer) context_.CancelTimer(run.deadline);
    for (Half& h : run.halves) {
      if (h.request != 0) (void)network_.Cancel(h.request);
      FreeSlot(h.slot);
    }
  }
  for (auto& [key, m] : member_runs_) {
    if (m.deadline != kNoTimer) context_.CancelTimer(m.deadline);
  }
  for (auto& [key, half] : member_halves_) FreeSlot(half.slot);
  (void)network_.UnregisterReceiver(kGhzPurposeId);
  (void)network_.UnregisterDatagramReceiver(kGhzPurposeId);
}

uint32_t GhzDistribution::shots_done(GhzRunId id) const {
  auto it = runs_.find(id);
  return it == runs_.end() ? 0 : it->second.report.shots;
}

int GhzDistribution::held_slots() const {
  int n = 0;
  for (const auto& [id, run] : runs_) {
    for (const Half& h : run.halves) n += h.slot >= 0 ? 1 : 0;
  }
  for (const auto& [key, half] : member_halves_) n += half.slot >= 0 ? 1 : 0;
  return n;
}

// ---------------------------------------------------------------- root

absl::StatusOr<GhzRunId> GhzDistribution::Run(const GhzRequest& request, GhzHandler handler) {
  const size_t nodes = request.members.size() + 1;
  if (request.members.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("a GHZ state needs at least 3 nodes (the root ", Where(), " and 2 members), not ", nodes));
  }
  if (nodes > static_cast<size_t>(kMaxGhzNodes)) {
    return absl::InvalidArgumentError(absl::StrCat("a GHZ state here spans at most ", kMaxGhzNodes, " nodes, not ", nodes));
  }
  absl::flat_hash_set<std::string> seen;
  for (const std::string& m : request.members) {
    if (m == Where()) {
      return absl::InvalidArgumentError(absl::StrCat("node ", Where(), " is the root; list only the other nodes"));
    }
    if (!seen.insert(m).second) return absl::InvalidArgumentError(absl::StrCat("node '", m, "' is listed twice"));
  }
  if (request.shots == 0) return absl::InvalidArgumentError("a GHZ request needs at least 1 shot");
  if (!(request.min_fidelity >= 0.0 && request.min_fidelity <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("min_fidelity must be in [0, 1], not ", request.min_fidelity));
  }
  if (request.timeout <= Duration(0)) return absl::InvalidArgumentError("a GHZ request needs a positive timeout");
  if (!handler) return absl::InvalidArgumentError("a GHZ request needs a handler for its outcome");
  for (const std::string& m : request.members) {
    absl::StatusOr<network::Route> route = network_.routes().PathTo(Where(), m);
    if (!route.ok()) {
      return network::ToStatus(network::NetworkError::kNoRoute,
                               absl::StrCat("no GHZ state with '", m, "': ", route.status().message()));
    }
  }
  const GhzRunId id = next_id_++;
  RootRun& run = runs_[id];
  run.id = id;
  run.request = request;
  run.handler = std::move(handler);
  run.deadline_at = context_.Now() + request.timeout;
  run.deadline = context_.StartTimer(request.timeout, lifetime_.Guard([this, id] {
    RootRun* r = FindRun(id);
    if (r == nullptr) return;
    r->deadline = kNoTimer;
    const double seconds = std::chrono::duration<double>(r->request.timeout).count();
    FailRun(id,
            absl::DeadlineExceededError(absl::StrCat("TIMEOUT: GHZ request ", id, " measured ", r->report.shots, " of ",
                                                     r->request.shots, " shots within ", seconds, " s")),
            true);
  }));
  queue_.push_back(id);
  Post([this] { StartNext(); });
  return id;
}

void GhzDistribution::Cancel(GhzRunId id) {
  FailRun(id, absl::CancelledError(absl::StrCat("GHZ request ", id, " was cancelled at ", Where())), true);
}

GhzDistribution::RootRun* GhzDistribution::FindRun(GhzRunId id) {
  auto it = runs_.find(id);
  return it == runs_.end() ? nullptr : &it->second;
}

void GhzDistribution::StartNext() {
  if (queue_.empty()) return;
  RootRun* run = FindRun(queue_.front());
  if (run == nullptr || run->phase != Phase::kQueued) return;
  const int nodes = static_cast<int>(run->request.members.size()) + 1;
  run->settings = GhzSettings(nodes);
  run->report.id = run->id;
  run->report.nodes = {Where()};
  run->report.nodes.insert(run->report.nodes.end(), run->request.members.begin(), run->request.members.end());
  for (const std::string& s : run->settings) {
    run->report.settings.push_back(GhzSettingCounts{s, 0, std::vector<uint64_t>(size_t{1} << nodes, 0)});
  }
  run->halves.assign(run->request.members.size(), Half{});
  run->started = context_.Now();
  const Duration left = std::max(Duration(1), run->deadline_at - context_.Now());
  for (const std::string& m : run->request.members) {
    Send(m, absl::StrCat("BEGIN ", run->id, " ", std::chrono::duration_cast<Duration>(left).count()));
  }
  StartShot(*run);
}

void GhzDistribution::StartShot(RootRun& run) {
  run.phase = Phase::kWaitingPairs;
  run.root_outcome = -1;
  run.member_outcomes.assign(run.request.members.size(), -1);
  const GhzRunId id = run.id;
  for (size_t i = 0; i < run.request.members.size(); ++i) {
    RootRun* r = FindRun(id);
    if (r == nullptr || r->phase != Phase::kWaitingPairs) return;  // a request failed at once
    RequestPair(*r, i);
  }
}

void GhzDistribution::RequestPair(RootRun& run, size_t member) {
  const GhzRunId id = run.id;
  network::EndToEndRequest r;
  r.remote_node = run.request.members[member];
  r.number = 1;
  r.type = link::RequestType::kKeep;
  r.min_fidelity = run.request.min_fidelity;
  r.max_time = std::max(Duration(1), run.deadline_at - context_.Now());
  r.purpose_id = kGhzPurposeId;
  absl::StatusOr<network::RequestId> request =
      network_.Create(r, lifetime_.Guard([this, id, member](const network::NetworkEvent& event) {
        OnNetworkEventAsRoot(id, member, event);
      }));
  if (!request.ok()) {
    FailRun(id, request.status(), true);
    return;
  }
  run.halves[member].request = *request;
}

void GhzDistribution::OnNetworkEventAsRoot(GhzRunId id, size_t member, const network::NetworkEvent& event) {
  RootRun* run = FindRun(id);
  if (const auto* p = std::get_if<network::PairDelivered>(&event)) {
    int slot = p->slot;
    if (run == nullptr || run->phase != Phase::kWaitingPairs || run->halves[member].request != p->request_id ||
        run->halves[member].slot >= 0) {
      FreeSlot(slot);  // the run (or this shot's need for the pair) ended meanwhile
      Send(p->remote_node, absl::StrCat("DISCARD ", id, " ", PairFields(p->id)));
      return;
    }
    if (p->fidelity_estimate < run->request.min_fidelity) {
      FreeSlot(slot);
      ++run->report.pairs_discarded;
      Send(p->remote_node, absl::StrCat("DISCARD ", id, " ", PairFields(p->id)));
      return;  // asked for again when the request completes
    }
    Half& h = run->halves[member];
    h.slot = slot;
    h.request = 0;  // it completes on its own; its end is no news
    h.pair = p->id;
    h.frame = p->bell_state;
    h.fusion_outcome = 0;
    run->estimate_sum += p->fidelity_estimate;
    for (const Half& other : run->halves) {
      if (other.slot < 0) return;
    }
    run->phase = Phase::kFusing;
    Fuse(id, 1);
    return;
  }
  if (run == nullptr) return;
  if (const auto* c = std::get_if<network::RequestCompleted>(&event)) {
    Half& h = run->halves[member];
    if (h.request == c->request_id && h.slot < 0 && run->phase == Phase::kWaitingPairs) {
      h.request = 0;
      RequestPair(*run, member);  // its pair was discarded
    }
    return;
  }
  if (const auto* f = std::get_if<network::RequestFailed>(&event)) {
    if (run->halves[member].request != f->request_id) return;
    run->halves[member].request = 0;
    FailRun(id,
            network::ToStatus(f->error, absl::StrCat("GHZ request ", id, ": no end-to-end pair with ",
                                                     run->request.members[member], ": ", f->message)),
            true);
  }
}

void GhzDistribution::Fuse(GhzRunId id, size_t member) {
  RootRun* run = FindRun(id);
  if (run == nullptr || run->phase != Phase::kFusing) return;
  if (member >= run->halves.size()) {
    MeasureRoot(id);
    return;
  }
  auto device_error = [this, id](const absl::Status& s) {
    FailRun(id, absl::InternalError(absl::StrCat("DEVICE_ERROR: fusing GHZ request ", id, ": ", s.message())), true);
  };
  device_.ApplyTwoQubitGate(
      run->halves[0].slot, run->halves[member].slot, physical::TwoQubitGate::kCnot,
      lifetime_.Guard([this, id, member, device_error](absl::Status s) {
        RootRun* r = FindRun(id);
        if (r == nullptr || r->phase != Phase::kFusing) return;
        if (!s.ok()) {
          device_error(s);
          return;
        }
        device_.Measure(r->halves[member].slot, quantum::Basis::Z(),
                        lifetime_.Guard([this, id, member, device_error](absl::StatusOr<int> m) {
                          RootRun* r2 = FindRun(id);
                          if (r2 == nullptr || r2->phase != Phase::kFusing) return;
                          if (!m.ok()) {
                            device_error(m.status());
                            return;
                          }
                          r2->halves[member].fusion_outcome = *m;
                          FreeSlot(r2->halves[member].slot);
                          Fuse(id, member + 1);
                        }));
      }));
}

void GhzDistribution::MeasureRoot(GhzRunId id) {
  RootRun* run = FindRun(id);
  if (run == nullptr) return;
  const char root_basis = run->settings[run->report.shots % run->settings.size()][0];
  device_.Measure(run->halves[0].slot, BasisOf(root_basis), lifetime_.Guard([this, id](absl::StatusOr<int> m) {
    RootRun* r = FindRun(id);
    if (r == nullptr || r->phase != Phase::kFusing) return;
    if (!m.ok()) {
      FailRun(id, absl::InternalError(absl::StrCat("DEVICE_ERROR: measuring GHZ request ", id, ": ", m.status().message())),
              true);
      return;
    }
    r->root_outcome = *m;
    FreeSlot(r->halves[0].slot);
    r->phase = Phase::kWaitingOutcomes;
    const uint32_t shot = r->report.shots;
    const std::string& setting = r->settings[shot % r->settings.size()];
    for (size_t i = 0; i < r->halves.size(); ++i) {
      const Half& h = r->halves[i];
      const int x = quantum::XBit(h.frame) ^ h.fusion_outcome;  // fusion_outcome is 0 for the kept half
      const int z = quantum::ZBit(h.frame);
      Send(r->request.members[i],
           absl::StrCat("MEASURE ", id, " ", shot, " ", PairFields(h.pair), " ", x, " ", z, " ",
                        std::string(1, setting[i + 1])));
    }
  }));
}

void GhzDistribution::OnOutcome(const std::string& member, GhzRunId id, uint32_t shot, int bit) {
  RootRun* run = FindRun(id);
  if (run == nullptr || run->phase != Phase::kWaitingOutcomes || shot != run->report.shots) return;
  const auto& members = run->request.members;
  const size_t i = static_cast<size_t>(std::find(members.begin(), members.end(), member) - members.begin());
  if (i >= members.size() || run->member_outcomes[i] != -1) return;
  run->member_outcomes[i] = bit;
  for (int b : run->member_outcomes) {
    if (b < 0) return;
  }
  uint64_t pattern = static_cast<uint64_t>(run->root_outcome);
  for (size_t j = 0; j < members.size(); ++j) pattern |= static_cast<uint64_t>(run->member_outcomes[j]) << (j + 1);
  GhzSettingCounts& counts = run->report.settings[shot % run->settings.size()];
  ++counts.counts[pattern];
  ++counts.shots;
  ++run->report.shots;
  run->report.pairs_used += members.size();
  run->report.simulated_time = context_.Now() - run->started;
  if (run->report.shots < run->request.shots) {
    StartShot(*run);
    return;
  }
  auto it = runs_.find(id);
  RootRun done = std::move(it->second);
  runs_.erase(it);
  queue_.erase(std::remove(queue_.begin(), queue_.end(), id), queue_.end());
  if (done.deadline != kNoTimer) context_.CancelTimer(done.deadline);
  for (const std::string& m : done.request.members) Send(m, absl::StrCat("END ", id));
  done.report.mean_pair_fidelity_estimate =
      done.report.pairs_used == 0 ? 0.0 : done.estimate_sum / static_cast<double>(done.report.pairs_used);
  ++stats_.runs_done;
  Post([handler = std::move(done.handler), id, report = std::move(done.report)] { handler(id, report); });
  Post([this] { StartNext(); });
}

void GhzDistribution::FailRun(GhzRunId id, absl::Status error, bool tell_members) {
  auto it = runs_.find(id);
  if (it == runs_.end()) return;
  RootRun run = std::move(it->second);
  runs_.erase(it);
  queue_.erase(std::remove(queue_.begin(), queue_.end(), id), queue_.end());
  if (run.deadline != kNoTimer) context_.CancelTimer(run.deadline);
  for (Half& h : run.halves) {
    if (h.request != 0) (void)network_.Cancel(h.request);
    FreeSlot(h.slot);
  }
  if (tell_members) {
    for (const std::string& m : run.request.members) Send(m, absl::StrCat("ABORT ", id, " ", StatusFields(error)));
  }
  ++stats_.runs_failed;
  Post([handler = std::move(run.handler), id, error] { handler(id, error); });
  Post([this] { StartNext(); });
}

// ---------------------------------------------------------------- member

void GhzDistribution::OnNetworkEventAsMember(const network::NetworkEvent& event) {
  const auto* p = std::get_if<network::PairDelivered>(&event);
  if (p == nullptr) return;  // the root owns the requests
  int slot = p->slot;
  bool expected = false;
  for (const auto& [key, run] : member_runs_) expected = expected || key.root == p->remote_node;
  if (!expected || p->type != link::RequestType::kKeep || slot < 0) {
    FreeSlot(slot);  // no GHZ request from that node is open here
    return;
  }
  const std::string key = p->id.ToString();
  member_halves_[key] = MemberHalf{p->remote_node, slot};
  auto early = early_orders_.find(key);
  if (early != early_orders_.end()) {
    MeasureOrder order = early->second;
    early_orders_.erase(early);
    OnMeasureOrder(key, order);
  }
}

void GhzDistribution::OnDatagram(const std::string& source, const std::string& payload) {
  std::vector<std::string> f = absl::StrSplit(payload, ' ');
  GhzRunId id = 0;
  if (f.size() < 2 || !absl::SimpleAtoi(f[1], &id)) return;  // not ours to parse
  const std::string& verb = f[0];
  if (verb == "BEGIN" && f.size() == 3) {
    int64_t ns = 0;
    // At most a request's largest timeout (core/time.h): a larger one would
    // overflow the clock's arithmetic.
    if (absl::SimpleAtoi(f[2], &ns) && ns > 0 && ns <= static_cast<int64_t>(kMaxRequestTimeoutS * 1e9)) {
      OnBegin(source, id, Duration(ns));
    }
    return;
  }
  if (verb == "OUTCOME" && f.size() == 4) {
    uint32_t shot = 0;
    int bit = -1;
    if (absl::SimpleAtoi(f[2], &shot) && absl::SimpleAtoi(f[3], &bit) && (bit == 0 || bit == 1)) {
      OnOutcome(source, id, shot, bit);
    }
    return;
  }
  if (verb == "END" || verb == "ABORT") {
    const MemberKey key{source, id};
    if (!member_runs_.contains(key)) return;
    if (verb == "ABORT") ++stats_.runs_failed;
    EndMemberRun(key);
    return;
  }
  if (verb == "REFUSE") {
    int code = 0;
    // Only an error code: OK (0) or an unknown value would end a run as if it succeeded.
    if (f.size() < 3 || !absl::SimpleAtoi(f[2], &code) || code < 1 || code > 16) return;
    std::vector<std::string> parts = absl::StrSplit(payload, absl::MaxSplits(' ', 3));
    RootRun* run = FindRun(id);
    if (run == nullptr) return;
    const auto& m = run->request.members;
    if (std::find(m.begin(), m.end(), source) == m.end()) return;
    FailRun(id,
            absl::Status(static_cast<absl::StatusCode>(code),
                         absl::StrCat(parts.size() == 4 ? parts[3] : "", " (reported by ", source, ")")),
            true);
    return;
  }
  network::EndToEndId pair;
  if (verb == "DISCARD") {
    if (f.size() != 6 || !ParsePair(f, 2, pair) || pair.head != source) return;
    const std::string key = pair.ToString();
    if (member_halves_.contains(key)) {
      FreeMemberHalf(key);
    } else if (member_runs_.contains(MemberKey{source, id})) {
      early_orders_[key] = MeasureOrder{source, id, 0, 0, 0, 'Z', true};
    }
    return;
  }
  if (verb != "MEASURE" || f.size() != 10) return;
  MeasureOrder order{source, id, 0, 0, 0, 'Z', false};
  if (!absl::SimpleAtoi(f[2], &order.shot) || !ParsePair(f, 3, pair) || pair.head != source ||
      !absl::SimpleAtoi(f[7], &order.x) || !absl::SimpleAtoi(f[8], &order.z) || (order.x != 0 && order.x != 1) ||
      (order.z != 0 && order.z != 1) || f[9].size() != 1 || std::string("XYZ").find(f[9][0]) == std::string::npos) {
    return;
  }
  order.basis = f[9][0];
  const std::string key = pair.ToString();
  if (!member_runs_.contains(MemberKey{source, id})) {
    FreeMemberHalf(key);  // the run ended here (its deadline) before the order came
    return;
  }
  if (member_halves_.contains(key)) {
    OnMeasureOrder(key, order);
  } else {
    early_orders_[key] = order;
  }
}

void GhzDistribution::OnBegin(const std::string& root, GhzRunId id, Duration timeout) {
  const MemberKey key{root, id};
  if (member_runs_.contains(key)) return;
  // A root runs its requests one after the other; a few open at once are
  // the ends of earlier ones. More is a misbehaving peer: not kept.
  int from_root = 0;
  for (const auto& [k, run] : member_runs_) from_root += k.root == root ? 1 : 0;
  if (from_root >= kMaxOpenRunsPerPeer) return;
  MemberRun& run = member_runs_[key];
  // The root's own deadline fires first (it started earlier); this one frees
  // what is held here when the root can no longer tell us (it died).
  run.deadline = context_.StartTimer(timeout, lifetime_.Guard([this, key] {
    auto it = member_runs_.find(key);
    if (it == member_runs_.end()) return;
    it->second.deadline = kNoTimer;
    ++stats_.runs_failed;
    EndMemberRun(key);
  }));
}

void GhzDistribution::OnMeasureOrder(const std::string& pair_key, MeasureOrder order) {
  auto it = member_halves_.find(pair_key);
  if (it == member_halves_.end() || it->second.measuring) return;  // a repeated order
  if (order.discard) {
    FreeMemberHalf(pair_key);
    return;
  }
  it->second.measuring = true;
  device_.Measure(it->second.slot, BasisOf(order.basis),
                  lifetime_.Guard([this, pair_key, order](absl::StatusOr<int> m) {
                    if (!member_halves_.contains(pair_key)) return;  // the run ended meanwhile
                    FreeMemberHalf(pair_key);
                    if (!m.ok()) {
                      const absl::Status error = absl::InternalError(absl::StrCat(
                          "DEVICE_ERROR: measuring the GHZ qubit at ", Where(), ": ", m.status().message()));
                      Send(order.root, absl::StrCat("REFUSE ", order.run, " ", StatusFields(error)));
                      return;
                    }
                    ++stats_.shots_measured;
                    Send(order.root, absl::StrCat("OUTCOME ", order.run, " ", order.shot, " ",
                                                  *m ^ FrameFlip(order.x, order.z, order.basis)));
                  }));
}

void GhzDistribution::EndMemberRun(const MemberKey& key) {
  auto it = member_runs_.find(key);
  if (it == member_runs_.end()) return;
  if (it->second.deadline != kNoTimer) context_.CancelTimer(it->second.deadline);
  member_runs_.erase(it);
  for (const auto& [k, run] : member_runs_) {
    if (k.root == key.root) return;  // another run from that root may claim what is held
  }
  std::vector<std::string> held;
  for (const auto& [pair_key, half] : member_halves_) {
    if (half.root == key.root) held.push_back(pair_key);
  }
  for (const std::string& pair_key : held) FreeMemberHalf(pair_key);
  std::vector<std::string> stale;
  for (const auto& [pair_key, order] : early_orders_) {
    if (order.root == key.root) stale.push_back(pair_key);
  }
  for (const std::string& pair_key : stale) early_orders_.erase(pair_key);
}

void GhzDistribution::FreeMemberHalf(const std::string& pair_key) {
  auto it = member_halves_.find(pair_key);
  if (it == member_halves_.end()) return;
  FreeSlot(it->second.slot);
  member_halves_.erase(it);
}

// ---------------------------------------------------------------- plumbing

void GhzDistribution::Send(const std::string& to, std::string payload) {
  // Best effort: without a route the far end learns by its own deadline.
  (void)network_.SendDatagram(to, kGhzPurposeId, std::move(payload));
}

void GhzDistribution::Post(std::function<void()> fn) {
  context_.StartTimer(Duration(0), lifetime_.Guard(std::move(fn)));
}

void GhzDistribution::FreeSlot(int& slot) {
  if (slot >= 0 && device_.IsAllocated(slot)) (void)device_.Free(slot);
  slot = -1;
}

}  // namespace qnet::transport
