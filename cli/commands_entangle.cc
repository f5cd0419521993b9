// qnetctl's commands for entangled pairs: entangle, bell-test (a CHSH test
// over MEASURE pairs) and measure (one held KEEP qubit).
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "apps/estimate_bounds.h"
#include "apps/pair_statistics.h"
#include "cli/entangle_client.h"
#include "cli/qnetctl_command.h"
#include "config/hop_distance.h"
#include "plot/figure.h"
#include "plot/sweep_range.h"
#include "qnet/v1/node_service.grpc.pb.h"

namespace qnet::qnetctl {
namespace {

using qnet::v1::EntangleRequest;

int EntangleSweep(const Args& args, bool json, const std::string& node);

int Entangle(const Args& args, bool json) {
  const std::string node = Flag(args, "--node");
  const std::string with = Flag(args, "--with");
  if (node.empty()) return Fail("entangle needs --node NODE (the requesting end)");
  if (!Flag(args, "--sweep").empty()) return EntangleSweep(args, json, node);
  if (!Flag(args, "--plot").empty()) return Fail("--plot draws a sweep: give --sweep hops=START:STOP too");
  if (with.empty()) return Fail("entangle needs --with NODE (the far end)");
  EntangleRequest request;
  request.set_remote_node(with);
  uint32_t pairs = 0;
  if (!absl::SimpleAtoi(Flag(args, "--pairs", ""), &pairs)) return Fail("entangle needs --pairs N (a positive number)");
  request.set_pairs(pairs);
  const std::string type = Flag(args, "--type", "keep");
  if (type == "keep") {
    request.set_type(EntangleRequest::KEEP);
  } else if (type == "measure") {
    request.set_type(EntangleRequest::MEASURE);
  } else {
    return Fail(absl::StrCat("--type must be keep or measure, got '", type, "'"));
  }
  const std::map<std::string, EntangleRequest::Basis> bases = {
      {"z", EntangleRequest::Z},       {"x", EntangleRequest::X},
      {"y", EntangleRequest::Y},       {"bb84", EntangleRequest::BB84},
      {"six-state", EntangleRequest::SIX_STATE}, {"chsh", EntangleRequest::CHSH}};
  const std::string basis = Flag(args, "--basis", "z");
  auto b = bases.find(basis);
  if (b == bases.end()) return Fail(absl::StrCat("--basis must be z, x, y, bb84, six-state or chsh, got '", basis, "'"));
  request.set_basis(b->second);
  if (absl::Status s = SetFidelityAndTimeout(args, request); !s.ok()) return Fail(std::string(s.message()));
  auto address = StateNodeAddress(args, node);
  if (!address.ok()) return Fail(std::string(address.status().message()));

  auto on_pair = [json](const qnet::v1::PairEvent& p) {
    ClearWaiting();
    if (json) {
      std::cout << Json(p) << "\n";
    } else if (p.outcome() >= 0) {
      std::cout << absl::StrFormat("%-18s %-5s F~%.4f  latency %.6fs  basis %-2s outcome %d\n", p.entanglement_id(),
                                   p.bell_state(), p.fidelity_estimate(), p.latency_s(), p.basis(), p.outcome());
    } else {
      std::cout << absl::StrFormat("%-18s %-5s F~%.4f  latency %.6fs\n", p.entanglement_id(), p.bell_state(),
                                   p.fidelity_estimate(), p.latency_s());
    }
    std::cout.flush();
  };
  // The wall-clock bound of the call: generous; the request's own timeout is simulated time.
  // While no pair comes: what the request waits for (memory, the link),
  // from the daemon, about once a second.
  auto on_progress = [json](const qnet::v1::EntangleProgress& p) {
    if (!json) ShowWaiting(DescribeWait(p));
  };
  auto result = qnet::cli::RunEntangle(*address, request, absl::Hours(24), on_pair, nullptr, on_progress);
  ClearWaiting();
  if (!result.ok()) return Fail(absl::StrCat(absl::StatusCodeToString(result.status().code()), ": ", result.status().message()));

  double mean_f = 0;
  for (const auto& p : result->pairs) mean_f += p.fidelity_estimate();
  if (!result->pairs.empty()) mean_f /= static_cast<double>(result->pairs.size());
  const double duration = result->summary.duration_s();
  const double rate = duration > 0 ? static_cast<double>(result->pairs.size()) / duration : 0.0;
  std::optional<qnet::apps::PairStatistics> stats;
  if (request.type() == EntangleRequest::MEASURE && !Flag(args, "--address").empty()) {
    // One daemon by address: the far end's outcomes are out of reach.
    std::cerr << "note: with --address only " << node << "'s outcomes are at hand; the error rates need " << with
              << "'s too (use the network's state: --network or --state-dir)\n";
  } else if (request.type() == EntangleRequest::MEASURE) {
    auto far_address = StateNodeAddress(args, with);
    if (!far_address.ok()) return Fail(std::string(far_address.status().message()));
    auto far = qnet::cli::FetchOutcomes(*far_address, node, result->pairs);
    if (!far.ok()) return Fail(absl::StrCat("fetching ", with, "'s outcomes: ", far.status().message()));
    stats = qnet::apps::AnalysePairs(qnet::cli::MatchPairs(node, result->pairs, *far));
  }
  if (json) {
    std::cout << absl::StrFormat("{\"summary\":{\"pairs\":%d,\"duration_s\":%g,\"rate_hz\":%g,\"mean_fidelity_estimate\":%g",
                                 result->pairs.size(), duration, rate, mean_f);
    std::vector<std::string> quoted;
    for (const auto& n : result->summary.path()) quoted.push_back(absl::StrCat("\"", n, "\""));
    std::cout << absl::StrFormat(",\"hops\":%d,\"path\":[%s]",
                                 result->summary.path_size() > 0 ? result->summary.path_size() - 1 : 1,
                                 absl::StrJoin(quoted, ","));
    if (stats) {
      auto er = [](const qnet::apps::ErrorRate& e) {
        return absl::StrFormat("{\"pairs\":%d,\"errors\":%d,\"rate\":%g}", e.pairs, e.errors, e.rate());
      };
      std::cout << ",\"matched_pairs\":" << stats->pairs << ",\"z\":" << er(stats->z) << ",\"x\":" << er(stats->x)
                << ",\"y\":" << er(stats->y);
      if (stats->fidelity) std::cout << absl::StrFormat(",\"fidelity\":%g", stats->fidelity->value);
      if (stats->chsh) std::cout << absl::StrFormat(",\"chsh\":%g", stats->chsh->value);
    }
    std::cout << ",\"lag\":" << Json(result->summary.lag()) << "}}\n";
  } else {
    std::cout << absl::StrFormat("%d pairs in %.6f s simulated (%.1f pairs/s), mean fidelity estimate %.4f\n",
                                 result->pairs.size(), duration, rate, mean_f);
    if (result->summary.path_size() > 0) {
      std::cout << absl::StrFormat("path %s (%d hops, swapped at the repeaters)\n",
                                   absl::StrJoin(result->summary.path(), " - "), result->summary.path_size() - 1);
    } else {
      std::cout << absl::StrFormat("path %s - %s (1 hop, link layer)\n", node, with);
    }
    if (stats) {
      std::cout << absl::StrFormat("both ends' outcomes: %d pairs matched\n", stats->pairs);
      for (auto [name, e] : {std::pair{"Z", stats->z}, std::pair{"X", stats->x}, std::pair{"Y", stats->y}}) {
        if (e.pairs == 0) continue;
        std::cout << absl::StrFormat("  error rate %s: %.4f +- %.4f (%d/%d)\n", name, e.rate(), e.standard_error(),
                                     e.errors, e.pairs);
      }
      if (stats->fidelity) {
        std::cout << absl::StrFormat("  fidelity from outcomes: %.4f +- %.4f\n", stats->fidelity->value,
                                     stats->fidelity->standard_error);
      }
      if (stats->chsh) {
        std::cout << absl::StrFormat("  CHSH S: %.4f +- %.4f%s\n", stats->chsh->value, stats->chsh->standard_error,
                                     apps::AboveBoundNote(stats->chsh->value, stats->chsh->standard_error,
                                                          apps::kTsirelsonBound, "quantum bound"));
      }
    }
    std::cout << LagWarning(result->summary.lag());
  }
  return 0;
}

int BellTest(const Args& args, bool json) {
  const std::string node = Flag(args, "--node");
  const std::string with = Flag(args, "--with");
  if (node.empty()) return Fail("bell-test needs --node NODE (one end)");
  if (with.empty()) return Fail("bell-test needs --with NODE (the other end)");
  EntangleRequest request;
  request.set_remote_node(with);
  request.set_type(EntangleRequest::MEASURE);
  request.set_basis(EntangleRequest::CHSH);
  uint32_t pairs = 0;
  if (!absl::SimpleAtoi(Flag(args, "--pairs", ""), &pairs)) return Fail("bell-test needs --pairs N (a positive number)");
  request.set_pairs(pairs);
  if (absl::Status s = SetFidelityAndTimeout(args, request); !s.ok()) return Fail(std::string(s.message()));
  auto dir = StateDir(args);
  if (!dir.ok()) return Fail(std::string(dir.status().message()));
  auto address = NodeAddress(*dir, node);
  if (!address.ok()) return Fail(std::string(address.status().message()));
  auto far_address = NodeAddress(*dir, with);
  if (!far_address.ok()) return Fail(std::string(far_address.status().message()));
  size_t seen = 0;
  auto on_pair = [&](const qnet::v1::PairEvent&) {
    ++seen;
    if (!json) {
      ShowProgress(seen, pairs, "pairs");
    }
  };
  auto on_progress = [json](const qnet::v1::EntangleProgress& p) {
    if (!json) ShowWaiting(DescribeWait(p));
  };
  auto result = qnet::cli::RunEntangle(*address, request, absl::Hours(24), on_pair, nullptr, on_progress);
  ClearWaiting();
  if (!result.ok()) return Fail(absl::StrCat(absl::StatusCodeToString(result.status().code()), ": ", result.status().message()));
  auto far = qnet::cli::FetchOutcomes(*far_address, node, result->pairs);
  if (!far.ok()) return Fail(absl::StrCat("fetching ", with, "'s outcomes: ", far.status().message()));
  const qnet::apps::PairStatistics stats = qnet::apps::AnalysePairs(qnet::cli::MatchPairs(node, result->pairs, *far));
  if (!stats.chsh) {
    return Fail(absl::StrCat("too few pairs for every pair of settings (", stats.pairs, " matched); ask for more --pairs"));
  }
  const double s_value = stats.chsh->value, error = stats.chsh->standard_error;
  const double sigmas = error > 0 ? (s_value - 2.0) / error : 0.0;
  const bool violates = s_value - 2.0 > 3.0 * error;
  std::vector<std::string> quoted;
  for (const auto& n : result->summary.path()) quoted.push_back(absl::StrCat("\"", n, "\""));
  if (json) {
    std::cout << absl::StrFormat(
        "{\"pairs\":%d,\"matched\":%d,\"s\":%.6f,\"standard_error\":%.6f,\"sigmas_above_2\":%.3f,"
        "\"violates_classical_bound\":%s,\"path\":[%s],\"duration_s\":%g,\"lag\":%s}\n",
        result->pairs.size(), stats.pairs, s_value, error, sigmas, violates ? "true" : "false",
        absl::StrJoin(quoted, ","), result->summary.duration_s(), Json(result->summary.lag()));
    return 0;
  }
  std::cout << absl::StrFormat("CHSH test %s - %s over %d pairs (%d matched at both ends)%s\n", node, with,
                               result->pairs.size(), stats.pairs,
                               result->summary.path_size() > 0
                                   ? absl::StrCat(", path ", absl::StrJoin(result->summary.path(), " - "))
                                   : std::string());
  std::cout << absl::StrFormat("  S = %.4f +- %.4f   (classical bound 2, quantum bound 2.828)%s\n", s_value, error,
                               apps::AboveBoundNote(s_value, error, apps::kTsirelsonBound, "quantum bound"));
  std::cout << (violates ? absl::StrFormat("  violates the classical bound by %.1f standard errors\n", sigmas)
                         : absl::StrFormat("  no significant violation (%.1f standard errors above 2; need > 3)\n",
                                           sigmas));
  std::cout << LagWarning(result->summary.lag());
  return 0;
}

int Measure(const Args& args, bool json) {
  const std::string node = Flag(args, "--node");
  const std::string id = Flag(args, "--id");
  const std::string basis = Flag(args, "--basis");
  if (node.empty()) return Fail("measure needs --node NODE (the daemon holding the qubit)");
  if (id.empty()) return Fail("measure needs --id ENTANGLEMENT_ID (as entangle printed it, e.g. alice-bob#171532610026078209)");
  if (basis.empty()) return Fail("measure needs --basis z|x|y|ANGLE");
  auto request = qnet::cli::MeasureRequest(id, basis);
  if (!request.ok()) return Fail(std::string(request.status().message()));
  auto address = StateNodeAddress(args, node);
  if (!address.ok()) return Fail(std::string(address.status().message()));
  auto result = qnet::cli::MeasureQubit(*address, *request);
  if (!result.ok()) return Fail(absl::StrCat(absl::StatusCodeToString(result.status().code()), ": ", result.status().message()));
  if (json) {
    std::cout << Json(*result) << "\n";
  } else {
    std::cout << absl::StrFormat("%s at %s: outcome %d in %s (pair %s, held %.6f s)\n", result->entanglement_id(),
                                 result->node(), result->outcome(), result->basis(), result->bell_state(),
                                 result->held_s());
  }
  return 0;
}


// entangle --sweep hops=A:B: MEASURE pairs from NODE to the first node (file
// order) at each hop count, through the running daemons; the same figure
// `qnetsim --from NODE --sweep hops=A:B` draws from the simulator.
int EntangleSweep(const Args& args, bool json, const std::string& node) {
  if (!Flag(args, "--with").empty()) {
    return Fail("--sweep hops picks each point's far end itself (the first node that many hops away): drop --with");
  }
  auto range = plot::ParseSweep(Flag(args, "--sweep"));
  if (!range.ok()) return Fail(std::string(range.status().message()));
  if (range->parameter != plot::kSweepHops) {
    return Fail(absl::StrCat("--sweep ", range->parameter,
                             " would change the network file; the daemons run it as started. Sweep lengths in the "
                             "simulator: qnetsim --network FILE --sweep length_km=... (same figures)"));
  }
  if (Flag(args, "--type", "measure") != "measure") {
    return Fail("--sweep compares both ends' outcomes: it asks for MEASURE pairs (drop --type)");
  }
  const std::string basis = Flag(args, "--basis", "six-state");
  const std::map<std::string, EntangleRequest::Basis> bases = {
      {"z", EntangleRequest::Z}, {"x", EntangleRequest::X}, {"y", EntangleRequest::Y},
      {"bb84", EntangleRequest::BB84}, {"six-state", EntangleRequest::SIX_STATE}};
  auto b = bases.find(basis);
  if (b == bases.end()) return Fail(absl::StrCat("--basis must be z, x, y, bb84 or six-state, got '", basis, "'"));
  uint32_t pairs = 0;
  if (!absl::SimpleAtoi(Flag(args, "--pairs", "1000"), &pairs) || pairs == 0) {
    return Fail("--pairs must be a positive number");
  }
  const std::string plot_path = Flag(args, "--plot");
  if (!plot_path.empty() && !absl::EndsWithIgnoreCase(plot_path, ".svg") && !absl::EndsWithIgnoreCase(plot_path, ".png")) {
    return Fail(absl::StrFormat("--plot %s must end in .svg or .png (the format follows the extension)", plot_path));
  }
  EntangleRequest request;
  request.set_pairs(pairs);
  request.set_type(EntangleRequest::MEASURE);
  request.set_basis(b->second);
  if (absl::Status s = SetFidelityAndTimeout(args, request); !s.ok()) return Fail(std::string(s.message()));
  auto dir = StateDir(args);
  if (!dir.ok()) return Fail(std::string(dir.status().message()));
  auto network = StateNetwork(*dir);
  if (!network.ok()) return Fail(std::string(network.status().message()));
  if (network->FindNode(node) == nullptr) return Fail(absl::StrFormat("no node '%s' in the network", node));
  auto address = NodeAddress(*dir, node);
  if (!address.ok()) return Fail(std::string(address.status().message()));

  if (!json) {
    std::cout << absl::StrFormat("%s: %d %s MEASURE pairs from %s to the node at each of hops %g..%g\n",
                                 network->name, pairs, basis, node, range->start, range->stop);
    std::cout << absl::StrFormat("%5s  %-12s %12s  %-19s  %8s\n", "hops", "to", "pairs/s", "fidelity (measured)",
                                 "estimate");
  }
  std::vector<plot::PairSweepPoint> points;
  using JsonDoc = nlohmann::ordered_json;
  JsonDoc json_points = JsonDoc::array();
  bool any_behind = false;
  int failures = 0;
  for (double hops : range->Values()) {
    auto to = config::NodeAtHops(*network, node, static_cast<int>(hops));
    std::string error;
    if (!to.ok()) error = std::string(to.status().message());
    std::optional<cli::EntangleResult> result;
    std::optional<apps::PairStatistics> stats;
    if (error.empty()) {
      request.set_remote_node(*to);
      size_t seen = 0;
      auto on_pair = [&](const qnet::v1::PairEvent&) {
        ++seen;
        if (!json) ShowProgress(seen, pairs, "pairs");
      };
      auto on_progress = [json](const qnet::v1::EntangleProgress& p) {
        if (!json) ShowWaiting(DescribeWait(p));
      };
      auto run = cli::RunEntangle(*address, request, absl::Hours(24), on_pair, nullptr, on_progress);
      ClearWaiting();
      auto far_address = NodeAddress(*dir, *to);
      if (!run.ok()) {
        error = absl::StrCat(absl::StatusCodeToString(run.status().code()), ": ", run.status().message());
      } else if (!far_address.ok()) {
        error = std::string(far_address.status().message());
      } else if (auto far = cli::FetchOutcomes(*far_address, node, run->pairs); !far.ok()) {
        error = absl::StrCat("fetching ", *to, "'s outcomes: ", far.status().message());
      } else {
        stats = apps::AnalysePairs(cli::MatchPairs(node, run->pairs, *far));
        result = *std::move(run);
      }
    }
    if (!error.empty()) {
      ++failures;
      if (json) {
        json_points.push_back({{"hops", static_cast<int64_t>(hops)}, {"error", error}});
      } else {
        std::cout << absl::StrFormat("%5g  FAILED: %s\n", hops, error);
      }
      continue;
    }
    const double duration = result->summary.duration_s();
    const double rate = duration > 0 ? static_cast<double>(result->pairs.size()) / duration : 0.0;
    double mean_f = 0;
    for (const auto& p : result->pairs) mean_f += p.fidelity_estimate();
    if (!result->pairs.empty()) mean_f /= static_cast<double>(result->pairs.size());
    plot::PairSweepPoint point{hops, rate, std::nullopt, 0.0, mean_f};
    if (stats->fidelity) {
      point.fidelity = stats->fidelity->value;
      point.fidelity_standard_error = stats->fidelity->standard_error;
    }
    points.push_back(point);
    any_behind = any_behind || result->summary.lag().behind();
    const std::string fidelity =
        point.fidelity ? absl::StrFormat("%.4f +- %.4f", *point.fidelity, point.fidelity_standard_error) : "-";
    if (json) {
      std::vector<std::string> path(result->summary.path().begin(), result->summary.path().end());
      if (path.empty()) path = {node, *to};  // the link layer's
      JsonDoc entry = {{"hops", static_cast<int64_t>(hops)}, {"to", *to},      {"path", path},
                       {"pairs", result->pairs.size()},      {"duration_s", duration}, {"pairs_per_second", rate},
                       {"mean_fidelity_estimate", mean_f}};
      if (point.fidelity) entry["fidelity"] = {{"value", *point.fidelity}, {"stderr", point.fidelity_standard_error}};
      entry["lag"] = JsonDoc::parse(Json(result->summary.lag()), nullptr, false);
      json_points.push_back(std::move(entry));    } else {
      std::cout << absl::StrFormat("%5g  %-12s %12.4g  %-19s  %8.4f%s\n", hops, *to, rate, fidelity, mean_f,
                                   result->summary.lag().behind() ? "  (daemons fell behind)" : "");
      std::cout.flush();
    }
  }
  std::string plot_problem;
  if (!plot_path.empty()) {
    absl::Status plotted = plot::RenderFigure(
        plot::PairSweepFigure(absl::StrFormat("%s: %s pairs %s -> each hop (daemons)", network->name, basis, node),
                              absl::StrFormat("hops from %s", node), points, /*x_whole_numbers=*/true),
        plot_path);
    if (!plotted.ok()) plot_problem = std::string(plotted.message());
  }
  if (json) {
    JsonDoc out = {{"network", network->name},
                   {"from", node},
                   {"sweep",
                    {{"parameter", "hops"},
                     {"start", static_cast<int64_t>(range->start)},
                     {"stop", static_cast<int64_t>(range->stop)},
                     {"step", static_cast<int64_t>(range->step)}}},
                   {"points", json_points}};
    if (!plot_path.empty() && plot_problem.empty()) out["plot"] = plot_path;
    std::cout << out.dump(-1, ' ', false, JsonDoc::error_handler_t::replace) << "\n";
  } else {
    if (any_behind) {
      std::cout << "  warning: the daemons fell behind the physics at the points marked: their rates there are the "
                   "runtime's, a lower bound of the network file's (each point's lag: --output json)\n";
    }
    if (!plot_path.empty() && plot_problem.empty()) std::cout << "plot written to " << plot_path << "\n";
  }
  if (!plot_problem.empty()) return Fail(plot_problem);
  return failures == 0 ? 0 : 1;
}

}  // namespace

std::vector<Command> EntangleCommands() {
  return {
      {"entangle",
       {"--with", "--pairs", "--type", "--basis", "--min-fidelity", "--timeout", "--sweep", "--plot"},
       R"(Usage: qnetctl --node NODE entangle --with NODE --pairs N [--type keep|measure]
         [--basis z|x|y|bb84|six-state|chsh] [--min-fidelity F] [--timeout DURATION]
       qnetctl --node NODE entangle --sweep hops=START:STOP [--pairs N] [--basis B]
         [--plot FILE.svg|png]

Asks NODE for N entangled pairs with --with and prints each pair as it
arrives (entanglement id, Bell state, fidelity estimate, latency), then a
summary: rate, mean fidelity estimate, the path, and for MEASURE pairs both
ends' outcomes compared (error rate per basis, fidelity, CHSH value). A
neighbour is served by the link layer directly; any other node by the
network layer: a route of repeaters that swap entanglement (the Bell state
is then the end-to-end one, swap outcomes included).

  --with NODE           any other node (required)
  --pairs N             1..100000 (required)
  --type keep|measure   keep (default): the pairs stay in memory at both ends
                        for `measure` (for the daemons' --keep-hold); measure:
                        both ends measure at once
  --basis B             MEASURE bases: z (default), x, y, or per pair at random
                        bb84 (Z/X), six-state (Z/X/Y), chsh (CHSH settings)
  --min-fidelity F      in [0, 1] (default 0)
  --timeout DURATION    simulated time, e.g. 2s, 500ms (default: none)

With --sweep hops=START:STOP (no --with) it asks for --pairs MEASURE pairs
(default 1000, basis six-state) from NODE to the first node of the network
file that many hops away, for each hop count, and prints pair rate (per
simulated second), fidelity from both ends' outcomes and the layers' estimate
per point; --plot draws them (gnuplot). `qnetsim --from NODE --sweep hops=...`
draws the same figure from the simulator, for comparison.
)",
       Entangle},
      {"bell-test",
       {"--with", "--pairs", "--min-fidelity", "--timeout"},
       R"(Usage: qnetctl --node NODE bell-test --with NODE --pairs N [--min-fidelity F] [--timeout DURATION]

A CHSH Bell test over N entangled pairs between NODE and --with (a
neighbour through the link layer, any other node end to end through the
network layer): for every pair each end picks its measurement setting at
random on its own (NODE: 0 or pi/2, the far end: pi/4 or -pi/4, in the X-Z
plane), both ends' outcomes are compared in the pair's Bell-state frame, and
S = E(a0,b0) + E(a0,b1) + E(a1,b0) - E(a1,b1) (signs as the ideal state
predicts) is reported with its standard error and whether it violates the
classical bound 2 (by how many standard errors). The quantum bound is
2*sqrt(2) = 2.828; a Werner pair of fidelity F gives 2*sqrt(2)*(4F-1)/3.

  --with NODE           the far end (required)
  --pairs N             1..100000 (required; at least a few hundred for a clear answer)
  --min-fidelity F      in [0, 1] (default 0)
  --timeout DURATION    simulated time (default: none)
)",
       BellTest},
      {"measure",
       {"--id", "--basis"},
       R"(Usage: qnetctl --node NODE measure --id ENTANGLEMENT_ID --basis z|x|y|ANGLE

Measures NODE's qubit of a KEEP pair it holds (delivered by `entangle --type
keep`, at either end) on its simulated device, readout error included, and
frees the memory slot. Prints the outcome: 0 for the +1 eigenstate, 1 for -1,
raw (not corrected for the pair's Bell state). A pair is held for the
daemon's --keep-hold after delivery; measuring it again, or after that, is an
error.

  --id ID               the pair's entanglement id as entangle printed it,
                        e.g. alice-bob#171532610026078209 (required)
  --basis z|x|y|ANGLE   Z, X, Y, or an angle in radians in the X-Z plane: the
                        observable cos(ANGLE) Z + sin(ANGLE) X (required)
)",
       Measure},
  };
}

}  // namespace qnet::qnetctl
