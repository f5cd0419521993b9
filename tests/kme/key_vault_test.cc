// The KME's key vault: a private SQLite file; blocks pending until
// committed; keys carved oldest block first, never twice, all or none;
// reservations that never overlap; keys delivered once to their slave SAE
// only; and a process killed while carving leaves a consistent vault.
#include "kme/key_vault.h"

#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qnet::kme {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;

mode_t Mode(const fs::path& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

std::string Bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

VaultBlock Block(const std::string& id, const std::string& peer, bool owned, size_t n, uint32_t seed = 1) {
  return {.block_id = id, .peer = peer, .owned = owned, .key = Bytes(n, seed)};
}

// One integer from a SQL query on the vault file, through a second connection.
int64_t QueryInt(const fs::path& path, const char* sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  EXPECT_EQ(sqlite3_step(stmt), SQLITE_ROW) << sql;
  int64_t v = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return v;
}

void Exec(const fs::path& path, const char* sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
}

std::string QueryText(const fs::path& path, const char* sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  EXPECT_EQ(sqlite3_step(stmt), SQLITE_ROW) << sql;
  std::string v = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return v;
}

class KeyVaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("qnet-vault-" + std::to_string(getpid()) + "-" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = dir_ / "kme.db";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<KeyVault> OpenVault() {
    absl::StatusOr<std::unique_ptr<KeyVault>> vault = KeyVault::Open(path_);
    EXPECT_TRUE(vault.ok()) << vault.status();
    return vault.ok() ? std::move(*vault) : nullptr;
  }

  fs::path dir_, path_;
};

TEST_F(KeyVaultTest, OpenCreatesAPrivateFileAndTightensWiderModes) {
  {
    std::unique_ptr<KeyVault> vault = OpenVault();
    ASSERT_NE(vault, nullptr);
    EXPECT_EQ(Mode(path_), 0600u);
    ASSERT_TRUE(vault->PutPendingBlock(Block("b1", "bob", true, 32)).ok());
    EXPECT_EQ(Mode(path_.string() + "-wal"), 0600u);
    EXPECT_EQ(Mode(path_.string() + "-shm"), 0600u);
  }
  EXPECT_EQ(QueryInt(path_, "PRAGMA user_version"), 2);
  EXPECT_EQ(QueryText(path_, "PRAGMA journal_mode"), "wal");

  // A file (and a WAL) left world-readable, e.g. by a copy, is made private.
  fs::path other = dir_ / "wide.db";
  { std::ofstream(other.string()); }
  { std::ofstream(other.string() + "-wal"); }
  ::chmod(other.c_str(), 0644);
  ::chmod((other.string() + "-wal").c_str(), 0666);
  absl::StatusOr<std::unique_ptr<KeyVault>> wide = KeyVault::Open(other);
  ASSERT_TRUE(wide.ok()) << wide.status();
  EXPECT_EQ(Mode(other), 0600u);
  EXPECT_EQ(Mode(other.string() + "-wal"), 0600u);
}

TEST_F(KeyVaultTest, OpenErrorsNameTheFile) {
  absl::StatusOr<std::unique_ptr<KeyVault>> missing = KeyVault::Open(dir_ / "no-such-dir" / "kme.db");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("no-such-dir/kme.db"));

  fs::path junk = dir_ / "junk.db";
  std::ofstream(junk.string()) << std::string(8192, 'x');
  absl::StatusOr<std::unique_ptr<KeyVault>> bad = KeyVault::Open(junk);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr(junk.string()));
  EXPECT_THAT(bad.status().message(), HasSubstr("not a database"));

  { ASSERT_NE(OpenVault(), nullptr); }
  Exec(path_, "PRAGMA user_version = 3");  // as a later qnet would leave it
  absl::StatusOr<std::unique_ptr<KeyVault>> newer = KeyVault::Open(path_);
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(newer.status().message(), HasSubstr("schema version 3"));
}

