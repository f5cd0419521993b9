#include "sim/sim_network.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qnet::sim {
namespace {

using std::chrono::microseconds;
using std::chrono::nanoseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::PeerMessage Numbered(uint64_t n) {
  v1::PeerMessage m;
  m.mutable_physical()->set_link("test");
  m.mutable_physical()->mutable_ready()->set_generation_id(n);
  return m;
}

// Records everything delivered to one node, with the arrival time.
class RecordingSink : public PeerMessageSink {
 public:
  explicit RecordingSink(Simulator& sim) : sim_(sim) {}
  void OnPeerMessage(const std::string& from, const v1::PeerMessage& message) override {
    received.push_back({sim_.Now(), from, message.physical().ready().generation_id()});
  }
  void OnNeighbourUp(const std::string& n) override { events.push_back("up:" + n); }
  void OnNeighbourDown(const std::string& n) override { events.push_back("down:" + n); }

  struct Received {
    TimePoint at;
    std::string from;
    uint64_t number;
  };
  std::vector<Received> received;
  std::vector<std::string> events;

 private:
  Simulator& sim_;
};

SimTopology Chain(std::vector<std::string> nodes, double length_km) {
  SimTopology t{nodes, {}};
  for (size_t i = 0; i + 1 < nodes.size(); ++i) {
    t.links.push_back({nodes[i] + "-" + nodes[i + 1], nodes[i], nodes[i + 1], length_km});
  }
  return t;
}

struct Fixture {
  explicit Fixture(SimTopology topology, ChannelOptions options = {}, uint64_t seed = 1) {
    auto created = SimNetwork::Create(sim, seed, std::move(topology), options);
    EXPECT_TRUE(created.ok()) << created.status();
    net = std::move(created).value();
    for (size_t i = 0; i < net->num_nodes(); ++i) {
      sinks.push_back(std::make_unique<RecordingSink>(sim));
      net->node(i).SetSink(sinks.back().get());
    }
  }
  RecordingSink& sink(size_t i) { return *sinks[i]; }
  SimNodeContext& node(const std::string& name) { return *net->FindNode(name); }

