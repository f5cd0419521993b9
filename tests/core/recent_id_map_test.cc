#include "core/recent_id_map.h"

#include <cstdint>
#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace qnet {
namespace {

TEST(RecentIdMapTest, InsertsOnceAndFinds) {
  RecentIdMap<std::string> map(8);
  EXPECT_FALSE(map.contains(3));
  EXPECT_EQ(map.Find(3), nullptr);
  EXPECT_TRUE(map.Insert(3, "three"));
  EXPECT_FALSE(map.Insert(3, "again"));  // present: kept as it was
  ASSERT_NE(map.Find(3), nullptr);
  EXPECT_EQ(*map.Find(3), "three");
  EXPECT_TRUE(map.contains(3));
  EXPECT_FALSE(map.contains(4));
  EXPECT_EQ(map.size(), 1u);
}

TEST(RecentIdMapTest, RemembersTheLatestIdsOfADenseCounter) {
  // The layers' use: ids 1, 2, 3, ... inserted in order.
  constexpr uint64_t kCapacity = 64;
  RecentIdMap<uint64_t> map(kCapacity);
  for (uint64_t id = 1; id <= 1000; ++id) ASSERT_TRUE(map.Insert(id, id * 10));
  for (uint64_t id = 1000 - kCapacity + 1; id <= 1000; ++id) {
    ASSERT_NE(map.Find(id), nullptr) << id;
    EXPECT_EQ(*map.Find(id), id * 10);
  }
  // Each older id lost its slot to the id kCapacity after it.
  for (uint64_t id = 1; id <= 1000 - kCapacity; ++id) EXPECT_FALSE(map.contains(id)) << id;
  EXPECT_EQ(map.size(), kCapacity);
  EXPECT_EQ(map.capacity(), kCapacity);
}

TEST(RecentIdMapTest, GrowsOnlyAsFarAsTheIdsSpread) {
  RecentIdMap<int> map(4096);
  for (uint64_t id = 100; id < 110; ++id) map.Insert(id, 1);
  EXPECT_EQ(map.capacity(), 16u);  // ten close ids fit the first table
  // 1100 shares its slot with 108 (both 12 mod 16, and mod 32): the table
  // doubles until 1100's slot is free (mod 64: 12, the others 36-45) and
  // keeps every id it held.
  map.Insert(1100, 2);
  EXPECT_EQ(map.capacity(), 64u);
  for (uint64_t id = 100; id < 110; ++id) EXPECT_TRUE(map.contains(id)) << id;
  EXPECT_TRUE(map.contains(1100));
  EXPECT_EQ(map.size(), 11u);
}

TEST(RecentIdMapTest, AtFullSizeANewIdReplacesTheOneSharingItsSlot) {
  RecentIdMap<int> map(16);
  map.Insert(5, 1);
  map.Insert(5 + 16, 2);  // same residue, table full size
  EXPECT_FALSE(map.contains(5));
  ASSERT_NE(map.Find(21), nullptr);
  EXPECT_EQ(*map.Find(21), 2);
  EXPECT_EQ(map.size(), 1u);
}

TEST(RecentIdMapTest, ALateOldIdNeverEvictsANewerOne) {
  // A long-lived request ends after one 16 numbers younger: the younger one
  // stays remembered, the late one is too old to keep.
  RecentIdMap<int> map(16);
  for (uint64_t id = 10; id < 26; ++id) map.Insert(id, static_cast<int>(id));
  EXPECT_FALSE(map.Insert(9, 9));  // 25 holds 9's slot
  EXPECT_FALSE(map.contains(9));
  EXPECT_TRUE(map.contains(25));
  EXPECT_TRUE(map.Insert(26, 26));  // newer: replaces 10
  EXPECT_FALSE(map.contains(10));
}

TEST(RecentIdMapTest, IdsOfANewIncarnationReplaceTheOldOnes) {
  // Generation ids carry the master's incarnation in their high bits; a
  // restarted master's ids may compare lower and must still be remembered.
  RecentIdMap<int> map(16);
  const uint64_t old_run = uint64_t{0xABC} << 40, new_run = uint64_t{0x123} << 40;
  for (uint64_t n = 1; n <= 16; ++n) map.Insert(old_run | n, 1);
  EXPECT_TRUE(map.Insert(new_run | 1, 2));
  ASSERT_NE(map.Find(new_run | 1), nullptr);
  EXPECT_EQ(*map.Find(new_run | 1), 2);
  EXPECT_FALSE(map.contains(old_run | 1));
}

TEST(RecentIdMapTest, EraseAndClearForgetAndReleaseValues) {
  RecentIdMap<std::shared_ptr<int>> map(16);
  auto held = std::make_shared<int>(7);
  map.Insert(1, held);
  map.Insert(2, std::make_shared<int>(8));
  EXPECT_EQ(held.use_count(), 2);
  map.Erase(1);
  EXPECT_EQ(held.use_count(), 1);  // the map let go of it at once
  EXPECT_FALSE(map.contains(1));
  map.Erase(1);  // absent: no effect
  map.Erase(99);
  EXPECT_EQ(map.size(), 1u);
  EXPECT_TRUE(map.Insert(1, held));  // an erased id can come back
  map.Clear();
  EXPECT_EQ(map.size(), 0u);
  EXPECT_FALSE(map.contains(2));
  EXPECT_EQ(held.use_count(), 1);
}

TEST(RecentIdMapTest, RoundsTheCapacityUpToAPowerOfTwo) {
  RecentIdMap<int> map(100);
  for (uint64_t id = 0; id < 1000; ++id) map.Insert(id, 0);
  EXPECT_EQ(map.capacity(), 128u);
  EXPECT_TRUE(map.contains(999 - 127));
  EXPECT_FALSE(map.contains(999 - 128));
}

}  // namespace
}  // namespace qnet
