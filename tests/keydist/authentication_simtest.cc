// End-to-end authentication of QKD session messages (keydist/authentication.h,
// qkd/wegman_carter.h) on a chain n0 - n1 - n2, where the repeater n1
// forwards every datagram between the ends. Checked: a clean BBM92 run gives
// identical keys at both ends, and the authentication key its messages used -
// counted here on the wire, one 64-bit pad per message plus the session's
// 64-bit hash key - is exactly what both ends report consumed, what both
// pools account for and refill, and what the delivered key is short of
// privacy amplification's output. A repeater that flips one bit of a
// forwarded Cascade message, or of a tag, or strips the authentication,
// makes the session abort at both ends naming the message that failed
// authentication, and no key is delivered.
#include <functional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keydist/authentication.h"
#include "qnet/v1/peer_messages.pb.h"
#include "tests/keydist/keydist_harness.h"

namespace qnet::keydist {
namespace {

using qnet::testing::KeyNetwork;
using qnet::testing::SessionRecord;
using qnet::testing::VisibilityChain;
using ::testing::HasSubstr;

// The key distribution message inside a forwarded datagram from `source`,
// or nullptr; `rewrite` may change it (then it is put back).
void OnKeyDistributionDatagram(v1::PeerMessage& peer, const std::function<bool(v1::KeyDistributionMessage&)>& rewrite) {
  if (!peer.has_network() || !peer.network().has_datagram()) return;
  v1::Datagram* d = peer.mutable_network()->mutable_datagram();
  if (d->purpose_id() != kKeyDistributionPurposeId) return;
  v1::KeyDistributionMessage m;
  if (!m.ParseFromString(d->payload())) return;
  if (rewrite(m)) d->set_payload(m.SerializeAsString());
}

// 2 hops of V = 0.99 (X error ~1%): enough pairs that the key pays for the
// session's ~100 authenticated messages (12,000 pairs gave a 1,706-bit key
// against 6,848 bits of authentication key: no net key).
constexpr uint32_t kPairs = 60000;

TEST(AuthenticationSimTest, CleanRunKeysAgreeAndAuthenticationKeyIsAccountedExactly) {
  KeyNetwork kn(VisibilityChain(2, 0.99), 21);
  // Every authenticated session message the repeater forwards between the ends.
  uint64_t authenticated = 0, plain_session_messages = 0;
  kn.net().network().SetDeliveryTamper([&](const std::string& from, const std::string& to, v1::PeerMessage& peer) {
    if (from != "n1") return;  // count each datagram once, on its last hop
    OnKeyDistributionDatagram(peer, [&](v1::KeyDistributionMessage& m) {
      if (m.has_authenticated()) ++authenticated;
      if (m.has_offer() || m.has_accept() || m.has_post_processing() || m.has_test_outcomes()) {
        ++plain_session_messages;
      }
      return false;
    });
  });
  SessionRecord run;
  kn.Run("n0", "n2", qnet::testing::TestOptions(kPairs), run);
  ASSERT_TRUE(run.result->ok()) << run.result->status();
  ASSERT_EQ(kn.responded("n2").size(), 1u);
  ASSERT_TRUE(kn.responded("n2")[0].result.ok()) << kn.responded("n2")[0].result.status();
  const QkdResult& alice = **run.result;
  const QkdResult& bob = *kn.responded("n2")[0].result;

  EXPECT_GT(alice.key.size(), 0u);
  EXPECT_EQ(alice.key, bob.key);
  EXPECT_EQ(alice.key_id, bob.key_id);
  EXPECT_EQ(plain_session_messages, 0u);  // nothing of the session travels unauthenticated

  // By hand: the offer, the accept and every post-processing message either
  // way, each with a 64-bit pad, plus the session's 64-bit hash key.
  const uint64_t messages = 2 + alice.report.messages_sent + alice.report.messages_received;
  EXPECT_EQ(authenticated, messages);
  const uint64_t expected_bits = 64 * (messages + 1);
  EXPECT_EQ(alice.auth_bits_consumed, expected_bits);
  EXPECT_EQ(bob.auth_bits_consumed, expected_bits);
  // Taken off the front of privacy amplification's output, the rest delivered.
  EXPECT_EQ(alice.key.size() + alice.auth_bits_consumed, alice.report.final_key_bits);
  EXPECT_EQ(bob.key.size() + bob.auth_bits_consumed, bob.report.final_key_bits);

  // Both pools: consumed exactly that, and got it back from the key.
  for (const auto& [node, peer] : {std::pair<std::string, std::string>{"n0", "n2"}, {"n2", "n0"}}) {
    const qkd::AuthenticationKeyPool& pool = kn.kd(node).authentication().With(peer);
    EXPECT_EQ(pool.bits_consumed(), expected_bits) << node;
    EXPECT_EQ(pool.bits_refilled(), kDefaultAuthenticationBootstrapBits + expected_bits) << node;
    EXPECT_EQ(pool.bits_available_for_sending() + pool.bits_available_for_receiving(),
              kDefaultAuthenticationBootstrapBits)
        << node;
    EXPECT_EQ(kn.kd(node).stats().auth_bits_consumed, expected_bits) << node;
    EXPECT_EQ(kn.kd(node).stats().unauthenticated_messages, 0u) << node;
  }
  // The repeater shares no pool with the ends: it has none.
  EXPECT_EQ(kn.kd("n1").stats().auth_bits_consumed, 0u);
  ::testing::Test::RecordProperty("authenticated_messages", absl::StrCat(messages));
  ::testing::Test::RecordProperty("auth_bits_consumed", absl::StrCat(expected_bits));
  ::testing::Test::RecordProperty("final_key_bits", absl::StrCat(alice.report.final_key_bits));
  kn.ExpectClean();
}

enum class Attack { kFlipCascadeBit, kFlipTagBit, kStripTag };

// The repeater n1 changes the first Cascade parity reply (Alice n0 -> Bob n2)
// it forwards; everything else passes untouched.
void RunAttack(Attack attack, const std::string& expected_text) {
  KeyNetwork kn(VisibilityChain(2, 0.99), 22);
  int tampered = 0;
  kn.net().network().SetDeliveryTamper([&](const std::string& from, const std::string& to, v1::PeerMessage& peer) {
    if (from != "n1" || to != "n2" || tampered > 0) return;
    OnKeyDistributionDatagram(peer, [&](v1::KeyDistributionMessage& m) {
      if (!m.has_authenticated()) return false;
      v1::KeyDistributionMessage inner;
      if (!inner.ParseFromString(m.authenticated().message()) || !inner.has_post_processing() ||
          !inner.post_processing().has_parity_reply() || inner.post_processing().parity_reply().parities().packed().empty()) {
        return false;
      }
      ++tampered;
      switch (attack) {
        case Attack::kFlipCascadeBit: {
          std::string* packed = inner.mutable_post_processing()->mutable_parity_reply()->mutable_parities()->mutable_packed();
          (*packed)[0] = static_cast<char>((*packed)[0] ^ 1);  // one parity bit
          m.mutable_authenticated()->set_message(inner.SerializeAsString());
          break;
        }
        case Attack::kFlipTagBit: m.mutable_authenticated()->set_tag(m.authenticated().tag() ^ (uint64_t{1} << 17)); break;
        case Attack::kStripTag: m = inner; break;
      }
      return true;
    });
  });
  SessionRecord run;
  kn.Run("n0", "n2", qnet::testing::TestOptions(kPairs), run);
  ASSERT_EQ(tampered, 1);
  ASSERT_FALSE(run.result->ok());
  ASSERT_EQ(kn.responded("n2").size(), 1u);
  const absl::Status& bob = kn.responded("n2")[0].result.status();
  const absl::Status& alice = run.result->status();
  // Bob caught it and said why; Alice heard it from him.
  EXPECT_EQ(bob.code(), absl::StatusCode::kUnauthenticated) << bob;
  EXPECT_THAT(bob.message(), HasSubstr(expected_text));
  EXPECT_THAT(bob.message(), HasSubstr("from n0"));
  EXPECT_THAT(bob.message(), HasSubstr("parity_reply"));
  EXPECT_EQ(alice.code(), absl::StatusCode::kUnauthenticated) << alice;
  EXPECT_THAT(alice.message(), HasSubstr(expected_text));
  EXPECT_THAT(alice.message(), HasSubstr("reported by n2"));
  EXPECT_EQ(kn.kd("n2").stats().unauthenticated_messages, 1u);
  EXPECT_EQ(kn.kd("n0").stats().sessions_succeeded + kn.kd("n2").stats().sessions_succeeded, 0u);
  kn.ExpectClean();
}

TEST(AuthenticationSimTest, RepeaterFlippingOneBitOfACascadeMessageAbortsTheBlock) {
  RunAttack(Attack::kFlipCascadeBit, "failed authentication: its tag does not match");
}

TEST(AuthenticationSimTest, RepeaterFlippingOneBitOfATagAbortsTheBlock) {
  RunAttack(Attack::kFlipTagBit, "failed authentication: its tag does not match");
}

TEST(AuthenticationSimTest, RepeaterStrippingTheAuthenticationAbortsTheBlock) {
  RunAttack(Attack::kStripTag, "without end-to-end authentication");
}

}  // namespace
}  // namespace qnet::keydist
