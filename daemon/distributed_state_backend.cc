#include "daemon/distributed_state_backend.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace qnet::daemon {
namespace {

// Fetching for one operation gives up after this many fetches (its qubits
// keep being taken away by other daemons meanwhile).
constexpr int kMaxFetchesPerOp = 32;

// How many qubits discarded while away are remembered for a late hand-over.
constexpr size_t kDiscardedAwayMemory = 65536;


}  // namespace

struct DistributedStateBackend::PendingOp {
  std::vector<QubitId> qubits;
  Operation op;
  absl::flat_hash_set<QubitId> absent;
  int fetches = 0;
  WallClock::time_point asked;  // the physics does the operation now; moves delay it
};

DistributedStateBackend::DistributedStateBackend(EventLoop& loop, const Logger& log, std::string self,
                                                 std::vector<std::string> nodes, HardwarePlaneTransport& transport)
    : loop_(loop), log_(log), self_(std::move(self)), nodes_(std::move(nodes)), transport_(transport) {}

std::string DistributedStateBackend::Label(QubitId qubit) const {
  std::string node = NodeOfQubit(qubit);
  if (node.empty()) return absl::StrCat(qubit);
  return absl::StrCat(node, "#", qubit & ((uint64_t{1} << 40) - 1));
}

std::string DistributedStateBackend::Members(const std::vector<QubitId>& members) const {
  return absl::StrCat("{", absl::StrJoin(members, ",", [this](std::string* out, QubitId q) {
                        absl::StrAppend(out, Label(q));
                      }), "}");
}

std::string DistributedStateBackend::NodeOfQubit(QubitId qubit) const {
  uint64_t prefix = qubit >> 40;
  if (prefix == 0 || prefix > nodes_.size()) return "";
  return nodes_[prefix - 1];
}

std::string DistributedStateBackend::Locate(QubitId qubit) const {
  if (auto it = moved_to_.find(qubit); it != moved_to_.end()) return it->second;
  if (auto it = held_by_.find(qubit); it != held_by_.end()) return it->second;
  return NodeOfQubit(qubit);
}

void DistributedStateBackend::NoteHeldBy(QubitId qubit, const std::string& holder) {
  if (holder == self_ || system_.Exists(qubit)) {  // (handed over before the news came)
    held_by_.erase(qubit);
  } else {
    held_by_[qubit] = holder;
  }
}

void DistributedStateBackend::WithLocalQubits(std::vector<QubitId> qubits, Operation op) {
  auto pending = std::make_shared<PendingOp>();
  pending->qubits = std::move(qubits);
  pending->op = std::move(op);
  pending->asked = WallClock::now();
  Resolve(std::move(pending));
}

void DistributedStateBackend::WithFreshQubits(std::vector<QubitId> qubits, Operation op) {
  // Fresh ids exist nowhere yet: asking their nodes would only cost a round
  // trip to hear "not found".
  auto pending = std::make_shared<PendingOp>();
  pending->qubits = std::move(qubits);
  pending->op = std::move(op);
  for (QubitId q : pending->qubits) {
    if (!system_.Exists(q)) pending->absent.insert(q);
  }
  Resolve(std::move(pending));
}

void DistributedStateBackend::Resolve(std::shared_ptr<PendingOp> op) {
  // Groups are brought here one at a time: the next missing qubit may well
  // arrive with the group just fetched.
  for (QubitId q : op->qubits) {
    if (system_.Exists(q) || op->absent.contains(q)) continue;
    if (++op->fetches > kMaxFetchesPerOp) {
      op->op(absl::AbortedError(absl::StrCat("could not gather qubits ", Members(op->qubits), " on node '", self_,
                                             "': other daemons kept taking them; try again")));
      return;
    }
    FetchQubit(q, [this, op, q](absl::StatusOr<Found> found) {
      if (!found.ok()) {
        op->op(found.status());
        return;
      }
      if (*found == Found::kAbsent) op->absent.insert(q);
      Resolve(op);
    });
    return;
  }
  // The device would have operated when asked: waiting for state to move
  // between daemons is the software's lag.
  if (op->fetches > 0) loop_.lag().OnEvent(op->asked, WallClock::now());
  // Groups the operation may split: their members are checked afterwards.
  std::vector<QubitId> touched = op->qubits;
  for (QubitId q : op->qubits) {
    if (!system_.Exists(q)) continue;
    for (QubitId m : system_.GroupOf(q)) {
      if (m != q) touched.push_back(m);
    }
  }
  op->op(&system_);
  for (QubitId m : touched) MaybeHandOver(m);
}

