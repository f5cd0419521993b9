#include "sim/sim_network.h"

#include <cmath>
#include <cstdio>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace qnet::sim {
namespace {

// Debian's Abseil has its own string_view type; heterogeneous lookup needs it.
absl::string_view Key(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string PairKey(uint32_t a, uint32_t b) {
  if (a > b) std::swap(a, b);
  return absl::StrCat(a, ":", b);
}

}  // namespace

SimNetwork::SimNetwork(Simulator& simulator, uint64_t seed) : simulator_(simulator), seed_(seed) {}

absl::StatusOr<std::unique_ptr<SimNetwork>> SimNetwork::Create(Simulator& simulator, uint64_t seed,
                                                               SimTopology topology,
                                                               ChannelOptions channel_defaults) {
  if (absl::Status s = channel_defaults.Validate(); !s.ok()) return s;
  std::unique_ptr<SimNetwork> net(new SimNetwork(simulator, seed));
  const Rng root(seed);
  for (std::string& name : topology.nodes) {
    if (name.empty()) return absl::InvalidArgumentError("simulated network: a node has an empty name");
    const uint32_t index = static_cast<uint32_t>(net->nodes_.size());
    if (!net->node_index_.emplace(name, index).second) {
      return absl::InvalidArgumentError(absl::StrCat("simulated network: duplicate node name '", name, "'"));
    }
    Rng rng = root.Fork(absl::StrCat("node/", name));
    net->nodes_.push_back(std::unique_ptr<SimNodeContext>(new SimNodeContext(*net, std::move(name), index, rng)));
  }
  absl::flat_hash_set<std::string> pairs;
  for (SimLink& link : topology.links) {
    const std::string what = absl::StrCat("simulated network: link '", link.name, "'");
    auto ia = net->node_index_.find(link.a);
    auto ib = net->node_index_.find(link.b);
    if (ia == net->node_index_.end() || ib == net->node_index_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " names unknown node '", ia == net->node_index_.end() ? link.a : link.b, "'"));
    }
    if (ia->second == ib->second) {
      return absl::InvalidArgumentError(absl::StrCat(what, " connects node '", link.a, "' to itself"));
    }
    if (!std::isfinite(link.length_km) || link.length_km < 0.0) {
      return absl::InvalidArgumentError(absl::StrCat(what, " has length ", link.length_km, " km; need >= 0"));
    }
    if (!pairs.insert(PairKey(ia->second, ib->second)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": there is already a link between '", link.a, "' and '", link.b, "'"));
    }
    if (net->channel_by_name_.contains(link.name)) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": duplicate link name"));
    }
    Rng rng = root.Fork(absl::StrCat("channel/", link.name));
    auto channel = std::unique_ptr<SimChannel>(
        new SimChannel(*net, link.name, ia->second, ib->second, link.length_km, channel_defaults, rng));
    SimNodeContext& na = *net->nodes_[ia->second];
    SimNodeContext& nb = *net->nodes_[ib->second];
    na.neighbour_names_.push_back(nb.name_);
    na.channel_to_.emplace(nb.name_, channel.get());
    nb.neighbour_names_.push_back(na.name_);
    nb.channel_to_.emplace(na.name_, channel.get());
    net->channel_by_name_.emplace(link.name, channel.get());
    net->channels_.push_back(std::move(channel));
  }
  return net;
}

SimNodeContext* SimNetwork::FindNode(std::string_view name) {
  auto it = node_index_.find(Key(name));
  return it == node_index_.end() ? nullptr : nodes_[it->second].get();
}

SimChannel* SimNetwork::FindChannel(std::string_view a, std::string_view b) {
  SimNodeContext* na = FindNode(a);
  if (na == nullptr) return nullptr;
  auto it = na->channel_to_.find(Key(b));
  return it == na->channel_to_.end() ? nullptr : it->second;
}

SimChannel* SimNetwork::FindChannelByName(std::string_view name) {
  auto it = channel_by_name_.find(Key(name));
  return it == channel_by_name_.end() ? nullptr : it->second;
}

absl::Status SimNetwork::Crash(std::string_view name) {
  SimNodeContext* node = FindNode(name);
  if (node == nullptr) return absl::NotFoundError(absl::StrCat("cannot crash unknown node '", Key(name), "'"));
  if (!node->running_) return absl::OkStatus();
  // Link order, not hash-map order, so notifications are reproducible.
  std::vector<std::pair<SimChannel*, bool>> before;
  for (const std::string& neighbour : node->neighbour_names_) {
    SimChannel* channel = node->channel_to_.at(neighbour);
    before.emplace_back(channel, channel->usable());
  }
  node->running_ = false;
  ++node->incarnation_;
  node->sink_ = nullptr;
  for (const auto& [channel, was] : before) channel->OnUsabilityChange(was);
  return absl::OkStatus();
}

absl::Status SimNetwork::Restart(std::string_view name) {
  SimNodeContext* node = FindNode(name);
  if (node == nullptr) return absl::NotFoundError(absl::StrCat("cannot restart unknown node '", Key(name), "'"));
  if (node->running_) return absl::OkStatus();
  // Every channel of a crashed node is unusable, so "before" is all false.
  node->running_ = true;
  for (const std::string& neighbour : node->neighbour_names_) node->channel_to_.at(neighbour)->OnUsabilityChange(false);
  return absl::OkStatus();
}

void SimNetwork::AnnounceLinksUp() {
  for (const auto& channel : channels_) {
    if (!channel->usable()) continue;
    NotifyNeighbour(channel->a_, channel->b_, true);
    NotifyNeighbour(channel->b_, channel->a_, true);
  }
}

void SimNetwork::NotifyNeighbour(uint32_t node, uint32_t neighbour, bool up) {
  SimNodeContext& n = *nodes_[node];
  if (!n.running_) return;
  simulator_.ScheduleAfter(Duration::zero(), [this, node, neighbour, up, incarnation = n.incarnation_] {
    SimNodeContext& target = *nodes_[node];
    if (!target.running_ || target.incarnation_ != incarnation || target.sink_ == nullptr) return;
    const std::string& other = nodes_[neighbour]->name_;
    if (up) {
      target.sink_->OnNeighbourUp(other);
    } else {
      target.sink_->OnNeighbourDown(other);
    }
  });
}

void SimNetwork::Deliver(uint32_t to, uint32_t from, const v1::PeerMessage& message, ChannelStats& stats) {
  SimNodeContext& target = *nodes_[to];
  if (target.sink_ == nullptr) {
    ++stats.dropped_no_sink;
    return;
  }
  ++stats.delivered;
  const std::string& from_name = nodes_[from]->name_;
  if (tamper_) {
    v1::PeerMessage changed = message;
    tamper_(from_name, target.name_, changed);
    if (observer_) observer_(simulator_.Now(), from_name, target.name_, changed);
    target.sink_->OnPeerMessage(from_name, changed);
    return;
  }
  if (observer_) observer_(simulator_.Now(), from_name, target.name_, message);
  target.sink_->OnPeerMessage(from_name, message);
}

void SimNetwork::NoteMisaddressed(const std::string& from, const std::string& to) {
  // A protocol bug rather than a network condition: say so once, loudly.
  if (misaddressed_messages_++ == 0) {
    std::fprintf(stderr, "qnet sim: node '%s' sent a message to '%s', which is not its neighbour; dropped\n",
                 from.c_str(), to.c_str());
  }
}

}  // namespace qnet::sim
