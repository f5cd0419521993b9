// Moving entangled groups between daemons over the hardware plane: the state
// arrives intact, exists exactly once, late requests are redirected or
// queued, and an unreachable holder fails the operation without loss.
#include "daemon/distributed_state_backend.h"

#include <future>

#include "gtest/gtest.h"
#include "in_process_daemons.h"
#include "core/rng.h"
#include "physical/state_backend.h"
#include "quantum/bell.h"
#include "quantum/gates.h"
#include "tests/common/wait_until.h"

namespace qnet::daemon {
namespace {

using physical::MakeQubitId;
using quantum::Matrix;
using quantum::QuantumSystem;
using quantum::Vector;
using testing::InProcessNetwork;
using qnet::testing::WaitUntil;

constexpr double kExact = 1e-9;

// Runs `fn` on the daemon's loop with `qubits` gathered there; returns the
// status the backend gave the operation.
absl::Status RunOp(Daemon& d, std::vector<QubitId> qubits, std::function<void(QuantumSystem&)> fn) {
  auto done = std::make_shared<std::promise<absl::Status>>();
  auto result = done->get_future();
  d.loop().Post([&d, qubits, fn, done] {
    d.backend().WithLocalQubits(qubits, [fn, done](absl::StatusOr<QuantumSystem*> system) {
      if (system.ok()) fn(**system);
      done->set_value(system.status());
    });
  });
  if (result.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    return absl::DeadlineExceededError("operation never completed");
  }
  return result.get();
}

size_t QubitsHeld(Daemon& d) {
  return d.loop().Call([&] { return d.backend().system().qubit_count(); });
}

double FidelityWith(QuantumSystem& s, std::vector<QubitId> ids, const Vector& psi) {
  auto f = s.Fidelity(ids, psi);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? *f : -1.0;
}

TEST(DistributedStateBackendTest, GroupMovesBackAndForthIntactAndExistsOnce) {
  InProcessNetwork net({"a", "b", "c"});
  ASSERT_TRUE(net.ok());
  const QubitId qa = MakeQubitId(0, 1);
  const QubitId qb = MakeQubitId(1, 1);
  // a holds a PHI+ pair, one qubit of which is b's.
  ASSERT_TRUE(RunOp(net[0], {}, [&](QuantumSystem& s) {
                ASSERT_TRUE(s.Prepare(std::vector<QubitId>{qa, qb}, quantum::BellDensity(quantum::BellState::kPhiPlus)).ok());
              }).ok());
  net[1].loop().Call([&] { net[1].backend().NoteHeldBy(qb, "a"); });

  // b operates on its qubit: the pair comes to b intact; b flips its qubit.
  ASSERT_TRUE(RunOp(net[1], {qb}, [&](QuantumSystem& s) {
                EXPECT_NEAR(FidelityWith(s, {qa, qb}, quantum::BellVector(quantum::BellState::kPhiPlus)), 1.0, kExact);
                ASSERT_TRUE(s.ApplyUnitary(quantum::gates::X(), std::vector<QubitId>{qb}).ok());
              }).ok());
  EXPECT_EQ(QubitsHeld(net[0]), 0u);
  EXPECT_EQ(QubitsHeld(net[1]), 2u);

  // a wants its qubit back: it follows where it sent the group.
  ASSERT_TRUE(RunOp(net[0], {qa}, [&](QuantumSystem& s) {
                EXPECT_NEAR(FidelityWith(s, {qa, qb}, quantum::BellVector(quantum::BellState::kPsiPlus)), 1.0, kExact);
              }).ok());
  EXPECT_EQ(QubitsHeld(net[0]), 2u);
  EXPECT_EQ(QubitsHeld(net[1]), 0u);

  // c holds no qubit of the pair: asking b (the prefix of qb), which
  // redirects to a, it is refused there, and the pair stays at a.
  absl::Status refused = RunOp(net[2], {qb}, [&](QuantumSystem&) { ADD_FAILURE() << "c got the pair"; });
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied) << refused;
  EXPECT_NE(refused.message().find("none of its qubits"), std::string::npos) << refused;
  EXPECT_EQ(QubitsHeld(net[0]), 2u);
  EXPECT_EQ(QubitsHeld(net[2]), 0u);
}

TEST(DistributedStateBackendTest, ConcurrentOperationsFromThreeDaemonsAllApplyExactlyOnce) {
  InProcessNetwork net({"a", "b", "c"});
  ASSERT_TRUE(net.ok());
  const std::vector<QubitId> q = {MakeQubitId(0, 7), MakeQubitId(1, 7), MakeQubitId(2, 7)};
  Vector ghz = Vector::Zero(8);
  ghz(0) = ghz(7) = 1.0 / std::sqrt(2.0);
  ASSERT_TRUE(RunOp(net[1], {}, [&](QuantumSystem& s) {
                ASSERT_TRUE(s.Prepare(q, ghz * ghz.adjoint()).ok());
              }).ok());
  for (int i : {0, 2}) net[i].loop().Call([&] { net[i].backend().NoteHeldBy(q[i], "b"); });

  // Every daemon rotates its own qubit kRounds times, all at once, so the
  // group keeps moving while requests for it are in flight. Rotations on
  // different qubits commute: the result does not depend on the order.
  constexpr int kRounds = 10;
  const double angle[3] = {0.1, 0.2, 0.3};
  std::vector<std::future<absl::Status>> results;
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < 3; ++i) {
      results.push_back(std::async(std::launch::async, [&, i] {
        return RunOp(net[i], {q[i]}, [&, i](QuantumSystem& s) {
          ASSERT_TRUE(s.ApplyUnitary(quantum::gates::Rz(angle[i]), std::vector<QubitId>{q[i]}).ok());
        });
      }));
    }
  }
  for (auto& r : results) EXPECT_TRUE(r.get().ok());

  size_t holders = 0;
  size_t total = 0;
  for (int i = 0; i < 3; ++i) {
    size_t held = QubitsHeld(net[i]);
    total += held;
    holders += held > 0;
  }
  EXPECT_EQ(holders, 1u);
  EXPECT_EQ(total, 3u);
  // Reference: the same rotations applied in one local system.
  QuantumSystem reference;
  ASSERT_TRUE(reference.Prepare(q, ghz * ghz.adjoint()).ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(reference.ApplyUnitary(quantum::gates::Rz(kRounds * angle[i]), std::vector<QubitId>{q[i]}).ok());
  }
  Matrix expected = *reference.ReducedState(q);
  ASSERT_TRUE(RunOp(net[0], {q[0]}, [&](QuantumSystem& s) {
                auto rho = s.ReducedState(q);
                ASSERT_TRUE(rho.ok());
                EXPECT_LT((*rho - expected).cwiseAbs().maxCoeff(), kExact);
                EXPECT_EQ(s.group_count(), 1u);
              }).ok());
}