void DistributedStateBackend::MaybeHandOver(QubitId member) {
  if (shut_down_ || !system_.Exists(member)) return;
  const std::vector<QubitId> members = system_.GroupOf(member);
  const std::string home = NodeOfQubit(members.front());
  if (home.empty() || home == self_) return;
  for (QubitId m : members) {
    if (NodeOfQubit(m) != home) return;
  }
  absl::StatusOr<quantum::GroupState> group = system_.ExtractGroup(member);
  if (!group.ok()) return;
  for (QubitId m : group->members) {
    moved_to_[m] = home;
    held_by_.erase(m);
  }
  ++groups_handed_over_;
  QNET_LOG(log_, kDebug, "handing group %s over to %s", Members(group->members), home);
  // Once it has arrived the records are dead weight (one per MEASURE pair at
  // a heralding station): only `home` operates on these qubits, and a
  // request of its own sent before the arrival belongs to a fetch that the
  // arrival ended.
  std::vector<QubitId> members_sent = group->members;
  transport_.HandOver(
      home, *std::move(group), [this, home](quantum::GroupState back) { RestoreGroup(std::move(back), home); },
      [this, home, members = std::move(members_sent)] {
        for (QubitId m : members) {
          if (auto it = moved_to_.find(m); it != moved_to_.end() && it->second == home) moved_to_.erase(it);
        }
      });
}

void DistributedStateBackend::HandleHandOver(quantum::GroupState group, const std::string& sender) {
  (void)AcceptGroup(std::move(group), sender, "handed over");
}

bool DistributedStateBackend::AcceptGroup(quantum::GroupState group, const std::string& sender,
                                          std::string_view how, std::optional<QubitId> answers) {
  std::vector<QubitId> members = group.members;
  for (QubitId m : members) {
    if (system_.Exists(m)) {
      QNET_LOG(log_, kError, "%s: group %s %s, but qubit %s is here already; dropping it", sender, Members(members),
               how, Label(m));
      return false;
    }
  }
  absl::Status inserted = system_.InsertGroup(std::move(group));
  if (!inserted.ok()) {
    QNET_LOG(log_, kError, "cannot install group %s %s by %s: %s", Members(members), how, sender,
             inserted.ToString());
    return false;
  }
  for (QubitId m : members) {
    moved_to_.erase(m);
    held_by_.erase(m);
  }
  QNET_LOG(log_, kDebug, "group %s %s by %s", Members(members), how, sender);
  // Members discarded while the group was on its way are traced out now.
  for (QubitId m : members) {
    if (discarded_away_.erase(m) > 0 && system_.Exists(m)) (void)system_.Remove(m);
  }
  // The fetches of all members end here, together (their late replies find
  // no fetch): our own operations waiting on any member run before another
  // daemon's request can take the group. Only a discarded member is absent.
  // (An operation that finds a member gone on, taken by an operation run
  // before it, looks again and fetches it anew by our record.)
  std::vector<std::pair<QubitId, absl::StatusOr<Found>>> ended;
  if (answers.has_value() && fetches_.contains(*answers)) {
    ended.emplace_back(*answers, system_.Exists(*answers) ? Found::kHere : Found::kAbsent);
  }
  for (QubitId m : members) {
    if (m != answers && fetches_.contains(m)) ended.emplace_back(m, system_.Exists(m) ? Found::kHere : Found::kAbsent);
  }
  // With no fetch ended, requests waiting for one may be for this group.
  CompleteAll(std::move(ended));
  // A group all of another node's goes on home (a hand-over is always ours).
  for (QubitId m : members) MaybeHandOver(m);
  return true;
}

