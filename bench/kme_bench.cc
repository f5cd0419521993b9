// The key management entity's request path (kme/, daemon/key_manager.cc),
// in process on 127.0.0.1: the SQLite key vault's calls, the ETSI GS QKD 014
// enc_keys request over mutual TLS, and the KME-to-KME ReserveKeys RPC.
//
// A directed pool alice -> bob: alice owns the blocks and carves keys for her
// master SAE saeA; bob holds the same blocks and keeps reserved keys for his
// slave SAE saeB. Blocks are 2000 bytes (the order of one QKD session's
// final key: 23,205 bits for 10^5 pairs over one hop, BENCHMARKS.md), filled before the timed loop and refilled outside it
// (state.PauseTiming) when the pool runs low. Vaults live in a temporary
// directory on the real file system (not tmpfs): each vault change is one
// SQLite transaction with synchronous=FULL, so one fsync of the WAL, and
// that is what these figures mostly are. Every benchmark has a fixed
// iteration count and removes its directory.
//
//   BM_KmeDiskFdatasync  a 4 KiB pwrite + fdatasync in the same directory:
//       the floor of every vault transaction (SQLite's WAL commit with
//       synchronous=FULL is one such write and fdatasync)
//   BM_KmeVaultCarve/size:256/spent:N  alice's CarveKeys of one 256-bit key,
//       with N fully carved blocks in the table before the run (the daemon
//       never deletes spent blocks, and the carve scans the blocks table)
//   BM_KmeVaultReserveAndDeliver  bob's PutReservations of one key alice
//       carved, then his DeliverKeys of it (bob's two transactions; alice's
//       carve is outside the timed region)
//   BM_KmeReserveRpc/vault:V  the KeyManagement.ReserveKeys RPC alice's key
//       manager makes to bob's over the daemons' mutual TLS (one long-lived
//       channel, as the daemon keeps one per peer), with bob's handler
//       checking the caller's certificate and, with vault:1, storing the
//       reservation in his vault (vault:0: the RPC alone)
//   BM_KmeEncKeys/keys:N  GET /api/v1/keys/saeB/enc_keys?number=N&size=256
//       on alice's Etsi014Server (real TLS, the SAE's app certificate from a
//       PKI made in the temp directory), one keep-alive httplib::SSLClient.
//       The backend carves from alice's vault, then stores the reservations
//       in bob's vault directly: an in-process stand-in for the ReserveKeys
//       RPC (the real daemon adds one gRPC round trip over mTLS to the peer:
//       BM_KmeReserveRpc/vault:0 measures that, BM_KmeEncKeysRpc includes it)
//   BM_KmeEncKeysRpc/keys:N  the same with the backend calling ReserveKeys
//       over gRPC/mTLS on bob's in-process KeyManagement server: the
//       daemon's whole enc_keys path but for its network-file checks
//   BM_KmeEncKeysNewConnection/keys:1  BM_KmeEncKeys with a new TCP and TLS
//       connection per request (as curl run once per key does)
//
// Counters: items_per_second = requests (or vault calls) per second;
// keys_per_s; p50_us / p99_us of each timed request's wall time (steady
// clock); backend_p50_us / backend_p99_us (HTTP benchmarks: the backend's
// EncKeys alone, carve + reserve, so the rest of p50_us is HTTP, TLS and
// JSON); connections_per_request (HTTP benchmarks: new TCP connections the
// client opened per request; httplib's server closes a keep-alive connection
// after 5 requests, CPPHTTPLIB_KEEPALIVE_MAX_COUNT).
//
// The keep-alive enc_keys figures include a ~40 ms stall per request: the
// server writes a response's headers and body separately without
// TCP_NODELAY, and the body waits for the client's delayed ACK
// (BENCHMARKS.md, "Key management (KME)", has the breakdown).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "bench/process_stats.h"
#include "kme/etsi014_server.h"
#include "kme/key_vault.h"
#include "qnet/v1/key_management_service.grpc.pb.h"
#include "security/grpc_tls.h"
#include "security/identity.h"
#include "security/pki.h"

