// Test harness: a network from a network file (YAML text) running in the
// in-process simulator, with a NodeStack per node on one shared quantum
// state, plus an event recorder for link-layer events.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "config/network_config.h"
#include "gtest/gtest.h"
#include "link/link_service.h"
#include "physical/state_backend.h"
#include "quantum/quantum_system.h"
#include "sim/sim_network.h"
#include "sim/simulator.h"
#include "stack/node_stack.h"

namespace qnet::testing {

class SimStackNetwork {
 public:
  // Asserts (via gtest) that the file parses and every stack builds.
  SimStackNetwork(std::string_view yaml, uint64_t seed, sim::ChannelOptions channel = {},
                  stack::NodeStackOptions options = {})
      : options_(std::move(options)) {
    auto parsed = config::ParseNetworkConfig(yaml, "test.yaml");
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    if (!parsed.ok()) return;
    config_ = *std::move(parsed);
    sim::SimTopology topology;
    for (const config::NodeConfig& n : config_.nodes) topology.nodes.push_back(n.name);
    for (const physical::LinkPhysics& l : config_.links) {
      topology.links.push_back({l.name, l.node_a, l.node_b, l.length_km});
    }
    auto network = sim::SimNetwork::Create(simulator_, seed, std::move(topology), channel);
    EXPECT_TRUE(network.ok()) << network.status();
    if (!network.ok()) return;
    network_ = *std::move(network);
    stacks_.resize(config_.nodes.size());
    for (size_t i = 0; i < config_.nodes.size(); ++i) BuildStack(i);
  }

  ~SimStackNetwork() {
    for (auto& s : stacks_) s.reset();
  }

  sim::Simulator& simulator() { return simulator_; }
  sim::SimNetwork& network() { return *network_; }
  quantum::QuantumSystem& system() { return system_; }
  const config::NetworkConfig& config() const { return config_; }
  TimePoint Now() const { return simulator_.Now(); }

  stack::NodeStack& node(std::string_view name) { return *stacks_.at(Index(name)); }
  link::LinkLayer& link(std::string_view name) { return node(name).link(); }
  physical::SimulatedDevice& device(std::string_view name) { return node(name).device(); }

  // Crash: the node stops and its stack (with its memory) is gone.
  void Crash(std::string_view name) {
    ASSERT_TRUE(network_->Crash(name).ok());
    stacks_.at(Index(name)).reset();
  }
  // Restart with a fresh stack.
  void Restart(std::string_view name) {
    BuildStack(Index(name));
    ASSERT_TRUE(network_->Restart(name).ok());
  }

  bool RunUntil(const std::function<bool()>& done, Duration limit) {
    return simulator_.RunUntil(done, simulator_.Now() + limit);
  }
  void RunFor(Duration d) { simulator_.RunFor(d); }

  int FreeSlots(std::string_view name) {
    physical::SimulatedDevice& d = device(name);
    int n = 0;
    for (int s = 0; s < d.num_slots(); ++s) n += d.IsAllocated(s) ? 0 : 1;
    return n;
  }

  // Every device's memory is free, no simulated qubit is left, the link
  // layers hold nothing and no request is active.
  void ExpectClean() {
    for (size_t i = 0; i < stacks_.size(); ++i) {
      if (stacks_[i] == nullptr) continue;
      const std::string& name = config_.nodes[i].name;
      EXPECT_EQ(FreeSlots(name), stacks_[i]->device().num_slots()) << name;
      EXPECT_EQ(stacks_[i]->link().held_slots(), 0) << name;
      EXPECT_EQ(stacks_[i]->link().active_requests(), 0u) << name;
      EXPECT_EQ(stacks_[i]->link().active_generations(), 0u) << name;
      EXPECT_EQ(stacks_[i]->physical().active_generations(), 0u) << name;
    }
    EXPECT_EQ(system_.qubit_count(), 0u);
  }

 private:
  size_t Index(std::string_view name) const {
    for (size_t i = 0; i < config_.nodes.size(); ++i) {
      if (config_.nodes[i].name == name) return i;
    }
    ADD_FAILURE() << "no node " << name;
    return 0;
  }

  void BuildStack(size_t i) {
    sim::SimNodeContext& context = network_->node(i);
    auto built = stack::NodeStack::Build(context, backend_, config_, options_);
    EXPECT_TRUE(built.ok()) << built.status();
    if (!built.ok()) return;
    stacks_[i] = *std::move(built);
    context.SetSink(stacks_[i].get());
  }

  stack::NodeStackOptions options_;
  sim::Simulator simulator_;
  quantum::QuantumSystem system_;
  physical::SharedStateBackend backend_{system_};
  config::NetworkConfig config_;
  std::unique_ptr<sim::SimNetwork> network_;
  std::vector<std::unique_ptr<stack::NodeStack>> stacks_;
};

// Records one party's link events. With `free_kept`, KEEP slots are freed
// as soon as they are delivered (after `on_pair` has looked at them).
struct EventLog {
  std::vector<link::IncomingRequest> incoming;
  std::vector<link::PairDelivered> pairs;
  std::vector<link::PairExpired> expired;
  std::vector<link::RequestCompleted> completed;
  std::vector<link::RequestFailed> failed;

  bool Ended(link::RequestId id) const {
    for (const auto& c : completed) {
      if (c.request_id == id) return true;
    }
    for (const auto& f : failed) {
      if (f.request_id == id) return true;
    }
    return false;
  }
  const link::RequestFailed* Failure(link::RequestId id) const {
    for (const auto& f : failed) {
      if (f.request_id == id) return &f;
    }
    return nullptr;
  }
  size_t PairsFor(link::RequestId id) const {
    size_t n = 0;
    for (const auto& p : pairs) n += p.request_id == id ? 1 : 0;
    return n;
  }

  // The handler; `device` frees KEEP slots at once when given.
  link::LinkEventHandler Handler(physical::QuantumDevice* free_kept = nullptr,
                                 std::function<void(const link::PairDelivered&)> on_pair = nullptr) {
    return [this, free_kept, on_pair](const link::LinkEvent& event) {
      if (const auto* e = std::get_if<link::IncomingRequest>(&event)) incoming.push_back(*e);
      if (const auto* e = std::get_if<link::PairDelivered>(&event)) {
        pairs.push_back(*e);
        if (on_pair) on_pair(*e);
        if (free_kept != nullptr && e->type == link::RequestType::kKeep) {
          EXPECT_TRUE(free_kept->Free(e->slot).ok());
        }
      }
      if (const auto* e = std::get_if<link::PairExpired>(&event)) expired.push_back(*e);
      if (const auto* e = std::get_if<link::RequestCompleted>(&event)) completed.push_back(*e);
      if (const auto* e = std::get_if<link::RequestFailed>(&event)) failed.push_back(*e);
    };
  }
};

}  // namespace qnet::testing