void DistributedStateBackend::NoteDiscardedAway(QubitId qubit) {
  if (!discarded_away_.insert(qubit).second) return;
  discarded_away_order_.push_back(qubit);
  if (discarded_away_order_.size() > kDiscardedAwayMemory) {
    discarded_away_.erase(discarded_away_order_.front());
    discarded_away_order_.pop_front();
  }
}

void DistributedStateBackend::FetchQubit(QubitId qubit, FetchDone done) {
  if (auto it = fetches_.find(qubit); it != fetches_.end()) {
    it->second.waiters.push_back(std::move(done));
    return;
  }
  std::string holder = Locate(qubit);
  if (holder.empty() || holder == self_) {
    done(Found::kAbsent);
    return;
  }
  if (shut_down_) {
    done(absl::UnavailableError(absl::StrCat("node '", self_, "' is shutting down")));
    return;
  }
  Fetch& fetch = fetches_[qubit];
  fetch.id = ++fetch_ids_;
  fetch.waiters.push_back(std::move(done));
  Ask(qubit, holder);
}

DistributedStateBackend::Fetch* DistributedStateBackend::CurrentFetch(QubitId qubit, uint64_t id) {
  auto it = fetches_.find(qubit);
  return it != fetches_.end() && it->second.id == id ? &it->second : nullptr;
}

void DistributedStateBackend::Ask(QubitId qubit, const std::string& holder) {
  if (system_.Exists(qubit)) {  // arrived with another member's group meanwhile
    Complete(qubit, Found::kHere);
    return;
  }
  auto record = moved_to_.find(qubit);
  const bool by_hint = record == moved_to_.end() || record->second != holder;
  QNET_LOG(log_, kDebug, "asking %s for the group of qubit %s (%s)", holder, Label(qubit),
           by_hint ? "on a hint" : "we sent it there");
  auto fetch = fetches_.find(qubit);
  if (fetch == fetches_.end()) return;
  fetch->second.asking = holder;
  ++moves_requested_;
  transport_.RequestMove(holder, qubit, by_hint,
                         [this, qubit, holder, id = fetch->second.id](absl::StatusOr<MoveReply> reply) {
                           OnMoveReply(qubit, id, holder, std::move(reply));
                         });
}

void DistributedStateBackend::AskLater(QubitId qubit, std::string holder) {
  auto it = fetches_.find(qubit);
  if (it == fetches_.end()) return;
  Fetch& fetch = it->second;
  fetch.asking = holder;  // what it waits for now, while backing off too
  if (++fetch.hops > kMaxHops) {
    Complete(qubit, absl::AbortedError(absl::StrCat("gave up fetching qubit ", Label(qubit), " after ", kMaxHops,
                                                    " redirects (last holder asked: '", holder, "')")));
    return;
  }
  // A chain that bounces means a move is still in transit: back off.
  int extra = fetch.hops - 4;
  if (extra < 0) {
    Ask(qubit, holder);
    return;
  }
  auto delay = std::min<WallClock::duration>(std::chrono::milliseconds(1) * (1 << std::min(extra, 10)),
                                             std::chrono::milliseconds(200));
  loop_.StartWallTimer(delay, [this, qubit, holder, id = fetch.id] {
    if (CurrentFetch(qubit, id) != nullptr) Ask(qubit, holder);
  });
}