namespace qnet::kme {
namespace {

namespace fs = std::filesystem;
using security::Identity;
using security::Role;
using Clock = std::chrono::steady_clock;

constexpr char kNetwork[] = "kmebench";
constexpr char kOwner[] = "alice";
constexpr char kOther[] = "bob";
constexpr char kMasterSae[] = "saeA";
constexpr char kSlaveSae[] = "saeB";
constexpr uint64_t kBlockBytes = 2000;
constexpr int kRefillBlocks = 16;

// A fresh directory under the system's temporary directory, removed with
// everything in it when this goes out of scope.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() / absl::StrCat("qnet-kme-bench-", ::getpid(), "-", counter++);
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Wall time of timed calls, for the p50 / p99 counters.
class Latencies {
 public:
  explicit Latencies(size_t expected) { us_.reserve(expected); }
  void Add(Clock::duration d) { us_.push_back(std::chrono::duration<double, std::micro>(d).count()); }
  void Report(benchmark::State& state, const std::string& prefix = "") {
    std::sort(us_.begin(), us_.end());
    state.counters[prefix + "p50_us"] = bench::Percentile(us_, 0.5);
    state.counters[prefix + "p99_us"] = bench::Percentile(us_, 0.99);
  }

 private:
  std::vector<double> us_;
};

// The pool alice -> bob: alice's vault (owner) and, if asked, bob's (the
// same blocks, not owned). keys_left counts keys of `key_bytes` alice can
// still carve (every request of a run asks for keys of one size).
class Pool {
 public:
  absl::Status Open(const fs::path& dir, bool with_other, uint64_t key_bytes) {
    key_bytes_ = key_bytes;
    absl::StatusOr<std::unique_ptr<KeyVault>> owner = KeyVault::Open(dir / "alice.db");
    if (!owner.ok()) return owner.status();
    owner_ = *std::move(owner);
    if (with_other) {
      absl::StatusOr<std::unique_ptr<KeyVault>> other = KeyVault::Open(dir / "bob.db");
      if (!other.ok()) return other.status();
      other_ = *std::move(other);
    }
    return absl::OkStatus();
  }

  // `n` new committed blocks at both ends (one transaction, one fsync, per
  // block and end, as the daemon stores them).
  absl::Status AddBlocks(int n) {
    for (int i = 0; i < n; ++i) {
      VaultBlock block{.block_id = absl::StrCat("blk-", next_block_++), .peer = kOther, .owned = true,
                       .key = std::string(kBlockBytes, '\0')};
      for (char& c : block.key) c = static_cast<char>(rng_());
      if (absl::Status s = owner_->PutCommittedBlock(block); !s.ok()) return s;
      if (other_ != nullptr) {
        block.peer = kOwner;
        block.owned = false;
        if (absl::Status s = other_->PutCommittedBlock(block); !s.ok()) return s;
      }
      keys_left_ += kBlockBytes / key_bytes_;
    }
    return absl::OkStatus();
  }

