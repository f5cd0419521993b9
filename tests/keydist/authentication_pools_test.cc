// A node's authentication pools with a store (keydist/authentication.h):
// every change is saved before the call returns; a node rebuilt on the
// same store goes on where it stopped (no pad handed out or accepted twice,
// no bootstrap again); a store that fails or holds garbage fails the call
// with a reason; without a store a rebuilt node bootstraps again.
#include "keydist/authentication.h"

#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qnet::keydist {
namespace {

using ::testing::HasSubstr;

class MapStore final : public AuthenticationPoolStore {
 public:
  absl::StatusOr<std::optional<std::string>> Load(const std::string& peer) override {
    if (!load_error.ok()) return load_error;
    auto it = records.find(peer);
    if (it == records.end()) return std::nullopt;
    return it->second;
  }
  absl::Status Save(const std::string& peer, const std::string& record) override {
    if (!save_error.ok()) return save_error;
    records[peer] = record;
    ++saves;
    return absl::OkStatus();
  }
  std::map<std::string, std::string> records;
  absl::Status load_error, save_error;
  int saves = 0;
};

constexpr uint64_t kSecret = 77;
constexpr uint64_t kBits = 512;  // 8 words: halves of 4

TEST(AuthenticationPoolsTest, ANodeRebuiltOnItsStoreGoesOnWhereItStopped) {
  auto store = std::make_shared<MapStore>();
  AuthenticationPools alice("alice", kSecret, kBits);  // the peer, in memory
  auto bob = std::make_unique<AuthenticationPools>("bob", kSecret, kBits, store);

  auto first = alice.TakeForSending("bob", 1);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(bob->TakeForReceiving("alice", first->position, 1).ok());
  auto bob_sent = bob->TakeForSending("alice", 1);
  ASSERT_TRUE(bob_sent.ok());
  ASSERT_TRUE(alice.TakeForReceiving("bob", bob_sent->position, 1).ok());
  EXPECT_EQ(store->saves, 3);  // the bootstrap, then each take
  ASSERT_TRUE(store->records.contains("alice"));

  // Bob restarts alone.
  bob = std::make_unique<AuthenticationPools>("bob", kSecret, kBits, store);
  // Alice's old message, replayed: refused (a bootstrapped pool would take it).
  auto replay = bob->TakeForReceiving("alice", first->position, 1);
  EXPECT_EQ(replay.status().code(), absl::StatusCode::kPermissionDenied) << replay.status();
  // Bob's next pad is a new one, which Alice accepts.
  auto next = bob->TakeForSending("alice", 1);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->position.index, bob_sent->position.index + 1);
  auto at_alice = alice.TakeForReceiving("bob", next->position, 1);
  ASSERT_TRUE(at_alice.ok()) << at_alice.status();
  EXPECT_EQ(*at_alice, next->words);
  // A refill is kept too.
  const qkd::BitString segment = AuthenticationPools::BootstrapBits(1, "x", "y", 256);
  ASSERT_TRUE(bob->Refill("alice", "key-1", segment).ok());
  bob = std::make_unique<AuthenticationPools>("bob", kSecret, kBits, store);
  auto pool = bob->With("alice");
  ASSERT_TRUE(pool.ok()) << pool.status();
  EXPECT_EQ((*pool)->bits_refilled(), kBits + 256);
  EXPECT_EQ((*pool)->bits_consumed(), 3 * 64u);
}

TEST(AuthenticationPoolsTest, WithoutAStoreARebuiltNodeBootstrapsAgainAndItsPeerRefusesIt) {
  AuthenticationPools alice("alice", kSecret, kBits);
  auto bob = std::make_unique<AuthenticationPools>("bob", kSecret, kBits);
  auto sent = bob->TakeForSending("alice", 1);
  ASSERT_TRUE(sent.ok());
  ASSERT_TRUE(alice.TakeForReceiving("bob", sent->position, 1).ok());
  bob = std::make_unique<AuthenticationPools>("bob", kSecret, kBits);
  auto again = bob->TakeForSending("alice", 1);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->position, sent->position);  // the same pad word again...
  EXPECT_EQ(alice.TakeForReceiving("bob", again->position, 1).status().code(),
            absl::StatusCode::kPermissionDenied);  // ...which the peer never accepts twice
}

