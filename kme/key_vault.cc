#include "kme/key_vault.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"

// qnet_kme may not depend on qnet_core (cmake/dependency_rule.cmake), so the
// usual QNET_RETURN_IF_ERROR / QNET_ASSIGN_OR_RETURN are spelled out here.
#define VAULT_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::absl::Status vault_status_ = (expr);         \
    if (!vault_status_.ok()) return vault_status_; \
  } while (0)
#define VAULT_CONCAT_(a, b) a##b
#define VAULT_CONCAT(a, b) VAULT_CONCAT_(a, b)
#define VAULT_ASSIGN_OR_RETURN(lhs, expr) VAULT_ASSIGN_OR_RETURN_(VAULT_CONCAT(vault_or_, __LINE__), lhs, expr)
#define VAULT_ASSIGN_OR_RETURN_(tmp, lhs, expr) \
  auto tmp = (expr);                            \
  if (!tmp.ok()) return tmp.status();           \
  lhs = *std::move(tmp)

namespace qnet::kme {
namespace {

constexpr int kSchemaVersion = 2;  // 2: auth_pools
constexpr int kBusyTimeoutMs = 5000;
constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();

// seq (the rowid) gives "oldest first"; an explicit INTEGER PRIMARY KEY
// keeps that order stable across VACUUM, which may renumber implicit rowids.
// carved: bytes taken from the front of an owned block (the owner keeps no
// key rows: the counter alone prevents reuse). keys: reservations the owner
// made in this node's copy of its blocks; delivered rows stay, bytes erased.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS blocks(
  seq INTEGER PRIMARY KEY,
  block_id TEXT NOT NULL UNIQUE,
  peer TEXT NOT NULL,
  owned INTEGER NOT NULL CHECK(owned IN (0, 1)),
  state INTEGER NOT NULL CHECK(state IN (0, 1)),
  key BLOB NOT NULL,
  carved INTEGER NOT NULL DEFAULT 0 CHECK(carved >= 0 AND carved <= length(key)));
CREATE TABLE IF NOT EXISTS keys(
  key_id TEXT PRIMARY KEY,
  block_id TEXT NOT NULL REFERENCES blocks(block_id),
  master_sae TEXT NOT NULL,
  slave_sae TEXT NOT NULL,
  peer TEXT NOT NULL,
  offset INTEGER NOT NULL CHECK(offset >= 0),
  size INTEGER NOT NULL CHECK(size > 0),
  key BLOB,
  delivered INTEGER NOT NULL DEFAULT 0 CHECK(delivered IN (0, 1)));
CREATE INDEX IF NOT EXISTS keys_by_block ON keys(block_id, offset);
CREATE INDEX IF NOT EXISTS keys_by_sae ON keys(slave_sae, master_sae, delivered);
-- The owner's blocks with bytes left, oldest first: carving and the pool's
-- level read these alone, not every block ever stored (spent blocks stay).
CREATE INDEX IF NOT EXISTS blocks_servable ON blocks(peer, seq)
  WHERE owned = 1 AND state = 1 AND carved < length(key);
-- Each peer's Wegman-Carter authentication pool (keydist/authentication.h),
-- an opaque record replaced after every change.
CREATE TABLE IF NOT EXISTS auth_pools(
  peer TEXT PRIMARY KEY,
  record BLOB NOT NULL);
PRAGMA user_version = 2;
)sql";

std::string DbPath(sqlite3* db) {
  const char* name = sqlite3_db_filename(db, "main");
  return name != nullptr ? name : "(unknown)";
}

// A SQLite failure: names the file, what was being done and SQLite's words.
// Busy (another process holds the lock past the timeout) may pass: Unavailable.
absl::Status SqlError(sqlite3* db, const char* doing) {
  std::string message = absl::StrCat("key vault ", DbPath(db), ": ", doing, ": ", sqlite3_errmsg(db));
  switch (sqlite3_errcode(db)) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(message);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

// Only for fixed SQL without values (pragmas, BEGIN/COMMIT, the schema).
absl::Status Exec(sqlite3* db, const char* sql, const char* doing = nullptr) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) return SqlError(db, doing ? doing : sql);
  return absl::OkStatus();
}

