#include "daemon/stack_factory.h"

#include <algorithm>

#include "stack/node_stack.h"

namespace qnet::daemon {
namespace {
// Wall-clock seconds a message between two local daemons may take.
constexpr double kWallMessageLatencyBudgetS = 0.02;
}  // namespace

void LoggingStack::OnPeerMessage(const std::string& from, const v1::PeerMessage& message) {
  QNET_LOG(log_, kInfo, "message from %s: %s", from, message.ShortDebugString());
}

void LoggingStack::OnNeighbourUp(const std::string& neighbour) {
  QNET_LOG(log_, kDebug, "stack: neighbour %s up", neighbour);
}

void LoggingStack::OnNeighbourDown(const std::string& neighbour) {
  QNET_LOG(log_, kDebug, "stack: neighbour %s down", neighbour);
}

StackFactory LoggingStackFactory() {
  return [](const StackEnvironment& env) -> absl::StatusOr<StackHandle> {
    return StackHandle{.sink = std::make_unique<LoggingStack>(env.log), .memory_qubits_in_use = nullptr};
  };
}

StackFactory NodeStackFactory() {
  return [](const StackEnvironment& env) -> absl::StatusOr<StackHandle> {
    if (env.network == nullptr) {
      return absl::FailedPreconditionError("the protocol stack needs the network file (--network)");
    }
    // Messages between daemons take real time (gRPC, scheduling: a few ms
    // of wall time), which is S times as much simulated time: the link
    // layer's retransmission timeout and herald watchdog must not start
    // below that, or live generations are abandoned as lost.
    stack::NodeStackOptions options;
    options.link.min_retransmit_timeout =
        std::max(options.link.min_retransmit_timeout, FromSeconds(kWallMessageLatencyBudgetS * env.time_scale));
    absl::StatusOr<std::unique_ptr<stack::NodeStack>> built =
        stack::NodeStack::Build(env.context, env.backend, *env.network, options);
    if (!built.ok()) return built.status();
    stack::NodeStack* node_stack = built->get();
    StackHandle handle;
    handle.link = &node_stack->link();
    handle.device = &node_stack->device();
    handle.network = &node_stack->network();
    handle.transport = &node_stack->transport();
    handle.physical = &node_stack->physical();
    handle.simulated_device = &node_stack->device();
    handle.memory_qubits_in_use = [node_stack] {
      physical::SimulatedDevice& device = node_stack->device();
      uint32_t in_use = 0;
      for (int slot = 0; slot < device.num_slots(); ++slot) in_use += device.IsAllocated(slot) ? 1 : 0;
      return in_use;
    };
    handle.sink = *std::move(built);
    return handle;
  };
}

StackFactory DefaultStackFactory() {
  return [](const StackEnvironment& env) -> absl::StatusOr<StackHandle> {
    if (env.network == nullptr) return LoggingStackFactory()(env);
    return NodeStackFactory()(env);
  };
}

}  // namespace qnet::daemon
