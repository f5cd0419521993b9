#include "netsim/qnetsim_sweep.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "netsim/key_experiment.h"
#include "netsim/link_experiment.h"
#include "netsim/path_experiment.h"
#include "config/hop_distance.h"
#include "netsim/simulated_network.h"
#include "plot/figure.h"

namespace qnet::netsim {
namespace {

using JsonValue = nlohmann::ordered_json;

// What one point of the sweep measured.
struct SweepPoint {
  double x = 0.0;
  std::string to;
  std::string error;  // empty if the point ran
  double simulated_seconds = 0.0;
  double rate = 0.0;  // pairs (or, for QKD, final key bits) per simulated second
  uint64_t pairs = 0;
  std::optional<apps::Estimate> fidelity;
  double fidelity_estimate = 0.0;
  std::vector<std::string> path;
  // QKD only.
  uint64_t key_bits = 0;
  double qber_z = 0.0, qber_x = 0.0;
  std::optional<double> plob_bits_per_second;           // point to point, the whole link
  std::optional<double> station_bound_bits_per_second;  // through the heralding station
  // Weak coherent BB84 only, per pulse: the asymptotic key rate from the
  // simulated counts (`rate`), the finite key, the closed forms, PLOB.
  double finite_key_per_pulse = 0.0;
  double analytic_per_pulse = 0.0, infinite_decoy_per_pulse = 0.0, plob_per_pulse = 0.0;
  double single_photon_source_per_pulse = 0.0;
  double rate_standard_error = 0.0;
  double qber_signal = 0.0, gain_signal = 0.0;
};

// Bounds in bits per second for a key between two neighbours: a bound per
// channel use times the channel uses the run actually made per simulated
// second (heralding attempts, two per double-click attempt as it sends two
// rounds of photons; BB84's pulses). Counting every use keeps them bounds
// with attempts in flight on several memories at once.
//  - point to point: PLOB at the fibre transmittance of the whole link, what
//    a repeaterless link without a middle node could give (BB84 is one);
//  - heralded links only: the chain bound over the two halves to the
//    heralding station, which no protocol through a middle node can beat.
// Nothing for a path of several links: relays and repeaters are nodes in
// between, and the bound of that chain is not drawn.
struct KeyRateBounds {
  std::optional<double> point_to_point, through_station;
};
KeyRateBounds BoundsBitsPerSecond(SimulatedNetwork& network, const std::string& from, const std::string& to,
                                  keydist::QkdProtocol protocol, double simulated_seconds) {
  KeyRateBounds bounds;
  const physical::LinkPhysics* link = network.config().FindLink(from, to);
  stack::NodeStack* node = network.node(from);
  if (link == nullptr || node == nullptr || !(simulated_seconds > 0)) return bounds;
  const bool heralded = protocol != keydist::QkdProtocol::kBb84;
  // An abstract Werner link's probability is not tied to its fibre: no bound.
  if (heralded && link->scheme == physical::HeraldingScheme::kWerner) return bounds;
  double uses = 0;
  if (!heralded) {
    auto stats = node->physical().PhotonStats(to);
    if (!stats.ok()) return bounds;
    uses = static_cast<double>(stats->pulses_sent);
  } else {
    auto stats = node->physical().HeraldStats(to);
    if (!stats.ok()) return bounds;
    uses = static_cast<double>(stats->attempts) * (link->scheme == physical::HeraldingScheme::kDoubleClick ? 2 : 1);
  }
  if (uses == 0) return bounds;
  auto per_second = [&](double bits_per_use) -> std::optional<double> {
    const double bound = bits_per_use * uses / simulated_seconds;
    if (!std::isfinite(bound)) return std::nullopt;  // a lossless channel has no finite bound
    return bound;
  };
  bounds.point_to_point = per_second(PlobBoundBitsPerUse(FibreTransmittance(*link)));
  if (heralded) {
    const auto [eta_a, eta_b] = HalfTransmittances(*link);
    bounds.through_station = per_second(ChainBoundBitsPerUse({eta_a, eta_b}));
  }
  return bounds;
}

SweepPoint RunPoint(const config::NetworkConfig& base, const SweepOptions& options, double x) {
  SweepPoint point;
  point.x = x;
  absl::StatusOr<config::NetworkConfig> config = base;
  point.to = options.to;
  if (options.range.parameter == plot::kSweepLengthKm) {
    config = WithLinkLength(base, options.link, x);
  } else if (auto to = config::NodeAtHops(base, options.from, static_cast<int>(x)); to.ok()) {
    point.to = *to;
  } else {
    config = to.status();
  }
  if (!config.ok()) {
    point.error = std::string(config.status().message());
    return point;
  }
  auto network = SimulatedNetwork::Create(*config, options.seed);
  if (!network.ok()) {
    point.error = std::string(network.status().message());
    return point;
  }
  auto record_pairs = [&](const auto& result) {
    point.simulated_seconds = ToSeconds(result.simulated_time);
    point.pairs = result.statistics.pairs;
    point.rate = point.simulated_seconds > 0 ? static_cast<double>(point.pairs) / point.simulated_seconds : 0.0;
    point.fidelity = result.statistics.fidelity;
    point.fidelity_estimate = result.mean_fidelity_estimate;
  };
  switch (options.mode) {
    case SweepOptions::Mode::kLink: {
      const physical::LinkPhysics* link = config->FindLinkByName(options.link);
      LinkExperiment experiment;
      experiment.origin = link->node_a;
      experiment.remote = link->node_b;
      experiment.pairs = options.pairs;
      experiment.basis = options.basis;
      experiment.min_fidelity = options.min_fidelity;
      auto result = RunLinkExperiment(**network, experiment, options.time_limit);
      if (!result.ok()) {
        point.error = std::string(result.status().message());
        return point;
      }
      record_pairs(*result);
      point.path = {link->node_a, link->node_b};
      return point;
    }
    case SweepOptions::Mode::kPath: {
      PathExperiment experiment;
      experiment.origin = options.from;
      experiment.remote = point.to;
      experiment.pairs = options.pairs;
      experiment.basis = options.basis;
      experiment.min_fidelity = options.min_fidelity;
      auto result = RunPathExperiment(**network, experiment, options.time_limit);
      if (!result.ok()) {
        point.error = std::string(result.status().message());
        return point;
      }
      record_pairs(*result);
      point.path = result->path;
      return point;
    }
    case SweepOptions::Mode::kWeakCoherent: {
      const physical::LinkPhysics* link = config->FindLinkByName(options.link);
      auto result = RunWeakCoherentBb84(*link, options.weak_coherent);
      if (!result.ok()) {
        point.error = std::string(result.status().message());
        return point;
      }
      point.simulated_seconds = result->simulated_seconds;
      point.pairs = options.weak_coherent.pulses;
      point.rate = result->asymptotic ? result->asymptotic->key_rate_per_pulse : result->single_photon_assumption_rate;
      if (result->finite_key) {
        point.key_bits = result->finite_key->key_bits;
        point.finite_key_per_pulse =
            static_cast<double>(result->finite_key->key_bits) / static_cast<double>(options.weak_coherent.pulses);
      }
      point.analytic_per_pulse = result->analytic_rate;
      point.infinite_decoy_per_pulse = result->infinite_decoy_rate;
      point.single_photon_source_per_pulse = result->single_photon_source_rate;
      point.rate_standard_error = result->asymptotic_standard_error;
      point.plob_per_pulse = result->plob_bound;
      point.gain_signal = result->counts[0].gain();
      point.qber_signal = result->counts[0].error_rate();
      point.path = {options.from, options.to};
      return point;
    }
    case SweepOptions::Mode::kQkd: {
      keydist::KeyRequest request = options.key_request;
      request.peer = point.to;
      auto result = RunKeyExperiment(**network, options.from, request, options.time_limit);
      if (!result.ok()) {
        point.error = std::string(result.status().message());
        return point;
      }
      if (!result->keys_match) {
        point.error = absl::StrCat("the two ends' keys differ: ", result->keys_problem);
        return point;
      }
      const keydist::KeyAgreementResult& r = result->agreement;
      point.simulated_seconds = ToSeconds(r.simulated_duration);
      point.key_bits = r.key.size();
      point.rate = point.simulated_seconds > 0 ? static_cast<double>(point.key_bits) / point.simulated_seconds : 0.0;
      const KeyRateBounds bounds =
          BoundsBitsPerSecond(**network, options.from, point.to, request.block.protocol, point.simulated_seconds);
      point.plob_bits_per_second = bounds.point_to_point;
      point.station_bound_bits_per_second = bounds.through_station;
      point.qber_z = r.qber_z;
      point.qber_x = r.qber_x;
      point.pairs = r.raw_pairs;
      point.path = r.path;
      return point;
    }
  }
  return point;
}

std::string XLabel(const config::NetworkConfig& config, const SweepOptions& options) {
  if (options.range.parameter == plot::kSweepHops) return absl::StrFormat("hops from %s", options.from);
  if (options.link != "all") return absl::StrFormat("length of %s (km)", options.link);
  return config.links.size() == 1 ? absl::StrFormat("length of %s (km)", config.links[0].name)
                                  : std::string("length of every link (km)");
}

plot::Figure MakeFigure(const config::NetworkConfig& config, const SweepOptions& options,
                        const std::vector<SweepPoint>& points) {
  if (options.mode == SweepOptions::Mode::kWeakCoherent) {
    const bool decoys = options.weak_coherent.decoys;
    plot::Figure figure;
    figure.x_label = XLabel(config, options);
    figure.log_y = true;
    figure.title = absl::StrFormat("%s: %s %s -> %s, mu %g%s (seed %d)", config.name,
                                   decoys ? "decoy-state BB84" : "BB84 with a laser, no decoys", options.from,
                                   options.to, options.weak_coherent.intensities.mean_photon_number[0],
                                   decoys ? absl::StrFormat(", nu %g", options.weak_coherent.intensities.mean_photon_number[1])
                                          : std::string(),
                                   options.seed);
    figure.y_label = "secret key bits per pulse";
    figure.y2_label = "QBER (signal)";
    figure.y2_min = 0.0;
    figure.y2_max = 0.25;
    plot::Series measured{decoys ? "asymptotic key rate from the simulated counts (GLLP), +- 1 standard error"
                                 : "key rate claimed as if single photons"};
    plot::Series finite{"finite key from the simulated pulses (Lim et al. 2014)"};
    plot::Series analytic{"vacuum + weak decoy, closed form"};
    plot::Series infinite{"infinite decoys, closed form"};
    plot::Series single{"ideal single-photon source, closed form"};
    plot::Series plob{"PLOB bound, -log2(1 - eta)"};
    plot::Series qber{"QBER (signal)"};
    analytic.style = infinite.style = single.style = plob.style = plot::SeriesStyle::kCurve;
    qber.axis = plot::Axis::kRight;
    for (const SweepPoint& p : points) {
      if (!p.error.empty()) continue;
      // A log axis shows only positive rates: a point without key is left out.
      if (p.rate > 0) {
        measured.points.push_back(
            {p.x, p.rate, decoys ? std::optional<double>(p.rate_standard_error) : std::nullopt});
      }
      if (p.finite_key_per_pulse > 0) finite.points.push_back({p.x, p.finite_key_per_pulse, std::nullopt});
      if (p.analytic_per_pulse > 0) analytic.points.push_back({p.x, p.analytic_per_pulse, std::nullopt});
      if (p.infinite_decoy_per_pulse > 0) infinite.points.push_back({p.x, p.infinite_decoy_per_pulse, std::nullopt});
      if (p.single_photon_source_per_pulse > 0) {
        single.points.push_back({p.x, p.single_photon_source_per_pulse, std::nullopt});
      }
      if (std::isfinite(p.plob_per_pulse)) plob.points.push_back({p.x, p.plob_per_pulse, std::nullopt});
      qber.points.push_back({p.x, p.qber_signal, std::nullopt});
    }
    figure.series = decoys ? std::vector<plot::Series>{measured, finite, analytic, infinite, single, plob, qber}
                           : std::vector<plot::Series>{measured, infinite, single, plob, qber};
    return figure;
  }
  if (options.mode == SweepOptions::Mode::kQkd) {
    plot::Figure figure;
    figure.x_label = XLabel(config, options);
    figure.x_whole_numbers = options.range.parameter == plot::kSweepHops;
    figure.log_y = true;
    figure.title = absl::StrFormat("%s: %s key %s -> %s (seed %d)", config.name,
                                   keydist::QkdProtocolName(options.key_request.block.protocol), options.from,
                                   options.range.parameter == plot::kSweepHops ? "each hop" : options.to, options.seed);
    figure.y_label = "final key bits per simulated second";
    figure.y2_label = "QBER";
    figure.y2_min = 0.0;
    figure.y2_max = 0.25;  // above the 11% at which BB84-type post-processing gives no key
    plot::Series key{"key rate (measured)"}, plob{"PLOB bound, point to point (for the channel uses made)"};
    plot::Series station{"bound through the heralding station (Pirandola 2019)"};
    plot::Series qz{"QBER Z"}, qx{"QBER X"};
    plob.style = station.style = plot::SeriesStyle::kCurve;
    qz.axis = qx.axis = plot::Axis::kRight;
    for (const SweepPoint& p : points) {
      if (p.plob_bits_per_second) plob.points.push_back({p.x, *p.plob_bits_per_second, std::nullopt});
      if (p.station_bound_bits_per_second) {
        station.points.push_back({p.x, *p.station_bound_bits_per_second, std::nullopt});
      }
      if (!p.error.empty()) continue;
      key.points.push_back({p.x, p.rate, std::nullopt});
      qz.points.push_back({p.x, p.qber_z, std::nullopt});
      qx.points.push_back({p.x, p.qber_x, std::nullopt});
    }
    figure.series = {key, plob, station, qz, qx};
    return figure;
  }
  std::vector<plot::PairSweepPoint> pair_points;
  for (const SweepPoint& p : points) {
    if (!p.error.empty()) continue;
    pair_points.push_back({p.x, p.rate, std::nullopt, 0.0, p.fidelity_estimate});
    if (p.fidelity) {
      pair_points.back().fidelity = p.fidelity->value;
      pair_points.back().fidelity_standard_error = p.fidelity->standard_error;
    }
  }
  return plot::PairSweepFigure(
      absl::StrFormat("%s: %s pairs %s (seed %d)", config.name, options.basis_name,
                      options.mode == SweepOptions::Mode::kLink
                          ? absl::StrCat("on ", options.link)
                          : absl::StrCat(options.from, " -> ", options.to.empty() ? std::string("each hop") : options.to),
                      options.seed),
      XLabel(config, options), pair_points, options.range.parameter == plot::kSweepHops);
}

JsonValue PointJson(const SweepOptions& options, const SweepPoint& p) {
  JsonValue j;
  j[options.range.parameter] = p.x;
  if (options.mode != SweepOptions::Mode::kLink) j["to"] = p.to;
  if (!p.error.empty()) {
    j["error"] = p.error;
    if (p.plob_bits_per_second) j["plob_bound_bits_per_second"] = *p.plob_bits_per_second;
    return j;
  }
  j["path"] = p.path;
  j["simulated_seconds"] = p.simulated_seconds;
  if (options.mode == SweepOptions::Mode::kWeakCoherent) {
    j["pulses"] = p.pairs;
    j["gain_signal"] = p.gain_signal;
    j["qber_signal"] = p.qber_signal;
    j["key_rate_per_pulse"] = p.rate;
    if (options.weak_coherent.decoys) {
      j["key_rate_standard_error"] = p.rate_standard_error;
      j["finite_key_bits"] = p.key_bits;
      j["finite_key_per_pulse"] = p.finite_key_per_pulse;
      j["analytic_rate_per_pulse"] = p.analytic_per_pulse;
    }
    j["infinite_decoy_rate_per_pulse"] = p.infinite_decoy_per_pulse;
    j["single_photon_source_rate_per_pulse"] = p.single_photon_source_per_pulse;
    if (std::isfinite(p.plob_per_pulse)) j["plob_bound_per_pulse"] = p.plob_per_pulse;
    return j;
  }
  if (options.mode == SweepOptions::Mode::kQkd) {
    j["raw_pairs"] = p.pairs;
    j["final_key_bits"] = p.key_bits;
    j["key_bits_per_second"] = p.rate;
    j["qber_z"] = p.qber_z;
    j["qber_x"] = p.qber_x;
    if (p.plob_bits_per_second) j["plob_bound_bits_per_second"] = *p.plob_bits_per_second;
    if (p.station_bound_bits_per_second) j["station_bound_bits_per_second"] = *p.station_bound_bits_per_second;
    return j;
  }
  j["pairs"] = p.pairs;
  j["pairs_per_second"] = p.rate;
  if (p.fidelity) j["fidelity"] = {{"value", p.fidelity->value}, {"stderr", p.fidelity->standard_error}};
  j["fidelity_estimate"] = p.fidelity_estimate;
  return j;
}

void PrintTableRow(const SweepOptions& options, const SweepPoint& p) {
  const std::string x = absl::StrFormat("%10g", p.x);
  if (!p.error.empty()) {
    std::printf("%s  FAILED: %s\n", x.c_str(), p.error.c_str());
  } else if (options.mode == SweepOptions::Mode::kWeakCoherent) {
    std::printf("%s  %12.4g  %12.4g  %12.4g  %12.4g  %12.4g  %8.4f\n", x.c_str(), p.rate, p.finite_key_per_pulse,
                p.analytic_per_pulse, p.infinite_decoy_per_pulse, p.plob_per_pulse, p.qber_signal);
  } else if (options.mode == SweepOptions::Mode::kQkd) {
    auto bound = [](const std::optional<double>& b) { return b ? absl::StrFormat("%.4g", *b) : std::string("-"); };
    std::printf("%s  %12.4g  %8.4f  %8.4f  %9llu  %12s  %14s\n", x.c_str(), p.rate, p.qber_z, p.qber_x,
                static_cast<unsigned long long>(p.key_bits), bound(p.plob_bits_per_second).c_str(),
                bound(p.station_bound_bits_per_second).c_str());
  } else {
    const std::string fidelity =
        p.fidelity ? absl::StrFormat("%.4f +- %.4f", p.fidelity->value, p.fidelity->standard_error) : "-";
    std::printf("%s  %12.4g  %-18s  %8.4f%s\n", x.c_str(), p.rate, fidelity.c_str(), p.fidelity_estimate,
                options.range.parameter == plot::kSweepHops ? absl::StrCat("  ", p.to).c_str() : "");
  }
  std::fflush(stdout);
}

}  // namespace

int RunSweep(const config::NetworkConfig& config, const SweepOptions& options) {
  const std::vector<double> values = options.range.Values();
  const bool text = options.output == "text";
  if (text) {
    std::printf("network %s (%s), seed %llu, sweep %s from %g to %g step %g (%zu points)\n", config.name.c_str(),
                options.network_path.c_str(), static_cast<unsigned long long>(options.seed),
                options.range.parameter.c_str(), options.range.start, options.range.stop, options.range.step,
                values.size());
    if (options.mode == SweepOptions::Mode::kWeakCoherent) {
      std::printf("%10s  %12s  %12s  %12s  %12s  %12s  %8s   (secret key bits per pulse)\n",
                  options.range.parameter.c_str(), "asymptotic", "finite key", "closed form", "inf. decoys", "PLOB",
                  "QBER");
    } else if (options.mode == SweepOptions::Mode::kQkd) {
      std::printf("%10s  %12s  %8s  %8s  %9s  %12s  %14s\n", options.range.parameter.c_str(), "key bits/s", "QBER Z",
                  "QBER X", "key bits", "PLOB bits/s", "station bits/s");
    } else {
      std::printf("%10s  %12s  %-18s  %8s%s\n", options.range.parameter.c_str(), "pairs/s", "fidelity (measured)",
                  "estimate", options.range.parameter == plot::kSweepHops ? "  to" : "");
    }
  }
  // Every point is an independent seeded run on a network of its own (no
  // state is shared between them), so they run side by side on all cores;
  // rows are printed in sweep order as soon as each one and those before it
  // are done.
  std::vector<SweepPoint> points(values.size());
  std::vector<bool> done(values.size(), false);
  std::mutex mutex;
  std::condition_variable finished;
  size_t next = 0;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const size_t jobs = std::min<size_t>(values.size(), options.jobs > 0 ? static_cast<size_t>(options.jobs) : cores);
  int failures = 0;
  const auto wall_start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (size_t w = 0; w < jobs; ++w) {
    workers.emplace_back([&] {
      for (;;) {
        size_t i;
        {
          std::lock_guard<std::mutex> lock(mutex);
          if (next >= values.size()) return;
          i = next++;
        }
        SweepPoint point = RunPoint(config, options, values[i]);
        std::lock_guard<std::mutex> lock(mutex);
        points[i] = std::move(point);
        done[i] = true;
        finished.notify_all();
      }
    });
  }
  for (size_t i = 0; i < values.size(); ++i) {
    std::unique_lock<std::mutex> lock(mutex);
    finished.wait(lock, [&] { return done[i]; });
    if (!points[i].error.empty()) ++failures;
    if (text) {
      PrintTableRow(options, points[i]);
      std::fflush(stdout);
    }
  }
  for (std::thread& t : workers) t.join();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  std::string plot_problem;
  if (!options.plot_path.empty()) {
    absl::Status plotted = plot::RenderFigure(MakeFigure(config, options, points), options.plot_path);
    if (!plotted.ok()) plot_problem = std::string(plotted.message());
  }
  if (text) {
    std::printf("%d of %zu points ran, %.3f s wall\n", static_cast<int>(points.size()) - failures, points.size(), wall);
    if (!options.plot_path.empty() && plot_problem.empty()) std::printf("plot written to %s\n", options.plot_path.c_str());
  } else {
    JsonValue j;
    j["network"] = config.name;
    j["seed"] = options.seed;
    j["mode"] = options.mode == SweepOptions::Mode::kLink   ? "link"
                : options.mode == SweepOptions::Mode::kPath ? "path"
                : options.mode == SweepOptions::Mode::kQkd  ? "qkd"
                                                            : "weak-coherent-qkd";
    j["sweep"] = {{"parameter", options.range.parameter},
                  {"start", options.range.start},
                  {"stop", options.range.stop},
                  {"step", options.range.step}};
    if (options.range.parameter == plot::kSweepLengthKm) j["link"] = options.link;
    if (options.mode != SweepOptions::Mode::kLink) j["from"] = options.from;
    j["points"] = JsonValue::array();
    for (const SweepPoint& p : points) j["points"].push_back(PointJson(options, p));
    if (!options.plot_path.empty() && plot_problem.empty()) j["plot"] = options.plot_path;
    j["wall_seconds"] = wall;
    std::printf("%s\n", j.dump(-1, ' ', false, JsonValue::error_handler_t::replace).c_str());
  }
  if (!plot_problem.empty()) std::fprintf(stderr, "qnetsim: error: %s\n", plot_problem.c_str());
  return failures == 0 && plot_problem.empty() ? 0 : 1;
}

}  // namespace qnet::netsim
