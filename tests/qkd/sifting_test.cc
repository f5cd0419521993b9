// Sifting: each end keeps exactly the pairs both detected and measured in the
// same basis, in pair-id order, from the other end's announced bases alone
// (the announcement carries no outcomes).
#include "qkd/sifting.h"

#include <cmath>

#include "gtest/gtest.h"

namespace qnet::qkd {
namespace {

Basis RandomBasis(Rng& rng) { return rng.Bernoulli(0.5) ? Basis::kX : Basis::kZ; }

TEST(Sifting, KeepsMatchingBasesInPairIdOrder) {
  Rng rng(1);
  std::vector<Detection> alice, bob;
  size_t matching = 0;
  for (uint64_t id = 0; id < 20000; ++id) {
    const bool a_detects = rng.Bernoulli(0.9), b_detects = rng.Bernoulli(0.9);
    const Basis a = RandomBasis(rng), b = RandomBasis(rng);
    const bool outcome = rng.Bernoulli(0.5);
    if (a_detects) alice.push_back({id * 3, a, outcome});
    if (b_detects) bob.push_back({id * 3, b, outcome});
    matching += a_detects && b_detects && a == b;
  }
  // Input order must not matter: shuffle Bob's detections.
  for (size_t i = bob.size(); i > 1; --i) std::swap(bob[i - 1], bob[rng.UniformInt(i)]);
  auto sa = Sifting::Create(alice);
  auto sb = Sifting::Create(bob);
  ASSERT_TRUE(sa.ok() && sb.ok());
  auto ka = sa->Sift(sb->announcement());
  auto kb = sb->Sift(sa->announcement());
  ASSERT_TRUE(ka.ok() && kb.ok());
  EXPECT_EQ(ka->size(), matching);
  EXPECT_EQ(ka->bits, kb->bits);  // same outcomes were given to both ends
  EXPECT_EQ(ka->x_basis, kb->x_basis);
  EXPECT_EQ(ka->pair_ids, kb->pair_ids);
  EXPECT_TRUE(std::is_sorted(ka->pair_ids.begin(), ka->pair_ids.end()));
  EXPECT_EQ(ka->raw_detections, alice.size());
  EXPECT_EQ(ka->common_detections, kb->common_detections);
  // Half the common detections match in basis (binomial, 5 sigma).
  const double common = static_cast<double>(ka->common_detections);
  EXPECT_NEAR(static_cast<double>(matching), common / 2, 5 * std::sqrt(common / 4));
  EXPECT_NEAR(static_cast<double>(ka->x_bits()), static_cast<double>(matching) / 2,
              5 * std::sqrt(static_cast<double>(matching) / 4));
}

TEST(Sifting, AnnouncementDoesNotDependOnOutcomes) {
  Rng rng(2);
  std::vector<Detection> a, b;
  for (uint64_t id = 0; id < 500; ++id) {
    const Basis basis = RandomBasis(rng);
    a.push_back({id, basis, false});
    b.push_back({id, basis, rng.Bernoulli(0.5)});
  }
  auto sa = Sifting::Create(a);
  auto sb = Sifting::Create(b);
  ASSERT_TRUE(sa.ok() && sb.ok());
  EXPECT_EQ(sa->announcement().pair_ids, sb->announcement().pair_ids);
  EXPECT_EQ(sa->announcement().x_basis, sb->announcement().x_basis);
}

TEST(Sifting, RejectsDuplicateIdsAndMalformedAnnouncements) {
  auto dup = Sifting::Create({{5, Basis::kZ, false}, {5, Basis::kX, true}});
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(dup.status().message().find("pair id 5"), std::string_view::npos);
  auto s = Sifting::Create({{1, Basis::kZ, false}});
  ASSERT_TRUE(s.ok());
  BasisAnnouncement unsorted{{3, 2}, BitString(2)};
  EXPECT_EQ(s->Sift(unsorted).status().code(), absl::StatusCode::kInvalidArgument);
  BasisAnnouncement short_bases{{1, 2}, BitString(1)};
  EXPECT_EQ(s->Sift(short_bases).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Sifting, WireBytesAreVarintGapsPlusOneBitPerBasis) {
  BasisAnnouncement a{{1, 2, 300}, BitString(3)};
  // count 1 + gaps (1, 1, 298 -> 2 bytes) + 1 byte of bases.
  EXPECT_EQ(a.WireBytes(), 1u + 1u + 1u + 2u + 1u);
}

}  // namespace
}  // namespace qnet::qkd