  // Makes sure `n` keys can be carved, adding blocks if not.
  absl::Status Ensure(uint64_t n) {
    while (keys_left_ < n) {
      if (absl::Status s = AddBlocks(kRefillBlocks); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  void Took(uint64_t n) { keys_left_ -= std::min(n, keys_left_); }
  uint64_t keys_left() const { return keys_left_; }

  // `n` whole blocks carved to the last byte (what a long-running node's
  // table is full of): n block stores, then one carve of n block-sized keys.
  absl::Status AddSpentBlocks(int n) {
    if (n == 0) return absl::OkStatus();
    const uint64_t before = keys_left_;
    if (before != 0) return absl::FailedPreconditionError("spent blocks go in first");
    for (int i = 0; i < n; ++i) {
      VaultBlock block{.block_id = absl::StrCat("spent-", i), .peer = kOther, .owned = true,
                       .key = std::string(kBlockBytes, '\x5a')};
      if (absl::Status s = owner_->PutCommittedBlock(block); !s.ok()) return s;
    }
    absl::StatusOr<std::vector<VaultKey>> carved =
        owner_->CarveKeys(kOther, kMasterSae, kSlaveSae, static_cast<uint64_t>(n), kBlockBytes);
    return carved.status();
  }

  KeyVault& owner() { return *owner_; }
  KeyVault& other() { return *other_; }

 private:
  std::unique_ptr<KeyVault> owner_, other_;
  uint64_t key_bytes_ = 32;
  uint64_t keys_left_ = 0;
  uint64_t next_block_ = 0;
  std::mt19937_64 rng_{20261205};
};

std::vector<KeyReservation> ReservationsOf(const std::vector<VaultKey>& keys) {
  std::vector<KeyReservation> out;
  out.reserve(keys.size());
  for (const VaultKey& k : keys) {
    out.push_back({.key_id = k.key_id, .master_sae = k.master_sae, .slave_sae = k.slave_sae,
                   .block_id = k.block_id, .offset = k.offset, .size = k.key.size()});
  }
  return out;
}

void BM_KmeDiskFdatasync(benchmark::State& state) {
  TempDir dir;
  const std::string file = (dir.path() / "fsync.dat").string();
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return state.SkipWithError("cannot create the file");
  const std::string page(4096, 'k');
  Latencies latency(state.max_iterations);
  int64_t i = 0;
  for (auto _ : state) {
    const Clock::time_point start = Clock::now();
    const bool ok = ::pwrite(fd, page.data(), page.size(), (i++ % 64) * 4096) == static_cast<ssize_t>(page.size()) &&
                    ::fdatasync(fd) == 0;
    latency.Add(Clock::now() - start);
    if (!ok) {
      ::close(fd);
      return state.SkipWithError("pwrite or fdatasync failed");
    }
  }
  ::close(fd);
  state.SetItemsProcessed(state.iterations());
  latency.Report(state);
}
BENCHMARK(BM_KmeDiskFdatasync)->Iterations(300)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_KmeVaultCarve(benchmark::State& state) {
  const uint64_t key_bytes = static_cast<uint64_t>(state.range(0)) / 8;
  TempDir dir;
  Pool pool;
  if (absl::Status s = pool.Open(dir.path(), false, key_bytes); !s.ok()) {
    return state.SkipWithError(s.ToString().c_str());
  }
  if (absl::Status s = pool.AddSpentBlocks(static_cast<int>(state.range(1))); !s.ok()) {
    return state.SkipWithError(s.ToString().c_str());
  }
  if (absl::Status s = pool.Ensure(64); !s.ok()) return state.SkipWithError(s.ToString().c_str());
  Latencies latency(state.max_iterations);
  for (auto _ : state) {
    if (pool.keys_left() < 1) {
      state.PauseTiming();
      absl::Status s = pool.Ensure(1);
      state.ResumeTiming();
      if (!s.ok()) return state.SkipWithError(s.ToString().c_str());
    }
    const Clock::time_point start = Clock::now();
    absl::StatusOr<std::vector<VaultKey>> keys = pool.owner().CarveKeys(kOther, kMasterSae, kSlaveSae, 1, key_bytes);
    latency.Add(Clock::now() - start);
    if (!keys.ok()) return state.SkipWithError(keys.status().ToString().c_str());
    pool.Took(1);
    benchmark::DoNotOptimize(keys->front().key.data());
  }
  state.SetItemsProcessed(state.iterations());
  latency.Report(state);
}
BENCHMARK(BM_KmeVaultCarve)
    ->ArgNames({"size", "spent"})
    ->Args({256, 0})
    ->Args({256, 2000})
    ->Iterations(500)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

void BM_KmeVaultReserveAndDeliver(benchmark::State& state) {
  constexpr uint64_t kKeyBytes = 32;
  constexpr uint64_t kBatch = 62;  // one block's worth, carved in one transaction outside the timed region
  TempDir dir;
  Pool pool;
  if (absl::Status s = pool.Open(dir.path(), true, kKeyBytes); !s.ok()) {
    return state.SkipWithError(s.ToString().c_str());
  }
  std::deque<VaultKey> carved;
  auto refill = [&]() -> absl::Status {
    if (absl::Status s = pool.Ensure(kBatch); !s.ok()) return s;
    absl::StatusOr<std::vector<VaultKey>> keys =
        pool.owner().CarveKeys(kOther, kMasterSae, kSlaveSae, kBatch, kKeyBytes);
    if (!keys.ok()) return keys.status();
    pool.Took(kBatch);
    carved.insert(carved.end(), keys->begin(), keys->end());
    return absl::OkStatus();
  };
  if (absl::Status s = refill(); !s.ok()) return state.SkipWithError(s.ToString().c_str());
  Latencies latency(state.max_iterations);
  for (auto _ : state) {
    if (carved.empty()) {
      state.PauseTiming();
      absl::Status s = refill();
      state.ResumeTiming();
      if (!s.ok()) return state.SkipWithError(s.ToString().c_str());
    }
    const VaultKey key = std::move(carved.front());
    carved.pop_front();
    const Clock::time_point start = Clock::now();
    absl::Status reserved = pool.other().PutReservations(kOwner, ReservationsOf({key}));
    if (!reserved.ok()) return state.SkipWithError(reserved.ToString().c_str());
    absl::StatusOr<std::vector<VaultKey>> delivered = pool.other().DeliverKeys(kSlaveSae, kMasterSae, {key.key_id});
    latency.Add(Clock::now() - start);
    if (!delivered.ok()) return state.SkipWithError(delivered.status().ToString().c_str());
    if (delivered->front().key != key.key) return state.SkipWithError("bob delivered other bytes than alice carved");
  }
  state.SetItemsProcessed(state.iterations());
  latency.Report(state);
}
BENCHMARK(BM_KmeVaultReserveAndDeliver)->Iterations(500)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Bob's side of KeyManagement, as daemon/key_manager.cc serves it: the
// caller must be node alice (its certificate, checked per call as the
// daemon's access policy does), then the reservations go into bob's vault
// (none with vault == nullptr: the RPC alone).
class BobKeyManagement final : public v1::KeyManagement::Service {
 public:
  explicit BobKeyManagement(KeyVault* vault) : vault_(vault) {}
  grpc::Status ReserveKeys(grpc::ServerContext* context, const v1::ReserveKeysRequest* request,
                           v1::ReserveKeysResponse*) override {
    absl::StatusOr<Identity> caller = security::CallerIdentity(*context);
    if (!caller.ok() || caller->role != Role::kNode || caller->node != request->owner()) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "not the owner's node");
    }
    if (vault_ == nullptr) return grpc::Status::OK;
    std::vector<KeyReservation> reservations;
    for (const v1::KeyReservationEntry& e : request->keys()) {
      reservations.push_back({.key_id = e.key_id(), .master_sae = e.master_sae(), .slave_sae = e.slave_sae(),
                              .block_id = e.block_id(), .offset = e.offset(), .size = e.size()});
    }
    absl::Status s = vault_->PutReservations(request->owner(), reservations);
    return s.ok() ? grpc::Status::OK
                  : grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
  }

 private:
  KeyVault* vault_;
};

v1::ReserveKeysRequest ReserveRequestOf(const std::vector<VaultKey>& keys) {
  v1::ReserveKeysRequest request;
  request.set_owner(kOwner);
  for (const VaultKey& k : keys) {
    v1::KeyReservationEntry* e = request.add_keys();
    e->set_key_id(k.key_id);
    e->set_master_sae(k.master_sae);
    e->set_slave_sae(k.slave_sae);
    e->set_block_id(k.block_id);
    e->set_offset(k.offset);
    e->set_size(k.key.size());
  }
  return request;
}

Identity Node(const std::string& node) {
  return Identity{.network = kNetwork, .role = Role::kNode, .node = node, .name = node};
}
Identity App(const std::string& node, const std::string& name) {
  return Identity{.network = kNetwork, .role = Role::kApp, .node = node, .name = name};
}

// Everything of one run: the PKI, both vaults, bob's KeyManagement server
// and alice's channel to it (if asked), alice's ETSI server (if asked).
class Kme : public KeyDeliveryBackend {
 public:
  struct Options {
    bool rpc = false;        // bob's gRPC server and alice's channel
    bool rpc_vault = true;   // bob's handler stores the reservations
    bool etsi = false;       // alice's Etsi014Server
  };

