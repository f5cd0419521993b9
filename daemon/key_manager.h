// The node's key management entity (KME): it keeps the pools of secret key
// the network file's key_management section asks for, and hands keys to
// applications (SAEs) over the ETSI GS QKD 014 REST API.
//
// Pools are directed (between: [A, B]): A fills the pool and serves its
// SAEs' enc_keys (masters), B serves its SAEs' dec_keys (slaves). For every
// pool it fills: while the key it owns toward the peer is below the low
// watermark this node runs
// QKD sessions with the peer (one session = one block) until the high
// watermark, backing off (1 s doubling to 60 s, wall time) when sessions
// fail, with the reason in GetKeyPools and the log. A finished block is
// stored pending in the durable vault (kme/key_vault.h), the peer is asked
// to commit its copy (KeyManagement.CommitBlock, with a check value that
// proves both hold the same key), then it is committed here; a block the
// peer does not hold is discarded. Pending blocks are retried after a
// restart, so a block is servable only once both ends hold it durably.
//
// enc_keys (a master SAE of this node) carves keys from this node's owned
// blocks, has the slave's KME reserve the same ranges
// (KeyManagement.ReserveKeys) and only then returns them; dec_keys (a slave
// SAE of this node) delivers reserved keys once. Requires TLS: SAEs and
// peers are authenticated by the network's certificates.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "config/network_config.h"
#include "daemon/access_policy.h"
#include "daemon/event_loop.h"
#include "daemon/log.h"
#include "daemon/peer_directory.h"
#include "kme/etsi014_server.h"
#include "keydist/authentication.h"
#include "kme/key_vault.h"
#include "security/pki.h"
#include "stack/node_stack.h"
#include "qnet/v1/key_management_service.grpc.pb.h"
#include "qnet/v1/node_service.pb.h"

namespace qnet::daemon {

// The node's authentication pools (keydist/authentication.h) kept in the
// KME vault, so a daemon that restarts alone goes on authenticating with
// its peers. The daemon opens the vault before it builds the stack.
class VaultAuthenticationPoolStore final : public keydist::AuthenticationPoolStore {
 public:
  explicit VaultAuthenticationPoolStore(std::shared_ptr<kme::KeyVault> vault) : vault_(std::move(vault)) {}
  absl::StatusOr<std::optional<std::string>> Load(const std::string& peer) override {
    return vault_->LoadAuthenticationPool(peer);
  }
  absl::Status Save(const std::string& peer, const std::string& record) override {
    return vault_->SaveAuthenticationPool(peer, record);
  }

 private:
  std::shared_ptr<kme::KeyVault> vault_;
};

struct KeyManagerOptions {
  std::filesystem::path store;  // the vault's SQLite file (named in messages)
  std::shared_ptr<kme::KeyVault> vault;  // opened on `store` (required)
  std::string kme_listen;       // HOST:PORT of the ETSI GS QKD 014 API; "" for none
  double block_timeout_s = 3600;  // simulated seconds per QKD session
  std::chrono::milliseconds tick{100};  // how often pools are looked at (wall)
  std::chrono::milliseconds min_backoff{1000}, max_backoff{60000};
  std::chrono::milliseconds peer_deadline{10000};  // CommitBlock / ReserveKeys
};

class KeyManager final : public kme::KeyDeliveryBackend {
 public:
  // Starts the REST API (if asked) and the refill thread.
  // FailedPrecondition without TLS material (SAEs and peers could not be
  // authenticated). Everything referenced must outlive the manager.
  static absl::StatusOr<std::unique_ptr<KeyManager>> Start(KeyManagerOptions options,
                                                           const config::NetworkConfig& network,
                                                           const std::string& self, stack::NodeStack& stack,
                                                           EventLoop& loop, PeerDirectory& directory,
                                                           const security::TlsMaterial& tls,
                                                           const AccessPolicy& policy, const Logger& log);
  // Stops the API and the refill thread; sessions still running are
  // cancelled on the loop (if it still runs).
  ~KeyManager() override;
  KeyManager(const KeyManager&) = delete;
  KeyManager& operator=(const KeyManager&) = delete;

