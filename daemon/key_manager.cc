#include "daemon/key_manager.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "daemon/asio.h"
#include "daemon/raw_messages.h"
#include "core/status.h"
#include "core/time.h"
#include "keydist/key_distribution.h"
#include "kme/block_check.h"

namespace qnet::daemon {
namespace {

grpc::Status AsGrpc(const absl::Status& status) {
  return status.ok() ? grpc::Status::OK
                     : grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status FromGrpc(const grpc::Status& status) {
  return status.ok() ? absl::OkStatus()
                     : absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

keydist::QkdProtocol ProtocolOf(const std::string& name) {
  if (name == "e91") return keydist::QkdProtocol::kE91;
  if (name == "bb84") return keydist::QkdProtocol::kBb84;
  if (name == "relay") return keydist::QkdProtocol::kRelay;
  return keydist::QkdProtocol::kBbm92;  // the config parser allows only these four
}

// Reservations name SAEs and ids the caller made up; bound them before they
// reach the vault.
constexpr size_t kMaxIdLength = 128;
constexpr uint64_t kMaxBlockBytes = 1ull << 26;  // a session's key is far smaller (10^6 pairs)
// How long a peer's CommitBlock waits for the session to finish here: the
// owner may hear its last post-processing message before this end does.
constexpr auto kCommitWait = std::chrono::seconds(10);

// Raw methods, so that an unparseable request gets INVALID_ARGUMENT
// (raw_messages.h). The work may wait (CommitBlock waits up to kCommitWait
// for the session to end here) and touches the key store, so it runs on the
// service's own threads rather than on gRPC's callback threads: CommitBlock
// and ReserveKeys on separate ones, so that commits waiting for blocks this
// node does not have (a failed session, a restart, a hostile owner) never
// hold up reservations, whose callers wait for them in an ETSI request.
using RawKeyManagementService = v1::KeyManagement::WithRawCallbackMethod_CommitBlock<
    v1::KeyManagement::WithRawCallbackMethod_ReserveKeys<v1::KeyManagement::Service>>;

class KeyManagementService final : public RawKeyManagementService {
 public:
  explicit KeyManagementService(KeyManager& manager) : manager_(manager) {}
  // The server has finished every call by now (Daemon::Shutdown waits for
  // it before the key manager goes), so this only joins idle threads.
  ~KeyManagementService() override {
    commit_workers_.join();
    reserve_workers_.join();
  }

  grpc::ServerUnaryReactor* CommitBlock(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override {
    return Serve<v1::CommitBlockRequest, v1::CommitBlockResponse>(
        commit_workers_, context, "CommitBlock", *request, response,
        [this](const v1::CommitBlockRequest& r) { return manager_.OnCommitBlock(r); });
  }

  grpc::ServerUnaryReactor* ReserveKeys(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override {
    return Serve<v1::ReserveKeysRequest, v1::ReserveKeysResponse>(
        reserve_workers_, context, "ReserveKeys", *request, response,
        [this](const v1::ReserveKeysRequest& r) { return manager_.OnReserveKeys(r); });
  }

 private:
  // Parsed first: who may call depends on the owner the request names.
  template <typename Request, typename Response, typename Handle>
  grpc::ServerUnaryReactor* Serve(boost::asio::thread_pool& workers, grpc::CallbackServerContext* context,
                                  absl::string_view method,
                                  const grpc::ByteBuffer& raw, grpc::ByteBuffer* response, Handle handle) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    absl::StatusOr<Request> request = ParseRequest<Request>(raw, method);
    absl::Status allowed = request.status();
    if (request.ok()) {
      allowed = manager_.policy().AuthorizeNode(*context, absl::StrCat("KeyManagement.", method), request->owner(),
                                                "only nodes' key managers call it");
    }
    if (!allowed.ok()) {
      reactor->Finish(AsGrpc(allowed));
      return reactor;
    }
    boost::asio::post(workers, [context, reactor, response, request = *std::move(request),
                                handle = std::move(handle)] {
      // A call its client gave up on while it queued is not acted on.
      if (context->IsCancelled()) {
        reactor->Finish(grpc::Status::CANCELLED);
        return;
      }
      absl::Status done = handle(request);
      if (done.ok()) *response = SerializeMessage(Response());
      reactor->Finish(AsGrpc(done));
    });
    return reactor;
  }

  KeyManager& manager_;
  boost::asio::thread_pool commit_workers_{4};
  boost::asio::thread_pool reserve_workers_{2};
};

}  // namespace

std::string KeyBytes(const qkd::BitString& key) {
  std::string out(key.size() / 8, '\0');
  for (size_t i = 0; i < out.size() * 8; ++i) {
    if (key.Get(i)) out[i / 8] = static_cast<char>(static_cast<unsigned char>(out[i / 8]) | (0x80u >> (i % 8)));
  }
  return out;
}

KeyManager::KeyManager(KeyManagerOptions options, const config::NetworkConfig& network, const std::string& self,
                       stack::NodeStack& stack, EventLoop& loop, PeerDirectory& directory,
                       const AccessPolicy& policy, const Logger& log)
    : options_(std::move(options)),
      network_(network),
      self_(self),
      stack_(stack),
      loop_(loop),
      directory_(directory),
      policy_(policy),
      log_(log) {}

absl::StatusOr<std::unique_ptr<KeyManager>> KeyManager::Start(KeyManagerOptions options,
                                                              const config::NetworkConfig& network,
                                                              const std::string& self, stack::NodeStack& stack,
                                                              EventLoop& loop, PeerDirectory& directory,
                                                              const security::TlsMaterial& tls,
                                                              const AccessPolicy& policy, const Logger& log) {
  if (options.vault == nullptr) return absl::InvalidArgumentError("the key manager needs an open key store");
  std::unique_ptr<KeyManager> m(
      new KeyManager(std::move(options), network, self, stack, loop, directory, policy, log));
  m->vault_ = m->options_.vault;
  for (const config::KeyPoolConfig& pool : network.key_management.pools) {
    if (pool.node_a == self) m->pools_.emplace(pool.node_b, Pool{.config = &pool, .peer = pool.node_b});
  }
  m->service_ = std::make_unique<KeyManagementService>(*m);
  if (!m->options_.kme_listen.empty()) {
    absl::StatusOr<std::unique_ptr<kme::Etsi014Server>> server = kme::Etsi014Server::Start(
        {.listen = m->options_.kme_listen, .network = network.name, .node = self, .tls = tls}, *m);
    if (!server.ok()) {
      return absl::Status(server.status().code(),
                          absl::StrCat("the KME API (--kme-listen ", m->options_.kme_listen, "): ",
                                       server.status().message()));
    }
    m->server_ = *std::move(server);
    QNET_LOG(log, kInfo, "KME: ETSI GS QKD 014 API at %s, key store %s, %d pool(s)", m->server_->url(),
             m->options_.store.string(), static_cast<int>(m->pools_.size()));
  }
  KeyManager* raw = m.get();
  m->thread_ = std::thread([raw] { raw->Run(); });
  return m;
}

KeyManager::~KeyManager() {
  server_.reset();  // no more API calls into this object
  {
    std::lock_guard<std::mutex> lock(inbox_->mu);
    inbox_->stop = true;
  }
  inbox_->wake.notify_all();
  if (thread_.joinable()) thread_.join();
}

void KeyManager::Run() {
  while (true) {
    std::deque<SessionOutcome> outcomes;
    {
      std::unique_lock<std::mutex> lock(inbox_->mu);
      inbox_->wake.wait_for(lock, options_.tick, [this] { return inbox_->stop || !inbox_->outcomes.empty(); });
      if (inbox_->stop) return;
      outcomes.swap(inbox_->outcomes);
    }
    for (SessionOutcome& o : outcomes) Handle(std::move(o));
    if (WallClock::now() >= next_pending_retry_) {
      RetryPendingBlocks();
      next_pending_retry_ = WallClock::now() + std::chrono::seconds(2);
    }
    StartSessions();
  }
}

void KeyManager::StartSessions() {
  const WallClock::time_point now = WallClock::now();
  for (auto& [peer, pool] : pools_) {
    const uint64_t available_bits = vault_->AvailableBytes(peer) * 8;
    keydist::QkdSessionOptions session;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (available_bits < pool.config->low_watermark_bits) pool.refilling = true;
      if (available_bits >= pool.config->high_watermark_bits) pool.refilling = false;
      if (!pool.refilling || pool.session_running || now < pool.retry_at) continue;
      pool.session_running = true;
      pool.session_started = now;
    }
    session.protocol = ProtocolOf(pool.config->protocol);
    session.pairs = pool.config->pairs_per_block;
    session.timeout = FromSeconds(options_.block_timeout_s);
    session.post_processing.estimation.sample_fraction = pool.config->sample_fraction;
    std::shared_ptr<Inbox> inbox = inbox_;
    auto deliver = [inbox, peer = peer](absl::StatusOr<std::pair<std::string, std::string>> block) {
      {
        std::lock_guard<std::mutex> lock(inbox->mu);
        inbox->outcomes.push_back({.peer = peer, .block = std::move(block)});
      }
      inbox->wake.notify_all();
    };
    stack::NodeStack* stack = &stack_;
    const bool posted = loop_.poster()->Post([stack, peer = peer, session, deliver] {
      keydist::KeyDistribution* sessions = stack->key_distribution();
      if (sessions == nullptr) return deliver(absl::UnavailableError("key distribution is stopped on this node"));
      absl::StatusOr<keydist::SessionId> id = sessions->StartSession(
          peer, session, nullptr, [deliver](keydist::SessionId, absl::StatusOr<keydist::QkdResult> result) {
            if (!result.ok()) return deliver(result.status());
            deliver(std::make_pair(result->key_id, KeyBytes(result->key)));
          });
      if (!id.ok()) deliver(id.status());
    });
    if (!posted) {
      std::lock_guard<std::mutex> lock(mu_);
      pool.session_running = false;
    }
  }
}

void KeyManager::Handle(SessionOutcome outcome) {
  auto it = pools_.find(outcome.peer);
  if (it == pools_.end()) return;
  Pool& pool = it->second;
  absl::Status failed = outcome.block.status();
  if (failed.ok() && outcome.block->second.empty()) {
    failed = absl::FailedPreconditionError("the session gave less than a byte of key");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    pool.session_running = false;
    pool.refill_time += WallClock::now() - pool.session_started;
    if (!failed.ok()) {
      ++pool.sessions_failed;
      pool.last_error = failed.ToString();
      pool.backoff = std::clamp(pool.backoff * 2, options_.min_backoff, options_.max_backoff);
      pool.retry_at = WallClock::now() + pool.backoff;
    } else {
      pool.backoff = std::chrono::milliseconds(0);
    }
  }
  if (!failed.ok()) {
    QNET_LOG(log_, kWarn, "key pool %s->%s: session failed (%s); next one in %.1f s", self_, outcome.peer,
             failed.ToString(), std::chrono::duration<double>(pool.backoff).count());
    return;
  }
  const kme::VaultBlock block{
      .block_id = outcome.block->first, .peer = outcome.peer, .owned = true, .key = outcome.block->second};
  if (absl::Status stored = vault_->PutPendingBlock(block); !stored.ok()) {
    QNET_LOG(log_, kError, "key pool %s->%s: cannot store block %s: %s", self_, outcome.peer, block.block_id,
             stored.ToString());
    std::lock_guard<std::mutex> lock(mu_);
    pool.last_error = stored.ToString();
    return;
  }
  (void)CommitWithPeer(block);
}

absl::StatusOr<std::unique_ptr<v1::KeyManagement::Stub>> KeyManager::StubFor(const std::string& node) {
  QNET_ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, directory_.Channel(node));
  return v1::KeyManagement::NewStub(channel);
}

bool KeyManager::CommitWithPeer(const kme::VaultBlock& block) {
  absl::Status asked;
  if (absl::StatusOr<std::unique_ptr<v1::KeyManagement::Stub>> stub = StubFor(block.peer); !stub.ok()) {
    asked = stub.status();
  } else {
    v1::CommitBlockRequest request;
    request.set_owner(self_);
    request.set_block_id(block.block_id);
    request.set_check(kme::BlockCheck(block.block_id, block.key));
    request.set_bytes(block.key.size());
    v1::CommitBlockResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + options_.peer_deadline + kCommitWait);
    asked = FromGrpc((*stub)->CommitBlock(&context, request, &response));
  }
  auto pool_it = pools_.find(block.peer);
  if (asked.ok()) {
    if (absl::Status committed = vault_->CommitBlock(block.block_id); !committed.ok()) {
      QNET_LOG(log_, kError, "key pool %s->%s: cannot commit block %s: %s", self_, block.peer, block.block_id,
               committed.ToString());
      return true;
    }
    QNET_LOG(log_, kInfo, "key pool %s->%s: block %s committed (%d bits)", self_, block.peer, block.block_id,
             static_cast<int>(block.key.size() * 8));
    if (pool_it != pools_.end()) {
      std::lock_guard<std::mutex> lock(mu_);
      ++pool_it->second.blocks_committed;
      pool_it->second.bits_committed += block.key.size() * 8;
      pool_it->second.last_error.clear();
    }
    return true;
  }
  if (absl::IsUnavailable(asked) || absl::IsDeadlineExceeded(asked) || absl::IsCancelled(asked)) {
    QNET_LOG(log_, kWarn, "key pool %s->%s: block %s stays pending: %s", self_, block.peer, block.block_id,
             asked.ToString());
    return false;
  }
  // The peer does not hold the same key (or refuses the pool): the block
  // can never be served from both ends.
  (void)vault_->DiscardPendingBlock(block.block_id);
  QNET_LOG(log_, kWarn, "key pool %s->%s: block %s discarded: %s", self_, block.peer, block.block_id,
           asked.ToString());
  if (pool_it != pools_.end()) {
    std::lock_guard<std::mutex> lock(mu_);
    pool_it->second.last_error = absl::StrCat("block discarded: ", asked.ToString());
  }
  return true;
}

void KeyManager::RetryPendingBlocks() {
  for (const kme::VaultBlock& block : vault_->PendingOwnedBlocks()) {
    if (!CommitWithPeer(block)) return;  // the peer is unreachable: later
  }
}

absl::StatusOr<const config::SaeConfig*> KeyManager::LocalSae(const std::string& name) const {
  const config::SaeConfig* sae = network_.key_management.FindSae(name);
  if (sae == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("SAE '", name, "' is not in the network file's key_management.saes"));
  }
  if (sae->node != self_) {
    return absl::PermissionDeniedError(
        absl::StrCat("SAE '", name, "' is bound to node '", sae->node, "', not to this KME ('", self_, "')"));
  }
  return sae;
}