  absl::Status Start(Options options) {
    options_ = options;
    pki_ = dir_.path() / "pki";
    if (absl::Status s = security::InitNetworkPki(pki_, kNetwork, {kOwner, kOther}); !s.ok()) return s;
    if (absl::StatusOr<fs::path> app = security::IssueCertificate(pki_, App(kOwner, kMasterSae)); !app.ok()) {
      return app.status();
    }
    if (absl::Status s = pool_.Open(dir_.path(), true, 32); !s.ok()) return s;
    absl::StatusOr<security::TlsMaterial> alice = security::LoadTls(pki_, Node(kOwner));
    if (!alice.ok()) return alice.status();
    if (options.rpc) {
      absl::StatusOr<security::TlsMaterial> bob = security::LoadTls(pki_, Node(kOther));
      if (!bob.ok()) return bob.status();
      service_ = std::make_unique<BobKeyManagement>(options.rpc_vault ? &pool_.other() : nullptr);
      grpc::ServerBuilder builder;
      builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
      int port = 0;
      builder.AddListeningPort("127.0.0.1:0", security::ServerCredentials(*bob), &port);
      builder.RegisterService(service_.get());
      grpc_server_ = builder.BuildAndStart();
      if (grpc_server_ == nullptr || port <= 0) return absl::UnavailableError("bob's gRPC server did not start");
      channel_ = security::OpenChannel(absl::StrCat("127.0.0.1:", port), kOther, &*alice);
      if (!channel_->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
        return absl::UnavailableError("alice's channel to bob did not connect");
      }
      stub_ = v1::KeyManagement::NewStub(channel_);
    }
    if (options.etsi) {
      Etsi014ServerOptions server;
      server.listen = "127.0.0.1:0";
      server.network = kNetwork;
      server.node = kOwner;
      server.tls = *alice;
      absl::StatusOr<std::unique_ptr<Etsi014Server>> started = Etsi014Server::Start(server, *this);
      if (!started.ok()) return started.status();
      etsi_ = *std::move(started);
    }
    return absl::OkStatus();
  }

