// The daemon's teleportation front end, run on the event loop. As the
// source it turns a client's Node.Teleport call into `shots` transport-layer
// transfers of the same state (a few in flight at a time) and streams each
// shot's outcome back, then a summary: the state reconstructed from the
// destination's X/Y/Z outcomes alone (transport::EstimateFromOutcomes), and,
// labelled simulation-only, the simulated qubit's true fidelity. As the
// destination it is every node's transport receiver: it measures each
// arriving qubit in X, Y or Z (by the transfer id mod 3, a choice fixed before
// the qubit arrives), frees it and sends the outcome to the source in a
// network datagram.
#pragma once

#include <chrono>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/lifetime.h"
#include "core/node_context.h"
#include "daemon/lag_monitor.h"
#include "daemon/log.h"
#include "network/network_layer.h"
#include "physical/quantum_device.h"
#include "qnet/v1/node_service.pb.h"
#include "transport/transport_layer.h"

namespace qnet::daemon {

// The datagram purpose id of the destination's measurement reports.
inline constexpr uint32_t kTeleportReportPurposeId = 0x3F000010;
inline constexpr uint32_t kMaxTeleportShots = 100000;
// Transfers a call keeps submitted at once: one running, one queued behind
// it in the transport layer, so a failure leaves little behind.
inline constexpr int kTeleportShotsInFlight = 2;

class TeleportService {
 public:
  struct Stream {
    std::function<void(v1::TeleportEvent)> event;
    std::function<void(absl::Status)> end;  // exactly once
  };
  using CallHandle = uint64_t;

  // `truth` (may be null) answers the simulation-only fidelity.
  TeleportService(NodeContext& context, transport::TransportLayer& transport, network::NetworkLayer& network,
                  physical::QuantumDevice& device, physical::SimulatedDevice* truth, const LagMonitor& lag,
                  const Logger& log);
  ~TeleportService();
  TeleportService(const TeleportService&) = delete;
  TeleportService& operator=(const TeleportService&) = delete;

  // Registers the transport receiver and the report datagram receiver.
  absl::Status Start();

  // Validates (InvalidArgument naming the field) and starts the call.
  absl::StatusOr<CallHandle> Teleport(const v1::TeleportRequest& request, Stream stream);
  // The client went away: no further shots.
  void Cancel(CallHandle call);

  size_t active_calls() const { return calls_.size(); }

  // As EntanglementService::EnableProgress: a TeleportProgress event about
  // every `every` of wall time while no shot completes.
  using WallTimerStarter = std::function<void(std::chrono::milliseconds after, std::function<void()> fire)>;
  void EnableProgress(WallTimerStarter start_timer, std::chrono::milliseconds every = std::chrono::seconds(1));

 private:
  struct Call {
    v1::TeleportRequest request;
    transport::BlochAngles state;
    Stream stream;
    TimePoint started;
    LagMonitor::Mark lag_mark;
    uint32_t submitted = 0;
    uint32_t done = 0;
    int in_flight = 0;
    transport::AxisCounts counts[3];  // X, Y, Z
    double pair_fidelity_sum = 0.0;
    uint32_t pairs_discarded = 0;
    double truth_sum = 0.0, truth_min = 1.0;
    uint32_t truth_shots = 0;
    LagMonitor::Clock::time_point last_shot_wall;  // or the start
    LagMonitor::Clock::time_point last_progress_wall;
  };
  // One submitted transfer: the transport's report and the destination's
  // measurement report may come in either order.
  struct Shot {
    CallHandle call = 0;
    TimePoint started;
    std::optional<transport::TeleportReport> transfer;
    bool measured = false;
    int axis = 0;  // 0 X, 1 Y, 2 Z
    int outcome = 0;
    double truth = -1.0;
    TimerId report_deadline = kNoTimer;
  };

  void Submit(CallHandle handle);
  void OnTransferDone(transport::TransferId id, absl::StatusOr<transport::TeleportReport> result);
  void OnReport(const std::string& source, const std::string& payload);
  void MaybeFinishShot(transport::TransferId id);
  void EndCall(CallHandle handle, absl::Status status);
  void ScheduleProgress(CallHandle handle);
  v1::TeleportProgress Progress(const Call& call) const;
  // Destination.
  void OnQubit(const transport::ReceiveEvent& event);
  void MeasureAndReport(const transport::QubitReceived& qubit, double bloch_x, double bloch_y, double bloch_z);

  NodeContext& context_;
  transport::TransportLayer& transport_;
  network::NetworkLayer& network_;
  physical::QuantumDevice& device_;
  physical::SimulatedDevice* truth_;
  const LagMonitor& lag_;
  const Logger& log_;
  WallTimerStarter start_wall_timer_;  // empty: no progress events
  std::chrono::milliseconds progress_every_{1000};
  CallHandle next_call_ = 1;
  absl::flat_hash_map<CallHandle, Call> calls_;
  absl::flat_hash_map<transport::TransferId, Shot> shots_;
  Lifetime lifetime_;  // last: ends before the members its callbacks use
};

}  // namespace qnet::daemon
