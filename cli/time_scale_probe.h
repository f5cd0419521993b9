// `qnetctl up --time-scale auto`: finds the largest time scale (simulated
// seconds per wall second, in decades from 1e-4 to 1e3) at which this
// machine's daemons keep up with the physics of a network file, and starts
// the network at it.
//
// Each trial starts the network at one time scale, waits until every link is
// connected, drives MEASURE pairs on every link (up to kMaxProbedLinks) for
// the probe time, and asks every daemon's lag report (GetStatus): the trial
// keeps up when no daemon was behind the physics for 1% or more of it.
// Starting at 1, trials go up by decades while they keep up, else down until
// one does; the network is then started afresh at the chosen scale.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/launcher.h"
#include "config/network_config.h"

namespace qnet::cli {

inline constexpr double kMinAutoTimeScale = 1e-4;
inline constexpr double kMaxAutoTimeScale = 1e3;
inline constexpr size_t kMaxProbedLinks = 32;

struct TimeScaleTrial {
  double time_scale = 0;
  bool kept_up = false;
  double behind_fraction = 0;  // the largest over the daemons
  std::string worst_node;      // the daemon with that fraction
  uint64_t events = 0;         // physics events the daemons handled, summed
};

struct AutoTimeScale {
  double time_scale = 0;
  bool kept_up = false;  // false: even the smallest scale fell behind
  std::vector<TimeScaleTrial> trials;
  std::unique_ptr<LocalNetwork> network;  // running at time_scale
};

// `options.time_scale` is ignored. `on_trial` sees each trial as it ends.
absl::StatusOr<AutoTimeScale> StartAtAutoTimeScale(LaunchOptions options, const config::NetworkConfig& network,
                                                   absl::Duration probe = absl::Seconds(1.5),
                                                   const std::function<void(const TimeScaleTrial&)>& on_trial = {});

}  // namespace qnet::cli