absl::StatusOr<const config::SaeConfig*> KeyManager::RemoteSae(const std::string& name, absl::string_view role) const {
  const config::SaeConfig* sae = network_.key_management.FindSae(name);
  if (sae == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown ", role, " SAE '", name, "' (not in the network file's key_management.saes)"));
  }
  if (sae->node == self_) {
    return absl::InvalidArgumentError(absl::StrCat(role, " SAE '", name, "' is bound to this KME ('", self_,
                                                   "'): keys go between SAEs of two different nodes"));
  }
  // A slave's keys come from the pool this node fills toward it; a master's
  // from the pool its node fills toward this one.
  const bool slave = role == "slave";
  if (network_.key_management.FindPool(slave ? self_ : sae->node, slave ? sae->node : self_) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("no key pool from '", slave ? self_ : sae->node, "' to '",
                                                   slave ? sae->node : self_, "' in the network file (", role,
                                                   " SAE '", name, "' is at '", sae->node,
                                                   "'); key_management.pools lists them as between: [MASTER_NODE, "
                                                   "SLAVE_NODE]"));
  }
  return sae;
}

absl::StatusOr<kme::KeyPoolStatus> KeyManager::Status(const std::string& caller_sae, const std::string& slave_sae) {
  QNET_RETURN_IF_ERROR(LocalSae(caller_sae).status());
  QNET_ASSIGN_OR_RETURN(const config::SaeConfig* slave, RemoteSae(slave_sae, "slave"));
  const Pool& pool = pools_.at(slave->node);
  kme::KeyPoolStatus status;
  status.source_kme_id = self_;
  status.target_kme_id = slave->node;
  status.master_sae_id = caller_sae;
  status.slave_sae_id = slave_sae;
  status.key_size = kme::kDefaultKeySizeBits;
  status.stored_key_count = vault_->AvailableKeys(slave->node, kme::kDefaultKeySizeBits / 8);
  status.max_key_count = pool.config->high_watermark_bits / kme::kDefaultKeySizeBits;
  return status;
}

