// Link-state routing: newest advert wins, only links both ends advertise up
// are used, and the cheapest path maximises the end-to-end Werner parameter.
#include "network/routing.h"

#include "gtest/gtest.h"
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

}  // namespace
}  // namespace qnet::network