// A prepared statement with bound parameters (1-based, as SQLite's ?N).
// The first failure (prepare or bind) is reported by Step().
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db), sql_(sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  // Never NULL (which would match nothing): "" binds an empty text or blob.
  Stmt& Text(int i, std::string_view v) {
    return Check(sqlite3_bind_text(stmt_, i, v.empty() ? "" : v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  Stmt& Blob(int i, std::string_view v) {
    return Check(sqlite3_bind_blob(stmt_, i, v.empty() ? "" : v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  Stmt& Int(int i, int64_t v) { return Check(sqlite3_bind_int64(stmt_, i, v)); }

  // True with a row, false when done.
  absl::StatusOr<bool> Step() {
    if (rc_ == SQLITE_OK || rc_ == SQLITE_ROW) rc_ = sqlite3_step(stmt_);
    if (rc_ == SQLITE_ROW) return true;
    if (rc_ == SQLITE_DONE) return false;
    return SqlError(db_, sql_);
  }
  // Runs a statement that returns no rows.
  absl::Status Run() { return Step().status(); }

  int64_t ColInt(int c) { return sqlite3_column_int64(stmt_, c); }
  std::string ColText(int c) {
    const unsigned char* p = sqlite3_column_text(stmt_, c);
    return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(stmt_, c)) : std::string();
  }
  std::string ColBlob(int c) {
    const void* p = sqlite3_column_blob(stmt_, c);
    return p ? std::string(static_cast<const char*>(p), sqlite3_column_bytes(stmt_, c)) : std::string();
  }

 private:
  Stmt& Check(int rc) {
    if (rc_ == SQLITE_OK) rc_ = rc;
    return *this;
  }
  sqlite3* db_;
  const char* sql_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back unless committed.
class Txn {
 public:
  explicit Txn(sqlite3* db) : db_(db) {}
  ~Txn() {
    if (open_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  absl::Status Begin() {
    VAULT_RETURN_IF_ERROR(Exec(db_, "BEGIN IMMEDIATE"));
    open_ = true;
    return absl::OkStatus();
  }
  absl::Status Commit() {
    VAULT_RETURN_IF_ERROR(Exec(db_, "COMMIT"));
    open_ = false;
    return absl::OkStatus();
  }

 private:
  sqlite3* db_;
  bool open_ = false;
};

// A single-value query (counts); 0 if it fails (the callers return plain numbers).
uint64_t QueryCount(Stmt& stmt) {
  absl::StatusOr<bool> row = stmt.Step();
  if (!row.ok() || !*row) return 0;
  int64_t n = stmt.ColInt(0);
  return n > 0 ? static_cast<uint64_t>(n) : 0;
}

// Overwrites bytes [offset, offset + size) of a block's key with zeros: a
// range handed out (owner) or copied into a reserved key (other end) is no
// longer kept in the block. Blocks are a few kB, so read-modify-write.
absl::Status ZeroRange(sqlite3* db, const std::string& block_id, int64_t offset, int64_t size) {
  Stmt read(db, "SELECT key FROM blocks WHERE block_id = ?1");
  VAULT_ASSIGN_OR_RETURN(bool got, read.Text(1, block_id).Step());
  if (!got) return absl::NotFoundError(absl::StrCat("no block ", block_id));
  std::string key = read.ColBlob(0);
  if (offset < 0 || size < 0 || static_cast<uint64_t>(offset + size) > key.size()) {
    return absl::InternalError(absl::StrCat("block ", block_id, ": range outside the block"));
  }
  std::fill(key.begin() + offset, key.begin() + offset + size, '\0');
  Stmt write(db, "UPDATE blocks SET key = ?1 WHERE block_id = ?2");
  return write.Blob(1, key).Text(2, block_id).Run();
}

// Before SQLite creates it: the file holds key material in the clear, so it
// is never readable by others, not even between creation and a chmod.
absl::Status CreatePrivateFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::Status(absl::ErrnoToStatusCode(errno),
                        absl::StrCat("cannot create key vault ", path, ": ", std::strerror(errno)));
  }
  struct stat st;
  absl::Status status;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    status = absl::FailedPreconditionError(absl::StrCat("key vault ", path, " is not a regular file"));
  } else if (::fchmod(fd, 0600) != 0) {  // it may have existed with a wider mode
    status =
        absl::PermissionDeniedError(absl::StrCat("cannot chmod 0600 key vault ", path, ": ", std::strerror(errno)));
  }
  ::close(fd);
  return status;
}

absl::Status PutBlock(sqlite3* db, const VaultBlock& block, BlockState state) {
  if (block.block_id.empty() || block.peer.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("block '", block.block_id, "' needs a block id and a peer"));
  }
  Txn txn(db);
  VAULT_RETURN_IF_ERROR(txn.Begin());
  Stmt find(db, "SELECT peer, owned, key, state FROM blocks WHERE block_id = ?1");
  find.Text(1, block.block_id);
  VAULT_ASSIGN_OR_RETURN(bool held, find.Step());
  const int64_t want = state == BlockState::kCommitted ? 1 : 0;
  if (held) {
    // A retry of the same store is OK; a different block under the same id
    // would mean the two ends disagree on a session's key.
    if (find.ColText(0) != block.peer || (find.ColInt(1) != 0) != block.owned || find.ColBlob(2) != block.key) {
      return absl::AlreadyExistsError(
          absl::StrCat("block ", block.block_id, " is already held with a different peer, owner flag or key"));
    }
    if (find.ColInt(3) < want) {  // never back from committed to pending
      Stmt commit(db, "UPDATE blocks SET state = 1 WHERE block_id = ?1");
      VAULT_RETURN_IF_ERROR(commit.Text(1, block.block_id).Run());
    }
  } else {
    Stmt insert(db, "INSERT INTO blocks(block_id, peer, owned, state, key) VALUES (?1, ?2, ?3, ?4, ?5)");
    insert.Text(1, block.block_id).Text(2, block.peer).Int(3, block.owned ? 1 : 0).Int(4, want).Blob(5, block.key);
    VAULT_RETURN_IF_ERROR(insert.Run());
  }
  return txn.Commit();
}

}  // namespace

absl::StatusOr<std::unique_ptr<KeyVault>> KeyVault::Open(const std::filesystem::path& path) {
  const std::string file = path.string();
  VAULT_RETURN_IF_ERROR(CreatePrivateFile(file));
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(file.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  // Owned by the vault from here on, so every error path closes it.
  std::unique_ptr<KeyVault> vault(new KeyVault(raw));
  if (rc != SQLITE_OK) {
    return absl::InternalError(
        absl::StrCat("cannot open key vault ", file, ": ", raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  sqlite3* db = raw;
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  {
    Stmt wal(db, "PRAGMA journal_mode=WAL");
    VAULT_ASSIGN_OR_RETURN(bool row, wal.Step());
    if (!row || wal.ColText(0) != "wal") {
      return absl::FailedPreconditionError(
          absl::StrCat("key vault ", file, ": SQLite refused WAL mode (journal mode '", wal.ColText(0), "')"));
    }
  }
  // secure_delete: freed pages (erased keys, discarded blocks) are zeroed.
  for (const char* pragma : {"PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON", "PRAGMA secure_delete=ON"}) {
    VAULT_RETURN_IF_ERROR(Exec(db, pragma));
  }
  int64_t version = 0;
  {
    Stmt get(db, "PRAGMA user_version");
    VAULT_ASSIGN_OR_RETURN(bool row, get.Step());
    version = row ? get.ColInt(0) : 0;
  }
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat("key vault ", file, " has schema version ", version,
                                                      ", newer than this qnet (", kSchemaVersion, ")"));
  }
  if (version < kSchemaVersion) {
    Txn txn(db);
    VAULT_RETURN_IF_ERROR(txn.Begin());
    VAULT_RETURN_IF_ERROR(Exec(db, kSchema, "creating the schema"));
    VAULT_RETURN_IF_ERROR(txn.Commit());
  }
  // SQLite creates -wal/-shm with the database's mode; these may predate it.
  for (const char* suffix : {"-wal", "-shm"}) {
    std::string side = file + suffix;
    if (::chmod(side.c_str(), 0600) != 0 && errno != ENOENT) {
      return absl::PermissionDeniedError(absl::StrCat("cannot chmod 0600 ", side, ": ", std::strerror(errno)));
    }
  }
  return vault;
}

KeyVault::~KeyVault() { sqlite3_close_v2(db_); }

absl::Status KeyVault::PutPendingBlock(const VaultBlock& block) {
  std::lock_guard<std::mutex> lock(mu_);
  return PutBlock(db_, block, BlockState::kPending);
}

absl::Status KeyVault::PutCommittedBlock(const VaultBlock& block) {
  std::lock_guard<std::mutex> lock(mu_);
  return PutBlock(db_, block, BlockState::kCommitted);
}

absl::Status KeyVault::CommitBlock(const std::string& block_id) {
  std::lock_guard<std::mutex> lock(mu_);
  Txn txn(db_);
  VAULT_RETURN_IF_ERROR(txn.Begin());
  Stmt update(db_, "UPDATE blocks SET state = 1 WHERE block_id = ?1");
  VAULT_RETURN_IF_ERROR(update.Text(1, block_id).Run());
  if (sqlite3_changes(db_) == 0) return absl::NotFoundError(absl::StrCat("no block ", block_id, " to commit"));
  return txn.Commit();
}

absl::Status KeyVault::DiscardPendingBlock(const std::string& block_id) {
  std::lock_guard<std::mutex> lock(mu_);
  Txn txn(db_);
  VAULT_RETURN_IF_ERROR(txn.Begin());
  Stmt find(db_, "SELECT state FROM blocks WHERE block_id = ?1");
  VAULT_ASSIGN_OR_RETURN(bool held, find.Text(1, block_id).Step());
  if (!held) return absl::NotFoundError(absl::StrCat("no block ", block_id, " to discard"));
  if (find.ColInt(0) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("block ", block_id, " is committed; it cannot be discarded"));
  }
  Stmt erase(db_, "DELETE FROM blocks WHERE block_id = ?1");
  VAULT_RETURN_IF_ERROR(erase.Text(1, block_id).Run());
  return txn.Commit();
}

absl::StatusOr<VaultBlock> KeyVault::FindBlock(const std::string& block_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt find(db_, "SELECT peer, owned, key FROM blocks WHERE block_id = ?1");
  VAULT_ASSIGN_OR_RETURN(bool held, find.Text(1, block_id).Step());
  if (!held) return absl::NotFoundError(absl::StrCat("no block ", block_id, " in the key vault"));
  return VaultBlock{
      .block_id = block_id, .peer = find.ColText(0), .owned = find.ColInt(1) != 0, .key = find.ColBlob(2)};
}

absl::StatusOr<BlockState> KeyVault::StateOf(const std::string& block_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt find(db_, "SELECT state FROM blocks WHERE block_id = ?1");
  VAULT_ASSIGN_OR_RETURN(bool held, find.Text(1, block_id).Step());
  if (!held) return absl::NotFoundError(absl::StrCat("no block ", block_id, " in the key vault"));
  return find.ColInt(0) != 0 ? BlockState::kCommitted : BlockState::kPending;
}

absl::StatusOr<std::optional<std::string>> KeyVault::LoadAuthenticationPool(const std::string& peer) const {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt find(db_, "SELECT record FROM auth_pools WHERE peer = ?1");
  VAULT_ASSIGN_OR_RETURN(bool held, find.Text(1, peer).Step());
  if (!held) return std::nullopt;
  return find.ColBlob(0);
}

absl::Status KeyVault::SaveAuthenticationPool(const std::string& peer, const std::string& record) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt save(db_, "INSERT INTO auth_pools(peer, record) VALUES(?1, ?2) "
                 "ON CONFLICT(peer) DO UPDATE SET record = excluded.record");
  return save.Text(1, peer).Blob(2, record).Run();
}

std::vector<VaultBlock> KeyVault::PendingOwnedBlocks() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<VaultBlock> blocks;
  Stmt list(db_, "SELECT block_id, peer, key FROM blocks WHERE owned = 1 AND state = 0 ORDER BY seq");
  for (absl::StatusOr<bool> row = list.Step(); row.ok() && *row; row = list.Step()) {
    blocks.push_back({.block_id = list.ColText(0), .peer = list.ColText(1), .owned = true, .key = list.ColBlob(2)});
  }
  return blocks;
}

uint64_t KeyVault::AvailableBytes(const std::string& peer) const {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt sum(db_, "SELECT SUM(length(key) - carved) FROM blocks "
                 "WHERE owned = 1 AND state = 1 AND carved < length(key) AND peer = ?1");
  return QueryCount(sum.Text(1, peer));
}

uint64_t KeyVault::AvailableKeys(const std::string& peer, uint64_t size) const {
  if (size == 0 || size > static_cast<uint64_t>(kMaxInt)) return 0;
  std::lock_guard<std::mutex> lock(mu_);
  Stmt sum(db_, "SELECT SUM((length(key) - carved) / ?1) FROM blocks "
                 "WHERE owned = 1 AND state = 1 AND carved < length(key) AND peer = ?2");
  return QueryCount(sum.Int(1, static_cast<int64_t>(size)).Text(2, peer));
}

absl::StatusOr<std::vector<VaultKey>> KeyVault::CarveKeys(const std::string& peer, const std::string& master_sae,
                                                          const std::string& slave_sae, uint64_t number,
                                                          uint64_t size) {
  if (size == 0 || size > static_cast<uint64_t>(kMaxInt)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot carve keys of ", size, " bytes"));
  }
  std::vector<VaultKey> keys;
  if (number == 0) return keys;
  std::lock_guard<std::mutex> lock(mu_);
  Txn txn(db_);
  VAULT_RETURN_IF_ERROR(txn.Begin());
  // First which blocks, oldest first, and how many keys from each: a short
  // pool is refused before anything is carved.
  struct Take {
    std::string block_id;
    int64_t carved;
    uint64_t keys;
  };
  std::vector<Take> takes;
  {
    Stmt walk(db_,
              "SELECT block_id, carved, (length(key) - carved) / ?1 FROM blocks "
              "WHERE owned = 1 AND state = 1 AND carved < length(key) AND peer = ?2 AND length(key) - carved >= ?1 "
              "ORDER BY seq");
    walk.Int(1, static_cast<int64_t>(size)).Text(2, peer);
    uint64_t found = 0;
    while (found < number) {
      VAULT_ASSIGN_OR_RETURN(bool next, walk.Step());
      if (!next) {
        return absl::UnavailableError(
            absl::StrCat("key pool toward ", peer, " holds ", found, " keys of ", size, " bytes; ", number, " asked"));
      }
      uint64_t n = std::min<uint64_t>(number - found, static_cast<uint64_t>(walk.ColInt(2)));
      takes.push_back({walk.ColText(0), walk.ColInt(1), n});
      found += n;
    }
  }
  for (const Take& take : takes) {
    const int64_t bytes = static_cast<int64_t>(take.keys * size);
    Stmt read(db_, "SELECT substr(key, ?1 + 1, ?2) FROM blocks WHERE block_id = ?3");
    VAULT_ASSIGN_OR_RETURN(bool got, read.Int(1, take.carved).Int(2, bytes).Text(3, take.block_id).Step());
    std::string run = got ? read.ColBlob(0) : std::string();
    if (static_cast<int64_t>(run.size()) != bytes) {
      return absl::DataLossError(
          absl::StrCat("key vault ", DbPath(db_), ": block ", take.block_id, " is shorter than its carved counter"));
    }
    Stmt advance(db_, "UPDATE blocks SET carved = ?1 WHERE block_id = ?2");
    VAULT_RETURN_IF_ERROR(advance.Int(1, take.carved + bytes).Text(2, take.block_id).Run());
    VAULT_RETURN_IF_ERROR(ZeroRange(db_, take.block_id, take.carved, bytes));
    for (uint64_t i = 0; i < take.keys; ++i) {
      keys.push_back({.key_id = RandomUuid(),
                      .master_sae = master_sae,
                      .slave_sae = slave_sae,
                      .peer = peer,
                      .block_id = take.block_id,
                      .offset = static_cast<uint64_t>(take.carved) + i * size,
                      .key = run.substr(i * size, size)});
    }
  }
  VAULT_RETURN_IF_ERROR(txn.Commit());
  return keys;
}

absl::Status KeyVault::PutReservations(const std::string& peer, const std::vector<KeyReservation>& reservations) {
  std::lock_guard<std::mutex> lock(mu_);
  Txn txn(db_);
  VAULT_RETURN_IF_ERROR(txn.Begin());
  for (const KeyReservation& r : reservations) {
    const std::string& id = r.key_id;
    if (id.empty() || r.master_sae.empty() || r.slave_sae.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("reservation of key '", id, "' needs a key id and both SAEs"));
    }
    Stmt block(db_, "SELECT peer, owned, state, length(key) FROM blocks WHERE block_id = ?1");
    VAULT_ASSIGN_OR_RETURN(bool held, block.Text(1, r.block_id).Step());
    if (!held) return absl::NotFoundError(absl::StrCat("key ", id, ": no block ", r.block_id, " held here"));
    if (block.ColText(0) != peer || block.ColInt(1) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("key ", id, ": block ", r.block_id, " is not a block owned by ", peer));
    }
    if (block.ColInt(2) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("key ", id, ": block ", r.block_id, " is not committed here"));
    }
    const uint64_t length = static_cast<uint64_t>(block.ColInt(3));
    if (r.size == 0 || r.size > length || r.offset > length - r.size) {
      return absl::InvalidArgumentError(absl::StrCat("key ", id, ": bytes [", r.offset, ", +", r.size,
                                                     ") lie outside block ", r.block_id, " (", length, " bytes)"));
    }
    const auto offset = static_cast<int64_t>(r.offset), size = static_cast<int64_t>(r.size);
    Stmt same(db_, "SELECT master_sae, slave_sae, peer, block_id, offset, size FROM keys WHERE key_id = ?1");
    VAULT_ASSIGN_OR_RETURN(bool known, same.Text(1, id).Step());
    if (known) {
      if (same.ColText(0) == r.master_sae && same.ColText(1) == r.slave_sae && same.ColText(2) == peer &&
          same.ColText(3) == r.block_id && same.ColInt(4) == offset && same.ColInt(5) == size) {
        continue;  // the owner retried a reservation that was stored
      }
      return absl::AlreadyExistsError(absl::StrCat("key id ", id, " is already reserved for another range or SAE"));
    }
    Stmt overlap(db_,
                 "SELECT key_id FROM keys WHERE block_id = ?1 AND offset < ?2 + ?3 AND offset + size > ?2 LIMIT 1");
    VAULT_ASSIGN_OR_RETURN(bool clash, overlap.Text(1, r.block_id).Int(2, offset).Int(3, size).Step());
    if (clash) {
      return absl::AlreadyExistsError(absl::StrCat("key ", id, ": bytes [", r.offset, ", +", r.size, ") of block ",
                                                   r.block_id, " overlap key ", overlap.ColText(0)));
    }
    Stmt insert(db_,
                "INSERT INTO keys(key_id, block_id, master_sae, slave_sae, peer, offset, size, key) "
                "SELECT ?1, block_id, ?2, ?3, ?4, ?5, ?6, substr(key, ?5 + 1, ?6) FROM blocks WHERE block_id = ?7");
    insert.Text(1, id).Text(2, r.master_sae).Text(3, r.slave_sae).Text(4, peer).Int(5, offset).Int(6, size);
    VAULT_RETURN_IF_ERROR(insert.Text(7, r.block_id).Run());
    VAULT_RETURN_IF_ERROR(ZeroRange(db_, r.block_id, offset, size));
  }
  return txn.Commit();
}