absl::StatusOr<std::vector<kme::DeliveredKey>> KeyManager::EncKeys(const std::string& caller_sae,
                                                                   const std::string& slave_sae, uint64_t number,
                                                                   uint64_t size_bits,
                                                                   const std::vector<std::string>& additional) {
  QNET_RETURN_IF_ERROR(LocalSae(caller_sae).status());
  if (!additional.empty()) {
    return absl::InvalidArgumentError(
        "additional_slave_SAE_IDs: this KME delivers each key to one slave SAE (max_SAE_ID_count is 0)");
  }
  QNET_ASSIGN_OR_RETURN(const config::SaeConfig* slave, RemoteSae(slave_sae, "slave"));
  const std::string& peer = slave->node;
  absl::StatusOr<std::vector<kme::VaultKey>> carved =
      vault_->CarveKeys(peer, caller_sae, slave_sae, number, size_bits / 8);
  if (!carved.ok()) {
    if (!absl::IsUnavailable(carved.status())) return carved.status();
    std::string state;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const Pool& pool = pools_.at(peer);
      state = pool.last_error.empty() ? "refilling"
                                      : absl::StrCat("refilling; the last session failed: ", pool.last_error);
    }
    return absl::UnavailableError(absl::StrCat("the key pool from '", self_, "' to '", peer, "' holds ",
                                               vault_->AvailableKeys(peer, size_bits / 8), " keys of ", size_bits,
                                               " bits, ", number, " asked (", state, "); try again later"));
  }
  v1::ReserveKeysRequest request;
  request.set_owner(self_);
  for (const kme::VaultKey& k : *carved) {
    v1::KeyReservationEntry* e = request.add_keys();
    e->set_key_id(k.key_id);
    e->set_master_sae(caller_sae);
    e->set_slave_sae(slave_sae);
    e->set_block_id(k.block_id);
    e->set_offset(k.offset);
    e->set_size(k.key.size());
  }
  absl::Status reserved;
  if (absl::StatusOr<std::unique_ptr<v1::KeyManagement::Stub>> stub = StubFor(peer); !stub.ok()) {
    reserved = stub.status();
  } else {
    v1::ReserveKeysResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + options_.peer_deadline);
    reserved = FromGrpc((*stub)->ReserveKeys(&context, request, &response));
  }
  if (!reserved.ok()) {
    QNET_LOG(log_, kWarn, "enc_keys for %s: %s did not reserve %d key(s), discarded: %s", caller_sae, peer,
             static_cast<int>(carved->size()), reserved.ToString());
    return absl::UnavailableError(absl::StrCat("the slave SAE's KME ('", peer, "') did not take the keys (",
                                               reserved.message(), "); they are discarded; try again"));
  }
  std::vector<kme::DeliveredKey> out;
  out.reserve(carved->size());
  for (kme::VaultKey& k : *carved) out.push_back({.key_id = std::move(k.key_id), .key = std::move(k.key)});
  return out;
}

