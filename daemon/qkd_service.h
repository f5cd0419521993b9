// The daemon's QKD front end, run on the event loop: it turns a client's
// Node.Qkd call into key-distribution sessions (keydist::KeyDistribution,
// one session per block) until the requested number of final key bits is
// shared, streams their progress and sums them up (QBER per basis, CHSH for
// E91, Cascade efficiency, key rates per simulated and per wall second).
// Every key this node ends up sharing - as the initiator or as the
// responder of another node's session - is kept by key id (bounded), so
// each end's application can fetch it (Node.GetKey, after ETSI GS QKD 014).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/node_context.h"
#include "daemon/log.h"
#include "keydist/key_distribution.h"
#include "qnet/v1/node_service.pb.h"

namespace qnet::daemon {

inline constexpr uint32_t kMaxQkdBits = 10000000;
inline constexpr uint32_t kDefaultPairsPerBlock = 20000;
inline constexpr uint32_t kMaxPairsPerBlock = 1000000;
inline constexpr uint32_t kDefaultMaxBlocks = 100;
inline constexpr double kDefaultQkdBlockTimeoutS = 600.0;
// Keys kept for GetKey (oldest dropped first).
inline constexpr size_t kKeyStoreCapacity = 4096;

// Lower-case hex of the bits, 4 per digit, most significant first within
// each nibble of bit indices (bit 0 is the top bit of the first digit); a
// last partial nibble is padded with zeros.
std::string KeyHex(const qkd::BitString& key);

class QkdService {
 public:
  struct Stream {
    std::function<void(v1::QkdEvent)> event;
    std::function<void(absl::Status)> end;  // exactly once
  };
  using CallHandle = uint64_t;

  QkdService(NodeContext& context, keydist::KeyDistribution& keys, const Logger& log);
  ~QkdService();
  QkdService(const QkdService&) = delete;
  QkdService& operator=(const QkdService&) = delete;

  // Starts serving other nodes' sessions (their keys go to the store).
  void Start();

  // Validates (InvalidArgument naming the field) and starts the first block.
  absl::StatusOr<CallHandle> Qkd(const v1::QkdRequest& request, Stream stream);
  // The client went away: the running block is cancelled.
  void Cancel(CallHandle call);

  absl::StatusOr<v1::GetKeyResponse> GetKey(const v1::GetKeyRequest& request) const;

 private:
  struct Call {
    v1::QkdRequest request;
    keydist::QkdSessionOptions options;
    Stream stream;
    TimePoint started;
    absl::Time wall_started;
    keydist::SessionId session = 0;
    bool running = false;
    v1::QkdSummary summary;
    qkd::BitString key;
    uint64_t z_sampled = 0, z_errors = 0, x_sampled = 0, x_errors = 0;
    double chsh_sum = 0.0;
    double efficiency_sum = 0.0;
    uint32_t efficiency_blocks = 0;
    uint32_t discarded_blocks = 0;  // verification found residual errors
  };
  struct StoredKey {
    std::string peer;
    std::string protocol;
    qkd::BitString bits;
  };

  // Starts the call's next block (its first: Qkd() returns the error).
  absl::Status StartBlock(CallHandle handle);
  void OnBlockDone(CallHandle handle, absl::StatusOr<keydist::QkdResult> result);
  void EndCall(CallHandle handle, absl::Status status);
  void Store(const keydist::QkdResult& result);

  NodeContext& context_;
  keydist::KeyDistribution& keys_;
  const Logger& log_;
  CallHandle next_call_ = 1;
  absl::flat_hash_map<CallHandle, Call> calls_;
  absl::flat_hash_map<std::string, StoredKey> store_;
  std::deque<std::string> store_order_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace qnet::daemon