  ~Kme() override {
    etsi_.reset();  // clients are gone by now (an idle keep-alive connection would hold this up to 2 s)
    if (grpc_server_ != nullptr) grpc_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }

  // An SAE client of alice's KME with saeA's certificate, checking the
  // KME's certificate (it carries IP:127.0.0.1) against the network's CA.
  // `connections` counts the TCP connections it opens.
  std::unique_ptr<httplib::SSLClient> Client(bool keep_alive, std::atomic<int>& connections) const {
    const std::string stem = security::CertificateStem(App(kOwner, kMasterSae));
    auto client = std::make_unique<httplib::SSLClient>("127.0.0.1", etsi_->port(), (pki_ / (stem + ".crt")).string(),
                                                        (pki_ / (stem + ".key")).string());
    client->set_ca_cert_path((pki_ / "ca.crt").string());
    client->enable_server_certificate_verification(true);
    client->set_keep_alive(keep_alive);
    client->set_connection_timeout(5);
    client->set_read_timeout(10);
    // As curl (TCP_NODELAY on by default); the callback also counts sockets.
    client->set_socket_options([&connections](socket_t sock) {
      int yes = 1;
      ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
      ++connections;
    });
    return client;
  }

  // Alice's ReserveKeys call to bob, as the daemon makes it (10 s deadline here).
  absl::Status Reserve(const std::vector<VaultKey>& keys) {
    const v1::ReserveKeysRequest request = ReserveRequestOf(keys);
    v1::ReserveKeysResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status status = stub_->ReserveKeys(&context, request, &response);
    return status.ok() ? absl::OkStatus()
                       : absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }

  // KeyDeliveryBackend, as daemon/key_manager.cc's EncKeys: carve at the
  // owner, reserve at the other end (directly, or over the RPC), return.
  absl::StatusOr<KeyPoolStatus> Status(const std::string& caller, const std::string& slave) override {
    KeyPoolStatus status;
    status.source_kme_id = kOwner;
    status.target_kme_id = kOther;
    status.master_sae_id = caller;
    status.slave_sae_id = slave;
    status.stored_key_count = pool_.owner().AvailableKeys(kOther, kDefaultKeySizeBits / 8);
    return status;
  }
  absl::StatusOr<std::vector<DeliveredKey>> EncKeys(const std::string& caller, const std::string& slave,
                                                     uint64_t number, uint64_t size_bits,
                                                     const std::vector<std::string>& additional) override {
    if (caller != kMasterSae || slave != kSlaveSae || !additional.empty()) {
      return absl::InvalidArgumentError("the benchmark knows saeA -> saeB only");
    }
    const Clock::time_point start = Clock::now();
    absl::StatusOr<std::vector<VaultKey>> carved =
        pool_.owner().CarveKeys(kOther, caller, slave, number, size_bits / 8);
    if (!carved.ok()) return carved.status();
    absl::Status reserved =
        options_.rpc ? Reserve(*carved) : pool_.other().PutReservations(kOwner, ReservationsOf(*carved));
    if (!reserved.ok()) return absl::UnavailableError(reserved.message());
    std::vector<DeliveredKey> out;
    out.reserve(carved->size());
    for (VaultKey& k : *carved) out.push_back({.key_id = std::move(k.key_id), .key = std::move(k.key)});
    std::lock_guard<std::mutex> lock(mu_);
    backend_.Add(Clock::now() - start);
    return out;
  }
  absl::StatusOr<std::vector<DeliveredKey>> DecKeys(const std::string&, const std::string&,
                                                     const std::vector<std::string>&) override {
    return absl::UnimplementedError("dec_keys is bob's KME's");
  }

  Pool& pool() { return pool_; }
  // The backend's EncKeys times since the last call.
  Latencies TakeBackendTimes() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(backend_, Latencies(1000));
  }