TEST_F(KeyVaultTest, EverythingSurvivesAReopen) {
  VaultBlock mine = Block("mine", "bob", true, 64, 1), theirs = Block("theirs", "alice", false, 64, 2);
  std::vector<VaultKey> carved;
  {
    std::unique_ptr<KeyVault> vault = OpenVault();
    ASSERT_TRUE(vault->PutPendingBlock(Block("pending", "bob", true, 16, 3)).ok());
    ASSERT_TRUE(vault->PutCommittedBlock(mine).ok());
    ASSERT_TRUE(vault->PutCommittedBlock(theirs).ok());
    absl::StatusOr<std::vector<VaultKey>> keys = vault->CarveKeys("bob", "m", "s", 1, 16);
    ASSERT_TRUE(keys.ok()) << keys.status();
    carved = *keys;
    ASSERT_TRUE(
        vault->PutReservations("alice", {{"k1", "m", "s", "theirs", 0, 16}, {"k2", "m", "s", "theirs", 16, 16}}).ok());
    ASSERT_TRUE(vault->DeliverKeys("s", "m", {"k1"}).ok());
  }
  std::unique_ptr<KeyVault> vault = OpenVault();
  ASSERT_NE(vault, nullptr);
  absl::StatusOr<VaultBlock> found = vault->FindBlock("mine");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->peer, "bob");
  EXPECT_TRUE(found->owned);
  // Bytes handed out are no longer kept in the block (owner: carved;
  // other end: copied into reserved keys); the rest is intact.
  std::string expected_mine = mine.key;
  std::fill(expected_mine.begin(), expected_mine.begin() + 16, '\0');
  EXPECT_EQ(found->key, expected_mine);
  EXPECT_EQ(carved[0].key, mine.key.substr(0, 16));
  EXPECT_EQ(*vault->StateOf("pending"), BlockState::kPending);
  EXPECT_EQ(*vault->StateOf("theirs"), BlockState::kCommitted);
  EXPECT_FALSE(vault->FindBlock("theirs")->owned);
  std::string expected_theirs = theirs.key;
  std::fill(expected_theirs.begin(), expected_theirs.begin() + 32, '\0');
  EXPECT_EQ(vault->FindBlock("theirs")->key, expected_theirs);
  ASSERT_EQ(vault->PendingOwnedBlocks().size(), 1u);
  EXPECT_EQ(vault->PendingOwnedBlocks()[0].key, Bytes(16, 3));
  KeyVault::Counts counts = vault->counts();
  EXPECT_EQ(counts.pending_blocks, 1u);
  EXPECT_EQ(counts.committed_blocks, 2u);
  EXPECT_EQ(counts.available_bytes, 48u);
  EXPECT_EQ(counts.reserved_keys, 1u);
  EXPECT_EQ(counts.delivered_keys, 1u);
  EXPECT_EQ(vault->DeliverKeys("s", "m", {"k1"}).status().code(), absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<std::vector<VaultKey>> k2 = vault->DeliverKeys("s", "m", {"k2"});
  ASSERT_TRUE(k2.ok()) << k2.status();
  EXPECT_EQ((*k2)[0].key, theirs.key.substr(16, 16));
}

TEST_F(KeyVaultTest, AuthenticationPoolRecordsAreReplacedAndSurviveAReopen) {
  const std::string binary("\0\x01pool\xff", 7);
  {
    std::unique_ptr<KeyVault> vault = OpenVault();
    EXPECT_EQ(*vault->LoadAuthenticationPool("bob"), std::nullopt);
    ASSERT_TRUE(vault->SaveAuthenticationPool("bob", "first").ok());
    ASSERT_TRUE(vault->SaveAuthenticationPool("bob", binary).ok());
    ASSERT_TRUE(vault->SaveAuthenticationPool("carol", "c").ok());
  }
  std::unique_ptr<KeyVault> vault = OpenVault();
  EXPECT_EQ(*vault->LoadAuthenticationPool("bob"), binary);
  EXPECT_EQ(*vault->LoadAuthenticationPool("carol"), "c");
  EXPECT_EQ(QueryInt(path_, "SELECT COUNT(*) FROM auth_pools"), 2);
}

TEST_F(KeyVaultTest, AStoreOfSchemaVersion1GainsTheAuthenticationPools) {
  {
    std::unique_ptr<KeyVault> vault = OpenVault();
    ASSERT_TRUE(vault->PutCommittedBlock(Block("kept", "bob", true, 32, 5)).ok());
  }
  // What a store written before authentication pools were kept looks like.
  Exec(path_, "DROP TABLE auth_pools; PRAGMA user_version = 1;");
  std::unique_ptr<KeyVault> vault = OpenVault();
  ASSERT_NE(vault, nullptr);
  EXPECT_EQ(QueryInt(path_, "PRAGMA user_version"), 2);
  EXPECT_EQ(vault->FindBlock("kept")->key, Bytes(32, 5));
  ASSERT_TRUE(vault->SaveAuthenticationPool("bob", "p").ok());
  EXPECT_EQ(*vault->LoadAuthenticationPool("bob"), "p");
}