TEST(DistributedStateBackendTest, UnreachableHolderFailsTheOperationAndLosesNothing) {
  InProcessNetwork net({"a", "b"});
  ASSERT_TRUE(net.ok());
  const QubitId qa = MakeQubitId(0, 1);
  const QubitId qb = MakeQubitId(1, 1);
  ASSERT_TRUE(RunOp(net[0], {}, [&](QuantumSystem& s) {
                ASSERT_TRUE(s.Prepare(std::vector<QubitId>{qa, qb}, quantum::BellDensity(quantum::BellState::kPhiPlus)).ok());
              }).ok());
  net[1].loop().Call([&] { net[1].backend().NoteHeldBy(qb, "a"); });
  net.Stop(0);
  bool ran = false;
  absl::Status status = RunOp(net[1], {qb}, [&](QuantumSystem&) { ran = true; });
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_NE(status.message().find("'a'"), std::string::npos) << status;
  EXPECT_FALSE(ran);
  EXPECT_EQ(QubitsHeld(net[1]), 0u);
}

TEST(DistributedStateBackendTest, QubitsThatExistNowhereAreAbsent) {
  InProcessNetwork net({"a", "b"});
  ASSERT_TRUE(net.ok());
  const QubitId never_made = MakeQubitId(0, 99);
  bool exists = true;
  ASSERT_TRUE(RunOp(net[1], {never_made}, [&](QuantumSystem& s) { exists = s.Exists(never_made); }).ok());
  EXPECT_FALSE(exists);
}

TEST(DistributedStateBackendTest, DiscardIsForwardedToWhereTheGroupWent) {
  InProcessNetwork net({"a", "b", "c"});
  ASSERT_TRUE(net.ok());
  const QubitId qa = MakeQubitId(0, 1);
  const QubitId qb = MakeQubitId(1, 1);
  ASSERT_TRUE(RunOp(net[0], {}, [&](QuantumSystem& s) {
                ASSERT_TRUE(s.Prepare(std::vector<QubitId>{qa, qb}, quantum::BellDensity(quantum::BellState::kPhiPlus)).ok());
              }).ok());
  net[1].loop().Call([&] { net[1].backend().NoteHeldBy(qb, "a"); });
  ASSERT_TRUE(RunOp(net[1], {qb}, [](QuantumSystem&) {}).ok());  // the pair is at b now
  // c thinks qa is at a (its id's prefix); a forwards to b.
  net[2].loop().Call([&] { net[2].backend().Discard(qa); });
  ASSERT_TRUE(WaitUntil("c's discard of qa to reach b through a", [&] { return QubitsHeld(net[1]) == 1u; }));
  ASSERT_TRUE(RunOp(net[1], {qb}, [&](QuantumSystem& s) {
                EXPECT_FALSE(s.Exists(qa));
                auto rho = s.ReducedState(std::vector<QubitId>{qb});
                ASSERT_TRUE(rho.ok());
                EXPECT_TRUE(rho->isApprox(Matrix::Identity(2, 2) / 2.0, kExact));  // half of PHI+ is maximally mixed
              }).ok());
}

TEST(DistributedStateBackendTest, MeasuringOneHalfHandsTheOtherHalfHome) {
  InProcessNetwork net({"a", "b"});
  ASSERT_TRUE(net.ok());
  const QubitId qa = MakeQubitId(0, 1);
  const QubitId qb = MakeQubitId(1, 1);
  ASSERT_TRUE(RunOp(net[0], {}, [&](QuantumSystem& s) {
                ASSERT_TRUE(s.Prepare(std::vector<QubitId>{qa, qb}, quantum::BellDensity(quantum::BellState::kPhiPlus)).ok());
              }).ok());
  net[1].loop().Call([&] { net[1].backend().NoteHeldBy(qb, "a"); });
  int outcome = -1;
  Rng rng(5);
  ASSERT_TRUE(RunOp(net[0], {qa}, [&](QuantumSystem& s) {
                auto measured = s.Measure(qa, quantum::Basis::Z(), rng);
                ASSERT_TRUE(measured.ok());
                outcome = *measured;
              }).ok());
  // b's qubit, no longer entangled with a's, goes to b unasked.
  ASSERT_TRUE(WaitUntil("qb to be handed over to b", [&] { return QubitsHeld(net[1]) == 1u; }));
  EXPECT_EQ(QubitsHeld(net[0]), 1u);
  ASSERT_TRUE(RunOp(net[1], {qb}, [&](QuantumSystem& s) {
                auto rho = s.ReducedState(std::vector<QubitId>{qb});
                ASSERT_TRUE(rho.ok());
                // PHI+: b's half collapsed to a's outcome.
                EXPECT_NEAR((*rho)(outcome, outcome).real(), 1.0, kExact);
              }).ok());
  EXPECT_EQ(net[1].loop().Call([&] { return net[1].backend().moves_requested(); }), 0u);
  EXPECT_EQ(net[0].loop().Call([&] { return net[0].backend().groups_handed_over(); }), 1u);
}

