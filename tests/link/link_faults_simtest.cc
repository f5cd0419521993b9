// The link layer under faults in the simulator: lost, delayed and reordered
// messages (link and physical layer alike), a neighbour going down
// mid-request, and a neighbour that crashes and restarts. Every scenario ends
// with all memory free and no simulated qubit left.
#include <set>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/link/sim_stack_network.h"

namespace qnet::link {
namespace {

using qnet::testing::EventLog;
using qnet::testing::SimStackNetwork;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

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

// alice has room to hold two pairs and still generate.
constexpr char kRoomyAlice[] = R"(
network: roomy
nodes:
  - name: alice
    hardware: ideal
    qubits: 4
  - name: bob
    hardware: ideal
links:
  - between: [alice, bob]
    length_km: 1
)";

std::set<uint64_t> Sequences(const EventLog& log) {
  std::set<uint64_t> s;
  for (const auto& p : log.pairs) s.insert(p.entanglement_id.sequence);
  for (const auto& e : log.expired) s.erase(e.entanglement_id.sequence);
  return s;
}

EntanglementRequest Request(std::string remote, RequestType type, uint32_t n) {
  return {.remote_node = std::move(remote), .number = n, .type = type, .basis = BasisChoice::kBb84, .purpose_id = 1};
}

TEST(LinkFaultsTest, LossDelayAndReorderingStillDeliverEveryPair) {
  sim::ChannelOptions lossy;
  lossy.loss_probability = 0.2;
  lossy.extra_delay = microseconds(20);
  lossy.jitter = microseconds(30);
  lossy.serialize_messages = true;  // and everything survives the wire format
  SimStackNetwork net(kIdealPair, 12, lossy);
  EventLog alice_own;
  EventLog alice_recv;
  EventLog bob_own;
  EventLog bob_recv;
  ASSERT_TRUE(net.link("alice").RegisterReceiver(1, alice_recv.Handler(&net.device("alice"))).ok());
  ASSERT_TRUE(net.link("bob").RegisterReceiver(1, bob_recv.Handler(&net.device("bob"))).ok());
  auto keep = net.link("alice").Create(Request("bob", RequestType::kKeep, 100), alice_own.Handler(&net.device("alice")));
  auto measure = net.link("bob").Create(Request("alice", RequestType::kMeasure, 300), bob_own.Handler());
  ASSERT_TRUE(keep.ok() && measure.ok());
  ASSERT_TRUE(net.RunUntil([&] { return alice_own.Ended(*keep) && bob_own.Ended(*measure) &&
                                        !alice_recv.completed.empty() && !bob_recv.completed.empty(); },
                           seconds(60)));
  EXPECT_EQ(alice_own.completed.size(), 1u);
  EXPECT_EQ(bob_own.completed.size(), 1u);
  EXPECT_EQ(alice_own.pairs.size(), 100u);
  EXPECT_EQ(bob_recv.pairs.size(), 100u);
  EXPECT_EQ(bob_own.pairs.size(), 300u);
  EXPECT_EQ(alice_recv.pairs.size(), 300u);
  EXPECT_TRUE(alice_own.expired.empty() && bob_own.expired.empty());
  EXPECT_EQ(Sequences(alice_own), Sequences(bob_recv));
  EXPECT_EQ(Sequences(bob_own), Sequences(alice_recv));
  for (size_t i = 0; i < bob_own.pairs.size(); ++i) {
    const PairDelivered& b = bob_own.pairs[i];
    EXPECT_EQ(b.pair_index, i);
  }
  // Messages really were lost and resent.
  EXPECT_GT(net.link("alice").retransmissions() + net.link("bob").retransmissions(), 50u);
  EXPECT_GT(net.network().channels()[0]->stats().lost, 100u);
  // Heralds and readiness messages were lost too, and the generations they
  // stranded were abandoned and retried.
  EXPECT_GT(net.link("alice").stats().lost_heralds + net.link("bob").stats().lost_heralds, 10u);
  EXPECT_EQ(net.link("alice").stats().pairs_delivered, 400u);
  for (const char* node : {"alice", "bob"}) {
    const LinkLayerStats& st = net.link(node).stats();
    RecordProperty(node, absl::StrCat("started ", st.generations_started, " failed ", st.generations_failed,
                                      " lost heralds ", st.lost_heralds, " retransmissions ",
                                      net.link(node).retransmissions()));
  }
  net.ExpectClean();
}

TEST(LinkFaultsTest, NeighbourDownMidRequestFailsBothEndsAndFreesEverything) {
  SimStackNetwork net(kIdealPair, 4);
  EventLog alice;
  EventLog bob;
  ASSERT_TRUE(net.link("bob").RegisterReceiver(1, bob.Handler(&net.device("bob"))).ok());
  auto id = net.link("alice").Create(Request("bob", RequestType::kKeep, 1000000), alice.Handler(&net.device("alice")));
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(net.RunUntil([&] { return alice.pairs.size() >= 20; }, seconds(1)));
  EXPECT_GT(net.link("alice").held_slots(), 0);
  sim::SimChannel* channel = net.network().FindChannel("alice", "bob");
  channel->TakeDown();
  ASSERT_TRUE(net.RunUntil([&] { return alice.Ended(*id) && !bob.failed.empty(); }, milliseconds(1)));
  EXPECT_EQ(alice.Failure(*id)->error, LinkError::kPeerDown);
  EXPECT_EQ(bob.failed[0].error, LinkError::kPeerDown);
  net.RunFor(milliseconds(10));
  net.ExpectClean();
  // While it is down, requests fail at once.
  EXPECT_EQ(net.link("alice").Create(Request("bob", RequestType::kMeasure, 1), alice.Handler()).status().code(),
            absl::StatusCode::kUnavailable);

  // Back up: the link works again.
  channel->BringUp();
  net.RunFor(microseconds(1));
  auto again = net.link("alice").Create(Request("bob", RequestType::kMeasure, 10), alice.Handler());
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(net.RunUntil([&] { return alice.Ended(*again) && !bob.completed.empty(); }, seconds(1)));
  EXPECT_EQ(alice.PairsFor(*again), 10u);
  net.ExpectClean();
}

TEST(LinkFaultsTest, RestartedPeerExpiresKeptPairs) {
  SimStackNetwork net(kRoomyAlice, 9);
  EventLog alice;
  EventLog bob;
  // alice keeps her halves; bob frees his.
  ASSERT_TRUE(net.link("bob").RegisterReceiver(1, bob.Handler(&net.device("bob"))).ok());
  auto id = net.link("alice").Create(Request("bob", RequestType::kKeep, 2), alice.Handler());
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(net.RunUntil([&] { return alice.Ended(*id) && !bob.completed.empty(); }, seconds(1)));
  ASSERT_EQ(alice.pairs.size(), 2u);
  const uint64_t old_incarnation = net.link("bob").incarnation();

  // bob crashes mid-way through a second request, then comes back.
  auto second = net.link("alice").Create(Request("bob", RequestType::kMeasure, 1000000), alice.Handler());
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(net.RunUntil([&] { return alice.PairsFor(*second) >= 5; }, seconds(1)));
  net.Crash("bob");
  ASSERT_TRUE(net.RunUntil([&] { return alice.Ended(*second); }, milliseconds(1)));
  EXPECT_EQ(alice.Failure(*second)->error, LinkError::kPeerDown);
  EXPECT_TRUE(alice.expired.empty());  // down is not yet lost: it may come back
  net.Restart("bob");
  EXPECT_NE(net.link("bob").incarnation(), old_incarnation);
  ASSERT_TRUE(net.RunUntil([&] { return alice.expired.size() == 2; }, milliseconds(10)));
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(alice.expired[i].request_id, *id);
    EXPECT_EQ(alice.expired[i].entanglement_id, alice.pairs[i].entanglement_id);
    EXPECT_EQ(alice.expired[i].slot, alice.pairs[i].slot);
    EXPECT_TRUE(net.device("alice").Free(alice.expired[i].slot).ok());
  }
  // The restarted bob serves new requests.
  EventLog bob2;
  ASSERT_TRUE(net.link("bob").RegisterReceiver(1, bob2.Handler()).ok());
  auto third = net.link("alice").Create(Request("bob", RequestType::kMeasure, 10), alice.Handler());
  ASSERT_TRUE(third.ok());
  ASSERT_TRUE(net.RunUntil([&] { return alice.Ended(*third) && !bob2.completed.empty(); }, seconds(1)));
  EXPECT_EQ(alice.PairsFor(*third), 10u);
  net.ExpectClean();
}

}  // namespace
}  // namespace qnet::link