void DistributedStateBackend::OnMoveReply(QubitId qubit, uint64_t fetch_id, const std::string& holder,
                                          absl::StatusOr<MoveReply> reply) {
  if (CurrentFetch(qubit, fetch_id) == nullptr) {
    // The fetch ended meanwhile (a group brought the qubit, and may have
    // moved on since; a new fetch of it has requests of its own). A group in
    // a late reply is still the holder's only copy, now recorded as ours:
    // keep it, or the state is lost.
    if (reply.ok() && reply->group.has_value()) (void)AcceptGroup(*std::move(reply->group), holder, "sent after its fetch ended");
    return;
  }
  if (!reply.ok()) {
    QNET_LOG(log_, kWarn, "fetching qubit %s from %s failed: %s", Label(qubit), holder, reply.status().ToString());
    if (reply.status().code() == absl::StatusCode::kPermissionDenied) {  // refused, not unreachable
      Complete(qubit, reply.status());
      return;
    }
    Complete(qubit, absl::UnavailableError(absl::StrCat("the holder of qubit ", Label(qubit), ", node '", holder,
                                                        "', is unreachable: ", reply.status().message())));
    return;
  }
  if (reply->group.has_value()) {
    if (!AcceptGroup(*std::move(reply->group), holder, "moved here", qubit)) {
      Complete(qubit, absl::InternalError(absl::StrCat("cannot install the group of qubit ", Label(qubit), " from '",
                                                       holder, "' (see the log)")));
    }
    return;  // the fetch completed as the group came in
  }
  if (reply->not_found) {
    held_by_.erase(qubit);
    ConcludeNotFound(qubit, fetch_id);
    return;
  }
  const std::string& next = reply->moved_to;
  if (next == self_) {
    // The holder sent it here. Either it is here by now, or we passed it on
    // since (follow our own record), or it is still on its way (a hand-over,
    // or another of our fetches carries it): ask again until it arrives or
    // the holder, its move cancelled, has it back.
    auto onward = moved_to_.find(qubit);
    if (system_.Exists(qubit)) {
      Complete(qubit, Found::kHere);
    } else if (onward != moved_to_.end() && onward->second != self_) {
      AskLater(qubit, onward->second);
    } else {
      AskLater(qubit, holder);
    }
    return;
  }
  held_by_[qubit] = next;
  AskLater(qubit, next);
}

void DistributedStateBackend::ConcludeNotFound(QubitId qubit, uint64_t fetch_id,
                                               std::optional<std::vector<std::pair<QubitId, uint64_t>>> awaited) {
  Fetch* fetch = CurrentFetch(qubit, fetch_id);
  if (fetch == nullptr) return;
  if (system_.Exists(qubit)) {
    Complete(qubit, Found::kHere);
    return;
  }
  // The holder asked answered before we passed the group on to it: follow
  // our record.
  if (auto onward = moved_to_.find(qubit); onward != moved_to_.end() && onward->second != self_) {
    AskLater(qubit, onward->second);
    return;
  }
  // Another of our fetches asking a daemon now may be bringing its group (as
  // another member's): absent only once those have ended (not later ones,
  // or a busy node could wait for ever).
  if (!awaited.has_value()) {
    awaited.emplace();
    for (const auto& [q, f] : fetches_) {
      if (q != qubit && !f.asking.empty()) awaited->emplace_back(q, f.id);
    }
  }
  std::erase_if(*awaited, [this](const auto& a) { return CurrentFetch(a.first, a.second) == nullptr; });
  if (!awaited->empty()) {
    fetch->asking.clear();  // waiting for our own fetches, asking no one
    after_any_fetch_.push_back([this, qubit, fetch_id, awaited = *std::move(awaited)]() mutable {
      ConcludeNotFound(qubit, fetch_id, std::move(awaited));
    });
    return;
  }
  Complete(qubit, Found::kAbsent);
}

void DistributedStateBackend::Complete(QubitId qubit, absl::StatusOr<Found> outcome) {
  if (!fetches_.contains(qubit)) return;
  CompleteAll({{qubit, std::move(outcome)}});
}

void DistributedStateBackend::CompleteAll(std::vector<std::pair<QubitId, absl::StatusOr<Found>>> outcomes) {
  struct Ended {
    QubitId qubit;
    absl::StatusOr<Found> outcome;
    Fetch fetch;
  };
  std::vector<Ended> ended;
  for (auto& [qubit, outcome] : outcomes) {
    auto node = fetches_.extract(qubit);
    if (!node.empty()) ended.push_back({qubit, std::move(outcome), std::move(node.mapped())});
  }
  // Our own waiting operations first, then the daemons that asked us.
  for (Ended& e : ended) {
    for (FetchDone& waiter : e.fetch.waiters) waiter(e.outcome);
  }
  for (auto& [qubit, outcome, fetch] : ended) {
    if (!fetch.discard_when_done) continue;
    if (system_.Exists(qubit)) {
      RemoveAndHandOverRest(qubit);
    } else if (moved_to_.contains(qubit)) {
      Discard(qubit);  // its group went on meanwhile: the discard follows it
    }
  }
  for (auto& [qubit, outcome, fetch] : ended) {
    for (auto& [requester, by_hint, reply] : fetch.queued_requests) {
      HandleMove(qubit, requester, by_hint, std::move(reply));
    }
  }
  std::vector<std::function<void()>> deferred;
  deferred.swap(after_any_fetch_);
  for (auto& retry : deferred) retry();
}