 private:
  TempDir dir_;  // first member: removed last
  fs::path pki_;
  Options options_;
  Pool pool_;
  std::unique_ptr<BobKeyManagement> service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::KeyManagement::Stub> stub_;
  std::unique_ptr<Etsi014Server> etsi_;
  std::mutex mu_;
  Latencies backend_{1000};
};

void BM_KmeReserveRpc(benchmark::State& state) {
  constexpr uint64_t kBatch = 62;
  Kme kme;
  if (absl::Status s = kme.Start({.rpc = true, .rpc_vault = state.range(0) != 0}); !s.ok()) {
    return state.SkipWithError(s.ToString().c_str());
  }
  Pool& pool = kme.pool();
  std::deque<VaultKey> carved;
  auto refill = [&]() -> absl::Status {
    if (absl::Status s = pool.Ensure(kBatch); !s.ok()) return s;
    absl::StatusOr<std::vector<VaultKey>> keys = pool.owner().CarveKeys(kOther, kMasterSae, kSlaveSae, kBatch, 32);
    if (!keys.ok()) return keys.status();
    pool.Took(kBatch);
    carved.insert(carved.end(), keys->begin(), keys->end());
    return absl::OkStatus();
  };
  if (absl::Status s = refill(); !s.ok()) return state.SkipWithError(s.ToString().c_str());
  Latencies latency(state.max_iterations);
  for (auto _ : state) {
    if (carved.empty()) {
      state.PauseTiming();
      absl::Status s = refill();
      state.ResumeTiming();
      if (!s.ok()) return state.SkipWithError(s.ToString().c_str());
    }
    const VaultKey key = std::move(carved.front());
    carved.pop_front();
    const Clock::time_point start = Clock::now();
    absl::Status s = kme.Reserve({key});
    latency.Add(Clock::now() - start);
    if (!s.ok()) return state.SkipWithError(s.ToString().c_str());
  }
  state.SetItemsProcessed(state.iterations());
  latency.Report(state);
}
BENCHMARK(BM_KmeReserveRpc)
    ->ArgName("vault")
    ->Arg(0)
    ->Arg(1)
    ->Iterations(500)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// One enc_keys request per iteration; the pool is refilled between requests
// with the timer paused (the server is idle then: the client is synchronous).
void RunEncKeys(benchmark::State& state, Kme::Options options, bool keep_alive) {
  const uint64_t number = static_cast<uint64_t>(state.range(0));
  options.etsi = true;
  Kme kme;
  if (absl::Status s = kme.Start(options); !s.ok()) return state.SkipWithError(s.ToString().c_str());
  std::atomic<int> connections{0};
  // Declared after kme: destroyed (its connection closed) before the server.
  std::unique_ptr<httplib::SSLClient> client = kme.Client(keep_alive, connections);
  const std::string path = absl::StrCat("/api/v1/keys/", kSlaveSae, "/enc_keys?number=", number, "&size=256");
  Pool& pool = kme.pool();
  auto request = [&]() -> absl::Status {
    httplib::Result result = client->Get(path);
    if (!result) return absl::UnavailableError(absl::StrCat("no answer: ", httplib::to_string(result.error())));
    if (result->status != 200) return absl::InternalError(absl::StrCat("HTTP ", result->status, ": ", result->body));
    pool.Took(number);
    return absl::OkStatus();
  };
  // One request first (the keep-alive client's first connection).
  if (absl::Status s = pool.Ensure(number + 64); !s.ok()) return state.SkipWithError(s.ToString().c_str());
  if (absl::Status s = request(); !s.ok()) return state.SkipWithError(s.ToString().c_str());
  const int connections_before = connections.load();
  (void)kme.TakeBackendTimes();
  Latencies latency(state.max_iterations);
  for (auto _ : state) {
    if (pool.keys_left() < number) {
      state.PauseTiming();
      absl::Status s = pool.Ensure(number);
      state.ResumeTiming();
      if (!s.ok()) return state.SkipWithError(s.ToString().c_str());
    }
    const Clock::time_point start = Clock::now();
    absl::Status s = request();
    latency.Add(Clock::now() - start);
    if (!s.ok()) return state.SkipWithError(s.ToString().c_str());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["keys_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * number), benchmark::Counter::kIsRate);
  state.counters["connections_per_request"] =
      static_cast<double>(connections.load() - connections_before) / static_cast<double>(state.iterations());
  latency.Report(state);
  kme.TakeBackendTimes().Report(state, "backend_");
}

void BM_KmeEncKeys(benchmark::State& state) { RunEncKeys(state, {}, /*keep_alive=*/true); }
BENCHMARK(BM_KmeEncKeys)
    ->ArgName("keys")
    ->Arg(1)
    ->Arg(8)
    ->Iterations(300)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

void BM_KmeEncKeysRpc(benchmark::State& state) { RunEncKeys(state, {.rpc = true}, /*keep_alive=*/true); }
BENCHMARK(BM_KmeEncKeysRpc)
    ->ArgName("keys")
    ->Arg(1)
    ->Arg(8)
    ->Iterations(300)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

void BM_KmeEncKeysNewConnection(benchmark::State& state) { RunEncKeys(state, {}, /*keep_alive=*/false); }
BENCHMARK(BM_KmeEncKeysNewConnection)
    ->ArgName("keys")
    ->Arg(1)
    ->Iterations(300)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
}  // namespace qnet::kme