TEST(AuthenticationPoolsTest, AFailingStoreFailsTheCallWithoutHandingOutThePadTwice) {
  auto store = std::make_shared<MapStore>();
  AuthenticationPools bob("bob", kSecret, kBits, store);
  ASSERT_TRUE(bob.TakeForSending("alice", 1).ok());
  store->save_error = absl::ResourceExhaustedError("disk full");
  auto failed = bob.TakeForSending("alice", 1);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(failed.status().message(), HasSubstr("saving the authentication pool shared with alice: disk full"));
  store->save_error = absl::OkStatus();
  auto next = bob.TakeForSending("alice", 1);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->position.index, 2u);  // word 1 went to the failed call, and stays gone

  // A peer never seen, while the store cannot be read: no bootstrap behind its back.
  store->load_error = absl::UnavailableError("I/O error");
  auto unreadable = bob.TakeForSending("carol", 1);
  EXPECT_EQ(unreadable.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(unreadable.status().message(), HasSubstr("loading the authentication pool shared with carol"));
  EXPECT_FALSE(store->records.contains("carol"));
}

TEST(AuthenticationPoolsTest, AStoreHoldingGarbageOrAnotherPairsPoolIsRefused) {
  auto store = std::make_shared<MapStore>();
  store->records["alice"] = "\xff\xff garbage";
  AuthenticationPools bob("bob", kSecret, kBits, store);
  auto garbage = bob.TakeForSending("alice", 1);
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(garbage.status().message(), HasSubstr("does not parse"));

  // Carol's pool with dave, copied into bob's store: same peer and
  // direction, another node's pads.
  auto carols = std::make_shared<MapStore>();
  AuthenticationPools carol("carol", kSecret, kBits, carols);
  ASSERT_TRUE(carol.TakeForSending("dave", 1).ok());
  store->records["dave"] = carols->records.at("dave");
  // Bob's own pool with dave, saved under another peer's name.
  auto bobs = std::make_shared<MapStore>();
  AuthenticationPools bob_elsewhere("bob", kSecret, kBits, bobs);
  ASSERT_TRUE(bob_elsewhere.TakeForSending("dave", 1).ok());
  store->records["erin"] = bobs->records.at("dave");
  AuthenticationPools bob2("bob", kSecret, kBits, store);
  auto copied = bob2.TakeForSending("dave", 1);
  EXPECT_EQ(copied.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(copied.status().message(), HasSubstr("node 'carol''s, not 'bob''s"));
  auto misfiled = bob2.TakeForSending("erin", 1);
  EXPECT_EQ(misfiled.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(misfiled.status().message(), HasSubstr("belongs to dave"));
  // Refused records are left as they were (nothing bootstrapped over them).
  EXPECT_EQ(store->records.at("dave"), carols->records.at("dave"));
}

TEST(AuthenticationPoolsTest, RecordsRoundTrip) {
  AuthenticationPools alice("alice", kSecret, kBits);
  ASSERT_TRUE(alice.TakeForSending("bob", 2).ok());
  auto pool = alice.With("bob");
  ASSERT_TRUE(pool.ok());
  auto decoded = DecodeAuthenticationPool("alice", EncodeAuthenticationPool("alice", **pool));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->peer(), "bob");
  EXPECT_EQ(decoded->bits_available_for_sending(), (*pool)->bits_available_for_sending());
  EXPECT_EQ(decoded->bits_available_for_receiving(), (*pool)->bits_available_for_receiving());
  EXPECT_EQ(decoded->bits_consumed(), 128u);
}

}  // namespace
}  // namespace qnet::keydist