absl::StatusOr<std::vector<VaultKey>> KeyVault::DeliverKeys(const std::string& slave_sae, const std::string& master_sae,
                                                            const std::vector<std::string>& key_ids) {
  std::lock_guard<std::mutex> lock(mu_);
  Txn txn(db_);
  VAULT_RETURN_IF_ERROR(txn.Begin());
  std::vector<VaultKey> keys;
  // Every id is checked before any is marked: one bad id delivers nothing.
  for (const std::string& id : key_ids) {
    Stmt find(db_, "SELECT master_sae, slave_sae, peer, block_id, offset, key, delivered FROM keys WHERE key_id = ?1");
    VAULT_ASSIGN_OR_RETURN(bool held, find.Text(1, id).Step());
    if (!held) return absl::NotFoundError(absl::StrCat("no key ", id));
    // The slave check comes first: another SAE learns nothing more of the key.
    if (find.ColText(1) != slave_sae) {
      return absl::PermissionDeniedError(absl::StrCat("key ", id, " is not reserved for SAE ", slave_sae));
    }
    if (find.ColText(0) != master_sae) {
      return absl::InvalidArgumentError(absl::StrCat("key ", id, " does not come from master SAE ", master_sae));
    }
    if (find.ColInt(6) != 0) return absl::FailedPreconditionError(absl::StrCat("key ", id, " already delivered"));
    for (const VaultKey& k : keys) {
      if (k.key_id == id) return absl::InvalidArgumentError(absl::StrCat("key ", id, " asked twice"));
    }
    keys.push_back({.key_id = id,
                    .master_sae = master_sae,
                    .slave_sae = slave_sae,
                    .peer = find.ColText(2),
                    .block_id = find.ColText(3),
                    .offset = static_cast<uint64_t>(find.ColInt(4)),
                    .key = find.ColBlob(5)});
  }
  for (const VaultKey& k : keys) {
    Stmt mark(db_, "UPDATE keys SET key = X'', delivered = 1 WHERE key_id = ?1 AND delivered = 0");
    VAULT_RETURN_IF_ERROR(mark.Text(1, k.key_id).Run());
  }
  VAULT_RETURN_IF_ERROR(txn.Commit());
  return keys;
}

