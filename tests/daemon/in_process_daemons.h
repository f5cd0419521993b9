// Test helper: several qnet daemons in this process, each with its own event
// loop and gRPC server on 127.0.0.1:0, told each other's addresses, on one
// simulated time line (a shared epoch, as the launcher gives its daemons).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "config/network_config.h"
#include "daemon/daemon.h"
#include "gtest/gtest.h"

namespace qnet::daemon::testing {

// A chain n0 - n1 - ... with links of `length_km`.
inline DaemonTopology ChainTopology(const std::vector<std::string>& nodes, const std::string& self,
                                    double length_km = 1.0, const std::string& network = "testnet") {
  DaemonTopology t;
  t.network = network;
  t.nodes = nodes;
  t.self = self;
  t.memory_qubits = 2;
  for (size_t i = 0; i + 1 < nodes.size(); ++i) {
    if (nodes[i] == self) t.neighbours.push_back({nodes[i + 1], nodes[i] + "-" + nodes[i + 1], length_km});
    if (nodes[i + 1] == self) t.neighbours.push_back({nodes[i], nodes[i] + "-" + nodes[i + 1], length_km});
  }
  return t;
}

// The network file of that chain: ideal nodes with 2 memory qubits.
inline std::shared_ptr<const config::NetworkConfig> ChainNetwork(const std::vector<std::string>& nodes,
                                                                 double length_km = 1.0,
                                                                 const std::string& network = "testnet") {
  std::string yaml = absl::StrCat("network: ", network, "\nnodes:\n");
  for (const std::string& n : nodes) absl::StrAppend(&yaml, "  - {name: ", n, ", hardware: ideal, qubits: 2}\n");
  absl::StrAppend(&yaml, "links:\n");
  for (size_t i = 0; i + 1 < nodes.size(); ++i) {
    absl::StrAppend(&yaml, "  - {between: [", nodes[i], ", ", nodes[i + 1], "], length_km: ", length_km, "}\n");
  }
  auto parsed = config::ParseNetworkConfig(yaml, "in-process.yaml");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? std::make_shared<const config::NetworkConfig>(*std::move(parsed)) : nullptr;
}

class InProcessNetwork {
 public:
  // Starts one daemon per node of a chain; `customise` may adjust options.
  explicit InProcessNetwork(const std::vector<std::string>& nodes, double length_km = 1.0,
                            std::function<void(DaemonOptions&)> customise = nullptr)
      : nodes_(nodes), length_km_(length_km), network_(ChainNetwork(nodes, length_km)),
        customise_(std::move(customise)),
        epoch_unix_ns_(UnixNowNs()) {
    for (const std::string& n : nodes) {
      auto d = Daemon::Start(Options(n));
      EXPECT_TRUE(d.ok()) << d.status();
      daemons_.push_back(d.ok() ? *std::move(d) : nullptr);
    }
    for (auto& d : daemons_) {
      if (d == nullptr) continue;
      for (auto& other : daemons_) {
        if (other != nullptr) d->directory().SetFixed(other->node(), other->listen_address());
      }
    }
  }

  DaemonOptions Options(const std::string& node, const std::string& listen = "127.0.0.1:0") {
    DaemonOptions o;
    o.topology = ChainTopology(nodes_, node, length_km_);
    o.network = network_;
    o.listen_address = listen;
    o.log_level = LogLevel::kWarn;
    o.peer_timing.silence_limit = std::chrono::milliseconds(1000);
    // Without it each daemon's clock starts at its own start: a heralding
    // station's time stamps then lie in a later-started neighbour's future,
    // which waits them out and gives up on the herald (every generation of
    // a link failed under the sanitizers, where a start takes ~40 ms).
    o.epoch_unix_ns = epoch_unix_ns_;
    if (customise_) customise_(o);
    return o;
  }

  Daemon& operator[](size_t i) { return *daemons_[i]; }
  size_t size() const { return daemons_.size(); }
  bool ok() const {
    for (auto& d : daemons_) {
      if (d == nullptr) return false;
    }
    return true;
  }

  // Shuts node i down (its address stays known to the others).
  void Stop(size_t i) { daemons_[i].reset(); }
  // Starts node i again on `listen`.
  void Restart(size_t i, const std::string& listen) {
    auto d = Daemon::Start(Options(nodes_[i], listen));
    ASSERT_TRUE(d.ok()) << d.status();
    daemons_[i] = *std::move(d);
    for (auto& other : daemons_) {
      if (other == nullptr) continue;
      daemons_[i]->directory().SetFixed(other->node(), other->listen_address());
      other->directory().SetFixed(daemons_[i]->node(), daemons_[i]->listen_address());
    }
  }

 private:
  std::vector<std::string> nodes_;
  double length_km_;
  std::shared_ptr<const config::NetworkConfig> network_;
  std::function<void(DaemonOptions&)> customise_;
  int64_t epoch_unix_ns_;  // simulated time zero of every daemon here
  std::vector<std::unique_ptr<Daemon>> daemons_;
};

}  // namespace qnet::daemon::testing
