// The link service's request handling in the simulator: KEEP pairs and their
// fidelity, immediate refusals, REJECTED, TIMEOUT, CANCELLED, open requests
// and their extensions, and the master's queue (priority, then fairness between the two ends). Waiting for
// memory held above: link_memory_wait_simtest.cc.
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantum/bell.h"
#include "tests/link/sim_stack_network.h"

namespace qnet::link {
namespace {

using qnet::testing::EventLog;
using qnet::testing::SimStackNetwork;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

constexpr char kNoisyLink[] = R"(
network: noisy
nodes:
  - name: alice
    hardware: ideal
    t2_s: 0.002
  - name: bob
    hardware: ideal
    t2_s: 0.002
links:
  - between: [alice, bob]
    length_km: 20
    scheme: single-click
    detector_efficiency: 0.8
)";

// One memory qubit per node, so generations run one at a time.
constexpr char kOneQubitPair[] = R"(
network: one-qubit
nodes:
  - name: alice
    hardware: ideal
    qubits: 1
  - name: bob
    hardware: ideal
    qubits: 1
links:
  - between: [alice, bob]
    length_km: 1
)";

constexpr char kIdealPair[] = R"(
network: ideal-pair
nodes:
  - name: alice
    hardware: ideal
  - name: bob
    hardware: ideal
links:
  - between: [alice, bob]
    length_km: 1
)";

// Double-click over 50 km with poor detectors: a pair takes seconds.
constexpr char kSlowLink[] = R"(
network: slow
nodes:
  - name: alice
    hardware: ideal
  - name: bob
    hardware: ideal
links:
  - between: [alice, bob]
    length_km: 50
    detector_efficiency: 0.05
)";

// bob's two qubits serve both of his links.
constexpr char kChain[] = R"(
network: chain
nodes:
  - name: alice
    hardware: ideal
  - name: bob
    hardware: ideal
  - name: charlie
    hardware: ideal
links:
  - between: [alice, bob]
    length_km: 1
  - between: [bob, charlie]
    length_km: 1
)";

EntanglementRequest Measure(std::string remote, uint32_t n, uint32_t purpose = 1) {
  return {.remote_node = std::move(remote),
          .number = n,
          .type = RequestType::kMeasure,
          .basis = BasisChoice::kZ,
          .min_fidelity = 0.5,
          .purpose_id = purpose};
}

// A MEASURE request that stays open once its `n` pairs are delivered.
EntanglementRequest OpenMeasure(std::string remote, uint32_t n) {
  EntanglementRequest r = Measure(std::move(remote), n);
  r.open = true;
  return r;
}

std::set<uint64_t> Sequences(const EventLog& log) {
  std::set<uint64_t> s;
  for (const auto& p : log.pairs) s.insert(p.entanglement_id.sequence);
  for (const auto& e : log.expired) s.erase(e.entanglement_id.sequence);
  return s;
}

// Cancels open requests at `origin` and waits until the origin has ended
// each and the far end has heard of `far_failures` ended requests in all;
// then nothing may be left behind.
void CancelAndWaitBothEnds(SimStackNetwork& net, const std::string& origin, const std::vector<RequestId>& ids,
                           const EventLog& own, const EventLog& recv, size_t far_failures) {
  for (RequestId id : ids) ASSERT_TRUE(net.link(origin).Cancel(id).ok()) << id;
  ASSERT_TRUE(net.RunUntil(
      [&] {
        return recv.failed.size() == far_failures &&
               std::all_of(ids.begin(), ids.end(), [&](RequestId id) { return own.Ended(id); });
      },
      seconds(1)));
  for (RequestId id : ids) EXPECT_EQ(own.Failure(id)->error, LinkError::kCancelled) << id;
  EXPECT_TRUE(own.completed.empty() && recv.completed.empty());
  net.ExpectClean();
}

