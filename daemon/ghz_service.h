// The daemon's GHZ front end, run on the event loop: turns a client's
// Node.Ghz call into one request of the node's GHZ distribution (this node
// the root; transport/ghz_distribution.h does the pairs, the fusion and every
// member's measurement through the peer daemons) and answers with the
// outcome tallies per setting and the software-lag account. The estimate
// (fidelity, Mermin value) is the client's to compute from the tallies
// (apps/ghz_statistics.h): the daemon reports what was measured.
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
#include "transport/ghz_distribution.h"

namespace qnet::daemon {

inline constexpr uint32_t kMaxGhzShots = 100000;

class GhzService {
 public:
  struct Stream {
    std::function<void(v1::GhzEvent)> event;
    std::function<void(absl::Status)> end;  // exactly once
  };
  using CallHandle = uint64_t;

  GhzService(NodeContext& context, transport::GhzDistribution& ghz, const LagMonitor& lag, const Logger& log);
  ~GhzService();
  GhzService(const GhzService&) = delete;
  GhzService& operator=(const GhzService&) = delete;

  // Validates (InvalidArgument naming the field; the distribution's own
  // errors, e.g. NotFound NO_ROUTE) and starts the call.
  absl::StatusOr<CallHandle> Ghz(const v1::GhzRequest& request, Stream stream);
  // The client went away: the request ends at every node.
  void Cancel(CallHandle call);

  size_t active_calls() const { return calls_.size(); }

  // A ShotProgress event about every `every` of wall time while a call runs
  // (wall timers of the loop, not physics timers). Off until enabled.
  using WallTimerStarter = std::function<void(std::chrono::milliseconds after, std::function<void()> fire)>;
  void EnableProgress(WallTimerStarter start_timer, std::chrono::milliseconds every = std::chrono::seconds(1));

 private:
  struct Call {
    transport::GhzRunId run = 0;
    Stream stream;
    LagMonitor::Mark lag_mark;
    uint32_t shots = 0;
    TimePoint started;
  };

  void OnRunDone(CallHandle handle, absl::StatusOr<transport::GhzReport> report);

  NodeContext& context_;
  transport::GhzDistribution& ghz_;
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