// ---- the move protocol against a scripted transport ----

class ScriptedTransport final : public HardwarePlaneTransport {
 public:
  struct Request {
    std::string holder;
    QubitId qubit;
    bool by_hint;
    std::function<void(absl::StatusOr<MoveReply>)> done;
  };
  void RequestMove(const std::string& holder, QubitId qubit, bool by_hint,
                   std::function<void(absl::StatusOr<MoveReply>)> done) override {
    requests.push_back({holder, qubit, by_hint, std::move(done)});
  }
  void SendDiscard(const std::string& holder, QubitId qubit, uint32_t) override {
    discards.emplace_back(holder, qubit);
  }
  void HandOver(const std::string& to, quantum::GroupState group, std::function<void(quantum::GroupState)>,
                std::function<void()> arrived) override {
    hand_overs.emplace_back(to, std::move(group));
    arrivals.push_back(std::move(arrived));
  }
  std::vector<Request> requests;
  std::vector<std::pair<std::string, quantum::GroupState>> hand_overs;
  std::vector<std::function<void()>> arrivals;  // of each hand-over, to call when it "arrived"
  std::vector<std::pair<std::string, QubitId>> discards;
};

class ScriptedBackendTest : public ::testing::Test {
 protected:
  ScriptedBackendTest() : loop_(1.0), log_("x", LogLevel::kError), backend_(loop_, log_, "x", {"x", "y", "z"}, transport_) {}

  static quantum::GroupState Pair(QubitId a, QubitId b) {
    return {{a, b}, quantum::BellDensity(quantum::BellState::kPhiPlus)};
  }

  EventLoop loop_;  // never started: this test drives the backend directly
  Logger log_;
  ScriptedTransport transport_;
  DistributedStateBackend backend_;
};

TEST_F(ScriptedBackendTest, RequestForTheQubitBeingFetchedIsServedAfterArrival) {
  const QubitId qx = MakeQubitId(0, 1);
  const QubitId qy = MakeQubitId(1, 1);
  std::vector<std::string> order;
  backend_.WithLocalQubits({qy}, [&](absl::StatusOr<QuantumSystem*> s) {
    ASSERT_TRUE(s.ok());
    order.push_back("our op");
  });
  std::optional<absl::StatusOr<MoveReply>> to_y;
  backend_.HandleMove(qy, "y", false, [&](absl::StatusOr<MoveReply> r) {
    order.push_back("reply to y");
    to_y = std::move(r);
  });
  EXPECT_FALSE(to_y.has_value());  // queued behind our fetch
  transport_.requests[0].done(MoveReply{.group = Pair(qx, qy)});
  EXPECT_EQ(order, (std::vector<std::string>{"our op", "reply to y"}));
  ASSERT_TRUE(to_y.has_value() && to_y->ok());
  ASSERT_TRUE((*to_y)->group.has_value());
  EXPECT_EQ((*to_y)->group->members, (std::vector<QubitId>{qx, qy}));
  EXPECT_EQ(backend_.system().qubit_count(), 0u);

  // Later requests for any member are redirected to y.
  std::optional<absl::StatusOr<MoveReply>> late;
  backend_.HandleMove(qx, "y", false, [&](absl::StatusOr<MoveReply> r) { late = std::move(r); });
  ASSERT_TRUE(late.has_value() && late->ok());
  EXPECT_EQ((*late)->moved_to, "y");
}

TEST_F(ScriptedBackendTest, RedirectsAreFollowed) {
  const QubitId qy = MakeQubitId(1, 1);
  const QubitId qz = MakeQubitId(2, 1);
  bool ran = false;
  backend_.WithLocalQubits({qy}, [&](absl::StatusOr<QuantumSystem*> s) {
    ASSERT_TRUE(s.ok());
    ran = (*s)->Exists(qy);
  });
  ASSERT_EQ(transport_.requests.size(), 1u);
  transport_.requests[0].done(MoveReply{.moved_to = "z"});
  ASSERT_EQ(transport_.requests.size(), 2u);
  EXPECT_EQ(transport_.requests[1].holder, "z");
  EXPECT_FALSE(ran);
  transport_.requests[1].done(MoveReply{.group = Pair(qy, qz)});
  EXPECT_TRUE(ran);
}

TEST_F(ScriptedBackendTest, FailedFetchFailsEveryWaiterAndQueuedRequest) {
  const QubitId qy = MakeQubitId(1, 1);
  int failures = 0;
  for (int i = 0; i < 2; ++i) {
    backend_.WithLocalQubits({qy}, [&](absl::StatusOr<QuantumSystem*> s) {
      EXPECT_EQ(s.status().code(), absl::StatusCode::kUnavailable);
      ++failures;
    });
  }
  ASSERT_EQ(transport_.requests.size(), 1u);  // one fetch serves both
  std::optional<absl::StatusOr<MoveReply>> to_z;
  backend_.HandleMove(qy, "z", false, [&](absl::StatusOr<MoveReply> r) { to_z = std::move(r); });
  transport_.requests[0].done(absl::UnavailableError("connection refused"));
  EXPECT_EQ(failures, 2);
  ASSERT_TRUE(to_z.has_value() && to_z->ok());
  EXPECT_TRUE((*to_z)->not_found);  // nothing here, nowhere known
}

