// A whole quantum network running in the in-process simulator: one NodeStack
// per node of a network file (the same stack the daemon runs), all on one
// shared simulated quantum state, joined by simulated classical channels.
// This is what `qnetsim`, the simulator benchmarks and the protocol tests use
// to run a network without processes.
#pragma once

#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "config/network_config.h"
#include "physical/state_backend.h"
#include "quantum/quantum_system.h"
#include "sim/sim_network.h"
#include "sim/simulator.h"
#include "stack/node_stack.h"

namespace qnet::netsim {

class SimulatedNetwork {
 public:
  // InvalidArgument if a stack cannot be built from the config.
  static absl::StatusOr<std::unique_ptr<SimulatedNetwork>> Create(config::NetworkConfig config, uint64_t seed,
                                                                  sim::ChannelOptions channel = {},
                                                                  stack::NodeStackOptions options = {});
  ~SimulatedNetwork();
  SimulatedNetwork(const SimulatedNetwork&) = delete;
  SimulatedNetwork& operator=(const SimulatedNetwork&) = delete;

  sim::Simulator& simulator() { return simulator_; }
  sim::SimNetwork& channels() { return *network_; }
  quantum::QuantumSystem& system() { return system_; }
  const config::NetworkConfig& config() const { return config_; }
  TimePoint Now() const { return simulator_.Now(); }

  // nullptr for an unknown (or crashed) node.
  stack::NodeStack* node(std::string_view name);

  // Crash: the node stops, its stack and memory are gone. Restart: a fresh stack.
  absl::Status Crash(std::string_view name);
  absl::Status Restart(std::string_view name);

  // Runs until `done` holds or `limit` of simulated time has passed; returns done().
  bool RunUntil(const std::function<bool()>& done, Duration limit);
  void RunFor(Duration d) { simulator_.RunFor(d); }

 private:
  SimulatedNetwork(config::NetworkConfig config, stack::NodeStackOptions options);
  absl::Status BuildStack(size_t index);
  absl::StatusOr<size_t> Index(std::string_view name) const;

  config::NetworkConfig config_;
  stack::NodeStackOptions options_;
  // Declaration order matters: the simulator outlives the channels, the
  // state outlives the stacks.
  sim::Simulator simulator_;
  quantum::QuantumSystem system_;
  physical::SharedStateBackend backend_{system_};
  std::unique_ptr<sim::SimNetwork> network_;
  std::vector<std::unique_ptr<stack::NodeStack>> stacks_;
};

}  // namespace qnet::netsim