absl::StatusOr<std::vector<kme::DeliveredKey>> KeyManager::DecKeys(const std::string& caller_sae,
                                                                   const std::string& master_sae,
                                                                   const std::vector<std::string>& key_ids) {
  QNET_RETURN_IF_ERROR(LocalSae(caller_sae).status());
  QNET_RETURN_IF_ERROR(RemoteSae(master_sae, "master").status());
  QNET_ASSIGN_OR_RETURN(std::vector<kme::VaultKey> keys, vault_->DeliverKeys(caller_sae, master_sae, key_ids));
  std::vector<kme::DeliveredKey> out;
  out.reserve(keys.size());
  for (kme::VaultKey& k : keys) out.push_back({.key_id = std::move(k.key_id), .key = std::move(k.key)});
  return out;
}

absl::Status KeyManager::OnCommitBlock(const v1::CommitBlockRequest& request) {
  const std::string& owner = request.owner();
  if (network_.key_management.FindPool(owner, self_) == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("no key pool from '", owner, "' to '", self_, "' in this node's network file"));
  }
  if (request.block_id().empty() || request.block_id().size() > kMaxIdLength || request.bytes() == 0 ||
      request.bytes() > kMaxBlockBytes) {
    return absl::InvalidArgumentError("CommitBlock: block_id or bytes out of range");
  }
  // Already committed (the owner retries after a restart).
  if (absl::StatusOr<kme::VaultBlock> held = vault_->FindBlock(request.block_id()); held.ok()) {
    if (held->peer != owner || held->owned) {
      return absl::PermissionDeniedError(absl::StrCat("block '", request.block_id(), "' is not from '", owner, "'"));
    }
    if (kme::BlockCheck(held->block_id, held->key) != request.check()) {
      return absl::FailedPreconditionError(absl::StrCat("block '", request.block_id(), "': the keys differ"));
    }
    return vault_->CommitBlock(request.block_id());
  }
  // The session's key, once this end has finished it too.
  const WallClock::time_point give_up = WallClock::now() + kCommitWait;
  absl::StatusOr<keydist::StoredKey> key = absl::NotFoundError("");
  while (true) {
    key = loop_.Call([this, id = request.block_id()] { return stack_.key_store().Find(id); });
    if (key.ok() || WallClock::now() >= give_up) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!key.ok()) {
    return absl::NotFoundError(absl::StrCat("node '", self_, "' holds no key '", request.block_id(), "' from '",
                                            owner, "' (its session did not finish here, or this node restarted)"));
  }
  if (key->peer != owner) {
    return absl::PermissionDeniedError(absl::StrCat("key '", request.block_id(), "' is not shared with '", owner, "'"));
  }
  const kme::VaultBlock block{.block_id = request.block_id(), .peer = owner, .owned = false, .key = KeyBytes(key->bits)};
  if (block.key.size() != request.bytes() || kme::BlockCheck(block.block_id, block.key) != request.check()) {
    return absl::FailedPreconditionError(absl::StrCat("block '", request.block_id(), "': the keys differ ("
                                                      , block.key.size(), " bytes here, ", request.bytes(), " at '",
                                                      owner, "')"));
  }
  QNET_RETURN_IF_ERROR(vault_->PutCommittedBlock(block));
  // Out of the memory store: from now on only the vault serves it.
  (void)loop_.Call([this, id = request.block_id()] { return stack_.key_store().Take(id).status(); });
  return absl::OkStatus();
}

