// The daemon's QKD front end: Node.Qkd and Node.GetKey translated to the
// node stack's key agreement (keydist::KeyAgreement: QKD sessions in blocks
// until the requested key bits are shared) and key store, and back. It
// validates the request's fields, streams progress, and adds what only the
// daemon knows: wall-clock duration and key rate per wall second.
#pragma once

#include <cstdint>
#include <functional>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/lag_monitor.h"
#include "daemon/log.h"
#include "keydist/key_agreement.h"
#include "keydist/key_store.h"
#include "stack/node_stack.h"
#include "qnet/v1/node_service.pb.h"

namespace qnet::daemon {

inline constexpr uint32_t kDefaultPairsPerBlock = 20000;
inline constexpr uint32_t kMaxPairsPerBlock = 1000000;
// BB84 pulses: the decoy-state finite key needs millions per block.
inline constexpr uint32_t kMaxPulsesPerBlock = 10000000;
inline constexpr uint32_t kDefaultDecoyPulsesPerBlock = 4000000;
inline constexpr double kDefaultQkdBlockTimeoutS = 600.0;

// The key request a Node.Qkd call asks for (InvalidArgument naming the field).
absl::StatusOr<keydist::KeyRequest> ToKeyRequest(const v1::QkdRequest& request);

class QkdService {
 public:
  struct Stream {
    std::function<void(v1::QkdEvent)> event;
    std::function<void(absl::Status)> end;  // exactly once
  };
  using CallHandle = keydist::AgreementId;

  // Logs the keys other nodes' sessions leave here. Both must outlive this.
  // The node's key agreement is looked up per call: key distribution may be
  // stopped (Unavailable) and started again.
  QkdService(stack::NodeStack& node, const LagMonitor& lag, const Logger& log);
  ~QkdService();
  QkdService(const QkdService&) = delete;
  QkdService& operator=(const QkdService&) = delete;

  absl::StatusOr<CallHandle> Qkd(const v1::QkdRequest& request, Stream stream);
  // The client went away: the running block is cancelled.
  void Cancel(CallHandle call);

  absl::StatusOr<v1::GetKeyResponse> GetKey(const v1::GetKeyRequest& request) const;

 private:
  // The running key agreement, with this service's responder log attached.
  absl::StatusOr<keydist::KeyAgreement*> Agreement();

  stack::NodeStack& node_;
  const LagMonitor& lag_;
  const Logger& log_;
  keydist::KeyAgreement* observed_ = nullptr;  // the agreement our responder log is attached to
};

}  // namespace qnet::daemon
