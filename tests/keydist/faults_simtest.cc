// Key distribution when things go wrong, in the simulator: an unknown peer
// is refused at once (NO_ROUTE); a peer that crashes mid-session fails the
// initiator with the network's PEER_DOWN well within the timeout; a peer
// that never answers (no key distribution there) fails it with a TIMEOUT at
// the timeout; a cancel ends both ends; undecodable datagrams are ignored
// and counted; invalid options are refused; nothing is left allocated.
#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/keydist/keydist_harness.h"

namespace qnet::keydist {
namespace {

using qnet::testing::ChainYaml;
using qnet::testing::KeyNetwork;
using qnet::testing::SessionRecord;
using ::testing::HasSubstr;
using std::chrono::milliseconds;
using std::chrono::seconds;

QkdSessionOptions Small(uint32_t pairs = 2000) {
  QkdSessionOptions o;
  o.pairs = pairs;
  o.timeout = seconds(5);
  return o;
}

TEST(KeyDistributionFaultsSimTest, UnknownPeerIsNoRouteAtOnce) {
  KeyNetwork kn(ChainYaml(1), 1);
  auto done = [](SessionId, absl::StatusOr<QkdResult>) { ADD_FAILURE() << "no session should start"; };
  for (QkdProtocol protocol : {QkdProtocol::kBbm92, QkdProtocol::kE91, QkdProtocol::kRelay}) {
    QkdSessionOptions o = Small();
    o.protocol = protocol;
    absl::StatusOr<SessionId> id = kn.kd("n0").StartSession("nowhere", o, nullptr, done);
    EXPECT_EQ(id.status().code(), absl::StatusCode::kNotFound) << QkdProtocolName(protocol);
    EXPECT_THAT(id.status().message(), HasSubstr("NO_ROUTE"));
  }
  kn.net().RunFor(milliseconds(10));
  EXPECT_EQ(kn.kd("n0").stats().sessions_started, 0u);
  kn.ExpectClean();
}

TEST(KeyDistributionFaultsSimTest, InvalidOptionsAreRefusedAtOnce) {
  KeyNetwork kn(ChainYaml(1), 2);
  auto done = [](SessionId, absl::StatusOr<QkdResult>) {};
  std::vector<std::pair<QkdSessionOptions, std::string>> cases;
  QkdSessionOptions o = Small();
  o.pairs = 0;
  cases.push_back({o, "pairs"});
  o = Small();
  o.min_fidelity = 1.5;
  cases.push_back({o, "min_fidelity"});
  o = Small();
  o.timeout = Duration(0);
  cases.push_back({o, "timeout"});
  o = Small();
  o.post_processing.estimation.sample_fraction = 1.0;
  cases.push_back({o, "sample_fraction"});
  for (const auto& [options, what] : cases) {
    absl::StatusOr<SessionId> id = kn.kd("n0").StartSession("n1", options, nullptr, done);
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument) << what;
    EXPECT_THAT(id.status().message(), HasSubstr(what));
  }
  EXPECT_EQ(kn.kd("n0").StartSession("n0", Small(), nullptr, done).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(kn.kd("n0").StartSession("n1", Small(), nullptr, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  kn.ExpectClean();
}

TEST(KeyDistributionFaultsSimTest, PeerCrashMidSessionFailsTheInitiatorWithinTheTimeout) {
  KeyNetwork kn(ChainYaml(1, "ideal", 1.0, "", "    visibility: 0.9\n"), 3);
  QkdSessionOptions o = Small(1000000);  // far more than can be measured before the crash
  o.timeout = seconds(30);
  SessionRecord run;
  kn.Begin("n0", "n1", o, run);
  ASSERT_TRUE(kn.net().RunUntil(
      [&] { return !run.progress.empty() && run.progress.back().stage == "measuring"; }, seconds(1)));
  kn.net().RunFor(milliseconds(20));
  EXPECT_EQ(kn.kd("n1").active_sessions(), 1u);
  kn.Crash("n1");
  ASSERT_TRUE(kn.net().RunUntil([&] { return run.result.has_value(); }, o.timeout));
  ASSERT_FALSE(run.result->ok());
  EXPECT_EQ(run.result->status().code(), absl::StatusCode::kUnavailable) << run.result->status();
  EXPECT_THAT(run.result->status().message(), HasSubstr("PEER_DOWN"));
  EXPECT_LT(run.ended - run.started, o.timeout);
  kn.net().RunFor(milliseconds(50));
  EXPECT_EQ(kn.kd("n0").active_sessions(), 0u);
  EXPECT_EQ(kn.net().node("n0").network().active_circuits(), 0u);
  EXPECT_EQ(kn.net().node("n0").network().reserved_slots(), 0);
}

// Session messages are datagrams without retransmission: a link that goes
// down under a session in post-processing (no network request left to fail)
// ends it at both ends at once, not at its deadline; a restarted neighbour
// then serves the next session.
TEST(KeyDistributionFaultsSimTest, ALinkDownInPostProcessingEndsTheSessionAtOnceAndTheNextOneRuns) {
  KeyNetwork kn(qnet::testing::VisibilityChain(1, 0.99), 7);
  QkdSessionOptions o = qnet::testing::TestOptions(12000);
  o.timeout = seconds(30);
  SessionRecord cut;
  kn.Begin("n0", "n1", o, cut);
  ASSERT_TRUE(kn.net().RunUntil([&] { return !cut.progress.empty() && cut.progress.back().stage == "measured"; },
                                seconds(10)));
  ASSERT_FALSE(cut.result.has_value());
  const TimePoint crashed = kn.net().Now();
  kn.Crash("n1");
  kn.Restart("n1");
  ASSERT_TRUE(kn.net().RunUntil([&] { return cut.result.has_value(); }, o.timeout));
  ASSERT_FALSE(cut.result->ok());
  EXPECT_EQ(cut.result->status().code(), absl::StatusCode::kUnavailable) << cut.result->status();
  EXPECT_THAT(cut.result->status().message(), HasSubstr("PEER_DOWN"));
  EXPECT_THAT(cut.result->status().message(), HasSubstr("the link n0-n1 went down"));
  EXPECT_LT(cut.ended - crashed, milliseconds(1));
  kn.net().RunFor(milliseconds(10));
  SessionRecord next;
  kn.Run("n0", "n1", o, next);
  ASSERT_TRUE(next.result->ok()) << next.result->status();
  EXPECT_GT((*next.result)->key.size(), 0u);
  kn.ExpectClean();
}

TEST(KeyDistributionFaultsSimTest, ARepeaterCrashInPostProcessingEndsTheSessionAtBothEndsAtOnce) {
  KeyNetwork kn(qnet::testing::VisibilityChain(2, 0.99), 8);
  QkdSessionOptions o = qnet::testing::TestOptions(12000);
  o.timeout = seconds(30);
  SessionRecord cut;
  kn.Begin("n0", "n2", o, cut);
  ASSERT_TRUE(kn.net().RunUntil([&] { return !cut.progress.empty() && cut.progress.back().stage == "measured"; },
                                seconds(10)));
  const TimePoint crashed = kn.net().Now();
  kn.Crash("n1");
  ASSERT_TRUE(kn.net().RunUntil([&] { return cut.result.has_value() && !kn.responded("n2").empty(); }, o.timeout));
  ASSERT_FALSE(cut.result->ok());
  EXPECT_THAT(cut.result->status().message(), HasSubstr("PEER_DOWN"));
  EXPECT_LT(cut.ended - crashed, milliseconds(1));
  const absl::StatusOr<QkdResult>& far = kn.responded("n2")[0].result;
  ASSERT_FALSE(far.ok());
  EXPECT_THAT(far.status().message(), HasSubstr("PEER_DOWN"));
  EXPECT_LT(kn.net().Now() - crashed, milliseconds(1));
  kn.Restart("n1");
  kn.ExpectClean();
}

TEST(KeyDistributionFaultsSimTest, APeerThatNeverAnswersTimesOut) {
  KeyNetwork kn(ChainYaml(2), 4);
  kn.Stop("n2");  // its stack runs on (it forwards and routes), key distribution does not
  QkdSessionOptions o = Small();
  o.timeout = seconds(2);
  SessionRecord run;
  kn.Begin("n0", "n2", o, run);
  ASSERT_TRUE(kn.net().RunUntil([&] { return run.result.has_value(); }, seconds(5)));
  ASSERT_FALSE(run.result->ok());
  EXPECT_EQ(run.result->status().code(), absl::StatusCode::kDeadlineExceeded) << run.result->status();
  EXPECT_THAT(run.result->status().message(), HasSubstr("did not answer"));
  EXPECT_EQ(run.ended - run.started, o.timeout);
  kn.ExpectClean();
}

TEST(KeyDistributionFaultsSimTest, CancelEndsBothEnds) {
  KeyNetwork kn(ChainYaml(1), 5);
  SessionRecord run;
  kn.Begin("n0", "n1", Small(1000000), run);
  ASSERT_TRUE(kn.net().RunUntil(
      [&] { return !run.progress.empty() && run.progress.back().stage == "measuring"; }, seconds(1)));
  kn.net().RunFor(milliseconds(5));
  ASSERT_TRUE(kn.kd("n0").Cancel(run.id).ok());
  EXPECT_EQ(kn.kd("n0").Cancel(run.id).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(kn.net().RunUntil([&] { return run.result.has_value() && !kn.responded("n1").empty(); }, seconds(1)));
  EXPECT_EQ(run.result->status().code(), absl::StatusCode::kCancelled) << run.result->status();
  EXPECT_EQ(kn.responded("n1")[0].result.status().code(), absl::StatusCode::kCancelled)
      << kn.responded("n1")[0].result.status();
  kn.ExpectClean();
}

TEST(KeyDistributionFaultsSimTest, UndecodableDatagramsAreIgnoredAndCounted) {
  KeyNetwork kn(ChainYaml(1), 6);
  network::NetworkLayer& n0 = kn.net().node("n0").network();
  ASSERT_TRUE(n0.SendDatagram("n1", kKeyDistributionPurposeId, "not a message").ok());
  ASSERT_TRUE(n0.SendDatagram("n1", kKeyDistributionPurposeId, std::string("\x0a\x00", 2)).ok());
  kn.net().RunFor(milliseconds(5));
  EXPECT_EQ(kn.kd("n1").stats().malformed_messages, 2u);
  // A message for a session n1 never heard of is stray.
  v1::KeyDistributionMessage m;
  m.mutable_session()->set_initiator("n0");
  m.mutable_session()->set_id(12345);
  m.mutable_accept()->set_pair_purpose_id(kFirstPairPurposeId);
  ASSERT_TRUE(n0.SendDatagram("n1", kKeyDistributionPurposeId, m.SerializeAsString()).ok());
  kn.net().RunFor(milliseconds(5));
  EXPECT_EQ(kn.kd("n1").stats().stray_messages, 1u);
  // A session still works afterwards.
  SessionRecord run;
  QkdSessionOptions o = qnet::testing::TestOptions(4000);
  kn.Run("n0", "n1", o, run);
  ASSERT_TRUE(run.result->ok()) << run.result->status();
  kn.ExpectClean();
}

}  // namespace
}  // namespace qnet::keydist
