// The daemon's physical::StateBackend: simulated quantum state spread over
// daemons. Each entangled group has exactly one holding daemon. This backend
// holds a QuantumSystem with the groups this daemon owns; an operation on a
// qubit held elsewhere first moves the qubit's whole group here over the
// hardware plane, then runs locally.
//
// Where a missing qubit is looked for: where we sent its group last, else
// the holder named by NoteHeldBy, else the node whose index is the qubit id's
// prefix (MakeQubitId). A holder asked for a group it has passed on answers
// with where it went (the requester follows, backing off when the chain
// bounces while a move is still in transit); a holder that is itself still
// fetching the group answers once the group has arrived and its own waiting
// operations ran; one asked about a qubit it knows nothing of while any of
// its fetches is in flight answers after that fetch (it may bring the
// qubit's group) - except that a request on a hint (the requester has no
// record of sending the group there) waits only for fetches that ask other
// daemons: the requester has not held the group since it began asking, so
// fetches from it cannot bring it, and two daemons asking each other would
// wait for each other. A group that arrives ends the fetches of all its
// members; one in a reply to a fetch that had already ended is kept (the
// holder recorded it as ours). A fetch told "not found" follows our own
// record if we passed the group on since, and waits for our other fetches
// asking daemons (one may bring the group) before taking the qubit for
// absent; replies and timers of an earlier fetch of the same qubit are not
// the current one's. So one group is never in two moves at once and exists
// in exactly one place. Left open: a cycle of three or more daemons asking
// on hints still waits until the move deadline. If a holder is unreachable the operation gets
// Unavailable and nothing moves. If a move's RPC is cancelled before the
// requester received the group, the holder keeps it.
//
// Hand-over: when an operation or a discard here leaves a group whose
// members all belong to one other node (by the id prefix: typically the far
// half of a pair whose near half was just measured), the group is sent to
// that node unasked, so its next operation there runs without a round trip.
// The group counts as moved there at once (requests are redirected); a fetch
// told that its qubit moved here waits for it to arrive (asking again); a
// group arriving (or restored after a cancelled move) for members discarded
// meanwhile loses those members.
//
// Records of groups passed on are kept only while someone may still ask:
// only a qubit's own node operates on it, asks for it or discards it, so
// once a move or hand-over to that node is known to have arrived (its RPC
// completed uncancelled) the records of that node's qubits are dropped, and
// a discard forwarded along a record ends it. (Not on sending: a move may
// be cancelled and the group restored here, and meanwhile the node's
// requests must be redirected to it, not told "not found".) Left open: the
// records of daemons that redirected a qubit's own node to where its group
// went stay until that node discards the qubit remotely; and "completed
// uncancelled" means the holder sent the reply, not that the requester got
// it: if the requester's deadline fires in that instant the group is lost
// (as before), and the requester's later fetches now find its qubits absent
// where they used to fail after bouncing between the two daemons.
//
// Loop thread only, including the Handle* entry points the hardware plane
// service posts into.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "daemon/event_loop.h"
#include "daemon/log.h"
#include "physical/state_backend.h"
#include "quantum/quantum_system.h"

namespace qnet::daemon {

using quantum::QubitId;

// What a holder answers to a move request.
struct MoveReply {
  std::optional<quantum::GroupState> group;  // moved to the requester
  uint64_t move = 0;                         // with a group: NoteMoveEnded's argument
  std::string moved_to;                      // or: ask this node instead
  bool not_found = false;                    // or: exists nowhere we know of
};

// How the backend reaches other daemons' hardware planes. Results are
// delivered on the loop, never inside the call.
class HardwarePlaneTransport {
 public:
  virtual ~HardwarePlaneTransport() = default;
  // `by_hint`: the requester has no record of sending the group to `holder`.
  virtual void RequestMove(const std::string& holder, QubitId qubit, bool by_hint,
                           std::function<void(absl::StatusOr<MoveReply>)> done) = 0;
  virtual void SendDiscard(const std::string& holder, QubitId qubit, uint32_t hops) = 0;
  // Gives `group` to node `to`; `failed` runs (on the loop) only if it
  // surely did not get there, `arrived` only if `to` surely has it.
  virtual void HandOver(const std::string& to, quantum::GroupState group,
                        std::function<void(quantum::GroupState)> failed, std::function<void()> arrived) = 0;
};

class DistributedStateBackend final : public physical::StateBackend {
 public:
  // `nodes` in network-file order (the node index of qubit ids).
  DistributedStateBackend(EventLoop& loop, const Logger& log, std::string self, std::vector<std::string> nodes,
                          HardwarePlaneTransport& transport);

  // physical::StateBackend
  void WithLocalQubits(std::vector<QubitId> qubits, Operation op) override;
  void WithFreshQubits(std::vector<QubitId> qubits, Operation op) override;
  void Discard(QubitId qubit) override;
  void NoteHeldBy(QubitId qubit, const std::string& holder) override;

  // Hardware plane service entry points. `reply` is called exactly once.
  using MoveReplyFn = std::function<void(absl::StatusOr<MoveReply>)>;
  void HandleMove(QubitId qubit, const std::string& requester, bool by_hint, MoveReplyFn reply);
  void HandleDiscard(QubitId qubit, const std::string& requester, uint32_t hops);
  void HandleHandOver(quantum::GroupState group, const std::string& sender);
  // The move of `group` to `requester` was cancelled before it got there.
  void RestoreGroup(quantum::GroupState group, const std::string& requester);
  // The call whose reply carried move `move` (MoveReply::move) ended. If it
  // was `delivered` (completed uncancelled) the requester has the group and
  // our records of its own qubits have served; until then a request of its
  // own is redirected to it, as the move may still be cancelled and the
  // group restored here.
  void NoteMoveEnded(uint64_t move, bool delivered);

