#include "daemon/stack_factory.h"

namespace qnet::daemon {

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

StackFactory DefaultStackFactory() { return LoggingStackFactory(); }

}  // namespace qnet::daemon
