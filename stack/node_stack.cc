#include "stack/node_stack.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/rng.h"
#include "core/status.h"
#include "keydist/authentication.h"

namespace qnet::stack {

std::shared_ptr<const network::KnownTopology> KnownTopologyOf(const config::NetworkConfig& config) {
  auto topology = std::make_shared<network::KnownTopology>();
  topology->nodes.reserve(config.nodes.size());
  for (const config::NodeConfig& n : config.nodes) topology->nodes.insert(n.name);
  topology->links.reserve(config.links.size());
  for (const physical::LinkPhysics& l : config.links) topology->AddLink(l.node_a, l.node_b);
  return topology;
}

absl::StatusOr<std::unique_ptr<NodeStack>> NodeStack::Build(NodeContext& context, physical::StateBackend& backend,
                                                            const config::NetworkConfig& config,
                                                            NodeStackOptions options) {
  const std::string& self = context.node_name();
  const config::NodeConfig* node = config.FindNode(self);
  if (node == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("the network file ", config.source, " has no node named '", self, "'"));
  }
  std::vector<physical::PhysicalLink> links;
  for (const physical::LinkPhysics& physics : config.links) {
    if (physics.node_a != self && physics.node_b != self) continue;
    const std::string& far = physics.node_a == self ? physics.node_b : physics.node_a;
    const config::NodeConfig* far_node = config.FindNode(far);
    if (far_node == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("link ", physics.name, " leads to '", far, "', which the network file does not define"));
    }
    links.push_back({physics, far_node->hardware});
  }

  if (options.network.adverts.topology == nullptr) options.network.adverts.topology = KnownTopologyOf(config);
  // The bootstrap of every pair's authentication pool (keydist/authentication.h):
  // the network file stands in for a secret installed out of band, which a
  // real deployment would use instead. One pool set per stack, kept across
  // restarts of key distribution so that no pad is used twice.
  if (options.key_distribution.authentication == nullptr) {
    const uint64_t secret =
        Rng(config.seed.value_or(0)).Fork(absl::StrCat("authentication-bootstrap|", config.name)).NextU64();
    options.key_distribution.authentication = std::make_shared<keydist::AuthenticationPools>(
        self, secret, keydist::kDefaultAuthenticationBootstrapBits, std::move(options.authentication_store));
  }
  std::unique_ptr<NodeStack> stack(new NodeStack(context, options.key_distribution));
  stack->device_ = std::make_unique<physical::SimulatedDevice>(context, backend, node->hardware, node->index);
  QNET_ASSIGN_OR_RETURN(stack->physical_, physical::PhysicalLayer::Create(context, *stack->device_, backend,
                                                                           node->hardware, links));
  QNET_ASSIGN_OR_RETURN(stack->link_, link::LinkLayer::Build(context, *stack->device_, *stack->physical_,
                                                             node->hardware, links, std::move(options.link)));
  QNET_ASSIGN_OR_RETURN(stack->network_,
                        network::NetworkLayer::Build(context, *stack->device_, *stack->link_, node->hardware,
                                                     std::move(links), std::move(options.network)));
  QNET_ASSIGN_OR_RETURN(stack->transport_, transport::TransportLayer::Build(context, *stack->device_, *stack->network_,
                                                                             std::move(options.transport)));
  QNET_ASSIGN_OR_RETURN(stack->ghz_,
                        transport::GhzDistribution::Build(context, *stack->device_, *stack->network_));
  QNET_ASSIGN_OR_RETURN(stack->circuits_,
                        transport::DistributedCircuit::Build(context, *stack->device_, *stack->network_));
  QNET_RETURN_IF_ERROR(stack->StartKeyDistribution());
  return stack;
}

void NodeStack::StopKeyDistribution() {
  // Requests in flight end now with a reason (a front end's caller would
  // otherwise wait for its deadline); then nothing of key distribution runs.
  if (key_agreement_ != nullptr) {
    key_agreement_->AbortAll(
        absl::UnavailableError(absl::StrCat("key distribution stopped at ", context_.node_name())));
  }
  key_agreement_.reset();
  key_distribution_.reset();
}

absl::Status NodeStack::StartKeyDistribution(bool with_photons) {
  StopKeyDistribution();
  QNET_ASSIGN_OR_RETURN(key_distribution_,
                        keydist::KeyDistribution::Create(context_, *network_, with_photons ? physical_.get() : nullptr,
                                                         key_options_));
  key_agreement_ = std::make_unique<keydist::KeyAgreement>(context_, *key_distribution_, *key_store_);
  return absl::OkStatus();
}

uint32_t NodeStack::memory_qubits_in_use() const {
  return static_cast<uint32_t>(physical::AllocatedSlots(*device_));
}

NodeStack::~NodeStack() {
  // No handler runs from a destructor: key distribution goes without aborting.
  key_agreement_.reset();
  key_distribution_.reset();
  circuits_.reset();
  ghz_.reset();
  transport_.reset();
  network_.reset();
  link_.reset();
  physical_.reset();
  if (device_ != nullptr) {
    for (int slot = 0; slot < device_->num_slots(); ++slot) {
      if (device_->IsAllocated(slot)) (void)device_->Free(slot);
    }
  }
}

void NodeStack::OnPeerMessage(const std::string& from, const v1::PeerMessage& message) {
  switch (message.layer_case()) {
    case v1::PeerMessage::kPhysical: return physical_->OnPhysicalMessage(from, message.physical());
    case v1::PeerMessage::kLink: return link_->OnLinkMessage(from, message.link());
    case v1::PeerMessage::kNetwork: return network_->OnNetworkMessage(from, message.network());
    case v1::PeerMessage::LAYER_NOT_SET: break;
  }
  ++unroutable_messages_;
}

void NodeStack::OnNeighbourUp(const std::string& neighbour) {
  link_->OnNeighbourUp(neighbour);
  network_->OnNeighbourUp(neighbour);
}

void NodeStack::OnNeighbourDown(const std::string& neighbour) {
  // Top-down: QKD sessions whose messages used the link end, circuits are
  // torn down, then the link layer abandons its generations, then the
  // physical layer fails whatever is left.
  if (key_distribution_ != nullptr) key_distribution_->OnNeighbourDown(neighbour);
  network_->OnNeighbourDown(neighbour);
  link_->OnNeighbourDown(neighbour);
  physical_->OnNeighbourDown(neighbour);
}

}  // namespace qnet::stack
