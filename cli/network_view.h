// The live state of a network started by `qnetctl up`, as `qnetctl ui`
// shows it: every node's status (gRPC Node.GetStatus with the operator's
// certificate), its counters from its Prometheus endpoint (per-link pair
// rates and fidelity, QKD error rates per node and per link, key pools) and
// each link's eavesdropper. A NetworkView polls the daemons on its own thread once a
// second and keeps the latest snapshot as JSON; readers never wait for a
// daemon.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "config/network_config.h"

namespace qnet::qnetctl {

// Samples of a Prometheus text exposition: "name{labels}" -> value.
std::map<std::string, double> ParsePrometheusText(const std::string& text);
// The value of `label` in a sample key such as name{a="x",b="y"} ("" if absent).
std::string LabelValue(const std::string& sample, const std::string& label);

class NetworkView {
 public:
  // The client certificate files for the metrics endpoints: the CA, a
  // certificate and its key (all empty for an insecure network). gRPC
  // calls use the endpoints qnetctl registered (NodeAddress).
  struct Credentials {
    std::string ca_file, cert_file, key_file;
  };
  NetworkView(std::filesystem::path state_dir, config::NetworkConfig network, Credentials credentials);
  ~NetworkView();  // stops the poller
  NetworkView(const NetworkView&) = delete;
  NetworkView& operator=(const NetworkView&) = delete;

  // The latest snapshot (JSON text) and its number; WaitNewer blocks until
  // one newer than `seen` exists or `timeout` passes.
  std::pair<uint64_t, std::string> Latest() const;
  std::pair<uint64_t, std::string> WaitNewer(uint64_t seen, std::chrono::milliseconds timeout) const;
  const config::NetworkConfig& network() const { return network_; }

 private:
  struct LinkCounters {
    double pairs = 0;  // link-layer pairs delivered at node_a
    double at = 0;     // when read (steady seconds)
    // QKD samples node_a compared with node_b (sessions between the two,
    // relay hops over the link included), and the QBER of the newest ones.
    double qkd_bits = 0, qkd_errors = 0;
    std::optional<double> recent_qber;
  };
  std::string Poll();
  std::string Scrape(const std::string& metrics_url) const;

  std::filesystem::path state_dir_;
  config::NetworkConfig network_;
  Credentials credentials_;
  std::map<std::string, LinkCounters> previous_;  // poller thread only
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  uint64_t version_ = 0;
  std::string snapshot_ = "{}";
  std::atomic<bool> stop_{false};
  std::thread poller_;
};

}  // namespace qnet::qnetctl
