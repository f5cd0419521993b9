#include "cli/time_scale_probe.h"

#include <chrono>
#include <cmath>
#include <thread>

#include "absl/strings/str_cat.h"
#include "cli/entangle_client.h"

namespace qnet::cli {
namespace {

// As the daemons' reports (daemon/lag_monitor.h, kBehindReportFraction).
constexpr double kBehindFraction = 0.01;

// Every daemon's neighbours connected (the probe's pairs need the links).
absl::Status WaitLinksUp(LocalNetwork& net, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    bool all = true;
    for (const std::string& node : net.nodes()) {
      absl::StatusOr<std::string> address = net.Address(node);
      if (!address.ok()) return address.status();
      absl::StatusOr<v1::GetStatusResponse> status = GetStatus(*address);
      if (!status.ok()) return status.status();
      for (const v1::NeighbourStatus& n : status->neighbours()) all = all && n.connected();
    }
    if (all) return absl::OkStatus();
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError("the daemons' links did not all come up while probing the time scale");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

absl::StatusOr<TimeScaleTrial> Trial(const LaunchOptions& base, double time_scale,
                                     const config::NetworkConfig& network, absl::Duration probe) {
  LaunchOptions options = base;
  options.time_scale = time_scale;
  options.detached = false;
  options.log_level = "warn";
  absl::StatusOr<std::unique_ptr<LocalNetwork>> started = LocalNetwork::Start(options);
  if (!started.ok()) return started.status();
  LocalNetwork& net = **started;
  if (absl::Status up = WaitLinksUp(net, absl::Seconds(10)); !up.ok()) return up;
  // Pairs on every link at once, for the probe's wall time; the client's
  // deadline ends each request (the daemon cancels it).
  std::vector<std::thread> probes;
  for (size_t i = 0; i < network.links.size() && i < kMaxProbedLinks; ++i) {
    absl::StatusOr<std::string> address = net.Address(network.links[i].node_a);
    if (!address.ok()) return address.status();
    v1::EntangleRequest request;
    request.set_remote_node(network.links[i].node_b);
    request.set_pairs(100000);
    request.set_type(v1::EntangleRequest::MEASURE);
    request.set_basis(v1::EntangleRequest::BB84);
    probes.emplace_back([address = *address, request, probe] { (void)RunEntangle(address, request, probe); });
  }
  for (std::thread& t : probes) t.join();
  TimeScaleTrial trial;
  trial.time_scale = time_scale;
  for (const std::string& node : net.nodes()) {
    absl::StatusOr<std::string> address = net.Address(node);
    if (!address.ok()) return address.status();
    absl::StatusOr<v1::GetStatusResponse> status = GetStatus(*address);
    if (!status.ok()) return status.status();
    trial.events += status->lag().events();
    if (trial.worst_node.empty() || status->lag().behind_fraction() > trial.behind_fraction) {
      trial.behind_fraction = status->lag().behind_fraction();
      trial.worst_node = node;
    }
  }
  trial.kept_up = trial.behind_fraction < kBehindFraction;
  (void)net.StopAll();
  return trial;
}

}  // namespace

absl::StatusOr<AutoTimeScale> StartAtAutoTimeScale(LaunchOptions options, const config::NetworkConfig& network,
                                                   absl::Duration probe,
                                                   const std::function<void(const TimeScaleTrial&)>& on_trial) {
  AutoTimeScale out;
  auto run = [&](double s) -> absl::StatusOr<TimeScaleTrial> {
    absl::StatusOr<TimeScaleTrial> trial = Trial(options, s, network, probe);
    if (!trial.ok()) {
      return absl::Status(trial.status().code(),
                          absl::StrCat("probing time scale ", s, ": ", trial.status().message()));
    }
    out.trials.push_back(*trial);
    if (on_trial) on_trial(*trial);
    return trial;
  };
  // Decades: 1e-4 ... 1e3, as exponents so that the scales are exact powers of ten.
  int exponent = 0;
  absl::StatusOr<TimeScaleTrial> first = run(1.0);
  if (!first.ok()) return first.status();
  if (first->kept_up) {
    out.kept_up = true;
    while (std::pow(10.0, exponent + 1) <= kMaxAutoTimeScale * 1.0001) {
      absl::StatusOr<TimeScaleTrial> up = run(std::pow(10.0, exponent + 1));
      if (!up.ok()) return up.status();
      if (!up->kept_up) break;
      ++exponent;
    }
  } else {
    while (std::pow(10.0, exponent - 1) >= kMinAutoTimeScale * 0.9999) {
      --exponent;
      absl::StatusOr<TimeScaleTrial> down = run(std::pow(10.0, exponent));
      if (!down.ok()) return down.status();
      if (down->kept_up) {
        out.kept_up = true;
        break;
      }
    }
  }
  out.time_scale = std::pow(10.0, exponent);
  options.time_scale = out.time_scale;
  absl::StatusOr<std::unique_ptr<LocalNetwork>> net = LocalNetwork::Start(options);
  if (!net.ok()) return net.status();
  out.network = *std::move(net);
  return out;
}

}  // namespace qnet::cli
