// KEEP requests for more pairs than memory slots in the simulator: the link
// layer waits for the layer above to free its pairs (the master retries, the
// far end refuses transiently) instead of failing NO_RESOURCES, and a request
// whose memory never comes back ends by its own max_time (TIMEOUT, saying it
// was waiting for memory) with every slot the link layer held freed.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/link/sim_stack_network.h"

namespace qnet::link {
namespace {

using qnet::testing::EventLog;
using qnet::testing::SimStackNetwork;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

// Two memory qubits per node; alice is the link's master (node_a).
constexpr char kTwoQubitPair[] = R"(
network: two-qubit
nodes:
  - name: alice
    hardware: ideal
    qubits: 2
  - name: bob
    hardware: ideal
    qubits: 2
links:
  - between: [alice, bob]
    length_km: 1
)";
constexpr int kSlots = 2;
constexpr uint32_t kPurpose = 3;

struct Case {
  std::string origin;  // who asks; the other end is the receiver that holds its pairs a while
  bool announce;       // the receiver tells its link layer when it frees (LinkLayer::OnMemoryFreed)
};

std::string Name(const ::testing::TestParamInfo<Case>& info) {
  return info.param.origin + (info.param.announce ? "_announces" : "_silent");
}

class MemoryWaitTest : public ::testing::TestWithParam<Case> {};

// The origin frees its halves at once; the receiver frees each of its
// pairs kHold after it got it, so three rounds of memory are needed.
TEST_P(MemoryWaitTest, KeepRequestForThreeTimesTheMemoryCompletesAsTheReceiverFrees) {
  constexpr Duration kHold = milliseconds(5);
  constexpr uint32_t kPairs = 3 * kSlots;
  const Case c = GetParam();
  const std::string receiver = c.origin == "alice" ? "bob" : "alice";
  SimStackNetwork net(kTwoQubitPair, 21);
  EventLog origin_log;
  EventLog receiver_log;
  std::vector<TimePoint> delivered_at;  // at the receiver
  std::vector<TimePoint> freed_at;
  LinkLayer& receiver_link = net.link(receiver);
  physical::SimulatedDevice& receiver_device = net.device(receiver);
  auto hold_then_free = [&](const PairDelivered& pair) {
    delivered_at.push_back(net.Now());
    const int slot = pair.slot;
    net.simulator().ScheduleAfter(kHold, [&, slot] {
      EXPECT_TRUE(receiver_device.Free(slot).ok());
      freed_at.push_back(net.Now());
      if (c.announce) receiver_link.OnMemoryFreed();
    });
  };
  ASSERT_TRUE(receiver_link.RegisterReceiver(kPurpose, receiver_log.Handler(nullptr, hold_then_free)).ok());
  auto id = net.link(c.origin).Create({.remote_node = receiver,
                                       .number = kPairs,
                                       .type = RequestType::kKeep,
                                       .max_time = seconds(1),
                                       .purpose_id = kPurpose},
                                      origin_log.Handler(&net.device(c.origin)));
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(net.RunUntil(
      [&] { return origin_log.Ended(*id) && !receiver_log.completed.empty() && freed_at.size() == kPairs; },
      seconds(2)));
  ASSERT_EQ(origin_log.completed.size(), 1u) << (origin_log.failed.empty() ? "" : origin_log.failed[0].message);
  EXPECT_EQ(origin_log.completed[0].pairs, kPairs);
  ASSERT_EQ(receiver_log.pairs.size(), kPairs);
  EXPECT_TRUE(receiver_log.failed.empty());
  for (size_t i = 0; i < kPairs; ++i) {
    EXPECT_EQ(origin_log.pairs[i].entanglement_id, receiver_log.pairs[i].entanglement_id) << i;
  }
  // The receiver's memory is all taken by the pairs it holds: pair k could
  // only be generated after pair k - kSlots was freed.
  for (size_t k = kSlots; k < kPairs; ++k) {
    EXPECT_GE(delivered_at[k], delivered_at[k - kSlots] + kHold) << k;
  }
  // The waiting happened where the memory was short: the master's own
  // memory (alice receives) or the far end's (bob receives).
  const LinkLayerStats& master = net.link("alice").stats();
  if (receiver == "alice") {
    EXPECT_GT(master.memory_waits, 0u);
  } else {
    EXPECT_GT(master.far_memory_waits, 0u);
  }
  net.ExpectClean();
}

// Nobody frees: after the first kSlots pairs the request can only wait,
// until its max_time ends it at both ends.
TEST_P(MemoryWaitTest, NobodyFreesAndTheRequestTimesOutWaitingForMemory) {
  const Case c = GetParam();
  const std::string receiver = c.origin == "alice" ? "bob" : "alice";
  SimStackNetwork net(kTwoQubitPair, 22);
  EventLog origin_log;
  EventLog receiver_log;
  ASSERT_TRUE(net.link(receiver).RegisterReceiver(kPurpose, receiver_log.Handler()).ok());
  auto id = net.link(c.origin).Create({.remote_node = receiver,
                                       .number = 3 * kSlots,
                                       .type = RequestType::kKeep,
                                       .max_time = milliseconds(50),
                                       .purpose_id = kPurpose},
                                      origin_log.Handler());
  ASSERT_TRUE(id.ok()) << id.status();
  // Long before max_time both ends' memory is full and the request waits.
  ASSERT_TRUE(net.RunUntil([&] { return origin_log.pairs.size() == kSlots && receiver_log.pairs.size() == kSlots; },
                           milliseconds(20)));
  net.RunFor(milliseconds(10));
  EXPECT_FALSE(origin_log.Ended(*id));
  if (c.announce) net.link(receiver).OnMemoryFreed();  // a false alarm changes nothing
  ASSERT_TRUE(net.RunUntil([&] { return origin_log.Ended(*id) && !receiver_log.failed.empty(); }, seconds(1)));
  const RequestFailed* failed = origin_log.Failure(*id);
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->error, LinkError::kTimeout);
  EXPECT_EQ(failed->pairs_delivered, static_cast<uint32_t>(kSlots));
  EXPECT_THAT(failed->message, HasSubstr("max_time 50ms passed with 2 of 6 pairs delivered"));
  EXPECT_THAT(failed->message, HasSubstr("while waiting for free memory (all 2 memory slots at"));
  EXPECT_GE(net.Now(), TimePoint(milliseconds(50)));
  EXPECT_EQ(receiver_log.failed[0].error, LinkError::kTimeout);
  EXPECT_THAT(receiver_log.failed[0].message, HasSubstr("waiting for free memory"));
  EXPECT_TRUE(origin_log.expired.empty());
  EXPECT_TRUE(receiver_log.expired.empty());
  ASSERT_EQ(origin_log.pairs.size(), static_cast<size_t>(kSlots));
  ASSERT_EQ(receiver_log.pairs.size(), static_cast<size_t>(kSlots));
  // The link layer holds nothing: the only slots in use are the pairs
  // handed up, which the layer above still owns.
  for (const std::string node : {"alice", "bob"}) {
    EXPECT_EQ(net.link(node).held_slots(), 0) << node;
    EXPECT_EQ(net.link(node).active_requests(), 0u) << node;
    EXPECT_EQ(net.FreeSlots(node), 0) << node;
  }
  for (const PairDelivered& p : origin_log.pairs) EXPECT_TRUE(net.device(c.origin).Free(p.slot).ok());
  for (const PairDelivered& p : receiver_log.pairs) EXPECT_TRUE(net.device(receiver).Free(p.slot).ok());
  net.RunFor(milliseconds(10));  // the retry timer, if any, finds nothing to do
  net.ExpectClean();
}

