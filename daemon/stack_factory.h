// The seam between the daemon runtime and a node's protocol stack. The
// daemon builds the stack once, before its event loop starts, through a
// StackFactory, and then drives it on the loop thread: peer messages and
// neighbour up/down go to the stack's PeerMessageSink; the stack acts only
// through the NodeContext and StateBackend it was given.
//
// qnetd uses DefaultStackFactory(): the real stack::NodeStack (device,
// physical and link layers). LoggingStack, which only logs what it receives,
// remains for transport tests that run without a network file.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "config/network_config.h"
#include "core/node_context.h"
#include "daemon/log.h"
#include "daemon/topology.h"
#include "link/link_layer.h"
#include "network/network_layer.h"
#include "physical/physical_layer.h"
#include "physical/quantum_device.h"
#include "physical/state_backend.h"
#include "transport/transport_layer.h"

namespace qnet::daemon {

// What a stack is built from. References stay valid for the stack's life.
struct StackEnvironment {
  NodeContext& context;
  physical::StateBackend& backend;
  const DaemonTopology& topology;
  const config::NetworkConfig* network;  // the parsed network file; null when built without one (tests)
  const Logger& log;
  double time_scale = 1.0;  // simulated seconds per wall-clock second
};

// A built stack: the sink the daemon delivers into, plus optional hooks the
// daemon's Node service reports from (called on the loop thread).
struct StackHandle {
  std::unique_ptr<PeerMessageSink> sink;
  std::function<uint32_t()> memory_qubits_in_use;  // may be empty
  // The stack's link layer, for the Node service's Entangle; null when the
  // stack has none (LoggingStack): Entangle then answers UNIMPLEMENTED.
  link::LinkLayer* link = nullptr;
  physical::QuantumDevice* device = nullptr;  // with `link`: where KEEP pairs are freed
  network::NetworkLayer* network = nullptr;   // end-to-end requests and routes; null without a stack
  transport::TransportLayer* transport = nullptr;  // Node.Teleport; null without a stack
  physical::PhysicalLayer* physical = nullptr;     // run-time link faults (eavesdropper)
  // Simulation-only ground truth for reports labelled as such (null: none).
  physical::SimulatedDevice* simulated_device = nullptr;
};

using StackFactory = std::function<absl::StatusOr<StackHandle>(const StackEnvironment&)>;

// Logs every message and neighbour event; the stand-in until the link layer.
class LoggingStack final : public PeerMessageSink {
 public:
  explicit LoggingStack(const Logger& log) : log_(log) {}
  void OnPeerMessage(const std::string& from, const v1::PeerMessage& message) override;
  void OnNeighbourUp(const std::string& neighbour) override;
  void OnNeighbourDown(const std::string& neighbour) override;

 private:
  const Logger& log_;
};

StackFactory LoggingStackFactory();
// stack::NodeStack from the network file (FailedPrecondition without one).
StackFactory NodeStackFactory();
// What qnetd builds (and a Daemon whose options name no factory):
// NodeStackFactory() given a network file, else LoggingStack (transport tests).
StackFactory DefaultStackFactory();

}  // namespace qnet::daemon