TEST_F(KeyVaultTest, BlocksArePendingUntilCommittedAndStoresAreIdempotent) {
  std::unique_ptr<KeyVault> vault = OpenVault();
  VaultBlock b = Block("b1", "bob", true, 32);
  ASSERT_TRUE(vault->PutPendingBlock(b).ok());
  ASSERT_TRUE(vault->PutPendingBlock(b).ok());  // a retry
  ASSERT_TRUE(vault->PutPendingBlock(Block("theirs", "bob", false, 32)).ok());
  EXPECT_EQ(*vault->StateOf("b1"), BlockState::kPending);
  std::vector<VaultBlock> pending = vault->PendingOwnedBlocks();
  ASSERT_EQ(pending.size(), 1u);  // only owned blocks
  EXPECT_EQ(pending[0].block_id, "b1");
  EXPECT_EQ(pending[0].key, b.key);

  // The same id with another key, peer or owner flag is another block.
  for (VaultBlock other : {Block("b1", "bob", true, 32, 9), Block("b1", "carol", true, 32),
                           Block("b1", "bob", false, 32), Block("b1", "bob", true, 31)}) {
    EXPECT_EQ(vault->PutPendingBlock(other).code(), absl::StatusCode::kAlreadyExists);
    EXPECT_EQ(vault->PutCommittedBlock(other).code(), absl::StatusCode::kAlreadyExists);
  }
  EXPECT_EQ(*vault->StateOf("b1"), BlockState::kPending);  // the refused commit changed nothing
  EXPECT_THAT(std::string(vault->PutPendingBlock(Block("b1", "carol", true, 32)).message()), HasSubstr("b1"));
  EXPECT_EQ(vault->PutPendingBlock(Block("", "bob", true, 8)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(vault->PutPendingBlock(Block("x", "", true, 8)).code(), absl::StatusCode::kInvalidArgument);

  ASSERT_TRUE(vault->CommitBlock("b1").ok());
  ASSERT_TRUE(vault->CommitBlock("b1").ok());
  EXPECT_EQ(*vault->StateOf("b1"), BlockState::kCommitted);
  EXPECT_TRUE(vault->PendingOwnedBlocks().empty());
  ASSERT_TRUE(vault->PutPendingBlock(b).ok());  // a late retry does not un-commit
  EXPECT_EQ(*vault->StateOf("b1"), BlockState::kCommitted);
  EXPECT_EQ(vault->CommitBlock("nope").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(vault->StateOf("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(vault->FindBlock("nope").status().code(), absl::StatusCode::kNotFound);

  // PutCommittedBlock of a block held pending commits it.
  ASSERT_TRUE(vault->PutCommittedBlock(Block("theirs", "bob", false, 32)).ok());
  EXPECT_EQ(*vault->StateOf("theirs"), BlockState::kCommitted);

  EXPECT_EQ(vault->DiscardPendingBlock("b1").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(vault->DiscardPendingBlock("nope").code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(vault->PutPendingBlock(Block("b2", "bob", true, 8)).ok());
  ASSERT_TRUE(vault->DiscardPendingBlock("b2").ok());
  EXPECT_EQ(vault->StateOf("b2").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(vault->DiscardPendingBlock("b2").code(), absl::StatusCode::kNotFound);
  // A discarded id may be stored again, with other bytes.
  ASSERT_TRUE(vault->PutPendingBlock(Block("b2", "bob", true, 8, 5)).ok());
  KeyVault::Counts counts = vault->counts();
  EXPECT_EQ(counts.pending_blocks, 1u);
  EXPECT_EQ(counts.committed_blocks, 2u);
}

TEST_F(KeyVaultTest, OnlyOwnedCommittedBlocksTowardThePeerAreCarved) {
  std::unique_ptr<KeyVault> vault = OpenVault();
  ASSERT_TRUE(vault->PutPendingBlock(Block("pending", "bob", true, 64)).ok());
  ASSERT_TRUE(vault->PutCommittedBlock(Block("theirs", "bob", false, 64)).ok());
  ASSERT_TRUE(vault->PutCommittedBlock(Block("carol", "carol", true, 64)).ok());
  EXPECT_EQ(vault->AvailableBytes("bob"), 0u);
  EXPECT_EQ(vault->AvailableKeys("bob", 16), 0u);
  absl::StatusOr<std::vector<VaultKey>> none = vault->CarveKeys("bob", "m", "s", 1, 16);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(none.status().message(), HasSubstr("bob"));

  ASSERT_TRUE(vault->CommitBlock("pending").ok());
  EXPECT_EQ(vault->AvailableBytes("bob"), 64u);
  EXPECT_EQ(vault->AvailableKeys("bob", 16), 4u);
  EXPECT_EQ(vault->AvailableKeys("bob", 0), 0u);
  EXPECT_EQ(vault->CarveKeys("bob", "m", "s", 1, 0).status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::vector<VaultKey>> keys = vault->CarveKeys("bob", "m", "s", 4, 16);
  ASSERT_TRUE(keys.ok()) << keys.status();
  for (const VaultKey& k : *keys) EXPECT_EQ(k.block_id, "pending");
  EXPECT_EQ(vault->AvailableBytes("carol"), 64u);
  EXPECT_EQ(vault->counts().available_bytes, 64u);
}

TEST_F(KeyVaultTest, CarvingTakesTheOldestBlockFirstSkipsShortRemaindersAndIsAllOrNone) {
  std::unique_ptr<KeyVault> vault = OpenVault();
  // Stored out of name order: "oldest" is insertion order.
  for (VaultBlock b :
       {Block("c", "bob", true, 40, 1), Block("a", "bob", true, 100, 2), Block("b", "bob", true, 64, 3)}) {
    ASSERT_TRUE(vault->PutCommittedBlock(b).ok());
  }
  absl::StatusOr<std::vector<VaultKey>> first = vault->CarveKeys("bob", "m", "s", 1, 32);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ((*first)[0].block_id, "c");
  EXPECT_EQ((*first)[0].offset, 0u);
  EXPECT_EQ((*first)[0].key, Bytes(40, 1).substr(0, 32));
  EXPECT_EQ((*first)[0].master_sae, "m");
  EXPECT_EQ((*first)[0].slave_sae, "s");
  EXPECT_EQ((*first)[0].peer, "bob");

  // c has 8 bytes left, a 100, b 64: 0 + 3 + 2 keys of 32 bytes.
  EXPECT_EQ(vault->AvailableBytes("bob"), 172u);
  EXPECT_EQ(vault->AvailableKeys("bob", 32), 5u);
  EXPECT_EQ(vault->AvailableKeys("bob", 8), 21u);

  // Asking for more than the pool holds carves nothing.
  absl::StatusOr<std::vector<VaultKey>> too_many = vault->CarveKeys("bob", "m", "s", 6, 32);
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(vault->AvailableBytes("bob"), 172u);

  // c's 8-byte remainder is skipped; a key never spans two blocks.
  absl::StatusOr<std::vector<VaultKey>> four = vault->CarveKeys("bob", "m", "s", 4, 32);
  ASSERT_TRUE(four.ok()) << four.status();
  std::vector<std::pair<std::string, uint64_t>> places;
  for (const VaultKey& k : *four) places.emplace_back(k.block_id, k.offset);
  EXPECT_EQ(places, (std::vector<std::pair<std::string, uint64_t>>{{"a", 0}, {"a", 32}, {"a", 64}, {"b", 0}}));
  EXPECT_EQ((*four)[3].key, Bytes(64, 3).substr(0, 32));
  std::set<std::string> ids;
  for (const VaultKey& k : *four) ids.insert(k.key_id);
  EXPECT_EQ(ids.size(), 4u);

  // The small remainders still serve small keys, oldest first.
  absl::StatusOr<std::vector<VaultKey>> small = vault->CarveKeys("bob", "m", "s", 2, 4);
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ((*small)[0].block_id, "c");
  EXPECT_EQ((*small)[0].offset, 32u);
  EXPECT_EQ((*small)[1].offset, 36u);
  EXPECT_EQ(vault->AvailableBytes("bob"), 4u + 32u);  // a: 100-96, b: 64-32
  EXPECT_TRUE(vault->CarveKeys("bob", "m", "s", 0, 32)->empty());
}

// Many random carves: never the same byte twice, always the block's bytes.
TEST_F(KeyVaultTest, CarvedRangesNeverOverlapAndHoldTheBlocksBytes) {
  std::unique_ptr<KeyVault> vault = OpenVault();
  std::mt19937 rng(7);
  std::map<std::string, std::string> blocks;
  uint64_t total = 0;
  for (int i = 0; i < 12; ++i) {
    VaultBlock b = Block("blk" + std::to_string(i), "bob", true, 50 + rng() % 300, i);
    blocks[b.block_id] = b.key;
    total += b.key.size();
    ASSERT_TRUE(vault->PutCommittedBlock(b).ok());
  }
  std::map<std::string, std::vector<bool>> used;
  for (auto& [id, key] : blocks) used[id].assign(key.size(), false);
  std::set<std::string> ids;
  uint64_t taken = 0;
  for (int call = 0; call < 400; ++call) {
    uint64_t size = 1 + rng() % 40, number = 1 + rng() % 4;
    uint64_t available = vault->AvailableKeys("bob", size);
    absl::StatusOr<std::vector<VaultKey>> keys = vault->CarveKeys("bob", "m", "s", number, size);
    if (available < number) {
      EXPECT_EQ(keys.status().code(), absl::StatusCode::kUnavailable);
      continue;
    }
    ASSERT_TRUE(keys.ok()) << keys.status();
    ASSERT_EQ(keys->size(), number);
    for (const VaultKey& k : *keys) {
      ASSERT_TRUE(blocks.count(k.block_id));
      ASSERT_LE(k.offset + size, blocks[k.block_id].size());
      EXPECT_EQ(k.key, blocks[k.block_id].substr(k.offset, size));
      for (uint64_t j = k.offset; j < k.offset + size; ++j) {
        ASSERT_FALSE(used[k.block_id][j]) << k.block_id << " byte " << j << " carved twice";
        used[k.block_id][j] = true;
      }
      EXPECT_TRUE(ids.insert(k.key_id).second);
      taken += size;
    }
    EXPECT_EQ(vault->AvailableBytes("bob"), total - taken);
  }
  EXPECT_GT(taken, total / 2);  // the test carved a good part of the pool
}

TEST_F(KeyVaultTest, CarvingAfterAReopenContinuesWhereItStopped) {
  std::set<std::pair<std::string, uint64_t>> seen;
  for (int round = 0; round < 3; ++round) {
    std::unique_ptr<KeyVault> vault = OpenVault();
    if (round == 0) {
      ASSERT_TRUE(vault->PutCommittedBlock(Block("b", "bob", true, 96)).ok());
    }
    absl::StatusOr<std::vector<VaultKey>> keys = vault->CarveKeys("bob", "m", "s", 2, 16);
    ASSERT_TRUE(keys.ok()) << keys.status();
    for (const VaultKey& k : *keys) {
      EXPECT_EQ(k.offset, 32u * round + (seen.size() % 2) * 16);
      EXPECT_TRUE(seen.insert({k.block_id, k.offset}).second) << k.offset << " carved twice";
      EXPECT_EQ(k.key, Bytes(96, 1).substr(k.offset, 16));
    }
  }
  EXPECT_EQ(OpenVault()->AvailableBytes("bob"), 0u);
}

TEST_F(KeyVaultTest, ConcurrentCarversNeverShareARange) {
  std::unique_ptr<KeyVault> vault = OpenVault();
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(vault->PutCommittedBlock(Block("b" + std::to_string(i), "bob", true, 800, i)).ok());
  std::vector<std::vector<VaultKey>> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 30; ++i) {
        absl::StatusOr<std::vector<VaultKey>> keys = vault->CarveKeys("bob", "m", "s", 1, 16);
        if (keys.ok()) got[t].insert(got[t].end(), keys->begin(), keys->end());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<std::pair<std::string, uint64_t>> places;
  for (const auto& keys : got) {
    EXPECT_EQ(keys.size(), 30u);
    for (const VaultKey& k : keys) EXPECT_TRUE(places.insert({k.block_id, k.offset}).second);
  }
  EXPECT_EQ(vault->AvailableBytes("bob"), 4u * 800 - 120 * 16);
}

TEST_F(KeyVaultTest, ReservationsMustLieInACommittedBlockOfThePeerAndNotOverlap) {
  std::unique_ptr<KeyVault> vault = OpenVault();
  VaultBlock theirs = Block("theirs", "alice", false, 64);
  ASSERT_TRUE(vault->PutCommittedBlock(theirs).ok());
  ASSERT_TRUE(vault->PutCommittedBlock(Block("mine", "alice", true, 64)).ok());
  ASSERT_TRUE(vault->PutPendingBlock(Block("pending", "alice", false, 64)).ok());
  ASSERT_TRUE(vault->PutReservations("alice", {{"k1", "m", "s", "theirs", 16, 16}}).ok());
  // Adjacent ranges touch without overlapping.
  ASSERT_TRUE(
      vault->PutReservations("alice", {{"k0", "m", "s", "theirs", 0, 16}, {"k2", "m", "s", "theirs", 32, 8}}).ok());
  EXPECT_EQ(vault->ReservedKeys("s", "m"), 3u);

  auto code = [&](const std::string& peer, KeyReservation r) { return vault->PutReservations(peer, {r}).code(); };
  using absl::StatusCode;
  EXPECT_EQ(code("alice", {"k3", "m", "s", "theirs", 8, 16}), StatusCode::kAlreadyExists);     // overlaps k0, k1
  EXPECT_EQ(code("alice", {"k3", "m", "s", "theirs", 39, 2}), StatusCode::kAlreadyExists);     // k2's last byte
  EXPECT_EQ(code("alice", {"k3", "m", "s", "theirs", 0, 64}), StatusCode::kAlreadyExists);     // covers them all
  EXPECT_EQ(code("alice", {"k3", "m", "s", "theirs", 20, 4}), StatusCode::kAlreadyExists);     // inside k1
  EXPECT_EQ(code("alice", {"k3", "m", "s", "theirs", 48, 17}), StatusCode::kInvalidArgument);  // past the end
  EXPECT_EQ(code("alice", {"k3", "m", "s", "theirs", ~0ull - 3, 8}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code("alice", {"k3", "m", "s", "theirs", 48, 0}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code("bob", {"k3", "m", "s", "theirs", 48, 8}), StatusCode::kInvalidArgument);    // not bob's block
  EXPECT_EQ(code("alice", {"k3", "m", "s", "mine", 0, 8}), StatusCode::kInvalidArgument);     // this node owns it
  EXPECT_EQ(code("alice", {"k3", "m", "s", "pending", 0, 8}), StatusCode::kInvalidArgument);  // not committed
  EXPECT_EQ(code("alice", {"k3", "m", "s", "nope", 0, 8}), StatusCode::kNotFound);
  EXPECT_EQ(code("alice", {"", "m", "s", "theirs", 48, 8}), StatusCode::kInvalidArgument);
  absl::Status overlap = vault->PutReservations("alice", {{"k3", "m", "s", "theirs", 8, 16}});
  EXPECT_THAT(std::string(overlap.message()), HasSubstr("k3"));

  // The owner retried: the same reservation is OK, and counted once.
  ASSERT_TRUE(vault->PutReservations("alice", {{"k1", "m", "s", "theirs", 16, 16}}).ok());
  EXPECT_EQ(vault->ReservedKeys("s", "m"), 3u);
  // The same id for anything else is refused.
  EXPECT_EQ(code("alice", {"k1", "m", "s", "theirs", 48, 16}), StatusCode::kAlreadyExists);
  EXPECT_EQ(code("alice", {"k1", "m", "other", "theirs", 16, 16}), StatusCode::kAlreadyExists);

  // All or none: a batch with one bad reservation stores nothing.
  EXPECT_EQ(
      vault->PutReservations("alice", {{"k4", "m", "s", "theirs", 48, 8}, {"k5", "m", "s", "theirs", 0, 1}}).code(),
      StatusCode::kAlreadyExists);
  EXPECT_EQ(vault->ReservedKeys("s", "m"), 3u);
  // Two new reservations in one batch may not overlap each other either.
  EXPECT_EQ(
      vault->PutReservations("alice", {{"k4", "m", "s", "theirs", 48, 8}, {"k5", "m", "s", "theirs", 52, 8}}).code(),
      StatusCode::kAlreadyExists);
  ASSERT_TRUE(
      vault->PutReservations("alice", {{"k4", "m", "s", "theirs", 48, 8}, {"k5", "m", "s", "theirs", 56, 8}}).ok());
  EXPECT_EQ(vault->ReservedKeys("s", "m"), 5u);
  EXPECT_EQ(vault->ReservedKeys("s", "other"), 0u);
  EXPECT_EQ(vault->ReservedKeys("m", "s"), 0u);
  EXPECT_EQ(vault->counts().reserved_keys, 5u);

  absl::StatusOr<std::vector<VaultKey>> k5 = vault->DeliverKeys("s", "m", {"k5"});
  ASSERT_TRUE(k5.ok()) << k5.status();
  EXPECT_EQ((*k5)[0].key, theirs.key.substr(56, 8));
}

TEST_F(KeyVaultTest, KeysAreDeliveredOnceToTheirSlaveOnlyAllOrNone) {
  std::unique_ptr<KeyVault> vault = OpenVault();
  VaultBlock theirs = Block("theirs", "alice", false, 64);
  ASSERT_TRUE(vault->PutCommittedBlock(theirs).ok());
  ASSERT_TRUE(vault
                  ->PutReservations("alice", {{"k1", "m", "s", "theirs", 0, 16},
                                              {"k2", "m", "s", "theirs", 16, 16},
                                              {"k3", "m", "s", "theirs", 32, 16}})
                  .ok());
  using absl::StatusCode;
  EXPECT_EQ(vault->DeliverKeys("other", "m", {"k1"}).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(vault->DeliverKeys("s", "other", {"k1"}).status().code(), StatusCode::kInvalidArgument);
  absl::StatusOr<std::vector<VaultKey>> unknown = vault->DeliverKeys("s", "m", {"nope"});
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(unknown.status().message(), HasSubstr("nope"));
  // One bad id in a batch: nothing delivered.
  EXPECT_EQ(vault->DeliverKeys("s", "m", {"k1", "k2", "nope"}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(vault->DeliverKeys("s", "m", {"k1", "k1"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(vault->ReservedKeys("s", "m"), 3u);

  absl::StatusOr<std::vector<VaultKey>> got = vault->DeliverKeys("s", "m", {"k2", "k1"});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].key_id, "k2");  // in the order asked
  EXPECT_EQ((*got)[0].key, theirs.key.substr(16, 16));
  EXPECT_EQ((*got)[0].offset, 16u);
  EXPECT_EQ((*got)[0].block_id, "theirs");
  EXPECT_EQ((*got)[0].peer, "alice");
  EXPECT_EQ((*got)[1].key, theirs.key.substr(0, 16));
  EXPECT_EQ(vault->ReservedKeys("s", "m"), 1u);

  absl::StatusOr<std::vector<VaultKey>> again = vault->DeliverKeys("s", "m", {"k1"});
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(again.status().message(), HasSubstr("already delivered"));
  // Another SAE is refused before it learns the key was delivered.
  EXPECT_EQ(vault->DeliverKeys("other", "m", {"k1"}).status().code(), StatusCode::kPermissionDenied);
  // A batch with a delivered key delivers nothing.
  EXPECT_EQ(vault->DeliverKeys("s", "m", {"k3", "k1"}).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(vault->ReservedKeys("s", "m"), 1u);

  // A delivered key's range and id stay taken; a retried reservation is no re-issue.
  EXPECT_EQ(vault->PutReservations("alice", {{"k9", "m", "s", "theirs", 0, 8}}).code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(vault->PutReservations("alice", {{"k1", "m", "s", "theirs", 0, 16}}).ok());
  EXPECT_EQ(vault->DeliverKeys("s", "m", {"k1"}).status().code(), StatusCode::kFailedPrecondition);

  KeyVault::Counts counts = vault->counts();
  EXPECT_EQ(counts.reserved_keys, 1u);
  EXPECT_EQ(counts.delivered_keys, 2u);
  vault.reset();
  EXPECT_EQ(QueryInt(path_, "SELECT COUNT(*) FROM keys WHERE delivered = 1 AND length(key) > 0"), 0);
  EXPECT_EQ(QueryInt(path_, "SELECT length(key) FROM keys WHERE key_id = 'k3'"), 16);
}

// The owner carves, the other end stores the reservations, the slave gets
// the master's bytes.
TEST_F(KeyVaultTest, OwnerCarvesAndTheOtherEndDeliversTheSameKeys) {
  fs::path bob_path = dir_ / "bob.db";
  std::unique_ptr<KeyVault> alice = OpenVault();
  absl::StatusOr<std::unique_ptr<KeyVault>> bob = KeyVault::Open(bob_path);
  ASSERT_TRUE(bob.ok()) << bob.status();
  VaultBlock block = Block("session-1", "bob", true, 256);
  ASSERT_TRUE(alice->PutPendingBlock(block).ok());
  ASSERT_TRUE(
      (*bob)->PutCommittedBlock({.block_id = "session-1", .peer = "alice", .owned = false, .key = block.key}).ok());
  ASSERT_TRUE(alice->CommitBlock("session-1").ok());
  absl::StatusOr<std::vector<VaultKey>> carved = alice->CarveKeys("bob", "sae-a", "sae-b", 3, 32);
  ASSERT_TRUE(carved.ok()) << carved.status();
  std::vector<KeyReservation> reservations;
  std::vector<std::string> ids;
  for (const VaultKey& k : *carved) {
    reservations.push_back({k.key_id, k.master_sae, k.slave_sae, k.block_id, k.offset, k.key.size()});
    ids.push_back(k.key_id);
  }
  ASSERT_TRUE((*bob)->PutReservations("alice", reservations).ok());
  EXPECT_EQ((*bob)->ReservedKeys("sae-b", "sae-a"), 3u);
  absl::StatusOr<std::vector<VaultKey>> delivered = (*bob)->DeliverKeys("sae-b", "sae-a", ids);
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ((*delivered)[i].key, (*carved)[i].key);
}

TEST(RandomUuidTest, IsAVersion4UuidAndUnique) {
  const std::regex form("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = RandomUuid();
    ASSERT_TRUE(std::regex_match(id, form)) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

// A child carves in a loop, reporting each key it got through a pipe, and
// is killed at a random moment; each round the parent reopens the vault and
// checks it: intact, no byte handed out twice, the carved counters at or
// past every reported key, every remaining byte still carvable.
TEST_F(KeyVaultTest, AKillDuringCarvingLeavesAConsistentVault) {
  constexpr int kBlocks = 16, kBlockBytes = 2048, kSize = 24;
  {
    std::unique_ptr<KeyVault> vault = OpenVault();
    for (int i = 0; i < kBlocks; ++i) {
      ASSERT_TRUE(vault->PutCommittedBlock(Block("b" + std::to_string(i), "bob", true, kBlockBytes, i)).ok());
    }
  }
  struct Record {
    char block_id[8];
    uint64_t offset;
  };
  std::map<std::string, std::set<uint64_t>> reported;
  std::mt19937 rng(42);
  for (int round = 0; round < 20; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(fds[0]);
      absl::StatusOr<std::unique_ptr<KeyVault>> vault = KeyVault::Open(path_);
      if (!vault.ok()) ::_exit(2);
      for (;;) {
        absl::StatusOr<std::vector<VaultKey>> keys = (*vault)->CarveKeys("bob", "m", "s", 3, kSize);
        if (!keys.ok()) ::_exit(keys.status().code() == absl::StatusCode::kUnavailable ? 0 : 3);
        std::vector<Record> records(keys->size());  // one write: atomic on a pipe
        for (size_t i = 0; i < keys->size(); ++i) {
          std::strncpy(records[i].block_id, (*keys)[i].block_id.c_str(), sizeof records[i].block_id);
          records[i].offset = (*keys)[i].offset;
        }
        if (::write(fds[1], records.data(), records.size() * sizeof(Record)) < 0) ::_exit(4);
      }
    }
    ::close(fds[1]);
    // The kill lands while carving: after the child's first key (opening
    // the vault can take longer than the random delay on a loaded machine,
    // and a kill before any carving tests nothing), then at a random moment.
    pollfd first{.fd = fds[0], .events = POLLIN, .revents = 0};
    int ready;
    do {
      ready = ::poll(&first, 1, 60'000);
    } while (ready < 0 && errno == EINTR);
    if (ready != 1) {
      ::kill(child, SIGKILL);
      ::waitpid(child, nullptr, 0);
      FAIL() << "the child carved nothing in 60 s";
    }
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 40000));
    ::kill(child, SIGKILL);
    int wstatus = 0;
    ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
    ASSERT_TRUE(WIFSIGNALED(wstatus) || (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)) << wstatus;
    Record r;
    while (::read(fds[0], &r, sizeof r) == static_cast<ssize_t>(sizeof r)) {
      std::string id(r.block_id, strnlen(r.block_id, sizeof r.block_id));
      EXPECT_TRUE(reported[id].insert(r.offset).second) << id << " offset " << r.offset << " carved twice";
    }
    ::close(fds[0]);
    EXPECT_EQ(QueryText(path_, "PRAGMA integrity_check"), "ok");
    // Keys of one size from the front: each counter is a multiple of it, and past every reported key.
    EXPECT_EQ(QueryInt(path_, "SELECT COUNT(*) FROM blocks WHERE carved % 24 != 0 OR carved > length(key)"), 0);
    for (const auto& [id, offsets] : reported) {
      std::string sql = "SELECT carved FROM blocks WHERE block_id = '" + id + "'";
      EXPECT_GE(QueryInt(path_, sql.c_str()), static_cast<int64_t>(*offsets.rbegin() + kSize)) << id;
    }
  }
  size_t total_reported = 0;
  for (const auto& [id, offsets] : reported) total_reported += offsets.size();
  EXPECT_GT(total_reported, 0u);
  // What is left is carvable and overlaps nothing handed out before.
  std::unique_ptr<KeyVault> vault = OpenVault();
  uint64_t left = vault->AvailableKeys("bob", kSize);
  EXPECT_EQ(vault->AvailableBytes("bob"),
            static_cast<uint64_t>(kBlocks * kBlockBytes - QueryInt(path_, "SELECT SUM(carved) FROM blocks")));
  if (left > 0) {
    absl::StatusOr<std::vector<VaultKey>> rest = vault->CarveKeys("bob", "m", "s", left, kSize);
    ASSERT_TRUE(rest.ok()) << rest.status();
    for (const VaultKey& k : *rest) {
      EXPECT_EQ(k.key, Bytes(kBlockBytes, std::stoi(k.block_id.substr(1))).substr(k.offset, kSize));
      for (uint64_t off : reported[k.block_id]) EXPECT_TRUE(k.offset >= off + kSize || k.offset + kSize <= off);
    }
  }
}

}  // namespace
}  // namespace qnet::kme
