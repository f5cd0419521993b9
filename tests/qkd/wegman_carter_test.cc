// The Wegman-Carter MAC and its key pool: tags verify; every single-bit flip
// of a message or of its tag fails; messages that differ only in trailing
// zero bytes (the zero-padded last word) hash apart thanks to the length
// word; the hash is the polynomial of the header comment, written out here;
// the forgery bound is L / 2^64. The pool hands each word out once, keeps
// the two directions apart, refuses reused, replayed and unknown positions,
// burns skipped words and accounts every consumed bit, and says clearly when
// it is exhausted.
#include "qkd/wegman_carter.h"

#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "qkd/gf2.h"

namespace qnet::qkd {
namespace {

using ::testing::HasSubstr;

std::string RandomBytes(size_t n, Rng& rng) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng.UniformInt(256));
  return s;
}

TEST(WegmanCarterMac, TagsVerifyAndEveryBitFlipOfMessageOrTagFails) {
  Rng rng(11);
  for (size_t bytes : {0, 1, 7, 8, 9, 63, 200}) {
    const std::string message = RandomBytes(bytes, rng);
    const uint64_t key = rng.NextU64(), pad = rng.NextU64();
    const uint64_t tag = WegmanCarterMac::Tag(key, pad, message);
    EXPECT_TRUE(WegmanCarterMac::Verify(key, pad, message, tag)) << bytes;
    for (size_t bit = 0; bit < 8 * bytes; ++bit) {
      std::string flipped = message;
      flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
      EXPECT_FALSE(WegmanCarterMac::Verify(key, pad, flipped, tag)) << bytes << " bytes, bit " << bit;
    }
    for (int bit = 0; bit < 64; ++bit) {
      EXPECT_FALSE(WegmanCarterMac::Verify(key, pad, message, tag ^ (uint64_t{1} << bit))) << "tag bit " << bit;
    }
    // Another pad or key gives another tag.
    EXPECT_FALSE(WegmanCarterMac::Verify(key, pad ^ 1, message, tag));
    // (The empty message hashes to 0 under every key: only its pad protects it.)
    if (bytes > 0) EXPECT_FALSE(WegmanCarterMac::Verify(key ^ 2, pad, message, tag));
  }
}

// Delayed authentication: one tag over a sequence of messages. The same
// sequence gives the same tag; a flipped bit, a dropped, injected, empty,
// reordered, split or merged message each gives another; after Close() a
// new transcript starts; and the tag is the MAC's hash of the framed
// concatenation (each message's byte length, its zero-padded words, then the
// word count), XOR the pad.
TEST(WegmanCarterTranscript, CoversTheWholeSequenceInOrder) {
  Rng rng(13);
  const uint64_t key = rng.NextU64(), pad = rng.NextU64();
  const std::vector<std::string> msgs = {RandomBytes(13, rng), RandomBytes(8, rng), RandomBytes(0, rng),
                                         RandomBytes(21, rng)};
  auto tag_of = [&](const std::vector<std::string>& seq) {
    WegmanCarterTranscript t;
    for (const std::string& m : seq) t.Append(key, m);
    return t.Close(key, pad);
  };
  const uint64_t tag = tag_of(msgs);
  EXPECT_EQ(tag_of(msgs), tag);
  std::vector<std::string> v = msgs;
  v[3][5] = static_cast<char>(v[3][5] ^ 0x10);
  EXPECT_NE(tag_of(v), tag) << "flipped bit";
  EXPECT_NE(tag_of({msgs[0], msgs[1], msgs[3]}), tag) << "dropped empty message";
  EXPECT_NE(tag_of({msgs[0], msgs[1], msgs[2]}), tag) << "dropped last message";
  EXPECT_NE(tag_of({msgs[0], msgs[1], msgs[2], msgs[3], msgs[1]}), tag) << "replayed message";
  EXPECT_NE(tag_of({msgs[1], msgs[0], msgs[2], msgs[3]}), tag) << "reordered";
  EXPECT_NE(tag_of({msgs[0] + msgs[1], msgs[2], msgs[3]}), tag) << "merged";
  EXPECT_NE(tag_of({msgs[0].substr(0, 5), msgs[0].substr(5), msgs[1], msgs[2], msgs[3]}), tag) << "split";

  WegmanCarterTranscript t;
  t.Append(key, msgs[0]);
  (void)t.Close(key, pad);
  EXPECT_EQ(t.messages(), 0u);
  for (const std::string& m : msgs) t.Append(key, m);
  EXPECT_EQ(t.messages(), msgs.size());
  // Horner over the framing, written out: (length, words...) per message, then the word count.
  uint64_t h = 0, words = 0;
  auto absorb = [&](uint64_t w) {
    h = Gf64Multiply(h ^ w, key);
    ++words;
  };
  for (const std::string& m : msgs) {
    absorb(m.size());
    for (size_t at = 0; at < m.size(); at += 8) {
      uint64_t w = 0;
      for (size_t i = 0; i < 8 && at + i < m.size(); ++i) w |= uint64_t{static_cast<uint8_t>(m[at + i])} << (8 * i);
      absorb(w);
    }
  }
  EXPECT_EQ(t.words(), words);
  const uint64_t expected = Gf64Multiply(h ^ words, key);
  EXPECT_EQ(t.Close(key, pad), expected ^ pad);
}

