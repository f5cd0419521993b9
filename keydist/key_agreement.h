// Key agreement: "N bits of secret key with node B", the service a node's
// applications ask of key distribution. One request runs as a sequence of
// QKD sessions (blocks) through KeyDistribution until the requested number
// of final key bits is shared: a block whose verification caught a residual
// Cascade error is discarded at both ends and rerun (as deployed QKD systems
// do), any other failure ends the request with what was shared before it.
// Every key this node ends up sharing - as the initiator of a request or as
// the responder of another node's session - goes to the node's KeyStore.
// Runs on the node's event loop, sans-I/O like the layers below: both the
// daemon (Node.Qkd) and the simulator (qnetsim --qkd) drive it through the
// node stack.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/lifetime.h"
#include "core/node_context.h"
#include "keydist/key_distribution.h"
#include "keydist/key_store.h"
#include "qkd/bit_string.h"
#include "qkd/decoy_state.h"

namespace qnet::keydist {

inline constexpr uint64_t kMaxKeyRequestBits = 10000000;
inline constexpr uint32_t kDefaultMaxBlocks = 100;

struct KeyRequest {
  std::string peer;
  uint64_t bits = 0;         // final key bits wanted, in 1 .. kMaxKeyRequestBits
  QkdSessionOptions block;   // each block is one session with these options
  uint32_t max_blocks = kDefaultMaxBlocks;  // >= 1, discarded blocks included
};

// One block that gave a key.
struct KeyBlock {
  std::string key_id;
  uint64_t raw_pairs = 0;
  uint64_t sifted_bits = 0;
  double qber = 0.0, qber_z = 0.0, qber_x = 0.0;  // measured on the sample
  double error_correction_efficiency = 0.0;
  uint64_t final_key_bits = 0;      // delivered (privacy amplification's output less auth_bits_consumed)
  uint64_t auth_bits_consumed = 0;  // went back to the authentication pool (QkdResult::auth_bits_consumed)
  std::optional<double> chsh_s, chsh_s_stderr;  // E91
  std::optional<qkd::FiniteKeyDecoyEstimate> decoy;  // decoy-state BB84: Lim et al.'s bounds
  Duration simulated_duration{0};
};

struct KeyAgreementProgress {
  uint32_t block = 0;           // 0-based, among the blocks that gave a key so far
  QkdProgress session;          // the running block's session
  uint64_t total_key_bits = 0;  // shared by the blocks before it
};

struct KeyAgreementResult {
  QkdProtocol protocol = QkdProtocol::kBbm92;
  std::string peer;
  std::vector<std::string> path;         // this node ... peer
  std::vector<std::string> relay_nodes;  // kRelay: the trusted nodes that learned the key
  std::vector<KeyBlock> blocks;
  uint32_t discarded_blocks = 0;
  uint64_t raw_pairs = 0;
  uint64_t sifted_bits = 0;
  qkd::BitString key;  // all blocks' keys, in order
  uint64_t auth_bits_consumed = 0;  // all blocks': authentication key used, not in `key`
  double qber_z = 0.0, qber_x = 0.0;  // pooled over the blocks' samples
  std::optional<double> chsh_s;       // E91: mean over blocks
  double error_correction_efficiency = 0.0;  // mean over blocks that reconciled
  Duration simulated_duration{0};            // from the request to the last key
};

using AgreementId = uint64_t;
// Run on the node's event loop; the done handler also runs inside Cancel
// and AbortAll.
using AgreementProgressHandler = std::function<void(const KeyAgreementProgress&)>;
// Errors: those of KeyDistribution's sessions, prefixed with the block and
// the key bits (and key ids) shared before it; ResourceExhausted when
// max_blocks ran out; FailedPrecondition when a block gave no key bits (too
// few pairs per block for the finite-size bounds); Cancelled.
using AgreementDoneHandler = std::function<void(absl::StatusOr<KeyAgreementResult>)>;

class KeyAgreement {
 public:
  // Takes KeyDistribution's responder handler (other nodes' keys go to
  // `store`). All three must outlive this object.
  KeyAgreement(NodeContext& context, KeyDistribution& sessions, KeyStore& store);
  // Cancels the running blocks; no handler runs.
  ~KeyAgreement();
  KeyAgreement(const KeyAgreement&) = delete;
  KeyAgreement& operator=(const KeyAgreement&) = delete;

  // InvalidArgument naming the field, or the first block's immediate error
  // (e.g. NotFound "NO_ROUTE: ..."). `progress` may be empty.
  absl::StatusOr<AgreementId> Start(KeyRequest request, AgreementProgressHandler progress,
                                    AgreementDoneHandler done);
  // The done handler gets Cancelled before Cancel returns. False if the id
  // is not running.
  bool Cancel(AgreementId id);
  // Ends every running request with `status` (its done handler runs before
  // this returns): key distribution is being stopped under them.
  void AbortAll(const absl::Status& status);

  // Sees every responder-side result after the store did (logs, tests).
  void SetResponderObserver(ResponderHandler observer) { responder_observer_ = std::move(observer); }

  size_t active() const { return requests_.size(); }
  KeyStore& store() { return store_; }

 private:
  struct Running {
    KeyRequest request;
    AgreementProgressHandler progress;
    AgreementDoneHandler done;
    TimePoint started;
    SessionId session = 0;
    bool session_running = false;
    KeyAgreementResult result;
    uint64_t z_sampled = 0, z_errors = 0, x_sampled = 0, x_errors = 0;
    double chsh_sum = 0.0;
    double efficiency_sum = 0.0;
    uint32_t efficiency_blocks = 0;
  };

  absl::Status StartBlock(AgreementId id);
  void OnBlockDone(AgreementId id, absl::StatusOr<QkdResult> result);
  void Finish(AgreementId id, absl::StatusOr<KeyAgreementResult> outcome);
  void Store(const QkdResult& result);

  NodeContext& context_;
  KeyDistribution& sessions_;
  KeyStore& store_;
  ResponderHandler responder_observer_;
  AgreementId next_id_ = 1;
  absl::flat_hash_map<AgreementId, Running> requests_;
  Lifetime lifetime_;
};

}  // namespace qnet::keydist
