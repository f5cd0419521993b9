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
#include "netsim/simulated_network.h"
#include "sim/sim_network.h"
#include "sim/simulator.h"
#include "stack/node_stack.h"

namespace qnet::testing {

// A thin test view of netsim::SimulatedNetwork (the same network qnetsim
// runs): gtest assertions on set-up, and leak checks.
class SimStackNetwork {
 public:
  // Asserts (via gtest) that the file parses and every stack builds.
  SimStackNetwork(std::string_view yaml, uint64_t seed, sim::ChannelOptions channel = {},
                  stack::NodeStackOptions options = {}) {
    auto parsed = config::ParseNetworkConfig(yaml, "test.yaml");
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    if (!parsed.ok()) return;
    auto network = netsim::SimulatedNetwork::Create(*std::move(parsed), seed, channel, std::move(options));
    EXPECT_TRUE(network.ok()) << network.status();
    if (network.ok()) net_ = *std::move(network);
  }

  sim::Simulator& simulator() { return net_->simulator(); }
  sim::SimNetwork& network() { return net_->channels(); }
  quantum::QuantumSystem& system() { return net_->system(); }
  const config::NetworkConfig& config() const { return net_->config(); }
  TimePoint Now() const { return net_->Now(); }

  stack::NodeStack& node(std::string_view name) {
    stack::NodeStack* n = net_->node(name);
    EXPECT_NE(n, nullptr) << "no running node " << name;
    return *n;
  }
  // nullptr for an unknown or crashed node.
  stack::NodeStack* running(std::string_view name) { return net_->node(name); }
  link::LinkLayer& link(std::string_view name) { return node(name).link(); }
  physical::SimulatedDevice& device(std::string_view name) { return node(name).device(); }

  // Crash: the node stops and its stack (with its memory) is gone.
  void Crash(std::string_view name) { ASSERT_TRUE(net_->Crash(name).ok()); }
  // Restart with a fresh stack.
  void Restart(std::string_view name) { ASSERT_TRUE(net_->Restart(name).ok()); }

  bool RunUntil(const std::function<bool()>& done, Duration limit) { return net_->RunUntil(done, limit); }
  void RunFor(Duration d) { net_->RunFor(d); }

  int FreeSlots(std::string_view name) {
    physical::SimulatedDevice& d = device(name);
    int n = 0;
    for (int s = 0; s < d.num_slots(); ++s) n += d.IsAllocated(s) ? 0 : 1;
    return n;
  }

  // Every device's memory is free, no simulated qubit is left, the link
  // layers hold nothing and no request is active.
  void ExpectClean() {
    for (const config::NodeConfig& node_config : config().nodes) {
      stack::NodeStack* s = net_->node(node_config.name);
      if (s == nullptr) continue;  // crashed
      const std::string& name = node_config.name;
      EXPECT_EQ(FreeSlots(name), s->device().num_slots()) << name;
      EXPECT_EQ(s->link().held_slots(), 0) << name;
      EXPECT_EQ(s->link().active_requests(), 0u) << name;
      EXPECT_EQ(s->link().active_generations(), 0u) << name;
      EXPECT_EQ(s->physical().active_generations(), 0u) << name;
    }
    EXPECT_EQ(system().qubit_count(), 0u);
  }

 private:
  std::unique_ptr<netsim::SimulatedNetwork> net_;
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
