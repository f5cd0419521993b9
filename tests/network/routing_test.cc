// Link-state routing: newest advert wins, only links both ends advertise up
// are used, and the cheapest path maximises the end-to-end Werner parameter.
// Adverts from the wire: impossible ones are refused and counted, an
// authenticator's verdict is final, and sequence numbers cannot pin a stale
// advert (a node jumps past its own, numbers are bounded by the clock).
#include "network/routing.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "config/network_config.h"
#include "netsim/simulated_network.h"
#include "network/network_layer.h"
#include "network/path_plan.h"

namespace qnet::network {
namespace {

v1::LinkStateAdvert Advert(const std::string& origin, uint64_t sequence,
                           std::vector<std::tuple<std::string, bool, double>> links) {
  v1::LinkStateAdvert a;
  a.set_origin(origin);
  a.set_sequence(sequence);
  a.set_memory_qubits(4);
  for (const auto& [n, up, f] : links) {
    v1::LinkAdvert* l = a.add_links();
    l->set_neighbour(n);
    l->set_up(up);
    l->set_best_fidelity(f);
    l->set_delay_s(1e-5);
  }
  return a;
}

// a - b - d (good links) and a - c - d (poorer), plus a direct a - d link.
LinkStateDatabase Square(double direct_fidelity, bool direct_up = true) {
  LinkStateDatabase db;
  db.Update(Advert("a", 1, {{"b", true, 0.99}, {"c", true, 0.9}, {"d", direct_up, direct_fidelity}}));
  db.Update(Advert("b", 1, {{"a", true, 0.99}, {"d", true, 0.99}}));
  db.Update(Advert("c", 1, {{"a", true, 0.9}, {"d", true, 0.9}}));
  db.Update(Advert("d", 1, {{"b", true, 0.99}, {"c", true, 0.9}, {"a", true, direct_fidelity}}));
  return db;
}

TEST(RoutingTest, NewerAdvertsReplaceOlderOnes) {
  LinkStateDatabase db;
  EXPECT_TRUE(db.Update(Advert("a", 5, {})));
  EXPECT_FALSE(db.Update(Advert("a", 5, {{"b", true, 1.0}})));
  EXPECT_FALSE(db.Update(Advert("a", 4, {{"b", true, 1.0}})));
  EXPECT_TRUE(db.Update(Advert("a", 6, {{"b", true, 1.0}})));
  EXPECT_EQ(db.Find("a")->links_size(), 1);
}

TEST(RoutingTest, CheapestPathMaximisesTheEndToEndWernerParameter) {
  // Direct link at 0.95 (w = 0.933) loses to two hops at 0.99 (w^2 = 0.974).
  auto route = Square(0.95).PathTo("a", "d");
  ASSERT_TRUE(route.ok()) << route.status();
  EXPECT_EQ(route->path, (std::vector<std::string>{"a", "b", "d"}));
  EXPECT_EQ(route->link_fidelity, (std::vector<double>{0.99, 0.99}));
  // A direct link at 0.99 beats two hops at 0.99.
  route = Square(0.99).PathTo("a", "d");
  ASSERT_TRUE(route.ok());
  EXPECT_EQ(route->path, (std::vector<std::string>{"a", "d"}));
}

TEST(RoutingTest, OnlyLinksBothEndsAdvertiseUpAreUsed) {
  // a says its direct link is down (d still says up): not used.
  auto route = Square(0.999, false).PathTo("a", "d");
  ASSERT_TRUE(route.ok());
  EXPECT_EQ(route->hops(), 2u);
  // b loses its link to d: the path goes through c.
  LinkStateDatabase db = Square(0.5, false);
  db.Update(Advert("b", 2, {{"a", true, 0.99}, {"d", false, 0.99}}));
  route = db.PathTo("a", "d");
  ASSERT_TRUE(route.ok());
  EXPECT_EQ(route->path, (std::vector<std::string>{"a", "c", "d"}));
  // And with c's link gone too, d is unreachable.
  db.Update(Advert("c", 2, {{"a", true, 0.9}, {"d", false, 0.9}}));
  route = db.PathTo("a", "d");
  EXPECT_EQ(route.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(db.PathTo("a", "nowhere").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(db.Table("a").size(), 2u);  // b and c
}

TEST(PathPlanTest, LinkTargetsAndCutoffsMeetTheEndToEndMinimum) {
  LinkStateDatabase db = Square(0.5, false);
  auto route = db.PathTo("a", "d");
  ASSERT_TRUE(route.ok());
  // Ideal memories: no cutoff; the link target leaves half the headroom.
  auto plan = PlanPath(*route, db, 0.95);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->cutoff, Duration(0));
  EXPECT_GT(plan->link_min_fidelity, 0.95);
  EXPECT_LT(plan->link_min_fidelity, 0.99);
  const double best = 0.99 * 0.99 + 0.01 * 0.01 / 3;
  EXPECT_NEAR(plan->best_fidelity, best, 1e-12);
  EXPECT_NEAR(plan->planned_fidelity, 0.95 + (best - 0.95) / 2, 1e-9);
  EXPECT_EQ(PlanPath(*route, db, 0.99).status().code(), absl::StatusCode::kFailedPrecondition);

  // Memories with T2 = 10 ms: a finite cutoff at which the chain just meets the minimum.
  v1::LinkStateAdvert b = *db.Find("b");
  b.set_sequence(9);
  b.set_t2_s(0.01);
  db.Update(b);
  plan = PlanPath(*route, db, 0.95);
  ASSERT_TRUE(plan.ok());
  ASSERT_GT(plan->cutoff, Duration(0));
  EXPECT_NEAR(ChainFidelity(*route, db, plan->link_min_fidelity, plan->cutoff), 0.95, 1e-4);
}


// --- Validation of adverts from the wire.

KnownTopology Triangle() {
  KnownTopology t;
  t.nodes = {"a", "b", "c"};
  t.AddLink("a", "b");
  t.AddLink("b", "c");
  return t;
}

void ExpectRefused(const v1::LinkStateAdvert& advert, const std::string& part) {
  const KnownTopology topology = Triangle();
  absl::Status s = ValidateAdvert(advert, &topology, 1000);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << advert.DebugString();
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr(part));
}

TEST(AdvertValidationTest, PossibleAdvertsPass) {
  const KnownTopology topology = Triangle();
  EXPECT_TRUE(ValidateAdvert(Advert("b", 7, {{"a", true, 0.9}, {"c", false, 0.0}}), &topology, 1000).ok());
  EXPECT_TRUE(ValidateAdvert(Advert("a", 1000, {}), &topology, 1000).ok());
  // Without a topology only the figures are checked.
  EXPECT_TRUE(ValidateAdvert(Advert("mallory", 1, {{"x", true, 1.0}}), nullptr, 1000).ok());
}

TEST(AdvertValidationTest, ImpossibleAdvertsAreRefusedWithAReason) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  ExpectRefused(Advert("", 1, {}), "empty origin");
  ExpectRefused(Advert("mallory", 1, {}), "'mallory', which is not a node of the network file");
  ExpectRefused(Advert("a", 1, {{"c", true, 0.9}}), "no link a-c");
  ExpectRefused(Advert("a", 1, {{"zed", true, 0.9}}), "no link a-zed");
  ExpectRefused(Advert("a", 1, {{"", true, 0.9}}), "empty neighbour");
  ExpectRefused(Advert("a", 1, {{"a", true, 0.9}}), "to itself");
  ExpectRefused(Advert("a", 1, {{"b", true, 0.9}, {"b", false, 0.9}}), "advertised twice");
  ExpectRefused(Advert("a", 1, {{"b", true, nan}}), "best_fidelity = nan is outside [0, 1]");
  ExpectRefused(Advert("a", 1, {{"b", true, 1.5}}), "best_fidelity = 1.5");
  ExpectRefused(Advert("a", 1, {{"b", true, -0.1}}), "best_fidelity = -0.1");
  ExpectRefused(Advert("a", 0, {}), "sequence 0 is outside [1, 1000]");
  ExpectRefused(Advert("a", 1001, {}), "sequence 1001");
  ExpectRefused(Advert("a", std::numeric_limits<uint64_t>::max(), {}), "no node can have reached it");
  auto with_link = [](std::function<void(v1::LinkAdvert&)> f) {
    v1::LinkStateAdvert a = Advert("a", 1, {{"b", true, 0.9}});
    f(*a.mutable_links(0));
    return a;
  };
  ExpectRefused(with_link([&](v1::LinkAdvert& l) { l.set_pair_rate_hz(inf); }), "pair_rate_hz = inf");
  ExpectRefused(with_link([&](v1::LinkAdvert& l) { l.set_pair_rate_hz(-1); }), "pair_rate_hz = -1");
  ExpectRefused(with_link([&](v1::LinkAdvert& l) { l.set_delay_s(nan); }), "delay_s = nan");
  ExpectRefused(with_link([&](v1::LinkAdvert& l) { l.set_delay_s(-1e-3); }), "delay_s = -0.001");
  ExpectRefused(with_link([&](v1::LinkAdvert& l) { l.set_delay_s(2); }), "delay_s = 2 is outside [0, 1]");
  auto with_device = [](std::function<void(v1::LinkStateAdvert&)> f) {
    v1::LinkStateAdvert a = Advert("a", 1, {});
    f(a);
    return a;
  };
  ExpectRefused(with_device([&](v1::LinkStateAdvert& a) { a.set_t1_s(nan); }), "t1_s = nan");
  ExpectRefused(with_device([&](v1::LinkStateAdvert& a) { a.set_t2_s(-inf); }), "t2_s = -inf");
  ExpectRefused(with_device([&](v1::LinkStateAdvert& a) { a.set_readout_error_1(2); }), "readout_error_1 = 2");
  ExpectRefused(with_device([&](v1::LinkStateAdvert& a) { a.set_two_qubit_gate_error(nan); }),
                "two_qubit_gate_error = nan");
  ExpectRefused(with_device([&](v1::LinkStateAdvert& a) { a.set_memory_qubits(1u << 30); }), "memory_qubits");
}

// --- Adverts through the network layer of simulated nodes a - b - c.

std::unique_ptr<netsim::SimulatedNetwork> Chain3(stack::NodeStackOptions options = {}) {
  auto config = config::ParseNetworkConfig(
      "network: abc\nnodes:\n  - {name: a, hardware: ideal}\n  - {name: b, hardware: ideal}\n"
      "  - {name: c, hardware: ideal}\nlinks:\n  - {between: [a, b], length_km: 1}\n"
      "  - {between: [b, c], length_km: 1}\n",
      "abc.yaml");
  EXPECT_TRUE(config.ok()) << config.status();
  auto net = netsim::SimulatedNetwork::Create(*config, 1, {}, std::move(options));
  EXPECT_TRUE(net.ok()) << net.status();
  if (!net.ok()) return nullptr;
  (*net)->RunFor(std::chrono::milliseconds(1));  // adverts spread
  return *std::move(net);
}

NetworkLayer& Net(netsim::SimulatedNetwork& net, const std::string& node) { return net.node(node)->network(); }

// `from` hands `to` one advert, as a neighbour's flood would.
void Inject(netsim::SimulatedNetwork& net, const std::string& from, const std::string& to,
            const v1::LinkStateAdvert& advert) {
  v1::NetworkMessage m;
  *m.mutable_adverts()->add_adverts() = advert;
  Net(net, to).OnNetworkMessage(from, m);
}

TEST(AdvertFloodingTest, ImpossibleAdvertsAreRefusedCountedAndNotForwarded) {
  auto net = Chain3();
  ASSERT_NE(net, nullptr);
  ASSERT_EQ(Net(*net, "a").routes().size(), 3u);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const uint64_t a_sequence = Net(*net, "b").routes().Find("a")->sequence();
  Inject(*net, "a", "b", Advert("mallory", a_sequence + 1, {{"a", true, 0.9}}));
  Inject(*net, "a", "b", Advert("", a_sequence + 1, {}));
  Inject(*net, "a", "b", Advert("a", a_sequence + 1, {{"c", true, 0.99}}));  // no such link
  Inject(*net, "a", "b", Advert("a", a_sequence + 1, {{"b", true, nan}}));
  Inject(*net, "a", "b", Advert("c", std::numeric_limits<uint64_t>::max(), {}));
  net->RunFor(std::chrono::milliseconds(1));

  EXPECT_EQ(Net(*net, "b").stats().adverts_refused, 5u);
  EXPECT_EQ(Net(*net, "b").stats().adverts_unauthenticated, 0u);
  EXPECT_THAT(Net(*net, "b").advert_stats().last_refusal, ::testing::HasSubstr("sequence 18446744073709551615"));
  for (const char* node : {"a", "b", "c"}) {
    const LinkStateDatabase& db = Net(*net, node).routes();
    EXPECT_EQ(db.size(), 3u) << node;  // nothing added: no "mallory", no ""
    EXPECT_EQ(db.Find("mallory"), nullptr) << node;
    EXPECT_EQ(db.Find(""), nullptr) << node;
    EXPECT_EQ(Net(*net, node).stats().adverts_refused, std::string(node) == "b" ? 5u : 0u) << node;
  }
  EXPECT_EQ(Net(*net, "b").routes().Find("a")->sequence(), a_sequence);
  // Routes are intact: c still reaches a over b, with real fidelities.
  auto route = Net(*net, "c").routes().PathTo("c", "a");
  ASSERT_TRUE(route.ok()) << route.status();
  EXPECT_EQ(route->hops(), 2u);
  for (double f : route->link_fidelity) EXPECT_FALSE(std::isnan(f));
}

// All links come up at one instant: each node floods one advert after its
// first (sent before any neighbour was up), never one per link, and the
// database exchange carries that advert, so no node ever holds a middle
// one. A copy a node already holds is dropped unchecked, counted as stale,
// not as refused.
TEST(AdvertFloodingTest, OneAdvertPerInstantOfNeighbourUpsAndStaleCopiesAreDroppedUnchecked) {
  auto clock = std::make_shared<uint64_t>(7'000'000);
  stack::NodeStackOptions options;
  options.network.adverts.sequence_clock = [clock] { return *clock; };
  auto net = Chain3(options);
  ASSERT_NE(net, nullptr);
  // Construction takes the clock, Start() adds one, the neighbour-ups one
  // more: b has two neighbours and still ends at +2 (one per link: +3).
  for (const char* node : {"a", "b", "c"}) {
    EXPECT_EQ(Net(*net, node).advert_sequence(), *clock + 2) << node;
    for (const char* origin : {"a", "b", "c"}) {
      const v1::LinkStateAdvert* held = Net(*net, node).routes().Find(origin);
      ASSERT_NE(held, nullptr) << node << " " << origin;
      EXPECT_EQ(held->sequence(), *clock + 2) << node << " holds " << origin;
    }
  }
  const uint64_t stale_before = Net(*net, "b").stats().adverts_stale;
  v1::LinkStateAdvert copy = *Net(*net, "b").routes().Find("a");
  Inject(*net, "a", "b", copy);
  copy.set_sequence(copy.sequence() - 1);
  copy.clear_links();  // older and impossible to use: neither is looked at
  Inject(*net, "a", "b", copy);
  net->RunFor(std::chrono::milliseconds(1));
  EXPECT_EQ(Net(*net, "b").stats().adverts_stale, stale_before + 2);
  EXPECT_EQ(Net(*net, "b").stats().adverts_refused, 0u);
  EXPECT_EQ(Net(*net, "b").routes().Find("a")->links_size(), 1);
  EXPECT_TRUE(Net(*net, "c").routes().PathTo("c", "a").ok());
}

// A detour faster than a direct link (a-b-c: 2 km; a-c: 10 km) brings a
// node's own advert back to it. That echo is not an earlier incarnation's
// advert: jumping past it re-floods round the detour for ever (an advert
// storm that a file with such lengths used to start).
TEST(AdvertFloodingTest, AnOwnAdvertEchoedRoundAFasterDetourIsNotJumpedPast) {
  auto config = config::ParseNetworkConfig(
      "network: detour\nnodes:\n  - {name: a, hardware: ideal}\n  - {name: b, hardware: ideal}\n"
      "  - {name: c, hardware: ideal}\nlinks:\n  - {between: [a, b], length_km: 1}\n"
      "  - {between: [b, c], length_km: 1}\n  - {between: [a, c], length_km: 10}\n",
      "detour.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  auto clock = std::make_shared<uint64_t>(3'000'000);
  stack::NodeStackOptions options;
  options.network.adverts.sequence_clock = [clock] { return *clock; };
  auto net = netsim::SimulatedNetwork::Create(*config, 1, {}, std::move(options));
  ASSERT_TRUE(net.ok()) << net.status();
  (*net)->RunFor(std::chrono::milliseconds(20));
  for (const char* node : {"a", "b", "c"}) {
    EXPECT_EQ(Net(**net, node).advert_stats().own_sequence_jumps, 0u) << node;
    EXPECT_EQ(Net(**net, node).advert_sequence(), *clock + 2) << node;  // a storm counts up without bound
  }
  EXPECT_GT(Net(**net, "a").stats().adverts_stale, 0u);  // the echoes arrived, and were dropped
  EXPECT_TRUE(Net(**net, "a").routes().PathTo("a", "c").ok());
}

// A neighbour that comes up and goes down again within one instant is not
// advertised up, and gets no database exchange.
TEST(AdvertFloodingTest, ANeighbourUpAndDownInOneInstantIsAdvertisedDown) {
  auto net = Chain3();
  ASSERT_NE(net, nullptr);
  Net(*net, "b").OnNeighbourDown("c");
  net->RunFor(std::chrono::milliseconds(1));
  ASSERT_FALSE(Net(*net, "a").routes().PathTo("a", "c").ok());
  Net(*net, "b").OnNeighbourUp("c");
  Net(*net, "b").OnNeighbourDown("c");
  net->RunFor(std::chrono::milliseconds(1));
  const v1::LinkStateAdvert* b = Net(*net, "a").routes().Find("b");
  ASSERT_NE(b, nullptr);
  for (const v1::LinkAdvert& l : b->links()) {
    if (l.neighbour() == "c") {
      EXPECT_FALSE(l.up());
    }
  }
  EXPECT_FALSE(Net(*net, "a").routes().PathTo("a", "c").ok());
}

TEST(AdvertFloodingTest, ANodeJumpsPastAnAdvertOfItsOwnWithAHigherSequence) {
  auto net = Chain3();
  ASSERT_NE(net, nullptr);
  const uint64_t before = Net(*net, "b").routes().Find("b")->sequence();
  // An earlier incarnation's (or anyone's) advert for b, far ahead and with
  // no links: it would cut b off if it stood.
  const uint64_t stale = before + 1'000'000;
  Inject(*net, "a", "b", Advert("b", stale, {}));
  net->RunFor(std::chrono::milliseconds(1));
  EXPECT_EQ(Net(*net, "b").advert_stats().own_sequence_jumps, 1u);
  for (const char* node : {"a", "b", "c"}) {
    const v1::LinkStateAdvert* b = Net(*net, node).routes().Find("b");
    ASSERT_NE(b, nullptr) << node;
    EXPECT_GT(b->sequence(), stale) << node;
    EXPECT_EQ(b->links_size(), 2) << node;
  }
  EXPECT_TRUE(Net(*net, "a").routes().PathTo("a", "c").ok());

  // The largest sequence number is impossible: no jump, nothing pinned.
  Inject(*net, "a", "b", Advert("b", std::numeric_limits<uint64_t>::max(), {}));
  net->RunFor(std::chrono::milliseconds(1));
  EXPECT_EQ(Net(*net, "b").advert_stats().own_sequence_jumps, 1u);
  EXPECT_LT(Net(*net, "b").advert_sequence(), stale + 100);
  EXPECT_TRUE(Net(*net, "a").routes().PathTo("a", "c").ok());
}

TEST(AdvertFloodingTest, SequencesAreBoundedByTheClockAndGrowAcrossRestarts) {
  // A clock the test moves: sequence numbers start from it, and an advert
  // more than kMaxSequenceLead ahead of it is impossible.
  auto clock = std::make_shared<uint64_t>(5'000'000);
  stack::NodeStackOptions options;
  options.network.adverts.sequence_clock = [clock] { return *clock; };
  auto net = Chain3(options);
  ASSERT_NE(net, nullptr);
  const uint64_t first = Net(*net, "a").routes().Find("c")->sequence();
  EXPECT_GE(first, 5'000'000u);
  EXPECT_LT(first, 5'000'100u);

  Inject(*net, "a", "b", Advert("a", *clock + kMaxSequenceLead + 1, {}));
  EXPECT_EQ(Net(*net, "b").stats().adverts_refused, 1u);
  Inject(*net, "a", "b", Advert("b", *clock + kMaxSequenceLead, {}));  // at the bound: b jumps there
  net->RunFor(std::chrono::milliseconds(1));
  EXPECT_EQ(Net(*net, "b").advert_sequence(), *clock + kMaxSequenceLead + 1);
  // b's next advert is one past the others' bound for now: refused, not stored...
  EXPECT_LT(Net(*net, "a").routes().Find("b")->sequence(), *clock + 100);
  EXPECT_EQ(Net(*net, "a").stats().adverts_refused, 1u);
  // ... until the clock moves on; then it is accepted (nothing is pinned).
  *clock += 10;
  Net(*net, "b").OnNeighbourDown("c");
  Net(*net, "b").OnNeighbourUp("c");
  net->RunFor(std::chrono::milliseconds(1));
  EXPECT_GT(Net(*net, "a").routes().Find("b")->sequence(), *clock + kMaxSequenceLead - 10);

  // A restart starts from the clock, above the old incarnation's adverts.
  const uint64_t c_before = Net(*net, "a").routes().Find("c")->sequence();
  ASSERT_TRUE(net->Crash("c").ok());
  net->RunFor(std::chrono::milliseconds(1));
  *clock += 1'000'000;
  ASSERT_TRUE(net->Restart("c").ok());
  net->RunFor(std::chrono::milliseconds(5));
  EXPECT_GT(Net(*net, "a").routes().Find("c")->sequence(), c_before);
  EXPECT_GE(Net(*net, "a").routes().Find("c")->sequence(), *clock);
  EXPECT_EQ(Net(*net, "c").advert_stats().own_sequence_jumps, 0u);
}

// A stand-in for the daemon's signatures: a node's "signature" is its name
// and a hash of the bytes; Verify recomputes it for the claimed origin.
class FakeAuthenticator final : public AdvertAuthenticator {
 public:
  absl::StatusOr<std::string> Sign(std::string_view bytes) override {
    v1::LinkStateAdvert advert;
    if (!advert.ParseFromString(std::string(bytes))) return absl::InvalidArgumentError("not an advert");
    ++signed_;
    return Signature(advert.origin(), bytes);
  }
  bool Verify(std::string_view origin, std::string_view bytes, std::string_view signature) override {
    ++verified_;
    return signature == Signature(origin, bytes);
  }
  static std::string Signature(std::string_view origin, std::string_view bytes) {
    return absl::StrCat(std::string(origin), ":", std::hash<std::string_view>()(bytes));
  }
  int signed_ = 0;
  int verified_ = 0;
};

TEST(AdvertFloodingTest, AnAuthenticatorSignsEveryAdvertAndRefusesForgeries) {
  auto authenticator = std::make_shared<FakeAuthenticator>();
  stack::NodeStackOptions options;
  options.network.adverts.authenticator = authenticator;
  auto net = Chain3(options);
  ASSERT_NE(net, nullptr);
  // Signed adverts flood as before; relayed ones (a's at c) verify too.
  const v1::LinkStateAdvert* a_at_c = Net(*net, "c").routes().Find("a");
  ASSERT_NE(a_at_c, nullptr);
  EXPECT_EQ(a_at_c->signature(), FakeAuthenticator::Signature("a", AdvertSigningBytes(*a_at_c)));
  EXPECT_GT(authenticator->signed_, 0);
  EXPECT_GT(authenticator->verified_, 0);
  ASSERT_TRUE(Net(*net, "c").routes().PathTo("c", "a").ok());

  // b relays a forged advert for a (no links: would cut a off from c).
  const uint64_t a_sequence = a_at_c->sequence();
  v1::LinkStateAdvert forged = Advert("a", a_sequence + 1, {});
  Inject(*net, "b", "c", forged);
  // Signed, but by b, or altered after a signed it.
  forged.set_signature(FakeAuthenticator::Signature("b", AdvertSigningBytes(forged)));
  Inject(*net, "b", "c", forged);
  v1::LinkStateAdvert altered = *a_at_c;
  altered.set_sequence(a_sequence + 1);
  altered.mutable_links(0)->set_best_fidelity(0.25);
  Inject(*net, "b", "c", altered);
  // And an advert of c's own with a higher number: no jump for a forgery.
  Inject(*net, "b", "c", Advert("c", a_sequence + 1'000'000, {}));
  net->RunFor(std::chrono::milliseconds(1));

  EXPECT_EQ(Net(*net, "c").stats().adverts_unauthenticated, 4u);
  EXPECT_EQ(Net(*net, "c").advert_stats().own_sequence_jumps, 0u);
  EXPECT_THAT(Net(*net, "c").advert_stats().last_refusal, ::testing::HasSubstr("its signature is not c's"));
  EXPECT_EQ(Net(*net, "c").routes().Find("a")->sequence(), a_sequence);
  auto route = Net(*net, "c").routes().PathTo("c", "a");
  ASSERT_TRUE(route.ok()) << route.status();
  EXPECT_EQ(route->hops(), 2u);
}

}  // namespace
}  // namespace qnet::network
