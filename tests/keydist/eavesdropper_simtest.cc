// BBM92 with an intercept-resend eavesdropper on the link (physical layer:
// she measures a share x of the heralded pairs in a random basis, Z or X).
// On an otherwise perfect link the pairs measured in the same random basis
// at both ends then disagree with probability x/4 in either basis (her basis
// is wrong half the time, and then the outcomes agree by chance half the
// time), so: x = 0.2 gives a QBER of 0.05 per basis and a shorter key; x = 1
// gives 0.25, above the 11% threshold, and both ends abort naming it.
#include <cmath>
#include <regex>

#include "gtest/gtest.h"
#include "tests/keydist/keydist_harness.h"

namespace qnet::keydist {
namespace {

using qnet::testing::ChainYaml;
using qnet::testing::KeyNetwork;
using qnet::testing::SessionRecord;

constexpr uint32_t kPairs = 20000;

void ExpectRate(const qkd::ErrorRateBound& b, double p, const char* what) {
  ASSERT_GT(b.sampled, 0u) << what;
  const double sigma = std::sqrt(p * (1 - p) / static_cast<double>(b.sampled));
  EXPECT_NEAR(b.rate(), p, 5 * sigma + 1e-12) << what << ": " << b.errors << " of " << b.sampled;
}

// One session n0 -> n1 with Eve at `fraction` (set at n0, the station end).
absl::StatusOr<QkdResult> RunWithEve(double fraction, uint32_t pairs, KeyNetwork& kn) {
  absl::StatusOr<bool> here = kn.net().node("n0").physical().SetEavesdropperFraction("n1", fraction);
  if (!here.ok()) return here.status();
  if (!*here) return absl::InternalError("n0 should host the station of n0-n1");
  SessionRecord run;
  kn.Run("n0", "n1", qnet::testing::TestOptions(pairs), run);
  if (!run.result.has_value()) return absl::InternalError("no result");
  const auto& bob = kn.responded("n1").back().result;
  if (run.result->ok() && bob.ok()) {
    EXPECT_EQ((*run.result)->key, bob->key);
    EXPECT_EQ((*run.result)->key_id, bob->key_id);
  } else {
    // Both ends fail, for the same reason.
    EXPECT_FALSE(run.result->ok());
    EXPECT_FALSE(bob.ok());
  }
  return *run.result;
}

TEST(KeyDistributionEavesdropperTest, QberRisesByAQuarterOfTheInterceptedShare) {
  KeyNetwork kn(ChainYaml(1, "ideal", 1.0, "", ""), 17);
  auto clean = RunWithEve(0.0, kPairs, kn);
  ASSERT_TRUE(clean.ok()) << clean.status();
  EXPECT_EQ(clean->report.qber.z.errors + clean->report.qber.x.errors, 0u);

  auto tapped = RunWithEve(0.2, kPairs, kn);
  ASSERT_TRUE(tapped.ok()) << tapped.status();
  ExpectRate(tapped->report.qber.z, 0.05, "Z sample, x = 0.2");
  ExpectRate(tapped->report.qber.x, 0.05, "X sample, x = 0.2");
  // The key survives, shorter: error correction leaks more and the phase
  // error bounds rise.
  EXPECT_GT(tapped->key.size(), 0u);
  EXPECT_LT(tapped->key.size(), clean->key.size());
  const auto eve = kn.net().node("n0").physical().Eavesdropper("n1");
  ASSERT_TRUE(eve.ok()) << eve.status();
  EXPECT_EQ(eve->stats.pairs_seen, 2u * kPairs);
  const double sigma = std::sqrt(0.2 * 0.8 * kPairs);
  EXPECT_NEAR(static_cast<double>(eve->stats.pairs_intercepted), 0.2 * kPairs, 5 * sigma);
  kn.ExpectClean();
}

TEST(KeyDistributionEavesdropperTest, FullInterceptionAbortsNamingTheQber) {
  KeyNetwork kn(ChainYaml(1, "ideal", 1.0, "", ""), 18);
  auto tapped = RunWithEve(1.0, 4000, kn);
  ASSERT_FALSE(tapped.ok());
  EXPECT_EQ(tapped.status().code(), absl::StatusCode::kAborted) << tapped.status();
  const std::string message(tapped.status().message());
  std::smatch m;
  ASSERT_TRUE(std::regex_search(message, m, std::regex("overall QBER ([0-9.]+)%"))) << message;
  // About 4000 * 0.5 * 0.3 = 600 sampled bits.
  EXPECT_NEAR(std::stod(m[1].str()) / 100, 0.25, 5 * std::sqrt(0.25 * 0.75 / 600)) << message;
  kn.ExpectClean();
}

// The aborted block's end: bob aborts first on the sample's QBER and ends
// his session; alice's tagged abort notice then reaches him for a session he
// no longer has. It must be dropped as late, not taken for a new offer: an
// offer takes two of alice's pool words at bob, one more than alice used, and
// alice's next offer was refused as a replay (found by trying the CLI).
TEST(KeyDistributionEavesdropperTest, AnAbortedBlockLeavesBothEndsPoolsInStepAndTheNextBlockRuns) {
  KeyNetwork kn(ChainYaml(1, "ideal", 1.0, "", ""), 18);
  auto tapped = RunWithEve(1.0, 4000, kn);
  ASSERT_FALSE(tapped.ok());
  ASSERT_EQ(tapped.status().code(), absl::StatusCode::kAborted) << tapped.status();
  kn.net().RunFor(std::chrono::milliseconds(50));  // alice's late notice arrives
  EXPECT_EQ(kn.kd("n1").stats().unauthenticated_messages, 0u);
  auto alice_pool = kn.kd("n0").authentication().With("n1");
  auto bob_pool = kn.kd("n1").authentication().With("n0");
  ASSERT_TRUE(alice_pool.ok() && bob_pool.ok());
  // Bob never counts past alice: he may lag (the word of her late notice is
  // a gap he skips at her next message), never lead (that was the bug: 64 bits).
  EXPECT_GE((*bob_pool)->bits_available_for_receiving(), (*alice_pool)->bits_available_for_sending());

  auto clean = RunWithEve(0.0, kPairs, kn);
  ASSERT_TRUE(clean.ok()) << clean.status();
  EXPECT_GT(clean->key.size(), 0u);
  kn.ExpectClean();
}

}  // namespace
}  // namespace qnet::keydist