TEST_F(ScriptedBackendTest, CancelledMoveIsRestored) {
  const QubitId qx = MakeQubitId(0, 1);
  const QubitId qy = MakeQubitId(1, 1);
  ASSERT_TRUE(backend_.mutable_system().InsertGroup(Pair(qx, qy)).ok());
  std::optional<absl::StatusOr<MoveReply>> reply;
  backend_.HandleMove(qx, "y", false, [&](absl::StatusOr<MoveReply> r) { reply = std::move(r); });
  ASSERT_TRUE(reply.has_value() && reply->ok() && (*reply)->group.has_value());
  EXPECT_EQ(backend_.system().qubit_count(), 0u);
  backend_.RestoreGroup(*std::move((*reply)->group), "y");
  EXPECT_EQ(backend_.system().qubit_count(), 2u);
  // No longer thought to be at y: a request is served from here.
  std::optional<absl::StatusOr<MoveReply>> again;
  backend_.HandleMove(qy, "y", false, [&](absl::StatusOr<MoveReply> r) { again = std::move(r); });
  ASSERT_TRUE(again.has_value() && again->ok());
  EXPECT_TRUE((*again)->group.has_value());
}

TEST_F(ScriptedBackendTest, FreshQubitsAreNotLookedFor) {
  const QubitId qx = MakeQubitId(0, 1);
  const QubitId qy = MakeQubitId(1, 1);
  bool prepared = false;
  backend_.WithFreshQubits({qx, qy}, [&](absl::StatusOr<QuantumSystem*> s) {
    ASSERT_TRUE(s.ok());
    prepared = (*s)->Prepare(std::vector<QubitId>{qx, qy}, quantum::BellDensity(quantum::BellState::kPhiPlus)).ok();
  });
  EXPECT_TRUE(prepared);
  EXPECT_TRUE(transport_.requests.empty());
  EXPECT_EQ(backend_.system().qubit_count(), 2u);
  EXPECT_TRUE(transport_.hand_overs.empty());  // x's qubit is in the group: it stays
}

TEST_F(ScriptedBackendTest, MeasuringHereHandsTheForeignHalfToItsNode) {
  const QubitId qx = MakeQubitId(0, 1);
  const QubitId qy = MakeQubitId(1, 1);
  ASSERT_TRUE(backend_.mutable_system().InsertGroup(Pair(qx, qy)).ok());
  Rng rng(3);
  backend_.WithLocalQubits({qx}, [&](absl::StatusOr<QuantumSystem*> s) {
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->Measure(qx, quantum::Basis::X(), rng).ok());
  });
  ASSERT_EQ(transport_.hand_overs.size(), 1u);
  EXPECT_EQ(transport_.hand_overs[0].first, "y");
  EXPECT_EQ(transport_.hand_overs[0].second.members, (std::vector<QubitId>{qy}));
  EXPECT_EQ(backend_.system().qubit_count(), 1u);
  // Requests for it are redirected to y.
  std::optional<absl::StatusOr<MoveReply>> reply;
  backend_.HandleMove(qy, "z", false, [&](absl::StatusOr<MoveReply> r) { reply = std::move(r); });
  ASSERT_TRUE(reply.has_value() && reply->ok());
  EXPECT_EQ((*reply)->moved_to, "y");
}

TEST_F(ScriptedBackendTest, HandOverCompletesTheFetchInFlight) {
  const QubitId qx = MakeQubitId(0, 1);
  backend_.NoteHeldBy(qx, "y");
  int ran = 0;
  backend_.WithLocalQubits({qx}, [&](absl::StatusOr<QuantumSystem*> s) {
    ASSERT_TRUE(s.ok());
    EXPECT_TRUE((*s)->Exists(qx));
    ++ran;
  });
  ASSERT_EQ(transport_.requests.size(), 1u);
  backend_.HandleHandOver({{qx}, Matrix::Identity(2, 2) / 2.0}, "y");
  EXPECT_EQ(ran, 1);
  // y's answer to the fetch comes later and changes nothing.
  transport_.requests[0].done(MoveReply{.moved_to = "x"});
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(transport_.requests.size(), 1u);
  EXPECT_EQ(backend_.system().qubit_count(), 1u);
}

TEST_F(ScriptedBackendTest, FetchToldItsQubitMovedHereWaitsForIt) {
  const QubitId qx = MakeQubitId(0, 1);
  backend_.NoteHeldBy(qx, "y");
  bool existed = false;
  backend_.WithLocalQubits({qx}, [&](absl::StatusOr<QuantumSystem*> s) {
    ASSERT_TRUE(s.ok());
    existed = (*s)->Exists(qx);
  });
  // The hand-over is still on its way: y's redirect to us must not make
  // the qubit count as absent (a fresh |0> would take its place).
  transport_.requests[0].done(MoveReply{.moved_to = "x"});
  ASSERT_EQ(transport_.requests.size(), 2u);
  EXPECT_EQ(transport_.requests[1].holder, "y");
  EXPECT_FALSE(existed);
  backend_.HandleHandOver({{qx}, Matrix::Identity(2, 2) / 2.0}, "y");
  EXPECT_TRUE(existed);
}

TEST_F(ScriptedBackendTest, GroupHandedOverAfterItsQubitWasDiscardedLosesIt) {
  const QubitId qx = MakeQubitId(0, 1);
  const QubitId qx2 = MakeQubitId(0, 2);
  backend_.NoteHeldBy(qx, "y");
  backend_.Discard(qx);
  ASSERT_EQ(transport_.discards.size(), 1u);
  EXPECT_EQ(transport_.discards[0].first, "y");
  Matrix rho = Matrix::Zero(4, 4);
  rho(0, 0) = 1.0;  // |00>
  backend_.HandleHandOver({{qx, qx2}, rho}, "y");
  EXPECT_FALSE(backend_.system().Exists(qx));
  EXPECT_TRUE(backend_.system().Exists(qx2));
  EXPECT_EQ(backend_.system().qubit_count(), 1u);
}