TEST(WegmanCarterMac, TrailingZeroBytesAndTruncationAreCaught) {
  Rng rng(12);
  const uint64_t key = rng.NextU64(), pad = rng.NextU64();
  const std::string m = RandomBytes(13, rng);
  const uint64_t tag = WegmanCarterMac::Tag(key, pad, m);
  EXPECT_FALSE(WegmanCarterMac::Verify(key, pad, m + std::string(1, '\0'), tag));
  EXPECT_FALSE(WegmanCarterMac::Verify(key, pad, m + std::string(3, '\0'), tag));
  EXPECT_FALSE(WegmanCarterMac::Verify(key, pad, m.substr(0, 12), tag));
  EXPECT_FALSE(WegmanCarterMac::Verify(key, pad, std::string(), tag));
}

TEST(WegmanCarterMac, HashIsThePolynomialWithTheLengthWord) {
  const uint64_t k = 0x9e3779b97f4a7c15;
  // 9 bytes: m_1 = bytes 0..7, m_2 = byte 8 zero-padded, m_3 = 9 (the length):
  // m_1 k^3 + m_2 k^2 + 9 k.
  std::string m;
  for (int i = 1; i <= 9; ++i) m.push_back(static_cast<char>(i));
  const uint64_t m1 = 0x0807060504030201, m2 = 0x09;
  const uint64_t k2 = Gf64Multiply(k, k), k3 = Gf64Multiply(k2, k);
  EXPECT_EQ(WegmanCarterMac::Hash(k, m), Gf64Multiply(m1, k3) ^ Gf64Multiply(m2, k2) ^ Gf64Multiply(9, k));
  EXPECT_EQ(WegmanCarterMac::Hash(k, ""), 0u);  // length 0: 0 * k
  EXPECT_EQ(WegmanCarterMac::Blocks(9), 3u);
  EXPECT_EQ(WegmanCarterMac::Blocks(0), 1u);
  EXPECT_DOUBLE_EQ(WegmanCarterMac::ForgeryProbability(80), 11 * std::ldexp(1.0, -64));
}

BitString Words(std::vector<uint64_t> w) {
  const size_t n = w.size() * 64;
  return BitString::FromWords(std::move(w), n);
}