  Simulator sim;
  std::unique_ptr<SimNetwork> net;
  std::vector<std::unique_ptr<RecordingSink>> sinks;
};

TEST(SimNetworkTest, DelayIsFibreLengthOverSpeedOfLight) {
  // 10 km at 2e5 km/s is 50 us exactly; 3.7 km is 18.5 us.
  Fixture f(SimTopology{{"a", "b", "c"}, {{"a-b", "a", "b", 10.0}, {"b-c", "b", "c", 3.7}}});
  f.node("a").SendToNeighbour("b", Numbered(1));
  f.node("c").SendToNeighbour("b", Numbered(2));
  f.sim.RunUntilIdle();
  ASSERT_EQ(f.sink(1).received.size(), 2u);
  EXPECT_EQ(f.sink(1).received[0].from, "c");
  EXPECT_EQ(f.sink(1).received[0].at.time_since_epoch(), nanoseconds(18'500));
  EXPECT_EQ(f.sink(1).received[1].from, "a");
  EXPECT_EQ(f.sink(1).received[1].at.time_since_epoch(), nanoseconds(50'000));
  EXPECT_EQ(f.net->FindChannel("b", "a")->delay(), microseconds(50));
}

TEST(SimNetworkTest, ExtraDelayAddsToTheFibreDelay) {
  ChannelOptions options;
  options.extra_delay = microseconds(7);
  Fixture f(Chain({"a", "b"}, 1.0), options);
  f.node("b").SendToNeighbour("a", Numbered(1));
  f.sim.RunUntilIdle();
  ASSERT_EQ(f.sink(0).received.size(), 1u);
  EXPECT_EQ(f.sink(0).received[0].at.time_since_epoch(), microseconds(5 + 7));
}

TEST(SimNetworkTest, DeliveryIsFifoWithoutJitter) {
  Fixture f(Chain({"a", "b"}, 25.0));
  // Bursts at equal times and at increasing times.
  for (uint64_t i = 0; i < 500; ++i) f.node("a").SendToNeighbour("b", Numbered(i));
  for (uint64_t i = 500; i < 1000; ++i) {
    f.sim.ScheduleAfter(nanoseconds(i), [&f, i] { f.node("a").SendToNeighbour("b", Numbered(i)); });
  }
  f.sim.RunUntilIdle();
  ASSERT_EQ(f.sink(1).received.size(), 1000u);
  for (uint64_t i = 0; i < 1000; ++i) ASSERT_EQ(f.sink(1).received[i].number, i);
  EXPECT_EQ(f.net->FindChannel("a", "b")->stats().delivered, 1000u);
}

TEST(SimNetworkTest, JitterStaysInRangeAndMayReorder) {
  ChannelOptions options;
  options.jitter = microseconds(20);
  Fixture f(Chain({"a", "b"}, 2.0), options);  // 10 us fibre
  for (uint64_t i = 0; i < 2000; ++i) f.node("a").SendToNeighbour("b", Numbered(i));
  f.sim.RunUntilIdle();
  ASSERT_EQ(f.sink(1).received.size(), 2000u);
  bool reordered = false;
  for (size_t i = 0; i < f.sink(1).received.size(); ++i) {
    const auto& r = f.sink(1).received[i];
    ASSERT_GE(r.at.time_since_epoch(), microseconds(10));
    ASSERT_LE(r.at.time_since_epoch(), microseconds(30));
    if (r.number != i) reordered = true;
  }
  EXPECT_TRUE(reordered);
}

TEST(SimNetworkTest, LossRateWithinFiveSigmaOfBinomial) {
  ChannelOptions options;
  options.loss_probability = 0.1;
  Fixture f(Chain({"a", "b"}, 1.0), options);
  const int n = 20000;
  for (int i = 0; i < n; ++i) f.node(i % 2 ? "a" : "b").SendToNeighbour(i % 2 ? "b" : "a", Numbered(i));
  f.sim.RunUntilIdle();
  const ChannelStats& s = f.net->FindChannel("a", "b")->stats();
  const double expected = n * 0.1;
  const double sigma = std::sqrt(n * 0.1 * 0.9);  // ~42
  EXPECT_NEAR(static_cast<double>(s.lost), expected, 5 * sigma);
  EXPECT_EQ(s.lost + s.delivered, static_cast<uint64_t>(n));
  EXPECT_EQ(f.sink(0).received.size() + f.sink(1).received.size(), s.delivered);
}

TEST(SimNetworkTest, DownAndUpNotifyBothEndsAndDropMessages) {
  Fixture f(Chain({"a", "b"}, 10.0));  // 50 us
  SimChannel& ch = *f.net->FindChannel("a", "b");
  f.node("a").SendToNeighbour("b", Numbered(1));  // in flight when the channel is cut
  f.sim.RunFor(microseconds(20));
  ch.TakeDown();
  EXPECT_FALSE(ch.usable());
  f.node("a").SendToNeighbour("b", Numbered(2));  // sent while down
  f.sim.RunFor(microseconds(10));
  ch.BringUp();
  f.sim.RunFor(microseconds(100));  // the in-flight message would have arrived by now
  EXPECT_TRUE(f.sink(1).received.empty());
  EXPECT_THAT(f.sink(0).events, ElementsAre("down:b", "up:b"));
  EXPECT_THAT(f.sink(1).events, ElementsAre("down:a", "up:a"));
  EXPECT_EQ(ch.stats().dropped_down, 2u);
  f.node("a").SendToNeighbour("b", Numbered(3));
  f.sim.RunUntilIdle();
  ASSERT_EQ(f.sink(1).received.size(), 1u);
  EXPECT_EQ(f.sink(1).received[0].number, 3u);
  // Taking down a channel that is already down says nothing more.
  ch.TakeDown();
  ch.TakeDown();
  f.sim.RunUntilIdle();
  EXPECT_THAT(f.sink(0).events, ElementsAre("down:b", "up:b", "down:b"));
}

TEST(SimNetworkTest, CrashSilencesTimersAndTellsNeighbours) {
  Fixture f(Chain({"a", "b", "c"}, 1.0));
  int fired = 0;
  f.node("b").StartTimer(microseconds(100), [&] { ++fired; });
  const TimerId cancelled = f.node("b").StartTimer(microseconds(100), [&] { ++fired; });
  EXPECT_TRUE(f.node("b").CancelTimer(cancelled));
  EXPECT_FALSE(f.node("b").CancelTimer(cancelled));
  f.node("a").SendToNeighbour("b", Numbered(1));  // in flight (5 us) at the crash
  f.sim.RunFor(microseconds(1));
  ASSERT_TRUE(f.net->Crash("b").ok());
  EXPECT_FALSE(f.node("b").running());
  EXPECT_EQ(f.node("b").sink(), nullptr);
  f.node("c").SendToNeighbour("b", Numbered(2));
  f.node("b").SendToNeighbour("a", Numbered(3));  // a crashed stack still being driven
  f.sim.RunFor(microseconds(200));
  EXPECT_EQ(fired, 0);
  EXPECT_TRUE(f.sink(0).received.empty());
  EXPECT_TRUE(f.sink(1).received.empty());
  EXPECT_THAT(f.sink(0).events, ElementsAre("down:b"));
  EXPECT_THAT(f.sink(2).events, ElementsAre("down:b"));
  EXPECT_TRUE(f.sink(1).events.empty());

  // Restart with a fresh stack: both sides hear "up", and traffic flows again.
  RecordingSink fresh(f.sim);
  ASSERT_TRUE(f.net->Restart("b").ok());
  f.node("b").SetSink(&fresh);
  f.node("b").StartTimer(microseconds(1), [&] { ++fired; });
  f.node("a").SendToNeighbour("b", Numbered(4));
  f.sim.RunUntilIdle();
  EXPECT_EQ(fired, 1);
  EXPECT_THAT(fresh.events, ElementsAre("up:a", "up:c"));
  EXPECT_THAT(f.sink(0).events, ElementsAre("down:b", "up:b"));
  EXPECT_THAT(f.sink(2).events, ElementsAre("down:b", "up:b"));
  ASSERT_EQ(fresh.received.size(), 1u);
  EXPECT_EQ(fresh.received[0].number, 4u);
  EXPECT_FALSE(f.net->Crash("nobody").ok());
}

TEST(SimNetworkTest, RestartDoesNotRaiseALinkThatIsDown) {
  Fixture f(Chain({"a", "b"}, 1.0));
  f.net->FindChannel("a", "b")->TakeDown();
  ASSERT_TRUE(f.net->Crash("b").ok());
  ASSERT_TRUE(f.net->Restart("b").ok());
  f.sim.RunUntilIdle();
  EXPECT_THAT(f.sink(0).events, ElementsAre("down:b"));  // only the cut itself
}

TEST(SimNetworkTest, AnnounceLinksUpTellsEveryEnd) {
  Fixture f(Chain({"a", "b", "c"}, 1.0));
  f.net->AnnounceLinksUp();
  f.sim.RunUntilIdle();
  EXPECT_THAT(f.sink(0).events, ElementsAre("up:b"));
  EXPECT_THAT(f.sink(1).events, ElementsAre("up:a", "up:c"));
  EXPECT_THAT(f.sink(2).events, ElementsAre("up:b"));
}

TEST(SimNetworkTest, SerialisedMessagesRoundTrip) {
  ChannelOptions options;
  options.serialize_messages = true;
  Fixture f(Chain({"a", "b"}, 1.0), options);
  v1::PeerMessage herald;
  herald.mutable_physical()->set_link("a-b");
  herald.mutable_physical()->mutable_herald()->set_generation_id(9);
  herald.mutable_physical()->mutable_herald()->set_success(true);
  herald.mutable_physical()->mutable_herald()->set_bell_state(3);
  herald.mutable_physical()->mutable_herald()->set_heralded_at_ns(-12345);
  std::vector<std::string> seen;
  f.net->SetDeliveryObserver([&](TimePoint, const std::string& from, const std::string& to,
                                 const v1::PeerMessage& m) { seen.push_back(from + ">" + to + ":" + m.SerializeAsString()); });
  f.node("a").SendToNeighbour("b", herald);
  f.sim.RunUntilIdle();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], "a>b:" + herald.SerializeAsString());
  EXPECT_EQ(f.net->FindChannel("a", "b")->stats().bytes, herald.ByteSizeLong());
}

// A flood: one message for several neighbours, shared rather than copied.
// Each channel still applies its own delay and its own state, and a
// tampered delivery changes only the copy its receiver sees.
TEST(SimNetworkTest, SendToNeighboursDeliversTheMessageOncePerNeighbour) {
  Fixture f(SimTopology{{"hub", "a", "c", "d"},
                        {{"hub-a", "hub", "a", 1.0}, {"hub-c", "hub", "c", 10.0}, {"hub-d", "hub", "d", 2.0}}});
  ASSERT_TRUE(f.net->FindChannel("hub", "d") != nullptr);
  f.net->FindChannel("hub", "d")->TakeDown();
  f.net->SetDeliveryTamper([](const std::string&, const std::string& to, v1::PeerMessage& m) {
    if (to == "a") m.mutable_physical()->mutable_ready()->set_generation_id(99);
  });
  const std::string to[] = {"a", "c", "d", "nobody"};
  f.node("hub").SendToNeighbours(to, Numbered(7));
  f.sim.RunUntilIdle();
  ASSERT_EQ(f.sink(1).received.size(), 1u);
  EXPECT_EQ(f.sink(1).received[0].number, 99u);  // the tampered copy
  EXPECT_EQ(f.sink(1).received[0].at.time_since_epoch(), microseconds(5));
  ASSERT_EQ(f.sink(2).received.size(), 1u);
  EXPECT_EQ(f.sink(2).received[0].number, 7u);  // untouched by a's tamper
  EXPECT_EQ(f.sink(2).received[0].from, "hub");
  EXPECT_EQ(f.sink(2).received[0].at.time_since_epoch(), microseconds(50));
  EXPECT_TRUE(f.sink(3).received.empty());  // its link is down
  EXPECT_EQ(f.net->FindChannel("hub", "d")->stats().dropped_down, 1u);
  EXPECT_EQ(f.net->misaddressed_messages(), 1u);
}

TEST(SimNetworkTest, SendToNeighboursSerialisesPerChannel) {
  ChannelOptions options;
  options.serialize_messages = true;
  Fixture f(Chain({"a", "b", "c"}, 1.0), options);
  const std::string to[] = {"a", "c"};
  f.node("b").SendToNeighbours(to, Numbered(5));
  f.sim.RunUntilIdle();
  ASSERT_EQ(f.sink(0).received.size(), 1u);
  ASSERT_EQ(f.sink(2).received.size(), 1u);
  EXPECT_EQ(f.sink(0).received[0].number, 5u);
  EXPECT_EQ(f.sink(2).received[0].number, 5u);
  EXPECT_EQ(f.net->FindChannel("a", "b")->stats().bytes, Numbered(5).ByteSizeLong());
  EXPECT_EQ(f.net->FindChannel("b", "c")->stats().bytes, Numbered(5).ByteSizeLong());
}

TEST(SimNetworkTest, MisaddressedAndSinklessMessagesAreCounted) {
  Fixture f(Chain({"a", "b", "c"}, 1.0));
  f.node("a").SendToNeighbour("c", Numbered(1));  // not a neighbour
  f.node("b").SetSink(nullptr);
  f.node("a").SendToNeighbour("b", Numbered(2));
  f.sim.RunUntilIdle();
  EXPECT_EQ(f.net->misaddressed_messages(), 1u);
  EXPECT_EQ(f.net->FindChannel("a", "b")->stats().dropped_no_sink, 1u);
}

TEST(SimNetworkTest, NodesHaveIndependentSeededRngs) {
  Fixture f1(Chain({"a", "b"}, 1.0), {}, 5);
  Fixture f2(Chain({"b", "a"}, 1.0), {}, 5);  // order does not matter: forked by name
  Fixture f3(Chain({"a", "b"}, 1.0), {}, 6);
  const uint64_t a1 = f1.node("a").rng().NextU64();
  EXPECT_EQ(a1, f2.node("a").rng().NextU64());
  EXPECT_NE(a1, f1.node("b").rng().NextU64());
  EXPECT_NE(a1, f3.node("a").rng().NextU64());
  EXPECT_EQ(f1.node("a").index(), 0u);
  EXPECT_EQ(f2.node("a").index(), 1u);
  EXPECT_THAT(f1.node("a").neighbours(), ElementsAre("b"));
}

// Every node forwards each message to a random neighbour; loss and jitter
// draw from the channel streams. The whole delivery trace must be a function
// of the seed.
std::vector<std::string> GossipTrace(uint64_t seed) {
  SimTopology ring;
  for (int i = 0; i < 6; ++i) ring.nodes.push_back(absl::StrCat("n", i));
  for (int i = 0; i < 6; ++i) {
    ring.links.push_back({absl::StrCat("n", i, "-n", (i + 1) % 6), ring.nodes[i], ring.nodes[(i + 1) % 6], 1.0 + i});
  }
  ChannelOptions options;
  options.loss_probability = 0.05;
  options.jitter = microseconds(3);
  Simulator sim;
  auto net = SimNetwork::Create(sim, seed, ring, options).value();
  struct Forwarder : PeerMessageSink {
    SimNodeContext* ctx;
    void OnPeerMessage(const std::string&, const v1::PeerMessage& m) override {
      if (m.physical().ready().generation_id() >= 40) return;
      v1::PeerMessage next = m;
      next.mutable_physical()->mutable_ready()->set_generation_id(m.physical().ready().generation_id() + 1);
      const auto& nb = ctx->neighbours();
      ctx->SendToNeighbour(nb[ctx->rng().UniformInt(nb.size())], next);
    }
  };
  std::vector<Forwarder> fw(6);
  for (int i = 0; i < 6; ++i) {
    fw[i].ctx = &net->node(i);
    net->node(i).SetSink(&fw[i]);
  }
  std::vector<std::string> trace;
  net->SetDeliveryObserver([&](TimePoint at, const std::string& from, const std::string& to, const v1::PeerMessage& m) {
    trace.push_back(absl::StrCat(at.time_since_epoch().count(), " ", from, ">", to, " ",
                                 m.physical().ready().generation_id()));
  });
  for (int i = 0; i < 20; ++i) net->node(i % 6).SendToNeighbour(net->node(i % 6).neighbours()[0], Numbered(0));
  sim.RunUntilIdle();
  return trace;
}

TEST(SimNetworkTest, SameSeedSameTrace) {
  const auto a = GossipTrace(11);
  EXPECT_GT(a.size(), 100u);
  EXPECT_EQ(a, GossipTrace(11));
  EXPECT_NE(a, GossipTrace(12));
}

TEST(SimNetworkTest, CreateRejectsBadTopologies) {
  Simulator sim;
  auto error = [&](SimTopology t, ChannelOptions o = {}) {
    auto r = SimNetwork::Create(sim, 1, std::move(t), o);
    EXPECT_FALSE(r.ok());
    return std::string(r.status().message());
  };
  EXPECT_THAT(error({{"a", "a"}, {}}), HasSubstr("duplicate node name 'a'"));
  EXPECT_THAT(error({{"a", ""}, {}}), HasSubstr("empty name"));
  EXPECT_THAT(error({{"a", "b"}, {{"a-x", "a", "x", 1}}}), HasSubstr("unknown node 'x'"));
  EXPECT_THAT(error({{"a", "b"}, {{"a-a", "a", "a", 1}}}), HasSubstr("to itself"));
  EXPECT_THAT(error({{"a", "b"}, {{"a-b", "a", "b", 1}, {"b-a", "b", "a", 2}}}), HasSubstr("already a link"));
  EXPECT_THAT(error({{"a", "b", "c"}, {{"l", "a", "b", 1}, {"l", "b", "c", 2}}}), HasSubstr("duplicate link name"));
  EXPECT_THAT(error({{"a", "b"}, {{"a-b", "a", "b", -1}}}), HasSubstr("length -1"));
  ChannelOptions lossy;
  lossy.loss_probability = 1.5;
  EXPECT_THAT(error({{"a", "b"}, {}}, lossy), HasSubstr("loss_probability"));
}

}  // namespace
}  // namespace qnet::sim