bool DistributedStateBackend::FetchesAskOtherThan(const std::string& requester) const {
  return std::any_of(fetches_.begin(), fetches_.end(), [&](const auto& entry) {
    return !entry.second.asking.empty() && entry.second.asking != requester;
  });
}

void DistributedStateBackend::HandleMove(QubitId qubit, const std::string& requester, bool by_hint,
                                         MoveReplyFn reply) {
  if (shut_down_) {
    reply(absl::UnavailableError(absl::StrCat("node '", self_, "' is shutting down")));
    return;
  }
  if (system_.Exists(qubit)) {
    // A node may only take a group it holds a qubit of: the state of other
    // nodes' memories is not its to move (or to read).
    const std::vector<QubitId> members = system_.GroupOf(qubit);
    if (std::none_of(members.begin(), members.end(), [&](QubitId m) { return NodeOfQubit(m) == requester; })) {
      QNET_LOG(log_, kWarn, "refused to move group %s to %s: it holds none of its qubits", Members(members), requester);
      reply(absl::PermissionDeniedError(absl::StrCat("node '", self_, "' refuses to move the group of qubit ",
                                                     Label(qubit), " to node '", requester,
                                                     "': none of its qubits is in that node's memory")));
      return;
    }
    absl::StatusOr<quantum::GroupState> group = system_.ExtractGroup(qubit);
    if (!group.ok()) {
      reply(group.status());
      return;
    }
    SentMove sent{.requester = requester, .own_members = {}};
    for (QubitId m : group->members) {
      moved_to_[m] = requester;
      held_by_.erase(m);
      if (NodeOfQubit(m) == requester) sent.own_members.push_back(m);
    }
    const uint64_t move = ++move_ids_;
    if (!sent.own_members.empty()) moves_in_transit_.emplace(move, std::move(sent));
    QNET_LOG(log_, kDebug, "moved group %s to %s", Members(group->members), requester);
    reply(MoveReply{.group = *std::move(group), .move = move});
    return;
  }
  if (auto it = fetches_.find(qubit); it != fetches_.end()) {
    it->second.queued_requests.push_back({requester, by_hint, std::move(reply)});
    return;
  }
  if (auto it = moved_to_.find(qubit); it != moved_to_.end()) {
    reply(MoveReply{.moved_to = it->second});
    return;
  }
  // Unknown here, but one of our fetches may be bringing its group (as
  // another member's): decide once that fetch is done. Not one that asks a
  // requester without a record of sending the group here: that requester
  // never held the group since it began asking, so it has none to give us.
  // (Two daemons asking each other on hints waited for each other.)
  if (by_hint ? FetchesAskOtherThan(requester) : !fetches_.empty()) {
    after_any_fetch_.push_back([this, qubit, requester, by_hint, reply = std::move(reply)]() mutable {
      HandleMove(qubit, requester, by_hint, std::move(reply));
    });
    return;
  }
  reply(MoveReply{.not_found = true});
}

void DistributedStateBackend::Discard(QubitId qubit) {
  // Located before the hint is dropped: one of our own qubits held
  // elsewhere must be traced out there.
  const std::string holder = Locate(qubit);
  held_by_.erase(qubit);
  if (system_.Exists(qubit)) {
    RemoveAndHandOverRest(qubit);
    return;
  }
  if (auto it = fetches_.find(qubit); it != fetches_.end()) {
    it->second.discard_when_done = true;
    return;
  }
  if (!holder.empty() && holder != self_) {
    NoteDiscardedAway(qubit);  // its group may be on its way here already
    moved_to_.erase(qubit);    // ours, and we will not ask for it again
    transport_.SendDiscard(holder, qubit, 0);
  }
}

