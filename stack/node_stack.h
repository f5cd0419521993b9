// One node, built once: the simulated device, the physical layer, the link,
// network and transport layers (teleportation, GHZ states, circuits across
// nodes), and key distribution (QKD sessions, the key agreement policy that
// runs them in blocks, and the node's key store),
// composed over the node's NodeContext and a StateBackend from the network
// file. It is the node's PeerMessageSink: each PeerMessage goes to the layer
// that owns its branch, and neighbour up/down reach every layer. The
// simulator (netsim::SimulatedNetwork, qnetsim, the protocol tests and
// benchmarks) and the daemon (qnetd) build this same object, so they run the
// same protocol code; the daemon only translates gRPC to its API and back.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "config/network_config.h"
#include "core/node_context.h"
#include "keydist/authentication.h"
#include "keydist/key_agreement.h"
#include "keydist/key_distribution.h"
#include "keydist/key_store.h"
#include "link/link_layer.h"
#include "network/network_layer.h"
#include "physical/physical_layer.h"
#include "physical/quantum_device.h"
#include "physical/state_backend.h"
#include "transport/distributed_circuit.h"
#include "transport/ghz_distribution.h"
#include "transport/transport_layer.h"

namespace qnet::stack {

struct NodeStackOptions {
  link::LinkLayerOptions link;
  network::NetworkLayerOptions network;
  transport::TransportLayerOptions transport;
  keydist::KeyDistributionOptions key_distribution;
  // Where the authentication pools are kept across restarts (qnetd: the
  // KME vault); null keeps them in memory (keydist/authentication.h).
  std::shared_ptr<keydist::AuthenticationPoolStore> authentication_store;
};

// The network file's nodes and links as the network layer checks adverts
// against them. NodeStack::Build makes one when its options carry none; a
// runtime building many stacks of one file makes it once and shares it.
std::shared_ptr<const network::KnownTopology> KnownTopologyOf(const config::NetworkConfig& config);

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
  // GHZ states across nodes (this node as root or member).
  transport::GhzDistribution& ghz() { return *ghz_; }
  // Circuits across nodes (this node as coordinator or holding qubits).
  transport::DistributedCircuit& circuits() { return *circuits_; }
  // Key distribution runs unless stopped (StopKeyDistribution); these are
  // then null.
  keydist::KeyDistribution* key_distribution() { return key_distribution_.get(); }
  keydist::KeyAgreement* key_agreement() { return key_agreement_.get(); }
  // The node's keys: kept across a stop and start of key distribution.
  keydist::KeyStore& key_store() { return *key_store_; }

  // Fault injection, partial nodes: key distribution stops here (key requests
  // end with Unavailable, sessions without handlers; layers below run on), starts
  // again, with or without the physical layer's photons (without them this
  // node neither starts nor answers BB84).
  void StopKeyDistribution();
  absl::Status StartKeyDistribution(bool with_photons = true);

  // Memory slots allocated now (pairs held by any layer or above).
  uint32_t memory_qubits_in_use() const;

  void OnPeerMessage(const std::string& from, const v1::PeerMessage& message) override;
  void OnNeighbourUp(const std::string& neighbour) override;
  void OnNeighbourDown(const std::string& neighbour) override;

  // PeerMessages with no layer branch set.
  uint64_t unroutable_messages() const { return unroutable_messages_; }

 private:
  NodeStack(NodeContext& context, keydist::KeyDistributionOptions key_options)
      : context_(context), key_options_(key_options) {}

  NodeContext& context_;
  std::unique_ptr<physical::SimulatedDevice> device_;
  std::unique_ptr<physical::PhysicalLayer> physical_;
  std::unique_ptr<link::LinkLayer> link_;
  std::unique_ptr<network::NetworkLayer> network_;
  std::unique_ptr<transport::TransportLayer> transport_;
  std::unique_ptr<transport::GhzDistribution> ghz_;
  std::unique_ptr<transport::DistributedCircuit> circuits_;
  keydist::KeyDistributionOptions key_options_;
  std::unique_ptr<keydist::KeyStore> key_store_ = std::make_unique<keydist::MemoryKeyStore>();
  std::unique_ptr<keydist::KeyDistribution> key_distribution_;
  std::unique_ptr<keydist::KeyAgreement> key_agreement_;  // goes before key_distribution_
  uint64_t unroutable_messages_ = 0;
};

}  // namespace qnet::stack
