// Trusted-node relay in the simulator: BBM92 keys on every hop of the path,
// each relay announces K_left XOR K_right, the destination recovers the
// origin's first-hop key. Both ends hold the same key and key id, the key
// is a prefix of the origin's first-hop key, the relays are named and have
// each served once; with a relay that does not run key distribution the
// origin fails within its timeout; nothing is left anywhere.
#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/keydist/keydist_harness.h"

namespace qnet::keydist {
namespace {

using qnet::testing::ChainYaml;
using qnet::testing::KeyNetwork;
using qnet::testing::SessionRecord;
using qnet::testing::VisibilityChain;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(RelaySimTest, ThreeNodeChainGivesBothEndsTheSameKey) {
  KeyNetwork kn(VisibilityChain(2, 0.9), 1);
  const QkdSessionOptions options = qnet::testing::TestOptions(10000, QkdProtocol::kRelay);
  SessionRecord run;
  kn.Run("n0", "n2", options, run);
  ASSERT_TRUE(run.result->ok()) << run.result->status();
  ASSERT_EQ(kn.responded("n2").size(), 1u);
  ASSERT_TRUE(kn.responded("n2")[0].result.ok()) << kn.responded("n2")[0].result.status();
  const QkdResult& a = **run.result;
  const QkdResult& b = *kn.responded("n2")[0].result;
  EXPECT_EQ(a.protocol, QkdProtocol::kRelay);
  EXPECT_EQ(b.protocol, QkdProtocol::kRelay);
  EXPECT_GT(a.key.size(), 0u);
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.key_id, b.key_id);
  EXPECT_THAT(a.key_id, HasSubstr("qr-"));
  EXPECT_EQ(a.peer, "n2");
  EXPECT_EQ(b.peer, "n0");
  EXPECT_EQ(kn.responded("n2")[0].initiator, "n0");
  EXPECT_EQ(kn.responded("n2")[0].id, run.id);
  EXPECT_THAT(a.relay_nodes, ElementsAre("n1"));
  EXPECT_THAT(b.relay_nodes, ElementsAre("n1"));
  EXPECT_THAT(a.path, ElementsAre("n0", "n1", "n2"));
  // Each hop is a 1-hop BBM92 session at V = 0.9: the first hop's report
  // (at the origin) shows its X error (1 - V)/2 = 5% within 5 sigma and no
  // Z error. The key is the shorter hop key: never longer than this one's.
  const qkd::PostProcessingReport& r = a.report;
  EXPECT_EQ(r.qber.z.errors, 0u);
  EXPECT_NEAR(r.qber.x.rate(), 0.05, 5 * std::sqrt(0.05 * 0.95 / static_cast<double>(r.qber.x.sampled)));
  EXPECT_LE(a.key.size(), r.final_key_bits);
  EXPECT_LE(b.key.size(), b.report.final_key_bits);
  // Each hop key is short of its block by the authentication bits it refilled the pool with.
  EXPECT_EQ(a.key.size(), std::min(r.final_key_bits - a.auth_bits_consumed, b.report.final_key_bits - b.auth_bits_consumed));
  // The relay learned the key; the hops were internal sessions.
  EXPECT_EQ(kn.kd("n1").stats().relays_served, 1u);
  EXPECT_EQ(kn.kd("n1").stats().hop_sessions, 2u);
  EXPECT_EQ(kn.kd("n0").stats().sessions_succeeded, 1u);
  EXPECT_EQ(kn.kd("n2").stats().sessions_succeeded, 1u);
  EXPECT_TRUE(kn.responded("n1").empty());
  ASSERT_FALSE(run.progress.empty());
  EXPECT_EQ(run.progress.back().stage, "done");
  kn.ExpectClean();
}

// Two relays: the announcements chain (K0^K1, K1^K2) and the key ids line up.
TEST(RelaySimTest, FourNodeChainWithTwoRelays) {
  KeyNetwork kn(VisibilityChain(3, 1.0), 2);
  const QkdSessionOptions options = qnet::testing::TestOptions(5000, QkdProtocol::kRelay);
  SessionRecord run;
  kn.Run("n0", "n3", options, run);
  ASSERT_TRUE(run.result->ok()) << run.result->status();
  ASSERT_EQ(kn.responded("n3").size(), 1u);
  ASSERT_TRUE(kn.responded("n3")[0].result.ok()) << kn.responded("n3")[0].result.status();
  const QkdResult& a = **run.result;
  const QkdResult& b = *kn.responded("n3")[0].result;
  EXPECT_GT(a.key.size(), 0u);
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.key_id, b.key_id);
  EXPECT_THAT(a.relay_nodes, ElementsAre("n1", "n2"));
  EXPECT_EQ(kn.kd("n1").stats().relays_served, 1u);
  EXPECT_EQ(kn.kd("n2").stats().relays_served, 1u);
  kn.ExpectClean();
}