uint64_t KeyVault::ReservedKeys(const std::string& slave_sae, const std::string& master_sae) const {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt count(db_, "SELECT COUNT(*) FROM keys WHERE slave_sae = ?1 AND master_sae = ?2 AND delivered = 0");
  return QueryCount(count.Text(1, slave_sae).Text(2, master_sae));
}

KeyVault::Counts KeyVault::counts() const {
  std::lock_guard<std::mutex> lock(mu_);
  // One statement: one consistent snapshot.
  Stmt all(db_,
           "SELECT (SELECT COUNT(*) FROM blocks WHERE state = 0), (SELECT COUNT(*) FROM blocks WHERE state = 1), "
           "(SELECT COALESCE(SUM(length(key) - carved), 0) FROM blocks WHERE owned = 1 AND state = 1), "
           "(SELECT COUNT(*) FROM keys WHERE delivered = 0), (SELECT COUNT(*) FROM keys WHERE delivered = 1)");
  Counts counts;
  absl::StatusOr<bool> row = all.Step();
  if (!row.ok() || !*row) return counts;
  auto at = [&](int c) { return static_cast<uint64_t>(std::max<int64_t>(all.ColInt(c), 0)); };
  counts = {.pending_blocks = at(0),
            .committed_blocks = at(1),
            .available_bytes = at(2),
            .reserved_keys = at(3),
            .delivered_keys = at(4)};
  return counts;
}

std::string RandomUuid() {
  unsigned char b[16];
  // No fallback: a guessable key id would let another SAE ask for the key.
  if (RAND_bytes(b, sizeof b) != 1) {
    std::fputs("qnet: RAND_bytes failed; cannot make a key id\n", stderr);
    std::abort();
  }
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text;
  text.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text.push_back('-');
    text.push_back(kHex[b[i] >> 4]);
    text.push_back(kHex[b[i] & 0x0f]);
  }
  return text;
}

}  // namespace qnet::kme
