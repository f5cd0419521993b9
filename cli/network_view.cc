#include "cli/network_view.h"

#include <chrono>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/entangle_client.h"
#include "cli/qnetctl_command.h"
#include "qnet/v1/node_service.grpc.pb.h"
#include "security/client_endpoints.h"

// After every header that includes Eigen: httplib pulls in <resolv.h>, whose
// _res macro breaks Eigen's parameter names.
#include <httplib.h>

namespace qnet::qnetctl {
namespace {

using JsonValue = nlohmann::json;

double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Sum of the samples of `name` whose labels include every label=value of `want`.
double Sum(const std::map<std::string, double>& samples, const std::string& name,
           const std::map<std::string, std::string>& want) {
  double total = 0;
  for (const auto& [key, value] : samples) {
    if (!absl::StartsWith(key, name + "{")) continue;
    bool all = true;
    for (const auto& [label, v] : want) all = all && LabelValue(key, label) == v;
    if (all) total += value;
  }
  return total;
}

// The link's eavesdropper, as the node at one end reports it (fraction, or -1 if unknown).
double EavesdropperFraction(const std::string& address, const std::string& neighbour) {
  auto stub = v1::Node::NewStub(security::ClientChannel(address));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
  v1::EavesdropRequest request;
  request.set_neighbour(neighbour);
  v1::EavesdropResponse response;
  if (!stub->Eavesdrop(&context, request, &response).ok()) return -1;
  return response.fraction();
}

}  // namespace

std::map<std::string, double> ParsePrometheusText(const std::string& text) {
  std::map<std::string, double> samples;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (line.front() == '#') continue;
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space == absl::string_view::npos || !absl::SimpleAtod(line.substr(space + 1), &value)) continue;
    samples[std::string(line.substr(0, space))] = value;
  }
  return samples;
}

std::string LabelValue(const std::string& sample, const std::string& label) {
  const std::string key = absl::StrCat(label, "=\"");
  for (size_t at = sample.find(key); at != std::string::npos; at = sample.find(key, at + 1)) {
    if (at != 0 && sample[at - 1] != '{' && sample[at - 1] != ',') continue;
    const size_t begin = at + key.size();
    const size_t end = sample.find('"', begin);
    if (end == std::string::npos) return "";
    return sample.substr(begin, end - begin);
  }
  return "";
}