TEST(LinkRequestsTest, KeepPairsMeetMinFidelityAndMatchTheEstimate) {
  constexpr double kMinFidelity = 0.8;
  constexpr uint32_t kPairs = 40;
  SimStackNetwork net(kNoisyLink, 3);
  // The first end's delivery waits here until the other end delivers too.
  struct Half {
    physical::SimulatedDevice* device;
    int slot;
  };
  std::map<uint64_t, Half> first;
  int checked = 0;
  const auto on_pair = [&](std::string node) {
    return [&, node](const PairDelivered& p) {
      physical::SimulatedDevice* device = &net.device(node);
      ASSERT_GE(p.slot, 0);
      EXPECT_TRUE(device->IsAllocated(p.slot));
      EXPECT_EQ(p.estimate_time, net.Now());
      auto other = first.find(p.entanglement_id.sequence);
      if (other == first.end()) {
        first[p.entanglement_id.sequence] = {device, p.slot};
        return;
      }
      // Ground truth (simulation only): the pair's state now, node_a first.
      const bool here_is_a = node == "alice";
      std::vector<std::pair<physical::SimulatedDevice*, int>> slots = {{other->second.device, other->second.slot},
                                                                       {device, p.slot}};
      if (here_is_a) std::swap(slots[0], slots[1]);
      physical::SimulatedDevice::SimulationOnlyTrueState(slots, [&](absl::StatusOr<quantum::Matrix> rho) {
        ASSERT_TRUE(rho.ok()) << rho.status();
        const Eigen::Vector4cd v = quantum::BellVector(p.bell_state);
        const double f = std::real(v.dot(*rho * v));
        EXPECT_GE(f, kMinFidelity);
        EXPECT_NEAR(f, p.fidelity_estimate, 2e-3);
        ++checked;
      });
      EXPECT_TRUE(device->Free(p.slot).ok());
      EXPECT_TRUE(other->second.device->Free(other->second.slot).ok());
      first.erase(other);
    };
  };
  EventLog alice;
  EventLog bob;
  ASSERT_TRUE(net.link("bob").RegisterReceiver(3, bob.Handler(nullptr, on_pair("bob"))).ok());
  auto id = net.link("alice").Create({.remote_node = "bob",
                                      .number = kPairs,
                                      .type = RequestType::kKeep,
                                      .min_fidelity = kMinFidelity,
                                      .purpose_id = 3},
                                     alice.Handler(nullptr, on_pair("alice")));
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(net.RunUntil([&] { return alice.Ended(*id) && !bob.completed.empty(); }, seconds(10)));
  ASSERT_EQ(alice.completed.size(), 1u);
  EXPECT_EQ(alice.completed[0].pairs, kPairs);
  EXPECT_EQ(checked, static_cast<int>(kPairs));
  EXPECT_EQ(Sequences(alice), Sequences(bob));
  for (size_t i = 0; i < alice.pairs.size(); ++i) EXPECT_EQ(alice.pairs[i].pair_index, i);
  net.ExpectClean();
}