absl::Status KeyManager::OnReserveKeys(const v1::ReserveKeysRequest& request) {
  const std::string& owner = request.owner();
  if (network_.key_management.FindPool(owner, self_) == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("no key pool from '", owner, "' to '", self_, "' in this node's network file"));
  }
  if (request.keys_size() == 0 || static_cast<uint64_t>(request.keys_size()) > kme::kMaxKeysPerRequest) {
    return absl::InvalidArgumentError(
        absl::StrCat("ReserveKeys: 1..", kme::kMaxKeysPerRequest, " keys per call, got ", request.keys_size()));
  }
  std::vector<kme::KeyReservation> reservations;
  for (const v1::KeyReservationEntry& e : request.keys()) {
    const config::SaeConfig* slave = network_.key_management.FindSae(e.slave_sae());
    const config::SaeConfig* master = network_.key_management.FindSae(e.master_sae());
    if (slave == nullptr || slave->node != self_ || master == nullptr || master->node != owner) {
      return absl::PermissionDeniedError(absl::StrCat("ReserveKeys: key '", e.key_id(), "' is for master SAE '",
                                                      e.master_sae(), "' and slave SAE '", e.slave_sae(),
                                                      "', not SAEs of '", owner, "' and '", self_, "'"));
    }
    if (e.key_id().empty() || e.key_id().size() > kMaxIdLength || e.block_id().size() > kMaxIdLength ||
        e.size() < kme::kMinKeySizeBits / 8 || e.size() > kme::kMaxKeySizeBits / 8 || e.offset() > kMaxBlockBytes) {
      return absl::InvalidArgumentError(absl::StrCat("ReserveKeys: key '", e.key_id(), "' is out of range"));
    }
    reservations.push_back({.key_id = e.key_id(), .master_sae = e.master_sae(), .slave_sae = e.slave_sae(),
                            .block_id = e.block_id(), .offset = e.offset(), .size = e.size()});
  }
  return vault_->PutReservations(owner, reservations);
}

