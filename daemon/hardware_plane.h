// The hardware plane over gRPC: the HardwarePlane service a daemon serves
// (posting every request into its event loop, where the
// DistributedStateBackend answers) and the client transport the backend uses
// to reach other daemons.
#pragma once

#include <memory>
#include <mutex>
#include <set>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "daemon/access_policy.h"
#include "daemon/distributed_state_backend.h"
#include "daemon/event_loop.h"
#include "daemon/peer_directory.h"
#include "daemon/peer_stream.h"
#include "qnet/v1/hardware_service.grpc.pb.h"

namespace qnet::daemon {

v1::GroupState GroupToProto(const quantum::GroupState& group);
// InvalidArgument if the matrix does not fit the members.
absl::StatusOr<quantum::GroupState> GroupFromProto(const v1::GroupState& proto);

class HardwarePlaneClient final : public HardwarePlaneTransport {
 public:
  // Each move RPC waits at most `deadline` (wall time).
  HardwarePlaneClient(std::string self, PeerDirectory& directory, std::shared_ptr<LoopPoster> poster,
                      std::shared_ptr<CallCounter> calls,
                      WallClock::duration deadline = std::chrono::seconds(10));
  void RequestMove(const std::string& holder, QubitId qubit, bool by_hint,
                   std::function<void(absl::StatusOr<MoveReply>)> done) override;
  void SendDiscard(const std::string& holder, QubitId qubit, uint32_t hops) override;
  void HandOver(const std::string& to, quantum::GroupState group, std::function<void(quantum::GroupState)> failed,
                std::function<void()> arrived) override;
  // Cancels every call in flight and refuses new ones (shutdown); thread-safe.
  void CancelAll();

 private:
  struct Call;
  // The calls in flight. Shared with their completion callbacks, which gRPC
  // may run after this client is gone (a call started while the daemon
  // tears its stack down).
  struct LiveCalls {
    std::mutex mu;
    std::set<grpc::ClientContext*> live;
    bool cancelled = false;
    // False once cancelled: the call is not started.
    bool Track(grpc::ClientContext* context);
    void Untrack(grpc::ClientContext* context);
  };

  const std::string self_;
  PeerDirectory& directory_;
  std::shared_ptr<LoopPoster> poster_;
  std::shared_ptr<CallCounter> calls_;
  const WallClock::duration deadline_;
  const std::shared_ptr<LiveCalls> live_ = std::make_shared<LiveCalls>();
};

// Raw methods: an unparseable request gets INVALID_ARGUMENT (raw_messages.h).
using RawHardwarePlaneService = v1::HardwarePlane::WithRawCallbackMethod_MoveGroup<
    v1::HardwarePlane::WithRawCallbackMethod_DiscardQubit<
        v1::HardwarePlane::WithRawCallbackMethod_HandOver<v1::HardwarePlane::Service>>>;

class HardwarePlaneService final : public RawHardwarePlaneService {
 public:
  // Every call is checked against `policy` (a node acting as itself).
  HardwarePlaneService(DistributedStateBackend& backend, std::shared_ptr<LoopPoster> poster,
                       const AccessPolicy& policy)
      : backend_(backend), poster_(std::move(poster)), policy_(policy) {}

  grpc::ServerUnaryReactor* MoveGroup(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* DiscardQubit(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                         grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* HandOver(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
 private:
  DistributedStateBackend& backend_;
  std::shared_ptr<LoopPoster> poster_;
  const AccessPolicy& policy_;
};

}  // namespace qnet::daemon