INSTANTIATE_TEST_SUITE_P(Ends, MemoryWaitTest,
                         ::testing::Values(Case{"alice", false}, Case{"alice", true}, Case{"bob", false},
                                           Case{"bob", true}),
                         Name);

// Only the far end is short of memory: bob (one qubit) asks and keeps his
// halves, alice frees hers. The request waits for bob's memory and times out
// naming it.
TEST(MemoryWaitTest, WaitsForTheFarEndsMemory) {
  constexpr char kSmallBob[] = R"(
network: small-bob
nodes:
  - name: alice
    hardware: ideal
    qubits: 3
  - name: bob
    hardware: ideal
    qubits: 1
links:
  - between: [alice, bob]
    length_km: 1
)";
  SimStackNetwork net(kSmallBob, 4);
  EventLog alice;
  EventLog bob;
  ASSERT_TRUE(net.link("alice").RegisterReceiver(1, alice.Handler(&net.device("alice"))).ok());
  auto id = net.link("bob").Create(
      {.remote_node = "alice", .number = 3, .type = RequestType::kKeep, .max_time = milliseconds(30), .purpose_id = 1},
      bob.Handler());
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(net.RunUntil([&] { return bob.Ended(*id) && !alice.failed.empty(); }, seconds(1)));
  ASSERT_NE(bob.Failure(*id), nullptr);
  EXPECT_EQ(bob.Failure(*id)->error, LinkError::kTimeout);
  EXPECT_THAT(bob.Failure(*id)->message, HasSubstr("waiting for free memory (all 1 memory slots at bob are in use)"));
  EXPECT_EQ(alice.failed[0].error, LinkError::kTimeout);
  // The master kept asking bob (his refusals were transient).
  EXPECT_GT(net.link("alice").stats().far_memory_waits, 0u);
  ASSERT_EQ(bob.pairs.size(), 1u);
  EXPECT_EQ(net.link("alice").held_slots(), 0);
  EXPECT_EQ(net.link("bob").held_slots(), 0);
  EXPECT_TRUE(net.device("bob").Free(bob.pairs[0].slot).ok());
  net.ExpectClean();
}

}  // namespace
}  // namespace qnet::link