TEST(LinkRequestsTest, ImmediateErrors) {
  SimStackNetwork net(kNoisyLink, 1);
  LinkLayer& alice = net.link("alice");
  EventLog log;
  // Unreachable fidelity: refused at once, nothing is sent.
  auto unsupported = alice.Create({.remote_node = "bob", .number = 1, .min_fidelity = 0.9999}, log.Handler());
  EXPECT_EQ(unsupported.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(unsupported.status().message(), HasSubstr("UNSUPPORTED"));
  EXPECT_EQ(LinkErrorFromStatusCode(unsupported.status().code()), LinkError::kUnsupported);
  EXPECT_EQ(alice.active_requests(), 0u);

  EXPECT_EQ(alice.Create({.remote_node = "carol"}, log.Handler()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(alice.Create({.remote_node = "bob", .number = 0}, log.Handler()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(alice.Create({.remote_node = "bob", .min_fidelity = 1.5}, log.Handler()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(alice.Create({.remote_node = "bob", .max_time = -milliseconds(1)}, log.Handler()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(alice.Create({.remote_node = "bob"}, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(alice.Cancel(12345).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(alice.RegisterReceiver(1, log.Handler()).ok());
  EXPECT_EQ(alice.RegisterReceiver(1, log.Handler()).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(alice.UnregisterReceiver(1).ok());
  EXPECT_EQ(alice.UnregisterReceiver(1).code(), absl::StatusCode::kNotFound);
  net.RunFor(milliseconds(10));
  EXPECT_TRUE(log.pairs.empty() && log.failed.empty());
  net.ExpectClean();
}

TEST(LinkRequestsTest, RejectedWithoutAReceiverForThePurpose) {
  SimStackNetwork net(kIdealPair, 1);
  EventLog alice;
  EventLog bob;
  auto first = net.link("alice").Create(Measure("bob", 5, 9), alice.Handler());
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(net.RunUntil([&] { return alice.Ended(*first); }, seconds(1)));
  ASSERT_NE(alice.Failure(*first), nullptr);
  EXPECT_EQ(alice.Failure(*first)->error, LinkError::kRejected);
  EXPECT_THAT(alice.Failure(*first)->message, HasSubstr("purpose id 9"));

  // With a receiver it goes through; unregistered, it is rejected again.
  ASSERT_TRUE(net.link("bob").RegisterReceiver(9, bob.Handler()).ok());
  auto second = net.link("alice").Create(Measure("bob", 5, 9), alice.Handler());
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(net.RunUntil([&] { return alice.Ended(*second); }, seconds(1)));
  EXPECT_EQ(alice.PairsFor(*second), 5u);
  ASSERT_TRUE(net.link("bob").UnregisterReceiver(9).ok());
  auto third = net.link("alice").Create(Measure("bob", 5, 9), alice.Handler());
  ASSERT_TRUE(third.ok());
  ASSERT_TRUE(net.RunUntil([&] { return alice.Ended(*third); }, seconds(1)));
  ASSERT_NE(alice.Failure(*third), nullptr);
  EXPECT_EQ(alice.Failure(*third)->error, LinkError::kRejected);
  net.ExpectClean();
}

TEST(LinkRequestsTest, TimeoutReachesBothEnds) {
  SimStackNetwork net(kSlowLink, 1);
  EventLog alice;
  EventLog bob;
  ASSERT_TRUE(net.link("alice").RegisterReceiver(1, alice.Handler()).ok());
  // Originated at the non-master end; its deadline ends it at both.
  EntanglementRequest request = Measure("alice", 100);
  request.max_time = milliseconds(20);
  auto id = net.link("bob").Create(request, bob.Handler());
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(net.RunUntil([&] { return bob.Ended(*id) && !alice.failed.empty(); }, seconds(1)));
  ASSERT_NE(bob.Failure(*id), nullptr);
  EXPECT_EQ(bob.Failure(*id)->error, LinkError::kTimeout);
  EXPECT_THAT(bob.Failure(*id)->message, HasSubstr("max_time"));
  EXPECT_EQ(alice.failed[0].error, LinkError::kTimeout);
  EXPECT_EQ(alice.failed[0].request_id, alice.incoming.at(0).request_id);
  EXPECT_EQ(Sequences(alice), Sequences(bob));
  net.ExpectClean();
}

TEST(LinkRequestsTest, CancelFromEitherEnd) {
  SimStackNetwork net(kIdealPair, 2);
  EventLog alice;
  EventLog bob;
  ASSERT_TRUE(net.link("bob").RegisterReceiver(1, bob.Handler()).ok());
  auto id = net.link("alice").Create(Measure("bob", 1000000), alice.Handler());
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(net.RunUntil([&] { return alice.pairs.size() >= 10; }, seconds(1)));
  ASSERT_TRUE(net.link("alice").Cancel(*id).ok());
  EXPECT_TRUE(alice.failed.empty());  // events never run inside the call
  ASSERT_TRUE(net.RunUntil([&] { return alice.Ended(*id) && !bob.failed.empty(); }, seconds(1)));
  EXPECT_EQ(alice.Failure(*id)->error, LinkError::kCancelled);
  EXPECT_EQ(bob.failed[0].error, LinkError::kCancelled);
  EXPECT_EQ(Sequences(alice), Sequences(bob));  // a pair caught in the race is expired at the end that had it
  net.ExpectClean();

  // The receiving end cancels, with the id its IncomingRequest gave it.
  auto second = net.link("alice").Create(Measure("bob", 1000000), alice.Handler());
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(net.RunUntil([&] { return bob.incoming.size() == 2 && bob.PairsFor(bob.incoming[1].request_id) >= 10; },
                           seconds(1)));
  ASSERT_TRUE(net.link("bob").Cancel(bob.incoming[1].request_id).ok());
  ASSERT_TRUE(net.RunUntil([&] { return alice.Ended(*second) && bob.failed.size() == 2; }, seconds(1)));
  EXPECT_EQ(alice.Failure(*second)->error, LinkError::kCancelled);
  EXPECT_EQ(bob.failed[1].error, LinkError::kCancelled);
  EXPECT_EQ(Sequences(alice), Sequences(bob));
  net.ExpectClean();
}

// An open request delivers what it asked for and stays open, idle, until
// its origin extends it; only a cancel ends it. Asked at the master (alice)
// and at the far end (bob, whose Extend must reach the master).
TEST(LinkRequestsTest, AnOpenRequestServesEachExtensionAndEndsOnlyWhenCancelled) {
  for (const char* origin : {"alice", "bob"}) {
    SCOPED_TRACE(origin);
    const std::string far = std::string(origin) == "alice" ? "bob" : "alice";
    SimStackNetwork net(kIdealPair, 12);
    EventLog own;
    EventLog recv;
    ASSERT_TRUE(net.link(far).RegisterReceiver(1, recv.Handler()).ok());
    auto id = net.link(origin).Create(OpenMeasure(far, 3), own.Handler());
    ASSERT_TRUE(id.ok()) << id.status();
    ASSERT_TRUE(net.RunUntil([&] { return own.pairs.size() == 3 && recv.pairs.size() == 3; }, seconds(1)));
    // Idle and open: a pair takes microseconds on this link, so 10 ms would
    // deliver hundreds more if it went on.
    net.RunFor(milliseconds(10));
    EXPECT_EQ(own.pairs.size(), 3u);
    EXPECT_EQ(recv.pairs.size(), 3u);
    EXPECT_TRUE(own.completed.empty() && recv.completed.empty() && own.failed.empty() && recv.failed.empty());

    ASSERT_TRUE(net.link(origin).Extend(*id, 4).ok());
    ASSERT_TRUE(net.RunUntil([&] { return own.pairs.size() == 7 && recv.pairs.size() == 7; }, seconds(1)));
    net.RunFor(milliseconds(10));
    EXPECT_EQ(own.pairs.size(), 7u);
    EXPECT_EQ(recv.pairs.size(), 7u);
    for (size_t i = 0; i < own.pairs.size(); ++i) EXPECT_EQ(own.pairs[i].pair_index, i);

    // Only the origin extends, by at least one pair; a closed request cannot.
    const RequestId far_id = recv.incoming.at(0).request_id;
    EXPECT_EQ(net.link(far).Extend(far_id, 1).code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(net.link(origin).Extend(*id, 0).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(net.link(origin).Extend(*id + 1000, 1).code(), absl::StatusCode::kNotFound);
    auto closed = net.link(origin).Create(Measure(far, 1000000), own.Handler());
    ASSERT_TRUE(closed.ok());
    EXPECT_EQ(net.link(origin).Extend(*closed, 1).code(), absl::StatusCode::kFailedPrecondition);
    ASSERT_TRUE(net.link(origin).Cancel(*closed).ok());

    EXPECT_EQ(Sequences(own), Sequences(recv));
    CancelAndWaitBothEnds(net, origin, {*id}, own, recv, 2);
  }
}

// The far end extends before the master has its request: the master learns
// the total when it accepts (an Extend sent ahead could overtake the
// Submit on a reordering channel and be lost).
TEST(LinkRequestsTest, AnExtensionBeforeAcceptanceReachesTheMaster) {
  SimStackNetwork net(kIdealPair, 14);
  EventLog own;
  EventLog recv;
  ASSERT_TRUE(net.link("alice").RegisterReceiver(1, recv.Handler()).ok());
  auto id = net.link("bob").Create(OpenMeasure("alice", 1), own.Handler());
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(net.link("bob").Extend(*id, 2).ok());
  ASSERT_TRUE(net.RunUntil([&] { return own.pairs.size() == 3 && recv.pairs.size() == 3; }, seconds(1)));
  net.RunFor(milliseconds(10));
  EXPECT_EQ(own.pairs.size(), 3u);
  CancelAndWaitBothEnds(net, "bob", {*id}, own, recv, 1);
}

// An extension is served as a new request would be: behind the requests
// already waiting, not ahead of them by the request's age.
TEST(LinkRequestsTest, AnExtendedRequestQueuesBehindThoseAlreadyWaiting) {
  SimStackNetwork net(kOneQubitPair, 13);  // one generation at a time
  EventLog own;
  EventLog recv;
  ASSERT_TRUE(net.link("bob").RegisterReceiver(1, recv.Handler()).ok());
  const EntanglementRequest request = OpenMeasure("bob", 1);
  auto older = net.link("alice").Create(request, own.Handler());
  auto newer = net.link("alice").Create(request, own.Handler());
  auto first = net.link("alice").Create(request, own.Handler());
  ASSERT_TRUE(older.ok() && newer.ok() && first.ok());
  ASSERT_TRUE(net.RunUntil([&] { return own.pairs.size() == 3; }, seconds(1)));
  // All three served to their end. `first` asks again and takes the one
  // qubit; then the newer and the older ask, in that order, and wait.
  ASSERT_TRUE(net.link("alice").Extend(*first, 1).ok());
  ASSERT_TRUE(net.link("alice").Extend(*newer, 1).ok());
  ASSERT_TRUE(net.link("alice").Extend(*older, 1).ok());
  ASSERT_TRUE(net.RunUntil([&] { return own.pairs.size() == 6; }, seconds(1)));
  EXPECT_EQ(own.pairs[3].request_id, *first);
  EXPECT_EQ(own.pairs[4].request_id, *newer);
  EXPECT_EQ(own.pairs[5].request_id, *older);
  CancelAndWaitBothEnds(net, "alice", {*older, *newer, *first}, own, recv, 3);
}

// Both ends ask at once. The master (alice) serves the higher priority
// first, then alternates between the two ends' requests at equal priority.
TEST(LinkRequestsTest, PriorityThenFairnessBetweenTheEnds) {
  SimStackNetwork net(kOneQubitPair, 6);
  EventLog alice_own;
  EventLog alice_recv;
  EventLog bob_own;
  EventLog bob_recv;
  ASSERT_TRUE(net.link("alice").RegisterReceiver(1, alice_recv.Handler()).ok());
  ASSERT_TRUE(net.link("bob").RegisterReceiver(1, bob_recv.Handler()).ok());
  auto b1 = net.link("bob").Create(Measure("alice", 4), bob_own.Handler());
  auto a1 = net.link("alice").Create(Measure("bob", 4), alice_own.Handler());
  EntanglementRequest urgent = Measure("bob", 2);
  urgent.priority = 5;
  auto a2 = net.link("alice").Create(urgent, alice_own.Handler());
  ASSERT_TRUE(b1.ok() && a1.ok() && a2.ok());
  ASSERT_TRUE(net.RunUntil(
      [&] { return alice_own.completed.size() == 2 && bob_own.completed.size() == 1 && alice_recv.completed.size() == 1 &&
                   bob_recv.completed.size() == 2; },
      seconds(1)));
  std::map<uint64_t, std::string> order;  // by generation order at the master
  for (const auto& p : alice_own.pairs) order[p.entanglement_id.sequence] = p.request_id == *a1 ? "A1" : "A2";
  for (const auto& p : alice_recv.pairs) order[p.entanglement_id.sequence] = "B1";
  std::vector<std::string> served;
  for (const auto& [seq, who] : order) served.push_back(who);
  // B1 reaches the master first and starts at once; then A2 (priority 5);
  // then B1 and A1 take turns.
  EXPECT_THAT(served, ::testing::ElementsAre("B1", "A2", "A2", "B1", "A1", "B1", "A1", "B1", "A1", "A1"));
  EXPECT_EQ(Sequences(alice_own), Sequences(bob_recv));
  EXPECT_EQ(Sequences(alice_recv), Sequences(bob_own));
  net.ExpectClean();
}

TEST(LinkRequestsTest, FixedBasisIsUsedAtBothEnds) {
  SimStackNetwork net(kIdealPair, 8);
  EventLog alice;
  EventLog bob;
  ASSERT_TRUE(net.link("bob").RegisterReceiver(1, bob.Handler()).ok());
  EntanglementRequest request = Measure("bob", 50);
  request.basis = BasisChoice::kY;
  auto id = net.link("alice").Create(request, alice.Handler());
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(net.RunUntil([&] { return alice.Ended(*id) && !bob.completed.empty(); }, seconds(1)));
  ASSERT_EQ(alice.pairs.size(), 50u);
  for (const auto& p : alice.pairs) EXPECT_EQ(p.basis, MeasurementBasis::kY);
  for (const auto& p : bob.pairs) EXPECT_EQ(p.basis, MeasurementBasis::kY);
  net.ExpectClean();
}

// bob is the far end on alice-bob and the master on bob-charlie; his memory
// is busy with one link when the other asks for it (a transient shortage
// that must delay, not fail, the request).
TEST(LinkRequestsTest, TwoLinksShareTheRepeatersMemory) {
  SimStackNetwork net(kChain, 10);
  EventLog alice;
  EventLog charlie;
  EventLog bob;
  ASSERT_TRUE(net.link("bob").RegisterReceiver(1, bob.Handler(&net.device("bob"))).ok());
  auto from_alice = net.link("alice").Create(Measure("bob", 300), alice.Handler());
  auto from_charlie = net.link("charlie").Create(
      {.remote_node = "bob", .number = 100, .type = RequestType::kKeep, .purpose_id = 1},
      charlie.Handler(&net.device("charlie")));
  ASSERT_TRUE(from_alice.ok() && from_charlie.ok());
  ASSERT_TRUE(net.RunUntil([&] { return alice.Ended(*from_alice) && charlie.Ended(*from_charlie) &&
                                        bob.completed.size() == 2; },
                           seconds(10)));
  EXPECT_EQ(alice.completed.size(), 1u);
  EXPECT_EQ(charlie.completed.size(), 1u);
  EXPECT_EQ(alice.pairs.size(), 300u);
  EXPECT_EQ(charlie.pairs.size(), 100u);
  EXPECT_EQ(bob.pairs.size(), 400u);
  EXPECT_GT(net.link("alice").stats().far_memory_waits, 0u);
  net.ExpectClean();
}

}  // namespace
}  // namespace qnet::link
