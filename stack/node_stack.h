// One node's protocol stack: the simulated device, the physical layer and the
// link, network and transport layers composed over the
// node's NodeContext and a StateBackend, built from the network file. It is
// the node's PeerMessageSink: each PeerMessage goes to the layer that owns its
// branch, and neighbour up/down reach every layer. The simulator and the
// daemon both build this same object, so they run the same protocol code.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "config/network_config.h"
#include "core/node_context.h"
#include "link/link_layer.h"
#include "network/network_layer.h"
#include "physical/physical_layer.h"
#include "physical/quantum_device.h"
#include "physical/state_backend.h"
#include "transport/transport_layer.h"

namespace qnet::stack {

struct NodeStackOptions {
  link::LinkLayerOptions link;
  network::NetworkLayerOptions network;
  transport::TransportLayerOptions transport;
};

class NodeStack final : public PeerMessageSink {
 public:
  // The node is context.node_name(). InvalidArgument if the config does not
  // name it or its links are inconsistent. `context` and `backend` must
  // outlive the stack.
  static absl::StatusOr<std::unique_ptr<NodeStack>> Build(NodeContext& context, physical::StateBackend& backend,
                                                          const config::NetworkConfig& config,
                                                          NodeStackOptions options = {});
  // Layers go top-down; then every memory slot still allocated (e.g. KEEP
  // pairs held above) is freed: a stack that goes away loses its memory.
  ~NodeStack() override;
  NodeStack(const NodeStack&) = delete;
  NodeStack& operator=(const NodeStack&) = delete;

  const std::string& node_name() const { return context_.node_name(); }
  physical::SimulatedDevice& device() { return *device_; }
  physical::PhysicalLayer& physical() { return *physical_; }
  link::LinkLayer& link() { return *link_; }
  network::NetworkLayer& network() { return *network_; }
  transport::TransportLayer& transport() { return *transport_; }

  void OnPeerMessage(const std::string& from, const v1::PeerMessage& message) override;
  void OnNeighbourUp(const std::string& neighbour) override;
  void OnNeighbourDown(const std::string& neighbour) override;

  // PeerMessages with no layer branch set.
  uint64_t unroutable_messages() const { return unroutable_messages_; }

 private:
  explicit NodeStack(NodeContext& context) : context_(context) {}

  NodeContext& context_;
  std::unique_ptr<physical::SimulatedDevice> device_;
  std::unique_ptr<physical::PhysicalLayer> physical_;
  std::unique_ptr<link::LinkLayer> link_;
  std::unique_ptr<network::NetworkLayer> network_;
  std::unique_ptr<transport::TransportLayer> transport_;
  uint64_t unroutable_messages_ = 0;
};

}  // namespace qnet::stack
