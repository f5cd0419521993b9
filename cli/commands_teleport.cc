// qnetctl's teleport command: a qubit state from one node to another over
// the transport layer, reconstructed from the destination's outcomes.
#include <iostream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "apps/estimate_bounds.h"
#include "cli/entangle_client.h"
#include "cli/qnetctl_command.h"
#include "qnet/v1/node_service.grpc.pb.h"

namespace qnet::qnetctl {
namespace {

using qnet::v1::EntangleRequest;

int Teleport(const Args& args, bool json) {
  const std::string node = Flag(args, "--node");
  const std::string to = Flag(args, "--to");
  const std::string state = Flag(args, "--state");
  if (node.empty()) return Fail("teleport needs --node NODE (the source)");
  if (to.empty()) return Fail("teleport needs --to NODE (the destination)");
  if (state.empty()) return Fail("teleport needs --state 0|1|+|-|+i|-i|THETA,PHI");
  qnet::v1::TeleportRequest request;
  request.set_destination(to);
  if (absl::Status s = qnet::cli::SetTeleportState(state, request); !s.ok()) return Fail(std::string(s.message()));
  uint32_t shots = 300;
  if (std::string n = Flag(args, "--shots"); !n.empty() && !absl::SimpleAtoi(n, &shots)) {
    return Fail(absl::StrCat("--shots must be a positive number, got '", n, "'"));
  }
  request.set_shots(shots);
  EntangleRequest limits;
  if (absl::Status s = SetFidelityAndTimeout(args, limits); !s.ok()) return Fail(std::string(s.message()));
  request.set_min_fidelity(limits.min_fidelity());
  request.set_timeout_s(limits.timeout_s());
  auto address = StateNodeAddress(args, node);
  if (!address.ok()) return Fail(std::string(address.status().message()));
  size_t seen = 0;
  auto on_shot = [&](const qnet::v1::TeleportShot&) {
    ++seen;
    if (!json) {
      ShowProgress(seen, shots, "shots");
    }
  };
  auto on_progress = [json](const qnet::v1::TeleportProgress& p) {
    if (json) return;
    ShowWaiting(absl::StrFormat("%d/%d shots after %.3g simulated s; waiting %.0f s for %s", p.shots_done(),
                                p.shots_requested(), p.elapsed_s(), p.wall_since_last_shot_s(), p.waiting_for()));
  };
  auto summary = qnet::cli::RunTeleport(*address, request, absl::Hours(24), on_shot, on_progress);
  ClearWaiting();
  if (!summary.ok()) {
    return Fail(absl::StrCat(absl::StatusCodeToString(summary.status().code()), ": ", summary.status().message()));
  }
  if (json) {
    std::cout << Json(*summary) << "\n";
    return 0;
  }
  std::cout << absl::StrFormat("teleported %s from %s to %s, %d shots (theta %.4f, phi %.4f)\n", state, node, to,
                               summary->shots(), summary->intended().theta(), summary->intended().phi());
  for (const auto& a : summary->axes()) {
    if (summary->estimate_available()) {
      std::cout << absl::StrFormat("  <%s> = %+.4f +- %.4f  (%d shots, %d of them +1)\n", a.axis(), a.mean(),
                                   a.standard_error(), a.shots(), a.plus());
    } else {
      std::cout << absl::StrFormat("  %s: %d shots, %d of them +1\n", a.axis(), a.shots(), a.plus());
    }
  }
  if (summary->estimate_available()) {
    std::cout << absl::StrFormat("  fidelity from outcomes: %.4f +- %.4f  (95%% CI %.4f - %.4f)%s\n",
                                 summary->fidelity(), summary->fidelity_standard_error(), summary->fidelity_ci_low(),
                                 summary->fidelity_ci_high(),
                                 apps::AboveBoundNote(summary->fidelity(), summary->fidelity_standard_error(), 1.0,
                                                      "largest possible fidelity"));
  } else {
    std::cout << "  fidelity from outcomes: not available (an axis was never measured; ask for more --shots)\n";
  }
  std::cout << absl::StrFormat("  entangled pairs: mean fidelity estimate %.4f, %d discarded below --min-fidelity\n",
                               summary->mean_pair_fidelity_estimate(), summary->pairs_discarded());
  if (summary->simulated_mean_fidelity() >= 0) {
    std::cout << absl::StrFormat("  simulation only: true fidelity of the received qubits mean %.4f, min %.4f\n",
                                 summary->simulated_mean_fidelity(), summary->simulated_min_fidelity());
  }
  std::cout << absl::StrFormat("  %.6f s simulated (%.1f shots/s)\n", summary->duration_s(),
                               summary->duration_s() > 0 ? summary->shots() / summary->duration_s() : 0.0);
  std::cout << LagWarning(summary->lag());
  return 0;
}

}  // namespace

std::vector<Command> TeleportCommands() {
  return {
      {"teleport",
       {"--to", "--state", "--shots", "--min-fidelity", "--timeout"},
       R"(Usage: qnetctl --node NODE teleport --to NODE --state STATE [--shots N]
         [--min-fidelity F] [--timeout DURATION]

Teleports STATE from NODE to --to, N times (transport layer: each shot uses
one end-to-end entangled pair; NODE measures its qubit and its half of the
pair in the Bell basis and sends the two bits; --to applies the correction).
--to measures each arriving qubit in X, Y or Z (the shots cycle through the
three) and sends the outcome back. The report is the state reconstructed
from those outcomes alone: the Bloch vector and the fidelity with STATE, with
its standard error and a 95% confidence interval. Beside it, labelled
"simulation only", the fidelity of the simulated qubits themselves (a real
device could not report it). A perfect channel gives 1; pairs of fidelity F
give (2F+1)/3 on average over states.

  --to NODE             the destination, any other node (required)
  --state STATE         0, 1, +, -, +i, -i, or THETA,PHI (radians):
                        cos(THETA/2)|0> + e^{i PHI} sin(THETA/2)|1> (required)
  --shots N             1..100000 (default 300; at least 3 for an estimate)
  --min-fidelity F      of each entangled pair used, in [0, 1] (default 0)
  --timeout DURATION    simulated time per shot (default 10s)
)",
       Teleport},
  };
}

}  // namespace qnet::qnetctl