void DistributedStateBackend::RemoveAndHandOverRest(QubitId qubit) {
  std::vector<QubitId> rest = system_.GroupOf(qubit);
  (void)system_.Remove(qubit);
  for (QubitId m : rest) {
    if (m != qubit) MaybeHandOver(m);
  }
}

void DistributedStateBackend::HandleDiscard(QubitId qubit, const std::string& requester, uint32_t hops) {
  if (system_.Exists(qubit)) {
    RemoveAndHandOverRest(qubit);
    QNET_LOG(log_, kDebug, "discarded qubit %s for %s", Label(qubit), requester);
    return;
  }
  if (auto it = fetches_.find(qubit); it != fetches_.end()) {
    it->second.discard_when_done = true;
    return;
  }
  if (auto it = moved_to_.find(qubit); it != moved_to_.end()) {
    // Discards come from the qubit's own node, which asks for it no more:
    // the record has served. A cancelled move may still bring the group
    // back here (RestoreGroup), without the qubit.
    const std::string onward = std::move(it->second);
    moved_to_.erase(it);
    NoteDiscardedAway(qubit);
    if (onward != self_ && hops < static_cast<uint32_t>(kMaxHops)) transport_.SendDiscard(onward, qubit, hops + 1);
    return;
  }
  if (!fetches_.empty()) {
    after_any_fetch_.push_back([this, qubit, requester, hops] { HandleDiscard(qubit, requester, hops); });
    return;
  }
  // Nowhere we know of: it may be handed over to us later.
  NoteDiscardedAway(qubit);
}

void DistributedStateBackend::NoteMoveEnded(uint64_t move, bool delivered) {
  auto node = moves_in_transit_.extract(move);
  if (node.empty() || !delivered) return;
  // Only a qubit's own node operates on it, asks for it or discards it, and
  // a request of its own sent before the group arrived belongs to a fetch
  // that the arrival ended. Without this every move to a repeater left
  // records behind for good.
  const SentMove& sent = node.mapped();
  for (QubitId m : sent.own_members) {
    if (auto it = moved_to_.find(m); it != moved_to_.end() && it->second == sent.requester) moved_to_.erase(it);
  }
}

void DistributedStateBackend::RestoreGroup(quantum::GroupState group, const std::string& requester) {
  for (QubitId m : group.members) {
    if (system_.Exists(m)) {
      QNET_LOG(log_, kError, "move of group %s to %s was cancelled but qubit %s is here already; dropping it",
               Members(group.members), requester, Label(m));
      return;
    }
  }
  std::vector<QubitId> members = group.members;
  absl::Status inserted = system_.InsertGroup(std::move(group));
  if (!inserted.ok()) {
    QNET_LOG(log_, kError, "cannot restore group %s: %s", Members(members), inserted.ToString());
    return;
  }
  for (QubitId m : members) moved_to_.erase(m);
  QNET_LOG(log_, kWarn, "move of group %s to %s was cancelled in transit; keeping it here", Members(members),
           requester);
  // Members discarded while the group was away are traced out now. (No
  // hand-over of the rest from here: a failed hand-over lands here too, and
  // would be retried at once, for as long as its node is down.)
  for (QubitId m : members) {
    if (discarded_away_.erase(m) > 0 && system_.Exists(m)) (void)system_.Remove(m);
  }
}

void DistributedStateBackend::Shutdown() {
  shut_down_ = true;
  for (auto& [qubit, fetch] : fetches_) {
    for (auto& queued : fetch.queued_requests) {
      queued.reply(absl::UnavailableError(absl::StrCat("node '", self_, "' is shutting down")));
    }
    fetch.queued_requests.clear();
  }
  std::vector<std::function<void()>> deferred;
  deferred.swap(after_any_fetch_);
  for (auto& retry : deferred) retry();  // HandleMove answers Unavailable now
}

}  // namespace qnet::daemon