TEST_F(ScriptedBackendTest, GroupInTheReplyToAFetchThatEndedIsKept) {
  // x fetches two of its qubits from y; y's answer to the second brings the
  // group with both, ending both fetches. y then takes the group back for
  // its own qubit and, handling x's first request only now, sends it again:
  // that reply is the group's only copy (y records it as x's).
  const QubitId qx = MakeQubitId(0, 1);
  const QubitId qx2 = MakeQubitId(0, 2);
  const QubitId qy = MakeQubitId(1, 1);
  backend_.NoteHeldBy(qx, "y");
  backend_.NoteHeldBy(qx2, "y");
  int ran = 0;
  for (QubitId q : {qx, qx2}) {
    backend_.WithLocalQubits({q}, [&, q](absl::StatusOr<QuantumSystem*> s) {
      ASSERT_TRUE(s.ok());
      EXPECT_TRUE((*s)->Exists(q));
      ++ran;
    });
  }
  ASSERT_EQ(transport_.requests.size(), 2u);
  quantum::GroupState group{{qx, qx2, qy}, Matrix::Identity(8, 8) / 8.0};
  transport_.requests[1].done(MoveReply{.group = group});
  EXPECT_EQ(ran, 2);  // both fetches ended with the group's arrival
  std::optional<absl::StatusOr<MoveReply>> to_y;
  backend_.HandleMove(qy, "y", false, [&](absl::StatusOr<MoveReply> r) { to_y = std::move(r); });
  ASSERT_TRUE(to_y.has_value() && to_y->ok() && (*to_y)->group.has_value());
  EXPECT_EQ(backend_.system().qubit_count(), 0u);
  transport_.requests[0].done(MoveReply{.group = *std::move((*to_y)->group)});
  EXPECT_EQ(backend_.system().qubit_count(), 3u);
  EXPECT_TRUE(backend_.system().Exists(qy));
  // Requests for it are served from here again.
  std::optional<absl::StatusOr<MoveReply>> again;
  backend_.HandleMove(qy, "y", false, [&](absl::StatusOr<MoveReply> r) { again = std::move(r); });
  ASSERT_TRUE(again.has_value() && again->ok());
  EXPECT_TRUE((*again)->group.has_value());
  EXPECT_EQ(transport_.requests.size(), 2u);
}

TEST_F(ScriptedBackendTest, DaemonsAskingEachOtherOnHintsDoNotWaitForEachOther) {
  // x fetches its qubit from y on a herald's hint while y, on a hint too,
  // asks x for y's qubit, which x knows nothing of. x's fetch asks y, so it
  // cannot bring y's qubit (y would then hold it and not ask): x answers at
  // once instead of waiting for a fetch that waits for x.
  const QubitId qx = MakeQubitId(0, 1);
  const QubitId qy = MakeQubitId(1, 1);
  backend_.NoteHeldBy(qx, "y");
  backend_.WithLocalQubits({qx}, [](absl::StatusOr<QuantumSystem*>) {});
  ASSERT_EQ(transport_.requests.size(), 1u);
  EXPECT_TRUE(transport_.requests[0].by_hint);
  std::optional<absl::StatusOr<MoveReply>> to_y;
  backend_.HandleMove(qy, "y", true, [&](absl::StatusOr<MoveReply> r) { to_y = std::move(r); });
  ASSERT_TRUE(to_y.has_value() && to_y->ok());
  EXPECT_TRUE((*to_y)->not_found);
}

TEST_F(ScriptedBackendTest, RequestOnAHintWaitsForFetchesFromOtherDaemons) {
  // x's fetch asks z, whose reply may bring the group of y's qubit.
  const QubitId qx = MakeQubitId(0, 1);
  const QubitId qy = MakeQubitId(1, 1);
  backend_.NoteHeldBy(qx, "z");
  bool ran = false;
  backend_.WithLocalQubits({qx}, [&](absl::StatusOr<QuantumSystem*> s) { ran = s.ok(); });
  std::optional<absl::StatusOr<MoveReply>> to_y;
  backend_.HandleMove(qy, "y", true, [&](absl::StatusOr<MoveReply> r) { to_y = std::move(r); });
  EXPECT_FALSE(to_y.has_value());
  transport_.requests[0].done(MoveReply{.group = Pair(qx, qy)});
  EXPECT_TRUE(ran);
  ASSERT_TRUE(to_y.has_value() && to_y->ok());
  ASSERT_TRUE((*to_y)->group.has_value());
  EXPECT_EQ((*to_y)->group->members, (std::vector<QubitId>{qx, qy}));
}

TEST_F(ScriptedBackendTest, RequestByRecordWaitsForTheFetchFromTheRequester) {
  // y answered x's fetch with the group and, its record pointing at x, asks
  // for it back before that answer arrived: "not found" would make y
  // measure a qubit it takes for absent.
  const QubitId qx = MakeQubitId(0, 1);
  const QubitId qy = MakeQubitId(1, 1);
  backend_.NoteHeldBy(qx, "y");
  bool ran = false;
  backend_.WithLocalQubits({qx}, [&](absl::StatusOr<QuantumSystem*> s) { ran = s.ok(); });
  std::optional<absl::StatusOr<MoveReply>> to_y;
  backend_.HandleMove(qy, "y", false, [&](absl::StatusOr<MoveReply> r) { to_y = std::move(r); });
  EXPECT_FALSE(to_y.has_value());
  transport_.requests[0].done(MoveReply{.group = Pair(qx, qy)});
  EXPECT_TRUE(ran);
  ASSERT_TRUE(to_y.has_value() && to_y->ok());
  EXPECT_TRUE((*to_y)->group.has_value());
}

