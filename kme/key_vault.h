// A node's durable key store for its key management entity (KME): the QKD
// key blocks it shares with other nodes and the keys carved from them for
// applications (SAEs, ETSI GS QKD 014), in one SQLite database in the
// daemon's state directory (WAL mode, synchronous=FULL, one transaction per
// change, file mode 0600). Disk access is key access, as in the reference
// KME implementations: the file holds key material in the clear.
//
// Blocks. A block is one QKD session's final key, known at both ends under
// the same block id. The end that started the session owns the block: only
// it carves keys from it (so the two ends never hand out the same bits). A
// block is servable only once committed at both ends: the owner stores it
// pending, asks the other end to commit its copy, then commits its own.
//
// Keys. The owner carves a key (a byte range of one committed block) for a
// master SAE, tells the other end which range it took (a reservation), and
// only after that end has stored the reservation does the master get the
// key. The other end keeps the reserved key for the slave SAE until the
// slave fetches it; it is then marked delivered (its bytes erased, the row
// kept so the range and the id are never reused) and never served again.
// A range handed out is zeroed in the block at both ends (carved at the
// owner, copied into the reserved key at the other), so a delivered key's
// bytes are gone from the store; secure_delete zeroes freed pages, though
// old WAL frames may hold them until the WAL is checkpointed over.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;

namespace qnet::kme {

struct VaultBlock {
  std::string block_id;  // the QKD session's key id, the same at both ends
  std::string peer;      // the node at the other end
  bool owned = false;    // this node started the session (it carves keys)
  std::string key;       // the block's key bytes (final key bits / 8, rounded down)
};

enum class BlockState { kPending, kCommitted };

// One key carved from a block: key_id is a UUID (RFC 4122 text form).
struct VaultKey {
  std::string key_id;
  std::string master_sae, slave_sae;
  std::string peer;      // the node at the other end of the block
  std::string block_id;
  uint64_t offset = 0;   // bytes into the block
  std::string key;       // `size` bytes (empty once delivered)
};

// A key's place in a block, as the owner tells the other end.
struct KeyReservation {
  std::string key_id;
  std::string master_sae, slave_sae;
  std::string block_id;
  uint64_t offset = 0, size = 0;  // bytes
};

class KeyVault {
 public:
  // Opens or creates the database at `path` (its directory must exist);
  // the file is made 0600. Errors name the file and SQLite's message.
  static absl::StatusOr<std::unique_ptr<KeyVault>> Open(const std::filesystem::path& path);
  ~KeyVault();
  KeyVault(const KeyVault&) = delete;
  KeyVault& operator=(const KeyVault&) = delete;

  // All methods are thread-safe (one connection behind a mutex) and each
  // change is one transaction: after a crash a change is there entirely or
  // not at all.

  // Stores a block pending. Storing a block id already held is OK if it is
  // the same block (same peer, owner flag and bytes), AlreadyExists otherwise.
  absl::Status PutPendingBlock(const VaultBlock& block);
  // Stores a block committed in one step (the non-owner end, when the owner
  // asks it to commit a block it holds only in memory); same idempotence.
  absl::Status PutCommittedBlock(const VaultBlock& block);
  // pending -> committed; committing a committed block is OK. NotFound if
  // the block is not held.
  absl::Status CommitBlock(const std::string& block_id);
  // Deletes a block that is still pending (FailedPrecondition if committed,
  // NotFound if not held).
  absl::Status DiscardPendingBlock(const std::string& block_id);
  absl::StatusOr<VaultBlock> FindBlock(const std::string& block_id) const;
  absl::StatusOr<BlockState> StateOf(const std::string& block_id) const;
  // The owned blocks still pending (to be committed after a restart).
  std::vector<VaultBlock> PendingOwnedBlocks() const;

  // Owner side. Bytes of owned committed blocks toward `peer` not yet
  // carved, and how many keys of `size` bytes those give (a key lies within
  // one block).
  uint64_t AvailableBytes(const std::string& peer) const;
  uint64_t AvailableKeys(const std::string& peer, uint64_t size) const;
  // Carves `number` keys of `size` bytes from owned committed blocks toward
  // `peer` (oldest block first; a block's remainder smaller than `size` is
  // skipped) in one transaction: the ranges are consumed for good even if
  // the reservation later fails. Unavailable (nothing carved) if the pool
  // has fewer than `number` such keys.
  absl::StatusOr<std::vector<VaultKey>> CarveKeys(const std::string& peer, const std::string& master_sae,
                                                  const std::string& slave_sae, uint64_t number, uint64_t size);

  // Non-owner side. Stores reservations the owner `peer` made, in one
  // transaction (all or none): each names a committed block this node holds
  // from `peer` (owned by `peer`), a range inside it that overlaps no other
  // key of that block. A reservation already held with the same fields is
  // OK (the owner retried). InvalidArgument / NotFound / AlreadyExists
  // otherwise, naming the key id.
  absl::Status PutReservations(const std::string& peer, const std::vector<KeyReservation>& reservations);
  // Delivers reserved keys to their slave SAE in one transaction (all or
  // none), in the order asked: each key id must be held, reserved for
  // `slave_sae` (PermissionDenied otherwise), from `master_sae`
  // (InvalidArgument otherwise) and not yet delivered (FailedPrecondition
  // "already delivered"). NotFound for an unknown id. Delivered keys' bytes
  // are erased.
  absl::StatusOr<std::vector<VaultKey>> DeliverKeys(const std::string& slave_sae, const std::string& master_sae,
                                                    const std::vector<std::string>& key_ids);
  // Keys reserved here for `slave_sae` from `master_sae` and not delivered.
  uint64_t ReservedKeys(const std::string& slave_sae, const std::string& master_sae) const;

  // The Wegman-Carter authentication pool this node shares with `peer`, as
  // keydist saves it (an opaque record; keydist/authentication.h), nullopt
  // if none was saved. Saving replaces the record in one durable write.
  absl::StatusOr<std::optional<std::string>> LoadAuthenticationPool(const std::string& peer) const;
  absl::Status SaveAuthenticationPool(const std::string& peer, const std::string& record);

  struct Counts {
    uint64_t pending_blocks = 0, committed_blocks = 0;
    uint64_t available_bytes = 0;  // owned, committed, not carved (all peers)
    uint64_t reserved_keys = 0, delivered_keys = 0;
  };
  Counts counts() const;

 private:
  explicit KeyVault(sqlite3* db) : db_(db) {}
  mutable std::mutex mu_;
  sqlite3* db_;
};

// A random (version 4) UUID in text form, from the OS's CSPRNG (OpenSSL
// RAND_bytes): key ids must not be guessable by another SAE.
std::string RandomUuid();

}  // namespace qnet::kme