NetworkView::NetworkView(std::filesystem::path state_dir, config::NetworkConfig network, Credentials credentials)
    : state_dir_(std::move(state_dir)), network_(std::move(network)), credentials_(std::move(credentials)) {
  poller_ = std::thread([this] {
    while (!stop_) {
      std::string next = Poll();
      {
        std::lock_guard lock(mu_);
        snapshot_ = std::move(next);
        ++version_;
      }
      changed_.notify_all();
      for (int i = 0; i < 10 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
}

NetworkView::~NetworkView() {
  stop_ = true;
  changed_.notify_all();
  if (poller_.joinable()) poller_.join();
}

std::pair<uint64_t, std::string> NetworkView::Latest() const {
  std::lock_guard lock(mu_);
  return {version_, snapshot_};
}

std::pair<uint64_t, std::string> NetworkView::WaitNewer(uint64_t seen, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  changed_.wait_for(lock, timeout, [&] { return version_ > seen || stop_; });
  return {version_, snapshot_};
}

std::string NetworkView::Scrape(const std::string& metrics_url) const {
  // "https://127.0.0.1:PORT/metrics" or "http://..."
  const bool https = absl::StartsWith(metrics_url, "https://");
  const std::string rest = metrics_url.substr(https ? 8 : 7);
  const size_t slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  const size_t colon = authority.rfind(':');
  int port = 0;
  if (slash == std::string::npos || colon == std::string::npos || !absl::SimpleAtoi(authority.substr(colon + 1), &port)) {
    return "";
  }
  const std::string host = authority.substr(0, colon);
  auto body = [&](auto& client) -> std::string {
    client.set_connection_timeout(1, 0);
    client.set_read_timeout(2, 0);
    httplib::Result result = client.Get(rest.substr(slash));
    if (!result || result->status != 200) return "";
    return result->body;
  };
  if (https) {
    httplib::SSLClient client(host, port, credentials_.cert_file, credentials_.key_file);
    client.set_ca_cert_path(credentials_.ca_file);
    client.enable_server_certificate_verification(true);
    return body(client);
  }
  httplib::Client client(host, port);
  return body(client);
}

std::string NetworkView::Poll() {
  JsonValue nodes = JsonValue::array();
  std::map<std::string, std::map<std::string, double>> metrics;  // node -> samples
  std::map<std::string, std::string> addresses;
  std::map<std::string, bool> connected;  // "a|b" -> a sees b connected
  for (const config::NodeConfig& n : network_.nodes) {
    JsonValue node = {{"name", n.name}, {"up", false}};
    absl::StatusOr<std::string> address = NodeAddress(state_dir_, n.name);
    absl::StatusOr<v1::GetStatusResponse> status =
        address.ok() ? cli::GetStatus(*address) : absl::StatusOr<v1::GetStatusResponse>(address.status());
    if (status.ok()) {
      addresses[n.name] = *address;
      node["up"] = true;
      node["memory_in_use"] = status->memory_qubits_in_use();
      node["memory"] = status->memory_qubits();
      node["lag_behind"] = status->lag().behind();
      node["simulated_time_s"] = status->simulated_time_s();
      for (const v1::NeighbourStatus& nb : status->neighbours()) connected[n.name + "|" + nb.name()] = nb.connected();
      std::map<std::string, double> m = ParsePrometheusText(Scrape(status->metrics_url()));
      const double bits = Sum(m, "qnet_qkd_sample_bits_total", {});
      if (bits > 0) node["qkd_qber"] = Sum(m, "qnet_qkd_sample_errors_total", {}) / bits;
      JsonValue pools = JsonValue::array();
      for (const auto& [key, value] : m) {
        if (absl::StartsWith(key, "qnet_key_pool_bits{")) {
          pools.push_back({{"peer", LabelValue(key, "peer")}, {"bits", value}});
        }
      }
      node["key_pools"] = pools;
      metrics[n.name] = std::move(m);
    } else {
      node["error"] = std::string(status.status().message());
    }
    nodes.push_back(std::move(node));
  }

  JsonValue links = JsonValue::array();
  const double now = SteadySeconds();
  for (const physical::LinkPhysics& l : network_.links) {
    const bool a_up = addresses.count(l.node_a) != 0, b_up = addresses.count(l.node_b) != 0;
    const bool up = a_up && b_up && connected[l.node_a + "|" + l.node_b] && connected[l.node_b + "|" + l.node_a];
    JsonValue link = {{"name", l.name}, {"a", l.node_a}, {"b", l.node_b}, {"length_km", l.length_km}, {"up", up}};
    if (a_up) {
      const std::map<std::string, double>& m = metrics[l.node_a];
      const double pairs = Sum(m, "qnet_pairs_delivered_total", {{"link", l.name}, {"layer", "link"}});
      link["pairs"] = pairs;
      LinkCounters& before = previous_[l.name];
      if (before.at > 0 && now > before.at && pairs >= before.pairs) {
        link["pairs_per_s"] = (pairs - before.pairs) / (now - before.at);
      } else {
        link["pairs_per_s"] = 0.0;
      }
      before.pairs = pairs;
      before.at = now;
      // The link's QBER: of the QKD samples compared since the last poll
      // (sessions between its ends), else the newest seen; so switching an
      // eavesdropper on shows at the next session, and off at the one after.
      const double qkd_bits = Sum(m, "qnet_qkd_sample_bits_total", {{"peer", l.node_b}});
      const double qkd_errors = Sum(m, "qnet_qkd_sample_errors_total", {{"peer", l.node_b}});
      if (qkd_bits < before.qkd_bits) {
        // The daemon restarted and its counters began again: all of them are new.
        before.recent_qber.reset();
        before.qkd_bits = before.qkd_errors = 0;
      }
      if (qkd_bits > before.qkd_bits) {
        before.recent_qber = (qkd_errors - before.qkd_errors) / (qkd_bits - before.qkd_bits);
        before.qkd_bits = qkd_bits;
        before.qkd_errors = qkd_errors;
      }
      if (before.recent_qber) link["qber"] = *before.recent_qber;
      const double count = Sum(m, "qnet_link_pair_fidelity_count", {{"link", l.name}});
      if (count > 0) link["fidelity"] = Sum(m, "qnet_link_pair_fidelity_sum", {{"link", l.name}}) / count;
      const double eve = EavesdropperFraction(addresses[l.node_a], l.node_b);
      if (eve >= 0) link["eavesdropper"] = eve;
    }
    links.push_back(std::move(link));
  }
  JsonValue out = {{"network", network_.name}, {"nodes", nodes}, {"links", links}};
  return out.dump(-1, ' ', false, JsonValue::error_handler_t::replace);
}

}  // namespace qnet::qnetctl
