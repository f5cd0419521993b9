// qnetctl gen: writes a generated network file (config/topology_generator.h)
// for studies too large to write by hand; qnetsim and `qnetctl up` take it
// like any other.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/qnetctl_command.h"
#include "config/topology_generator.h"

namespace qnet::qnetctl {
namespace {

// A flag's number, or an error naming the flag; `out` keeps its default when
// the flag is absent.
template <typename T>
absl::Status NumberFlag(const Args& args, const std::string& name, T& out) {
  auto it = args.flags.find(name);
  if (it == args.flags.end()) return absl::OkStatus();
  bool ok = false;
  if constexpr (std::is_floating_point_v<T>) {
    ok = absl::SimpleAtod(it->second, &out) && std::isfinite(out);
  } else {
    ok = absl::SimpleAtoi(it->second, &out);
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(name, " wants ",
                                                   std::is_floating_point_v<T> ? "a number" : "a whole number",
                                                   ", got '", it->second, "'"));
  }
  return absl::OkStatus();
}

// Flags that mean nothing for a kind are refused rather than ignored: a
// --radius-km on a chain is a mistake the user should hear about.
absl::Status CheckFlagsForKind(const Args& args, config::TopologyKind kind) {
  using config::TopologyKind;
  const bool grid = kind == TopologyKind::kGrid || kind == TopologyKind::kTorus;
  const bool random = kind == TopologyKind::kRandomGeometric || kind == TopologyKind::kWaxman;
  auto refuse = [&](const char* flag, bool allowed) -> absl::Status {
    if (!allowed && args.flags.contains(flag)) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, " does not apply to a ", config::TopologyKindName(kind), " (see qnetctl gen --help)"));
    }
    return absl::OkStatus();
  };
  for (auto [flag, allowed] : std::initializer_list<std::pair<const char*, bool>>{
           {"--nodes", !grid},
           {"--rows", grid},
           {"--cols", grid},
           {"--length-km", !random},
           {"--area-km", random},
           {"--radius-km", kind == TopologyKind::kRandomGeometric},
           {"--alpha", kind == TopologyKind::kWaxman},
           {"--beta", kind == TopologyKind::kWaxman}}) {
    if (absl::Status s = refuse(flag, allowed); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<config::TopologySpec> SpecFromArgs(const Args& args) {
  if (args.positional.size() != 1) {
    return absl::InvalidArgumentError(
        "gen needs one KIND: chain, ring, grid, torus, star, geometric or waxman (see qnetctl gen --help)");
  }
  config::TopologySpec spec;
  absl::StatusOr<config::TopologyKind> kind = config::ParseTopologyKind(args.positional[0]);
  if (!kind.ok()) return kind.status();
  spec.kind = *kind;
  if (absl::Status s = CheckFlagsForKind(args, spec.kind); !s.ok()) return s;
  for (absl::Status s : {NumberFlag(args, "--nodes", spec.nodes), NumberFlag(args, "--rows", spec.rows),
                         NumberFlag(args, "--cols", spec.cols), NumberFlag(args, "--length-km", spec.length_km),
                         NumberFlag(args, "--area-km", spec.area_km), NumberFlag(args, "--radius-km", spec.radius_km),
                         NumberFlag(args, "--alpha", spec.waxman_alpha), NumberFlag(args, "--beta", spec.waxman_beta),
                         NumberFlag(args, "--seed", spec.seed)}) {
    if (!s.ok()) return s;
  }
  spec.name = Flag(args, "--name");
  spec.hardware = Flag(args, "--hardware", "ideal");
  return spec;
}

std::string CommandLine(const Args& args) {
  std::string line = absl::StrCat("qnetctl gen ", args.positional.empty() ? "" : args.positional[0]);
  for (const auto& [name, value] : args.flags) {
    if (name != "--out" && name != "--output") absl::StrAppend(&line, " ", name, " ", value);
  }
  return line;
}

int Gen(const Args& args, bool json) {
  absl::StatusOr<config::TopologySpec> spec = SpecFromArgs(args);
  if (!spec.ok()) return Fail(std::string(spec.status().message()));
  absl::StatusOr<config::GeneratedTopology> topology = config::GenerateTopology(*spec);
  if (!topology.ok()) return Fail(std::string(topology.status().message()));
  const std::string text = config::NetworkFileText(*topology, CommandLine(args));
  const std::string out = Flag(args, "--out");
  if (out.empty()) {
    if (json) return Fail("--output json describes the file gen writes: give --out FILE");
    std::cout << text;
    return 0;
  }
  {
    std::ofstream file(out, std::ios::binary | std::ios::trunc);
    file << text;
    file.close();
    if (!file) return Fail(absl::StrCat("cannot write ", out));
  }
  size_t max_degree = 0;
  std::vector<size_t> degree(topology->nodes.size(), 0);
  double total_km = 0, longest_km = 0;
  for (const config::GeneratedLink& link : topology->links) {
    max_degree = std::max({max_degree, ++degree[link.a], ++degree[link.b]});
    total_km += link.length_km;
    longest_km = std::max(longest_km, link.length_km);
  }
  const double mean_degree = 2.0 * topology->links.size() / topology->nodes.size();
  const double mean_km = total_km / topology->links.size();
  if (json) {
    std::cout << absl::StrFormat(
        "{\"file\":\"%s\",\"network\":\"%s\",\"nodes\":%d,\"links\":%d,\"joining_links\":%d,\"mean_degree\":%.6g,"
        "\"max_degree\":%d,\"mean_length_km\":%.6g,\"max_length_km\":%.6g}\n",
        out, topology->name, topology->nodes.size(), topology->links.size(), topology->joining_links, mean_degree,
        max_degree, mean_km, longest_km);
  } else {
    std::cout << absl::StrFormat(
        "wrote %s: network %s, %d nodes, %d links (%d of them join components), degree mean %.2f max %d, link length "
        "mean %.3g km max %.3g km\n",
        out, topology->name, topology->nodes.size(), topology->links.size(), topology->joining_links, mean_degree,
        max_degree, mean_km, longest_km);
  }
  return 0;
}

}  // namespace

std::vector<Command> GenCommands() {
  return {
      {"gen",
       {"--nodes", "--rows", "--cols", "--length-km", "--area-km", "--radius-km", "--alpha", "--beta", "--hardware",
        "--seed", "--name", "--out"},
       R"(Usage: qnetctl gen KIND [options] [--out FILE]

Writes a network file (to stdout, or FILE) for qnetsim or `qnetctl up`. Nodes
are n0, n1, ...; every node has the same hardware preset. The same options
and seed give the same file, byte for byte.

Kinds:
  chain      --nodes N [--length-km L]   n0 - n1 - ... - n(N-1), links of L km
  ring       --nodes N [--length-km L]   a chain closed back to n0 (N >= 3)
  star       --nodes N [--length-km L]   n0 the hub, linked to every other node
  grid       --rows R --cols C [--length-km L]   R x C, links to the right and below
  torus      --rows R --cols C [--length-km L]   a grid whose edges wrap (R, C >= 3)
  geometric  --nodes N --radius-km D [--area-km A]   random geometric graph: nodes
             uniform in an A x A km square, linked when closer than D km
  waxman     --nodes N [--alpha a] [--beta b] [--area-km A]   Waxman graph:
             nodes as above, each pair linked with probability
             b exp(-d / (a L)), d their distance, L the square's diagonal

Options:
  --length-km L   each link's length for the regular kinds (default 1)
  --area-km A     the square's side for the random kinds (default 100)
  --alpha, --beta Waxman's parameters, in (0, 1] (default 0.4 each)
  --hardware P    every node's preset (default ideal; see README, "Hardware presets")
  --seed S        placement and links of the random kinds, and the file's seed
                  (default 1)
  --name NAME     the network's name (default KIND-N, or KIND-RxC)
  --out FILE      write FILE and print a summary (nodes, links, degrees,
                  lengths; --output json for it as JSON)

Random kinds: a link's length is the straight-line distance between its nodes
(to the metre, at least 1 m). A graph that comes out disconnected is joined by
the shortest links between its components, so every node reaches every
other; the file's header says how many. Random kinds go up to 20000 nodes
(every pair is looked at), the regular ones to the network file's 100000.
)",
       Gen},
  };
}

}  // namespace qnet::qnetctl