TEST(AuthenticationKeyPool, EndsAgreeDirectionsStayApartAndNothingIsHandedOutTwice) {
  // Alice's name sorts first: she sends with the first half.
  AuthenticationKeyPool alice("bob", true), bob("alice", false);
  const BitString bootstrap = Words({1, 2, 3, 4, 5, 6});
  ASSERT_TRUE(alice.Refill("bootstrap", bootstrap).ok());
  ASSERT_TRUE(bob.Refill("bootstrap", bootstrap).ok());
  EXPECT_EQ(alice.bits_available_for_sending(), 192u);
  EXPECT_EQ(alice.bits_available_for_receiving(), 192u);

  auto a1 = alice.TakeForSending(2);
  ASSERT_TRUE(a1.ok()) << a1.status();
  EXPECT_EQ(a1->position, (PoolPosition{"bootstrap", 0}));
  EXPECT_EQ(a1->words, (std::vector<uint64_t>{1, 2}));
  auto b1 = bob.TakeForSending(1);
  ASSERT_TRUE(b1.ok());
  EXPECT_EQ(b1->words, (std::vector<uint64_t>{4}));  // the second half: no overlap with Alice's
  // Each end takes the other's words at the position named.
  auto at_bob = bob.TakeForReceiving(a1->position, 2);
  ASSERT_TRUE(at_bob.ok()) << at_bob.status();
  EXPECT_EQ(*at_bob, a1->words);
  auto at_alice = alice.TakeForReceiving(b1->position, 1);
  ASSERT_TRUE(at_alice.ok());
  EXPECT_EQ(*at_alice, b1->words);
  // Accounting: 3 words consumed at each end.
  EXPECT_EQ(alice.bits_consumed(), 3 * 64u);
  EXPECT_EQ(bob.bits_consumed(), 3 * 64u);

  // A replay of a used position is refused: no pad is used twice.
  auto replay = bob.TakeForReceiving(a1->position, 2);
  EXPECT_EQ(replay.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(replay.status().message(), HasSubstr("used before"));
  auto replay_one = bob.TakeForReceiving({"bootstrap", 1}, 1);
  EXPECT_EQ(replay_one.status().code(), absl::StatusCode::kPermissionDenied);
  // Unknown segments, positions past the half.
  EXPECT_EQ(bob.TakeForReceiving({"nope", 0}, 1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(bob.TakeForReceiving({"bootstrap", 3}, 1).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(bob.TakeForReceiving({"bootstrap", 2}, 2).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(bob.bits_consumed(), 3 * 64u);  // refusals consume nothing
}

TEST(AuthenticationKeyPool, SkippedWordsAreBurnedAndCounted) {
  AuthenticationKeyPool bob("alice", false);
  ASSERT_TRUE(bob.Refill("s", Words({10, 11, 12, 13, 14, 15, 16, 17})).ok());
  // Alice's words 0 and 1 never arrived (a lost message): taking word 2 burns them.
  auto w = bob.TakeForReceiving({"s", 2}, 1);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(*w, (std::vector<uint64_t>{12}));
  EXPECT_EQ(bob.bits_consumed(), 3 * 64u);
  EXPECT_EQ(bob.bits_available_for_receiving(), 64u);
  EXPECT_EQ(bob.TakeForReceiving({"s", 0}, 1).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(AuthenticationKeyPool, ExhaustionIsAClearErrorAndRefillsAreUsedInOrder) {
  AuthenticationKeyPool alice("bob", true);
  auto none = alice.TakeForSending(1);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(alice.Refill("bootstrap", Words({1, 2, 3, 4})).ok());
  ASSERT_TRUE(alice.TakeForSending(1).ok());
  // Two words do not fit in what is left of the first segment's half.
  auto two = alice.TakeForSending(2);
  EXPECT_EQ(two.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(two.status().message(), HasSubstr("bob is exhausted: 128 bits needed to send, 64 left"));
  auto one = alice.TakeForSending(1);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->words, (std::vector<uint64_t>{2}));
  EXPECT_EQ(alice.TakeForSending(1).status().code(), absl::StatusCode::kResourceExhausted);
  // A refill from a session's key is next; names are never reused.
  ASSERT_TRUE(alice.Refill("key-1", Words({7, 8, 9, 10, 11})).ok());  // 5 words: halves of 2 and 3
  auto next = alice.TakeForSending(2);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->position, (PoolPosition{"key-1", 0}));
  EXPECT_EQ(next->words, (std::vector<uint64_t>{7, 8}));
  EXPECT_EQ(alice.Refill("key-1", Words({1, 2})).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(alice.Refill("tiny", Words({1})).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(alice.bits_consumed(), 4 * 64u);
  EXPECT_EQ(alice.bits_refilled(), 9 * 64u);
}

TEST(AuthenticationKeyPool, SpentSegmentsAreDroppedAndTheirWordsStayRefused) {
  AuthenticationKeyPool alice("bob", true);
  ASSERT_TRUE(alice.Refill("a", Words({1, 2, 3, 4})).ok());
  ASSERT_TRUE(alice.Refill("b", Words({5, 6, 7, 8})).ok());
  ASSERT_TRUE(alice.TakeForSending(2).ok());  // all of Alice's half of "a"
  EXPECT_EQ(alice.state().segments.size(), 2u);  // Bob's half of "a" is still unused
  ASSERT_TRUE(alice.TakeForReceiving({"a", 1}, 1).ok());  // burns Bob's word 0 too
  ASSERT_EQ(alice.state().segments.size(), 1u);
  EXPECT_EQ(alice.state().segments[0].name, "b");
  // A replay into the dropped segment is still refused; the accounts are kept.
  EXPECT_EQ(alice.TakeForReceiving({"a", 1}, 1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(alice.bits_consumed(), 4 * 64u);
  // The remaining segment is still found by name after the drop.
  auto from_b = alice.TakeForReceiving({"b", 0}, 1);
  ASSERT_TRUE(from_b.ok()) << from_b.status();
  EXPECT_EQ(*from_b, (std::vector<uint64_t>{7}));
  EXPECT_EQ(alice.bits_consumed(), 5 * 64u);
  EXPECT_EQ(alice.bits_available_for_sending(), 128u);
  EXPECT_EQ(alice.bits_available_for_receiving(), 64u);
}

TEST(AuthenticationKeyPool, AStateRestoresAPoolThatGoesOnWhereItStopped) {
  AuthenticationKeyPool alice("bob", true), bob("alice", false);
  for (AuthenticationKeyPool* p : {&alice, &bob}) ASSERT_TRUE(p->Refill("bootstrap", Words({1, 2, 3, 4, 5, 6})).ok());
  auto sent = alice.TakeForSending(1);
  ASSERT_TRUE(sent.ok());
  ASSERT_TRUE(bob.TakeForReceiving(sent->position, 1).ok());

  const AuthenticationKeyPool::State saved = bob.state();
  // No spent pad in what is saved: Bob's copy of Alice's word 0 is zero.
  EXPECT_EQ(saved.segments.at(0).words, (std::vector<uint64_t>{0, 2, 3, 4, 5, 6}));
  auto restored = AuthenticationKeyPool::FromState(saved);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(restored->peer(), "alice");
  EXPECT_EQ(restored->bits_consumed(), bob.bits_consumed());
  EXPECT_EQ(restored->bits_refilled(), bob.bits_refilled());
  // The replay is refused after the restore, and the next words are the right ones.
  EXPECT_EQ(restored->TakeForReceiving(sent->position, 1).status().code(), absl::StatusCode::kPermissionDenied);
  auto next = alice.TakeForSending(1);
  ASSERT_TRUE(next.ok());
  auto at_bob = restored->TakeForReceiving(next->position, 1);
  ASSERT_TRUE(at_bob.ok()) << at_bob.status();
  EXPECT_EQ(*at_bob, next->words);
  auto bob_sends = restored->TakeForSending(1);
  ASSERT_TRUE(bob_sends.ok());
  EXPECT_EQ(bob_sends->words, (std::vector<uint64_t>{4}));
}

TEST(AuthenticationKeyPool, AStateNoPoolCouldBeInIsRefused) {
  AuthenticationKeyPool alice("bob", true);
  ASSERT_TRUE(alice.Refill("s", Words({1, 2, 3, 4})).ok());
  const AuthenticationKeyPool::State good = alice.state();
  ASSERT_TRUE(AuthenticationKeyPool::FromState(good).ok());

  AuthenticationKeyPool::State past = good;
  past.segments[0].next_sent = 3;  // Alice's half has 2 words
  auto refused = AuthenticationKeyPool::FromState(past);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("segment 's'"));
  AuthenticationKeyPool::State split = good;
  split.segments[0].first_half = 4;
  EXPECT_EQ(AuthenticationKeyPool::FromState(split).status().code(), absl::StatusCode::kInvalidArgument);
  AuthenticationKeyPool::State twice = good;
  twice.segments.push_back(twice.segments[0]);
  EXPECT_THAT(AuthenticationKeyPool::FromState(twice).status().message(), HasSubstr("appears twice"));
  AuthenticationKeyPool::State tiny = good;
  tiny.segments[0].words = {1};
  tiny.segments[0].first_half = 0;
  EXPECT_EQ(AuthenticationKeyPool::FromState(tiny).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qnet::qkd