  // The KeyManagement service peers call (register it on the daemon's server).
  grpc::Service* service() { return service_.get(); }
  // "" when the REST API is off.
  std::string url() const { return server_ ? server_->url() : ""; }
  int port() const { return server_ ? server_->port() : 0; }  // 0 when the REST API is off
  // Node.GetKeyPools without the SAE list (the daemon adds it). Thread-safe.
  v1::GetKeyPoolsResponse Pools() const;

  // kme::KeyDeliveryBackend (HTTP worker threads).
  absl::StatusOr<kme::KeyPoolStatus> Status(const std::string& caller_sae, const std::string& slave_sae) override;
  absl::StatusOr<std::vector<kme::DeliveredKey>> EncKeys(const std::string& caller_sae, const std::string& slave_sae,
                                                         uint64_t number, uint64_t size_bits,
                                                         const std::vector<std::string>& additional) override;
  absl::StatusOr<std::vector<kme::DeliveredKey>> DecKeys(const std::string& caller_sae, const std::string& master_sae,
                                                         const std::vector<std::string>& key_ids) override;

  // KeyManagement service handlers (the service's own threads): the caller is authorised.
  absl::Status OnCommitBlock(const v1::CommitBlockRequest& request);
  absl::Status OnReserveKeys(const v1::ReserveKeysRequest& request);

  const AccessPolicy& policy() const { return policy_; }

 private:
  struct Pool {
    const config::KeyPoolConfig* config;
    std::string peer;
    bool refilling = false;       // below low: filling up to high
    bool session_running = false;
    WallClock::time_point retry_at{};
    std::chrono::milliseconds backoff{0};
    std::string last_error;
    uint64_t blocks_committed = 0, sessions_failed = 0, bits_committed = 0;
    WallClock::duration refill_time{0};  // wall time spent with a session running
    WallClock::time_point session_started{};
  };
  // A finished session, handed from the loop to the refill thread.
  struct SessionOutcome {
    std::string peer;
    absl::StatusOr<std::pair<std::string, std::string>> block;  // block id, key bytes
  };
  // Shared with callbacks that may outlive the manager.
  struct Inbox {
    std::mutex mu;
    std::condition_variable wake;
    std::deque<SessionOutcome> outcomes;
    bool stop = false;
  };

  KeyManager(KeyManagerOptions options, const config::NetworkConfig& network, const std::string& self,
             stack::NodeStack& stack, EventLoop& loop, PeerDirectory& directory, const AccessPolicy& policy,
             const Logger& log);
  void Run();
  void StartSessions();
  void Handle(SessionOutcome outcome);
  // Asks the peer to commit an owned pending block; commits or discards it
  // here. False if the peer could not be asked (retry later).
  bool CommitWithPeer(const kme::VaultBlock& block);
  void RetryPendingBlocks();
  absl::StatusOr<std::unique_ptr<v1::KeyManagement::Stub>> StubFor(const std::string& node);
  // The SAE named in a request, bound to this node (PermissionDenied otherwise).
  absl::StatusOr<const config::SaeConfig*> LocalSae(const std::string& name) const;
  // The SAE at the other end, with a pool between its node and this one.
  absl::StatusOr<const config::SaeConfig*> RemoteSae(const std::string& name, absl::string_view role) const;

  const KeyManagerOptions options_;
  const config::NetworkConfig& network_;
  const std::string self_;
  stack::NodeStack& stack_;
  EventLoop& loop_;
  PeerDirectory& directory_;
  const AccessPolicy& policy_;
  const Logger& log_;
  std::shared_ptr<kme::KeyVault> vault_;
  std::unique_ptr<grpc::Service> service_;
  std::unique_ptr<kme::Etsi014Server> server_;
  std::shared_ptr<Inbox> inbox_ = std::make_shared<Inbox>();
  mutable std::mutex mu_;  // pools_
  std::map<std::string, Pool> pools_;  // the pools this node fills, by peer
  WallClock::time_point next_pending_retry_{};
  std::thread thread_;
};

// The key bytes of a QKD key: bit 0 is the top bit of byte 0 (as KeyHex);
// a last partial byte is dropped.
std::string KeyBytes(const qkd::BitString& key);

}  // namespace qnet::daemon