v1::GetKeyPoolsResponse KeyManager::Pools() const {
  v1::GetKeyPoolsResponse out;
  out.set_kme_url(url());
  out.set_store_path(options_.store.string());
  if (!server_) out.set_disabled_reason("no --kme-listen: the ETSI GS QKD 014 API is off on this node");
  const WallClock::time_point now = WallClock::now();
  for (const auto& [peer, pool] : pools_) {
    const uint64_t available_bits = vault_->AvailableBytes(peer) * 8;
    std::lock_guard<std::mutex> lock(mu_);
    v1::KeyPoolState* p = out.add_pools();
    p->set_peer(peer);
    p->set_owned(true);
    p->set_available_bits(available_bits);
    p->set_low_watermark_bits(pool.config->low_watermark_bits);
    p->set_high_watermark_bits(pool.config->high_watermark_bits);
    p->set_protocol(pool.config->protocol);
    const bool backing_off = !pool.session_running && now < pool.retry_at;
    p->set_state(backing_off ? "backing off" : (pool.refilling || pool.session_running) ? "refilling" : "full");
    if (backing_off) p->set_retry_in_s(std::chrono::duration<double>(pool.retry_at - now).count());
    p->set_last_error(pool.last_error);
    p->set_blocks_committed(pool.blocks_committed);
    p->set_sessions_failed(pool.sessions_failed);
    const double busy_s = std::chrono::duration<double>(pool.refill_time).count();
    p->set_refill_bits_per_s(busy_s > 0 ? static_cast<double>(pool.bits_committed) / busy_s : 0.0);
  }
  for (const config::KeyPoolConfig& pool : network_.key_management.pools) {
    if (pool.node_b != self_) continue;
    v1::KeyPoolState* p = out.add_pools();
    p->set_peer(pool.node_a);
    p->set_owned(false);
    p->set_low_watermark_bits(pool.low_watermark_bits);
    p->set_high_watermark_bits(pool.high_watermark_bits);
    p->set_protocol(pool.protocol);
    p->set_state(absl::StrCat("filled by ", pool.node_a));
  }
  const kme::KeyVault::Counts counts = vault_->counts();
  out.set_reserved_keys(counts.reserved_keys);
  out.set_delivered_keys(counts.delivered_keys);
  out.set_pending_blocks(counts.pending_blocks);
  return out;
}

}  // namespace qnet::daemon
