// End-to-end authentication of QKD session messages (keydist/authentication.h,
// qkd/wegman_carter.h) on a chain n0 - n1 - n2, where the repeater n1
// forwards every datagram between the ends. Authentication is delayed: every
// session message travels in an authenticated envelope, but only the offer
// and each end's closing message carry a tag, covering all that end sent
// since its previous tag. Checked: a clean BBM92 run of a few thousand pairs
// gives identical keys at both ends, and the authentication key it used -
// counted here on the wire, one 64-bit pad per tag plus the session's 64-bit
// hash key - is exactly what both ends report consumed, what both pools
// account for and refill, and what the delivered key is short of privacy
// amplification's output. A repeater that flips one bit of a forwarded
// Cascade message, or of a tag, or strips the authentication, makes the
// session abort at both ends saying which message failed authentication,
// and no key is delivered; a tampered closing tag of the responder stops the
// initiator from delivering its key (it waits for that tag).
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

// 2 hops of V = 0.99 (X error ~1%). With one tag per message this took
// 60,000 pairs for any net key (12,000 gave a 1,706-bit key against 6,848
// bits of authentication key); with delayed authentication a few thousand do.
constexpr uint32_t kPairs = 8000;

TEST(AuthenticationSimTest, CleanRunKeysAgreeAndAuthenticationKeyIsAccountedExactly) {
  KeyNetwork kn(VisibilityChain(2, 0.99), 21);
  // Every authenticated session message the repeater forwards between the ends.
  uint64_t authenticated = 0, tagged = 0, closing = 0, bare = 0, plain_session_messages = 0;
  kn.net().network().SetDeliveryTamper([&](const std::string& from, const std::string& /*to*/, v1::PeerMessage& peer) {
    if (from != "n1") return;  // count each datagram once, on its last hop
    OnKeyDistributionDatagram(peer, [&](v1::KeyDistributionMessage& m) {
      if (m.has_authenticated()) {
        ++authenticated;
        tagged += m.authenticated().tagged() ? 1 : 0;
        closing += m.authenticated().final() ? 1 : 0;
        bare += m.authenticated().message().empty() ? 1 : 0;
      }
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

  // By hand: every session message travels in an envelope - the offer, the
  // accept, every post-processing message either way, and Bob's closing tag
  // alone (Alice's last message, the privacy amplification seed, carries
  // hers; Bob has nothing left to send once he has it) ...
  const uint64_t messages = 2 + alice.report.messages_sent + alice.report.messages_received + 1;
  EXPECT_EQ(authenticated, messages);
  EXPECT_EQ(bare, 1u);
  // ... and three of them carry a tag: the offer, and each end's closing message.
  EXPECT_EQ(tagged, 3u);
  EXPECT_EQ(closing, 2u);
  // A 64-bit pad per tag plus the session's 64-bit hash key: 256 bits per
  // block, however many messages Cascade needed.
  const uint64_t expected_bits = 64 * (3 + 1);
  EXPECT_EQ(alice.auth_bits_consumed, expected_bits);
  EXPECT_EQ(bob.auth_bits_consumed, expected_bits);
  // Taken off the front of privacy amplification's output, the rest delivered.
  EXPECT_EQ(alice.key.size() + alice.auth_bits_consumed, alice.report.final_key_bits);
  EXPECT_EQ(bob.key.size() + bob.auth_bits_consumed, bob.report.final_key_bits);

  // Both pools: consumed exactly that, and got it back from the key.
  for (const auto& [node, peer] : {std::pair<std::string, std::string>{"n0", "n2"}, {"n2", "n0"}}) {
    absl::StatusOr<const qkd::AuthenticationKeyPool*> found = kn.kd(node).authentication().With(peer);
    ASSERT_TRUE(found.ok()) << found.status();
    const qkd::AuthenticationKeyPool& pool = **found;
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
  ::testing::Test::RecordProperty("session_messages", absl::StrCat(messages));
  ::testing::Test::RecordProperty("auth_bits_consumed", absl::StrCat(expected_bits));
  ::testing::Test::RecordProperty("final_key_bits", absl::StrCat(alice.report.final_key_bits));
  kn.ExpectClean();
}

enum class Attack { kFlipCascadeBit, kFlipTagBit, kStripTag };

// The repeater n1 changes one message it forwards from Alice (n0) to Bob
// (n2): the first Cascade parity reply (a bit of it, or its envelope
// stripped), or Alice's closing tag; everything else passes untouched.
void RunAttack(Attack attack, const std::string& expected_text, const std::string& expected_message) {
  KeyNetwork kn(VisibilityChain(2, 0.99), 22);
  int tampered = 0;
  kn.net().network().SetDeliveryTamper([&](const std::string& from, const std::string& to, v1::PeerMessage& peer) {
    if (from != "n1" || to != "n2" || tampered > 0) return;
    OnKeyDistributionDatagram(peer, [&](v1::KeyDistributionMessage& m) {
      if (!m.has_authenticated()) return false;
      if (attack == Attack::kFlipTagBit) {
        if (!m.authenticated().final()) return false;
        ++tampered;
        m.mutable_authenticated()->set_tag(m.authenticated().tag() ^ (uint64_t{1} << 17));
        return true;
      }
      v1::KeyDistributionMessage inner;
      if (!inner.ParseFromString(m.authenticated().message()) || !inner.has_post_processing() ||
          !inner.post_processing().has_parity_reply() || inner.post_processing().parity_reply().parities().packed().empty()) {
        return false;
      }
      EXPECT_FALSE(m.authenticated().tagged());  // Cascade's messages wait for the closing tag
      ++tampered;
      if (attack == Attack::kFlipCascadeBit) {
        std::string* packed = inner.mutable_post_processing()->mutable_parity_reply()->mutable_parities()->mutable_packed();
        (*packed)[0] = static_cast<char>((*packed)[0] ^ 1);  // one parity bit
        m.mutable_authenticated()->set_message(inner.SerializeAsString());
      } else {
        m = inner;
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
  EXPECT_EQ(kn.kd("n0").stats().sessions_succeeded + kn.kd("n2").stats().sessions_succeeded, 0u);
  EXPECT_EQ(kn.kd("n0").stats().key_bits + kn.kd("n2").stats().key_bits, 0u);
  if (attack == Attack::kFlipCascadeBit) {
    // Acted on before the closing tag: Bob's Cascade finds Alice's parities
    // contradict each other (only an altered reply does that) and aborts
    // before her tag arrives. No key either way.
    EXPECT_THAT(bob.message(), HasSubstr(expected_text)) << bob;
    EXPECT_THAT(alice.message(), HasSubstr(expected_text)) << alice;
    kn.ExpectClean();
    return;
  }
  // Bob caught it and said why; Alice heard it from him.
  EXPECT_EQ(bob.code(), absl::StatusCode::kUnauthenticated) << bob;
  EXPECT_THAT(bob.message(), HasSubstr(expected_text));
  EXPECT_THAT(bob.message(), HasSubstr("from n0"));
  EXPECT_THAT(bob.message(), HasSubstr(expected_message));
  EXPECT_EQ(alice.code(), absl::StatusCode::kUnauthenticated) << alice;
  EXPECT_THAT(alice.message(), HasSubstr(expected_text));
  EXPECT_THAT(alice.message(), HasSubstr("reported by n2"));
  EXPECT_EQ(kn.kd("n2").stats().unauthenticated_messages, 1u);
  EXPECT_EQ(kn.kd("n0").stats().sessions_succeeded + kn.kd("n2").stats().sessions_succeeded, 0u);
  kn.ExpectClean();
}

// The flipped parity goes into Alice's transcript at Bob, who acts on it
// before her closing tag: the contradiction aborts Cascade (which before
// this check flipped bits forever), and the block gives no key.
TEST(AuthenticationSimTest, RepeaterFlippingOneBitOfACascadeMessageAbortsTheBlock) {
  RunAttack(Attack::kFlipCascadeBit, "parities are inconsistent", "");
}

TEST(AuthenticationSimTest, RepeaterFlippingOneBitOfATagAbortsTheBlock) {
  RunAttack(Attack::kFlipTagBit, "failed authentication: its tag does not match",
            "(post-processing privacy_amplification_seed)");
}

TEST(AuthenticationSimTest, RepeaterStrippingTheAuthenticationAbortsTheBlock) {
  RunAttack(Attack::kStripTag, "without end-to-end authentication", "parity_reply");
}

// Alice's last message goes one way; she has all of Bob's messages but keeps
// her key until his closing tag verifies. The repeater flips a bit of that
// tag (n2 -> n0): Bob, who verified Alice's transcript, delivers; Alice does
// not, and says why.
TEST(AuthenticationSimTest, InitiatorWithholdsItsKeyUntilTheResponderClosingTagVerifies) {
  KeyNetwork kn(VisibilityChain(2, 0.99), 23);
  int tampered = 0;
  kn.net().network().SetDeliveryTamper([&](const std::string& from, const std::string& to, v1::PeerMessage& peer) {
    if (from != "n1" || to != "n0") return;
    OnKeyDistributionDatagram(peer, [&](v1::KeyDistributionMessage& m) {
      if (!m.has_authenticated() || !m.authenticated().final()) return false;
      ++tampered;
      m.mutable_authenticated()->set_tag(m.authenticated().tag() ^ 1);
      return true;
    });
  });
  SessionRecord run;
  kn.Run("n0", "n2", qnet::testing::TestOptions(kPairs), run);
  ASSERT_EQ(tampered, 1);
  ASSERT_EQ(kn.responded("n2").size(), 1u);
  EXPECT_TRUE(kn.responded("n2")[0].result.ok()) << kn.responded("n2")[0].result.status();
  ASSERT_FALSE(run.result->ok());
  EXPECT_EQ(run.result->status().code(), absl::StatusCode::kUnauthenticated) << run.result->status();
  EXPECT_THAT(run.result->status().message(), HasSubstr("(closing tag) from n2 failed authentication"));
  EXPECT_EQ(kn.kd("n0").stats().sessions_succeeded, 0u);
  EXPECT_EQ(kn.kd("n0").stats().key_bits, 0u);
  EXPECT_EQ(kn.kd("n0").stats().unauthenticated_messages, 1u);
  kn.ExpectClean();
}

}  // namespace
}  // namespace qnet::keydist
