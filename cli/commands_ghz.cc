// qnetctl's commands beyond pairs: ghz (GHZ states across nodes through
// their daemons, measured shot by shot; the fidelity and Mermin value from
// the outcomes) and circuit (a circuit across nodes, with remote CNOTs).
#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "apps/ghz_statistics.h"
#include "cli/entangle_client.h"
#include "cli/qnetctl_command.h"
#include "transport/circuit_program.h"
#include "qnet/v1/node_service.grpc.pb.h"

namespace qnet::qnetctl {
namespace {

// "120/900 GHZ states after 0.82 simulated s (the daemons run behind the physics)".
std::string ProgressLine(const qnet::v1::ShotProgress& p, const char* what) {
  return absl::StrFormat("%d/%d %s after %.3g simulated s%s", p.shots_done(), p.shots_requested(), what, p.elapsed_s(),
                         p.behind() ? " (the daemons run behind the physics: software speed)" : "");
}

int Ghz(const Args& args, bool json) {
  const std::vector<std::string> nodes = absl::StrSplit(Flag(args, "--nodes"), ',', absl::SkipEmpty());
  if (nodes.size() < 3 || nodes.size() > 8) {
    return Fail(absl::StrCat("ghz needs --nodes ROOT,B,C[,...]: 3 to 8 distinct nodes, got ", nodes.size()));
  }
  if (std::set<std::string>(nodes.begin(), nodes.end()).size() != nodes.size()) {
    return Fail("--nodes lists a node twice");
  }
  if (const std::string node = Flag(args, "--node"); !node.empty() && node != nodes.front()) {
    return Fail(absl::StrCat("--node ", node, " is not the root: the root is the first of --nodes (", nodes.front(),
                             "); drop --node"));
  }
  qnet::v1::GhzRequest request;
  for (size_t i = 1; i < nodes.size(); ++i) request.add_members(nodes[i]);
  const uint32_t settings = (1u << (nodes.size() - 1)) + 1;
  uint32_t shots = 100 * settings;
  if (std::string n = Flag(args, "--shots"); !n.empty() && !absl::SimpleAtoi(n, &shots)) {
    return Fail(absl::StrCat("--shots must be a positive number, got '", n, "'"));
  }
  if (shots < settings || shots > 100000) {
    return Fail(absl::StrCat("--shots must be in ", settings, "..100000 (each of the ", settings,
                             " settings at least once), got ", shots));
  }
  request.set_shots(shots);
  qnet::v1::EntangleRequest limits;
  if (absl::Status s = SetFidelityAndTimeout(args, limits); !s.ok()) return Fail(std::string(s.message()));
  request.set_min_fidelity(limits.min_fidelity());
  request.set_timeout_s(limits.timeout_s());
  auto address = StateNodeAddress(args, nodes.front());
  if (!address.ok()) return Fail(std::string(address.status().message()));
  if (!json) ShowWaiting(absl::StrFormat("building and measuring %d GHZ states over %s", shots, absl::StrJoin(nodes, ",")));
  auto summary = qnet::cli::RunGhz(*address, request, absl::Hours(24), [json](const qnet::v1::ShotProgress& p) {
    if (!json) ShowWaiting(ProgressLine(p, "GHZ states"));
  });
  ClearWaiting();
  if (!summary.ok()) {
    return Fail(absl::StrCat(absl::StatusCodeToString(summary.status().code()), ": ", summary.status().message()));
  }
  std::vector<apps::GhzSettingTally> tallies;
  for (const auto& t : summary->settings()) {
    tallies.push_back({t.bases(), std::vector<uint64_t>(t.counts().begin(), t.counts().end())});
  }
  absl::StatusOr<apps::GhzEstimate> e = apps::EstimateGhz(tallies);
  if (!e.ok()) return Fail(absl::StrCat("the daemon's tallies give no estimate: ", e.status().message()));
  if (json) {
    nlohmann::json j = nlohmann::json::parse(Json(*summary));
    j["estimate"] = {{"fidelity", {{"value", e->fidelity}, {"stderr", e->fidelity_se}}},
                     {"populations", {{"value", e->populations}, {"stderr", e->populations_se}}},
                     {"coherence", {{"value", e->coherence}, {"stderr", e->coherence_se}}},
                     {"mermin",
                      {{"value", e->mermin},
                       {"stderr", e->mermin_se},
                       {"local_bound", e->mermin_local_bound},
                       {"quantum_max", e->mermin_quantum_max},
                       {"violation_sigmas", e->mermin_violation_sigmas}}}};
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::cout << absl::StrFormat("GHZ state over %s (%s), %d shots\n", absl::StrJoin(summary->nodes(), ", "),
                               summary->construction(), summary->shots());
  std::cout << absl::StrFormat("  fidelity from outcomes: %.4f +- %.4f  (populations %.4f +- %.4f, coherence %.4f +- %.4f)\n",
                               e->fidelity, e->fidelity_se, e->populations, e->populations_se, e->coherence,
                               e->coherence_se);
  std::cout << absl::StrFormat("  Mermin: %.4f +- %.4f  (local bound %g, GHZ %g: %s by %.1f standard errors)\n",
                               e->mermin, e->mermin_se, e->mermin_local_bound, e->mermin_quantum_max,
                               e->mermin > e->mermin_local_bound ? "violated" : "not violated",
                               std::abs(e->mermin_violation_sigmas));
  for (const auto& s : e->settings) {
    std::cout << absl::StrFormat("  %-10s %6d shots  %s %+.4f +- %.4f\n", s.bases, s.shots,
                                 s.bases.find('Z') != std::string::npos ? "P(all equal)" : "parity", s.expectation,
                                 s.se);
  }
  std::cout << absl::StrFormat("  entangled pairs: %d used, %d discarded below --min-fidelity, mean fidelity estimate %.4f\n",
                               summary->pairs_used(), summary->pairs_discarded(),
                               summary->mean_pair_fidelity_estimate());
  std::cout << absl::StrFormat("  %.6f s simulated (%.1f states/s)\n", summary->duration_s(),
                               summary->duration_s() > 0 ? summary->shots() / summary->duration_s() : 0.0);
  std::cout << LagWarning(summary->lag());
  return 0;
}


int Circuit(const Args& args, bool json) {
  if (args.positional.size() != 1) return Fail("circuit needs one FILE: the program (see qnetctl circuit --help)");
  const std::string file = args.positional[0];
  std::ifstream in(file);
  if (!in) return Fail(absl::StrCat("cannot read the circuit file ", file));
  std::stringstream text;
  text << in.rdbuf();
  // Parsed here too, so a mistake names its line before any daemon is asked.
  absl::StatusOr<transport::CircuitProgram> program = transport::ParseCircuit(text.str());
  if (!program.ok()) return Fail(absl::StrCat(file, ": ", program.status().message()));
  const std::string node = Flag(args, "--node", program->nodes.front());
  qnet::v1::RunCircuitRequest request;
  request.set_program(text.str());
  uint32_t shots = 100;
  if (std::string n = Flag(args, "--shots"); !n.empty() && (!absl::SimpleAtoi(n, &shots) || shots < 1 || shots > 100000)) {
    return Fail(absl::StrCat("--shots must be in 1..100000, got '", n, "'"));
  }
  request.set_shots(shots);
  qnet::v1::EntangleRequest limits;
  if (absl::Status s = SetFidelityAndTimeout(args, limits); !s.ok()) return Fail(std::string(s.message()));
  request.set_min_fidelity(limits.min_fidelity());
  request.set_timeout_s(limits.timeout_s());
  auto address = StateNodeAddress(args, node);
  if (!address.ok()) return Fail(std::string(address.status().message()));
  if (!json) ShowWaiting(absl::StrFormat("running %s %d times, coordinated by %s", file, shots, node));
  auto summary = qnet::cli::RunCircuit(*address, request, absl::Hours(24), [json](const qnet::v1::ShotProgress& p) {
    if (!json) ShowWaiting(ProgressLine(p, "shots"));
  });
  ClearWaiting();
  if (!summary.ok()) {
    return Fail(absl::StrCat(absl::StatusCodeToString(summary.status().code()), ": ", summary.status().message()));
  }
  if (json) {
    std::cout << Json(*summary) << "\n";
    return 0;
  }
  std::cout << absl::StrFormat("%s: %d shots, coordinated by %s\n", file, summary->shots(), summary->coordinator());
  std::cout << absl::StrFormat("  outcomes of %s\n", absl::StrJoin(summary->measurements(), " "));
  for (const auto& c : summary->counts()) {
    const double p = static_cast<double>(c.shots()) / summary->shots();
    std::cout << absl::StrFormat("  %-16s %8d  (%.4f +- %.4f)\n", c.outcome(), c.shots(), p,
                                 std::sqrt(p * (1 - p) / summary->shots()));
  }
  std::cout << absl::StrFormat("  entangled pairs: %d used (one per remote CNOT and shot), %d discarded below --min-fidelity\n",
                               summary->pairs_used(), summary->pairs_discarded());
  std::cout << absl::StrFormat("  %.6f s simulated (%.1f shots/s)\n", summary->duration_s(),
                               summary->duration_s() > 0 ? summary->shots() / summary->duration_s() : 0.0);
  std::cout << LagWarning(summary->lag());
  return 0;
}

}  // namespace

std::vector<Command> GhzCommands() {
  return {
      {"ghz",
       {"--nodes", "--shots", "--min-fidelity", "--timeout"},
       R"(Usage: qnetctl ghz --nodes ROOT,B,C[,...] [--shots N] [--min-fidelity F]
         [--timeout DURATION]

Builds GHZ states (|0...0> + |1...1>)/sqrt(2) across 3 to 8 nodes and
measures them. The first node is the root: it asks the network layer for
one entangled pair with each other node, fuses them (a CNOT from its first
half onto each other half, which it then measures in Z) and tracks the Pauli
corrections instead of applying them. Then every node measures its qubit:
shot by shot in the all-Z setting, then in each X/Y setting with an even
number of Y, in turn. The report gives the GHZ fidelity from those outcomes
(Z populations plus the coherence) and Mermin's value against its local
bound, each with a standard error. Pairs of Werner parameter w give
F = (((1+w)/2)^(N-1) + w^(N-1))/2 (docs/architecture.md, "GHZ states").

  --nodes ROOT,B,...    the nodes, root first (required)
  --shots N             states to build and measure, at least one per setting
                        (2^(N-1) + 1) and at most 100000 (default 100 per setting)
  --min-fidelity F      of each entangled pair used, in [0, 1] (default 0)
  --timeout DURATION    simulated time for the whole request (default 60s)
)",
       Ghz},
      {"circuit",
       {"--shots", "--min-fidelity", "--timeout"},
       R"(Usage: qnetctl [--node NODE] circuit FILE [--shots N] [--min-fidelity F]
         [--timeout DURATION]

Runs the circuit in FILE across the network's nodes, N times, and prints how
often each outcome string came (one character per measurement, in program
order; 0 = the +1 eigenstate). NODE coordinates (default: the first node the
program names): it steps through the program and has each instruction done
by the node that holds its qubit. A CNOT between qubits at two nodes is a
remote CNOT by gate teleportation (Eisert et al. 2000): one entangled pair,
one measurement and one classical bit each way.

The format, one instruction per line (# starts a comment; a qubit is
NODE.NAME and starts in |0> at its first use):
  h alice.q                 x y z h s sdg t
  rz alice.q 0.7854         rx ry rz by an angle in radians
  cnot alice.q bob.q        control, target (remote between nodes)
  measure bob.q [z|x|y]     a measured qubit is not used again

  --shots N             1..100000 (default 100)
  --min-fidelity F      of each pair a remote CNOT uses, in [0, 1] (default 0)
  --timeout DURATION    simulated time for the whole request (default 60s)
)",
       Circuit},
  };
}

}  // namespace qnet::qnetctl