TEST_F(ScriptedBackendTest, FetchSaysWhetherItFollowsItsOwnRecord) {
  const QubitId qx = MakeQubitId(0, 1);
  const QubitId qy = MakeQubitId(1, 1);
  ASSERT_TRUE(backend_.mutable_system().InsertGroup(Pair(qx, qy)).ok());
  std::optional<absl::StatusOr<MoveReply>> to_y;
  backend_.HandleMove(qy, "y", true, [&](absl::StatusOr<MoveReply> r) { to_y = std::move(r); });
  ASSERT_TRUE(to_y.has_value() && to_y->ok() && (*to_y)->group.has_value());
  backend_.WithLocalQubits({qx}, [](absl::StatusOr<QuantumSystem*>) {});
  ASSERT_EQ(transport_.requests.size(), 1u);
  EXPECT_EQ(transport_.requests[0].holder, "y");
  EXPECT_FALSE(transport_.requests[0].by_hint);  // we sent it there
  // Redirected by y to z: z is only y's word.
  transport_.requests[0].done(MoveReply{.moved_to = "z"});
  ASSERT_EQ(transport_.requests.size(), 2u);
  EXPECT_EQ(transport_.requests[1].holder, "z");
  EXPECT_TRUE(transport_.requests[1].by_hint);
}

TEST_F(ScriptedBackendTest, AStaleReplyToAnEarlierFetchIsNotTheNewFetchs) {
  // Two of x's qubits come back with one group (ending both fetches), y
  // takes the group back, and x fetches its qubit anew: the first fetch's
  // late "not found" must not make the new fetch take it for absent.
  const QubitId qx = MakeQubitId(0, 1);
  const QubitId qx2 = MakeQubitId(0, 2);
  const QubitId qy = MakeQubitId(1, 1);
  backend_.NoteHeldBy(qx, "y");
  backend_.NoteHeldBy(qx2, "y");
  for (QubitId q : {qx, qx2}) backend_.WithLocalQubits({q}, [](absl::StatusOr<QuantumSystem*>) {});
  ASSERT_EQ(transport_.requests.size(), 2u);
  transport_.requests[1].done(MoveReply{.group = quantum::GroupState{{qx, qx2, qy}, Matrix::Identity(8, 8) / 8.0}});
  std::optional<absl::StatusOr<MoveReply>> to_y;
  backend_.HandleMove(qy, "y", false, [&](absl::StatusOr<MoveReply> r) { to_y = std::move(r); });
  ASSERT_TRUE(to_y.has_value() && to_y->ok() && (*to_y)->group.has_value());
  std::optional<bool> existed;
  backend_.WithLocalQubits({qx}, [&](absl::StatusOr<QuantumSystem*> s) {
    ASSERT_TRUE(s.ok());
    existed = (*s)->Exists(qx);
  });
  ASSERT_EQ(transport_.requests.size(), 3u);
  transport_.requests[0].done(MoveReply{.not_found = true});  // the first fetch's, late
  EXPECT_FALSE(existed.has_value());
  EXPECT_EQ(transport_.requests.size(), 3u);  // nothing asked on its account
  transport_.requests[2].done(MoveReply{.group = *std::move((*to_y)->group)});
  ASSERT_TRUE(existed.has_value());
  EXPECT_TRUE(*existed);
}

TEST_F(ScriptedBackendTest, NotFoundWaitsForAnotherFetchThatMayBringTheGroup) {
  // x's qubits qx and qx2 share a group. Asked on a stale hint, z knows
  // nothing of qx, but the fetch of qx2 from y brings the group.
  const QubitId qx = MakeQubitId(0, 1);
  const QubitId qx2 = MakeQubitId(0, 2);
  const QubitId qy = MakeQubitId(1, 1);
  backend_.NoteHeldBy(qx, "z");
  backend_.NoteHeldBy(qx2, "y");
  std::optional<bool> existed;
  backend_.WithLocalQubits({qx}, [&](absl::StatusOr<QuantumSystem*> s) {
    ASSERT_TRUE(s.ok());
    existed = (*s)->Exists(qx);
  });
  backend_.WithLocalQubits({qx2}, [](absl::StatusOr<QuantumSystem*>) {});
  ASSERT_EQ(transport_.requests.size(), 2u);
  transport_.requests[0].done(MoveReply{.not_found = true});
  EXPECT_FALSE(existed.has_value());
  transport_.requests[1].done(MoveReply{.group = quantum::GroupState{{qx, qx2, qy}, Matrix::Identity(8, 8) / 8.0}});
  ASSERT_TRUE(existed.has_value());
  EXPECT_TRUE(*existed);
}

TEST_F(ScriptedBackendTest, NotFoundWithoutOtherFetchesIsAbsent) {
  const QubitId qx = MakeQubitId(0, 1);
  backend_.NoteHeldBy(qx, "z");
  std::optional<bool> existed;
  backend_.WithLocalQubits({qx}, [&](absl::StatusOr<QuantumSystem*> s) {
    ASSERT_TRUE(s.ok());
    existed = (*s)->Exists(qx);
  });
  transport_.requests[0].done(MoveReply{.not_found = true});
  ASSERT_TRUE(existed.has_value());
  EXPECT_FALSE(*existed);
}

TEST_F(ScriptedBackendTest, NotFoundFromWhereWeSentTheGroupAsksAgain) {
  // Our record says the group went to y; y's "not found" predates its
  // arrival there.
  const QubitId qx = MakeQubitId(0, 1);
  const QubitId qy = MakeQubitId(1, 1);
  ASSERT_TRUE(backend_.mutable_system().InsertGroup(Pair(qx, qy)).ok());
  backend_.HandleMove(qy, "y", false, [](absl::StatusOr<MoveReply>) {});
  bool ran = false;
  backend_.WithLocalQubits({qx}, [&](absl::StatusOr<QuantumSystem*>) { ran = true; });
  ASSERT_EQ(transport_.requests.size(), 1u);
  transport_.requests[0].done(MoveReply{.not_found = true});
  EXPECT_FALSE(ran);
  ASSERT_EQ(transport_.requests.size(), 2u);
  EXPECT_EQ(transport_.requests[1].holder, "y");
}