TEST(RelaySimTest, ARelayWithoutKeyDistributionFailsTheOriginWithinItsTimeout) {
  KeyNetwork kn(VisibilityChain(2, 0.9), 3);
  kn.Stop("n1");
  QkdSessionOptions options = qnet::testing::TestOptions(1000, QkdProtocol::kRelay);
  options.timeout = std::chrono::seconds(2);
  SessionRecord run;
  kn.Run("n0", "n2", options, run, std::chrono::seconds(5));
  ASSERT_FALSE(run.result->ok());
  EXPECT_EQ(run.result->status().code(), absl::StatusCode::kDeadlineExceeded) << run.result->status();
  EXPECT_LE(run.ended - run.started, options.timeout + std::chrono::milliseconds(1));
  ASSERT_EQ(kn.responded("n2").size(), 1u);
  EXPECT_FALSE(kn.responded("n2")[0].result.ok());
  kn.ExpectClean();
}

// The relay crashes after the origin's hop is done (no hop session left at
// the origin to fail): the origin, waiting for RELAY_DONE, and the
// destination fail at once with PEER_DOWN, not at the relay's deadline.
TEST(RelaySimTest, ARelayThatCrashesAfterTheFirstHopEndsTheSessionAtBothEndsAtOnce) {
  KeyNetwork kn(VisibilityChain(2, 0.9), 4);
  QkdSessionOptions options = qnet::testing::TestOptions(10000, QkdProtocol::kRelay);
  options.timeout = std::chrono::seconds(30);
  SessionRecord run;
  kn.Begin("n0", "n2", options, run);
  ASSERT_TRUE(kn.net().RunUntil(
      [&] {
        return run.result.has_value() || (!run.progress.empty() && run.progress.back().stage == "reconciled" &&
                                          kn.kd("n0").active_sessions() == 0);
      },
      std::chrono::seconds(10)));
  ASSERT_FALSE(run.result.has_value()) << "the relay finished before the crash: nothing to test";
  ASSERT_EQ(kn.kd("n0").active_sessions(), 0u);  // the origin's hop is done; only the relay is left
  ASSERT_EQ(kn.kd("n0").active_relays(), 1u);
  const TimePoint crashed = kn.net().Now();
  kn.Crash("n1");
  ASSERT_TRUE(kn.net().RunUntil([&] { return run.result.has_value() && !kn.responded("n2").empty(); },
                                options.timeout));
  ASSERT_FALSE(run.result->ok());
  EXPECT_EQ(run.result->status().code(), absl::StatusCode::kUnavailable) << run.result->status();
  EXPECT_THAT(run.result->status().message(), HasSubstr("PEER_DOWN"));
  EXPECT_LT(run.ended - crashed, std::chrono::milliseconds(1));
  EXPECT_FALSE(kn.responded("n2")[0].result.ok());
  EXPECT_THAT(kn.responded("n2")[0].result.status().message(), HasSubstr("PEER_DOWN"));
  EXPECT_LT(kn.net().Now() - crashed, std::chrono::milliseconds(1));
  kn.Restart("n1");
  kn.ExpectClean();
}

}  // namespace
}  // namespace qnet::keydist