  // Answers queued and future move requests with Unavailable.
  void Shutdown();

  // The groups held here (tests, status).
  const quantum::QuantumSystem& system() const { return system_; }
  quantum::QuantumSystem& mutable_system() { return system_; }
  size_t fetches_in_flight() const { return fetches_.size(); }
  uint64_t moves_requested() const { return moves_requested_; }
  uint64_t groups_handed_over() const { return groups_handed_over_; }
  // What the daemon remembers about qubits it does not hold: where it sent
  // them (to redirect requests) and where others said they are.
  size_t moved_records() const { return moved_to_.size(); }
  size_t location_hints() const { return held_by_.size(); }

  // Upper bound on the hops of one fetch (redirects followed).
  static constexpr int kMaxHops = 24;

 private:
  enum class Found { kHere, kAbsent };
  using FetchDone = std::function<void(absl::StatusOr<Found>)>;
  struct Fetch {
    std::vector<FetchDone> waiters;
    struct QueuedRequest {
      std::string requester;
      bool by_hint = false;
      MoveReplyFn reply;
    };
    std::vector<QueuedRequest> queued_requests;
    bool discard_when_done = false;
    int hops = 0;
    uint64_t id = 0;     // replies and timers of an earlier fetch of the qubit are not this one's
    std::string asking;  // the node asked (or about to be); "" while it waits for our other fetches
  };
  struct PendingOp;

  std::string NodeOfQubit(QubitId qubit) const;
  // "alice#7" (node of the id's prefix, counter), for messages.
  std::string Label(QubitId qubit) const;
  std::string Members(const std::vector<QubitId>& members) const;
  std::string Locate(QubitId qubit) const;
  void Resolve(std::shared_ptr<PendingOp> op);
  void FetchQubit(QubitId qubit, FetchDone done);
  void Ask(QubitId qubit, const std::string& holder);
  void AskLater(QubitId qubit, std::string holder);  // a copy: callers pass map entries
  void OnMoveReply(QubitId qubit, uint64_t fetch_id, const std::string& holder, absl::StatusOr<MoveReply> reply);
  // The fetch of `qubit` if it is still the one numbered `id`.
  Fetch* CurrentFetch(QubitId qubit, uint64_t id);
  // A holder said it knows nothing of the qubit: here, passed on by us
  // since (follow), possibly coming with another fetch's group (wait for
  // the fetches, by qubit and number, that asked daemons when the answer
  // came), or absent.
  void ConcludeNotFound(QubitId qubit, uint64_t fetch_id,
                        std::optional<std::vector<std::pair<QubitId, uint64_t>>> awaited = std::nullopt);
  void Complete(QubitId qubit, absl::StatusOr<Found> outcome);
  // Ends these fetches together: every waiter of each first, then discards,
  // then other daemons' queued requests, then the requests waiting for any
  // fetch to end (run even if `outcomes` ended none).
  void CompleteAll(std::vector<std::pair<QubitId, absl::StatusOr<Found>>> outcomes);
  // Whether a fetch in flight here asks a node other than `requester`.
  bool FetchesAskOtherThan(const std::string& requester) const;
  // Installs a group that came here (as the reply to the fetch of qubit
  // `answers`, handed over, or in the reply to a fetch that had already
  // ended: the sender recorded it as ours, so it must not be dropped) and
  // ends the fetches of its members. False (logged) if it cannot be
  // installed.
  bool AcceptGroup(quantum::GroupState group, const std::string& sender, std::string_view how,
                   std::optional<QubitId> answers = std::nullopt);
  // Hands the group of `member` to the node all its members belong to, if
  // that is one node other than this one.
  void MaybeHandOver(QubitId member);
  // Remembers a qubit discarded while its group was elsewhere, so that the
  // group arriving later drops it.
  void NoteDiscardedAway(QubitId qubit);
  // Removes a qubit held here and hands over what is left of its group.
  void RemoveAndHandOverRest(QubitId qubit);

  EventLoop& loop_;
  const Logger& log_;
  const std::string self_;
  const std::vector<std::string> nodes_;
  HardwarePlaneTransport& transport_;
  quantum::QuantumSystem system_;
  absl::flat_hash_map<QubitId, std::string> moved_to_;  // groups we passed on
  // Moves sent whose delivery is not yet known: the members that are the
  // requester's own qubits (records to drop on delivery).
  struct SentMove {
    std::string requester;
    std::vector<QubitId> own_members;
  };
  absl::flat_hash_map<uint64_t, SentMove> moves_in_transit_;
  uint64_t move_ids_ = 0;
  absl::flat_hash_map<QubitId, std::string> held_by_;   // hints (NoteHeldBy, redirects)
  absl::flat_hash_map<QubitId, Fetch> fetches_;         // by requested qubit
  uint64_t fetch_ids_ = 0;
  // Requests about qubits unknown here, held until the next fetch completes
  // (that fetch may bring them).
  std::vector<std::function<void()>> after_any_fetch_;
  // Qubits discarded while not here (bounded, oldest forgotten first).
  absl::flat_hash_set<QubitId> discarded_away_;
  std::deque<QubitId> discarded_away_order_;
  uint64_t moves_requested_ = 0;
  uint64_t groups_handed_over_ = 0;
  bool shut_down_ = false;
};

}  // namespace qnet::daemon