TEST_F(ScriptedBackendTest, NotFoundWaitsOnlyForTheFetchesAskingWhenItCame) {
  // qx's "not found" waits for the fetch of qx2, which brings a group
  // without qx; the operation that waited for qx2 then fetches qx3. That
  // later fetch is not waited for: qx is absent.
  const QubitId qx = MakeQubitId(0, 1);
  const QubitId qx2 = MakeQubitId(0, 2);
  const QubitId qx3 = MakeQubitId(0, 3);
  const QubitId qy = MakeQubitId(1, 1);
  backend_.NoteHeldBy(qx, "z");
  backend_.NoteHeldBy(qx2, "y");
  backend_.NoteHeldBy(qx3, "y");
  std::optional<bool> existed;
  backend_.WithLocalQubits({qx}, [&](absl::StatusOr<QuantumSystem*> s) {
    ASSERT_TRUE(s.ok());
    existed = (*s)->Exists(qx);
  });
  backend_.WithLocalQubits({qx2, qx3}, [](absl::StatusOr<QuantumSystem*>) {});
  ASSERT_EQ(transport_.requests.size(), 2u);
  transport_.requests[0].done(MoveReply{.not_found = true});
  EXPECT_FALSE(existed.has_value());
  transport_.requests[1].done(MoveReply{.group = Pair(qx2, qy)});
  ASSERT_EQ(transport_.requests.size(), 3u);  // qx3, asked after the answer about qx
  ASSERT_TRUE(existed.has_value());
  EXPECT_FALSE(*existed);
}

TEST_F(ScriptedBackendTest, OurOperationsOnAnArrivingGroupRunBeforeAnotherDaemonTakesIt) {
  const QubitId qx = MakeQubitId(0, 1);
  const QubitId qx2 = MakeQubitId(0, 2);
  const QubitId qz = MakeQubitId(2, 1);
  backend_.NoteHeldBy(qx, "y");
  backend_.NoteHeldBy(qx2, "y");
  int found = 0;
  for (QubitId q : {qx, qx2}) {
    backend_.WithLocalQubits({q}, [&, q](absl::StatusOr<QuantumSystem*> s) {
      ASSERT_TRUE(s.ok());
      found += (*s)->Exists(q) ? 1 : 0;
    });
  }
  // z asks, on a hint, for its qubit of the same group: x waits for its fetches.
  std::optional<absl::StatusOr<MoveReply>> to_z;
  backend_.HandleMove(qz, "z", true, [&](absl::StatusOr<MoveReply> r) { to_z = std::move(r); });
  EXPECT_FALSE(to_z.has_value());
  transport_.requests[0].done(MoveReply{.group = quantum::GroupState{{qx, qx2, qz}, Matrix::Identity(8, 8) / 8.0}});
  EXPECT_EQ(found, 2);
  EXPECT_EQ(transport_.requests.size(), 2u);  // nothing fetched back from z
  ASSERT_TRUE(to_z.has_value() && to_z->ok());
  EXPECT_TRUE((*to_z)->group.has_value());
}

TEST_F(ScriptedBackendTest, AHandOverThatArrivedLeavesNoRecord) {
  // The station hands every MEASURE pair's far half over: its records must
  // not pile up once the far node has the group.
  const QubitId qx = MakeQubitId(0, 1);
  const QubitId qy = MakeQubitId(1, 1);
  ASSERT_TRUE(backend_.mutable_system().InsertGroup(Pair(qx, qy)).ok());
  Rng rng(3);
  backend_.WithLocalQubits({qx}, [&](absl::StatusOr<QuantumSystem*> s) {
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->Measure(qx, quantum::Basis::Z(), rng).ok());
  });
  ASSERT_EQ(transport_.arrivals.size(), 1u);
  auto ask = [&] {
    std::optional<absl::StatusOr<MoveReply>> reply;
    backend_.HandleMove(qy, "y", true, [&](absl::StatusOr<MoveReply> r) { reply = std::move(r); });
    return reply;
  };
  std::optional<absl::StatusOr<MoveReply>> before = ask();
  ASSERT_TRUE(before.has_value() && before->ok());
  EXPECT_EQ((*before)->moved_to, "y");  // on its way: redirected
  transport_.arrivals[0]();
  std::optional<absl::StatusOr<MoveReply>> after = ask();
  ASSERT_TRUE(after.has_value() && after->ok());
  EXPECT_TRUE((*after)->not_found);  // record dropped
}


