#include "netsim/simulated_network.h"

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "sim/topology_from_config.h"

namespace qnet::netsim {

SimulatedNetwork::SimulatedNetwork(config::NetworkConfig config, stack::NodeStackOptions options)
    : config_(std::move(config)), options_(std::move(options)) {
  // One copy of the file's names for every node's advert checks.
  if (options_.network.adverts.topology == nullptr) {
    options_.network.adverts.topology = stack::KnownTopologyOf(config_);
  }
}

SimulatedNetwork::~SimulatedNetwork() {
  // Stacks first (they free memory through the backend), then the channels.
  for (auto& s : stacks_) s.reset();
  network_.reset();
}

absl::StatusOr<std::unique_ptr<SimulatedNetwork>> SimulatedNetwork::Create(config::NetworkConfig config,
                                                                           uint64_t seed,
                                                                           sim::ChannelOptions channel,
                                                                           stack::NodeStackOptions options) {
  std::unique_ptr<SimulatedNetwork> net(new SimulatedNetwork(std::move(config), std::move(options)));
  QNET_ASSIGN_OR_RETURN(net->network_,
                        sim::SimNetwork::Create(net->simulator_, seed, sim::TopologyFromConfig(net->config_), channel));
  net->stacks_.resize(net->config_.nodes.size());
  for (size_t i = 0; i < net->config_.nodes.size(); ++i) QNET_RETURN_IF_ERROR(net->BuildStack(i));
  net->network_->AnnounceLinksUp();
  return net;
}

absl::Status SimulatedNetwork::BuildStack(size_t index) {
  sim::SimNodeContext& context = network_->node(index);
  QNET_ASSIGN_OR_RETURN(stacks_[index], stack::NodeStack::Build(context, backend_, config_, options_));
  context.SetSink(stacks_[index].get());
  return absl::OkStatus();
}

absl::StatusOr<size_t> SimulatedNetwork::Index(std::string_view name) const {
  const config::NodeConfig* node = config_.FindNode(name);
  if (node == nullptr) return absl::NotFoundError(absl::StrCat("no node '", std::string(name), "' in ", config_.source));
  return node->index;
}

stack::NodeStack* SimulatedNetwork::node(std::string_view name) {
  auto index = Index(name);
  return index.ok() ? stacks_[*index].get() : nullptr;
}

absl::Status SimulatedNetwork::Crash(std::string_view name) {
  QNET_ASSIGN_OR_RETURN(size_t index, Index(name));
  QNET_RETURN_IF_ERROR(network_->Crash(name));
  stacks_[index].reset();
  return absl::OkStatus();
}

absl::Status SimulatedNetwork::Restart(std::string_view name) {
  QNET_ASSIGN_OR_RETURN(size_t index, Index(name));
  QNET_RETURN_IF_ERROR(BuildStack(index));
  return network_->Restart(name);
}

bool SimulatedNetwork::RunUntil(const std::function<bool()>& done, Duration limit) {
  return simulator_.RunUntil(done, simulator_.Now() + limit);
}

}  // namespace qnet::netsim
