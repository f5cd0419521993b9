// The daemon's circuit front end, run on the event loop: turns a client's
// Node.RunCircuit call into one run of the node's DistributedCircuit (this
// node coordinates; transport/distributed_circuit.h runs the instructions
// at the nodes that hold the qubits, through the peer daemons) and answers
// with the distribution of outcomes and the software-lag account.
#pragma once

#include <cstdint>
#include <chrono>
#include <functional>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/lifetime.h"
#include "core/node_context.h"
#include "daemon/lag_monitor.h"
#include "daemon/log.h"
#include "qnet/v1/node_service.pb.h"
#include "transport/distributed_circuit.h"

namespace qnet::daemon {

inline constexpr uint32_t kMaxCircuitShots = 100000;
inline constexpr size_t kMaxCircuitProgramBytes = 64 * 1024;

class CircuitService {
 public:
  struct Stream {
    std::function<void(v1::RunCircuitEvent)> event;
    std::function<void(absl::Status)> end;  // exactly once
  };
  using CallHandle = uint64_t;

  CircuitService(NodeContext& context, transport::DistributedCircuit& circuits, const LagMonitor& lag,
                 const Logger& log);
  ~CircuitService();
  CircuitService(const CircuitService&) = delete;
  CircuitService& operator=(const CircuitService&) = delete;

  // Validates (InvalidArgument naming the field or the program's line) and
  // starts the call.
  absl::StatusOr<CallHandle> RunCircuit(const v1::RunCircuitRequest& request, Stream stream);
  // The client went away: the run ends at every node.
  void Cancel(CallHandle call);

  size_t active_calls() const { return calls_.size(); }

  // A ShotProgress event about every `every` of wall time while a call runs
  // (wall timers of the loop, not physics timers). Off until enabled.
  using WallTimerStarter = std::function<void(std::chrono::milliseconds after, std::function<void()> fire)>;
  void EnableProgress(WallTimerStarter start_timer, std::chrono::milliseconds every = std::chrono::seconds(1));

 private:
  struct Call {
    transport::CircuitRunId run = 0;
    Stream stream;
    LagMonitor::Mark lag_mark;
    uint32_t shots = 0;
    TimePoint started;
  };

  void OnRunDone(CallHandle handle, absl::StatusOr<transport::CircuitReport> report);

  NodeContext& context_;
  transport::DistributedCircuit& circuits_;
  const LagMonitor& lag_;
  const Logger& log_;
  void ScheduleProgress(CallHandle handle);

  WallTimerStarter start_wall_timer_;  // empty: no progress events
  std::chrono::milliseconds progress_every_{1000};
  CallHandle next_call_ = 1;
  absl::flat_hash_map<CallHandle, Call> calls_;
  Lifetime lifetime_;  // last: ends before the members its callbacks use
};

}  // namespace qnet::daemon