TEST_F(ScriptedBackendTest, AGroupDeliveredToANodeKeepsRecordsOnlyOfOtherNodesQubits) {
  // x (this backend) holds a group of x's, y's and z's qubits; y takes it.
  const QubitId qx = MakeQubitId(0, 1);
  const QubitId qy = MakeQubitId(1, 1);
  const QubitId qz = MakeQubitId(2, 1);
  ASSERT_TRUE(backend_.mutable_system().InsertGroup({{qx, qy, qz}, Matrix::Identity(8, 8) / 8.0}).ok());
  auto ask = [&](QubitId q, const std::string& requester) {
    std::optional<absl::StatusOr<MoveReply>> reply;
    backend_.HandleMove(q, requester, true, [&](absl::StatusOr<MoveReply> r) { reply = std::move(r); });
    return reply;
  };
  std::optional<absl::StatusOr<MoveReply>> moved = ask(qy, "y");
  ASSERT_TRUE(moved.has_value() && moved->ok());
  ASSERT_TRUE((*moved)->group.has_value());
  // Until the move is known to have arrived (it may yet be cancelled and the
  // group restored here), y's own requests are redirected to y.
  std::optional<absl::StatusOr<MoveReply>> early = ask(qy, "y");
  ASSERT_TRUE(early.has_value() && early->ok());
  EXPECT_EQ((*early)->moved_to, "y");
  backend_.NoteMoveEnded((*moved)->move, true);
  // z may still ask here for its qubit: redirected. y's own qubit: no record.
  std::optional<absl::StatusOr<MoveReply>> for_z = ask(qz, "z");
  ASSERT_TRUE(for_z.has_value() && for_z->ok());
  EXPECT_EQ((*for_z)->moved_to, "y");
  std::optional<absl::StatusOr<MoveReply>> for_y = ask(qy, "y");
  ASSERT_TRUE(for_y.has_value() && for_y->ok());
  EXPECT_TRUE((*for_y)->not_found);
  EXPECT_EQ(backend_.moved_records(), 2u);  // qx (ours: we fetch it by record) and qz
  // Our own qubit is fetched from y by that record.
  backend_.WithLocalQubits({qx}, [](absl::StatusOr<QuantumSystem*>) {});
  ASSERT_EQ(transport_.requests.size(), 1u);
  EXPECT_EQ(transport_.requests[0].holder, "y");
  EXPECT_FALSE(transport_.requests[0].by_hint);
}

TEST_F(ScriptedBackendTest, ACancelledMoveKeepsItsRecordsUntilTheGroupIsBack) {
  const QubitId qx = MakeQubitId(0, 1);
  const QubitId qy = MakeQubitId(1, 1);
  ASSERT_TRUE(backend_.mutable_system().InsertGroup(Pair(qx, qy)).ok());
  std::optional<absl::StatusOr<MoveReply>> moved;
  backend_.HandleMove(qy, "y", true, [&](absl::StatusOr<MoveReply> r) { moved = std::move(r); });
  ASSERT_TRUE(moved.has_value() && moved->ok() && (*moved)->group.has_value());
  // The call is cancelled: the group comes back, and a late "delivered" for
  // the same move (there is none; this guards the bookkeeping) drops nothing.
  backend_.RestoreGroup(*(*moved)->group, "y");
  backend_.NoteMoveEnded((*moved)->move, false);
  EXPECT_TRUE(backend_.system().Exists(qy));
  EXPECT_EQ(backend_.moved_records(), 0u);
  std::optional<absl::StatusOr<MoveReply>> again;
  backend_.HandleMove(qy, "y", true, [&](absl::StatusOr<MoveReply> r) { again = std::move(r); });
  ASSERT_TRUE(again.has_value() && again->ok() && (*again)->group.has_value());
  backend_.NoteMoveEnded((*moved)->move, true);  // the first move's: not this one's
  EXPECT_EQ(backend_.moved_records(), 2u);
  backend_.NoteMoveEnded((*again)->move, true);
  EXPECT_EQ(backend_.moved_records(), 1u);  // qx, ours
}

TEST_F(ScriptedBackendTest, ADiscardEndsTheRecordsItFollows) {
  const QubitId qx = MakeQubitId(0, 1);
  const QubitId qy = MakeQubitId(1, 1);
  const QubitId qz = MakeQubitId(2, 1);
  ASSERT_TRUE(backend_.mutable_system().InsertGroup({{qx, qy, qz}, Matrix::Identity(8, 8) / 8.0}).ok());
  std::optional<absl::StatusOr<MoveReply>> moved;
  backend_.HandleMove(qy, "y", true, [&](absl::StatusOr<MoveReply> r) { moved = std::move(r); });
  ASSERT_TRUE(moved.has_value() && moved->ok() && (*moved)->group.has_value());
  backend_.NoteMoveEnded((*moved)->move, true);
  ASSERT_EQ(backend_.moved_records(), 2u);
  // z discards its qubit here: forwarded to y, and the record is done.
  backend_.HandleDiscard(qz, "z", 0);
  // We discard our own: sent to y by our record, which goes too.
  backend_.Discard(qx);
  ASSERT_EQ(transport_.discards.size(), 2u);
  EXPECT_EQ(transport_.discards[0], std::make_pair(std::string("y"), qz));
  EXPECT_EQ(transport_.discards[1], std::make_pair(std::string("y"), qx));
  EXPECT_EQ(backend_.moved_records(), 0u);
}

TEST_F(ScriptedBackendTest, AQubitDiscardedWhileItsMoveWasCancelledIsTracedOutOnRestore) {
  const QubitId qx = MakeQubitId(0, 1);
  const QubitId qy = MakeQubitId(1, 1);
  ASSERT_TRUE(backend_.mutable_system().InsertGroup(Pair(qx, qy)).ok());
  std::optional<absl::StatusOr<MoveReply>> moved;
  backend_.HandleMove(qy, "y", true, [&](absl::StatusOr<MoveReply> r) { moved = std::move(r); });
  ASSERT_TRUE(moved.has_value() && moved->ok() && (*moved)->group.has_value());
  // y discards its qubit before the move's fate is known: forwarded to y by
  // our record; then the move turns out cancelled and the group comes back.
  backend_.HandleDiscard(qy, "y", 0);
  ASSERT_EQ(transport_.discards.size(), 1u);
  backend_.RestoreGroup(*(*moved)->group, "y");
  backend_.NoteMoveEnded((*moved)->move, false);
  EXPECT_TRUE(backend_.system().Exists(qx));
  EXPECT_FALSE(backend_.system().Exists(qy));
}

}  // namespace
}  // namespace qnet::daemon
