// qnetctl: starts and stops a local multi-process qnet network and talks to
// its daemons over the Node service (status, links, routes, entangle, measure).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "apps/pair_statistics.h"
#include "cli/entangle_client.h"
#include "cli/launcher.h"
#include "config/network_config.h"
#include "qnet/v1/node_service.grpc.pb.h"

namespace fs = std::filesystem;
using qnet::v1::EntangleRequest;

namespace {

constexpr char kUsage[] = R"(qnetctl: run and use a local multi-process qnet network.

Usage: qnetctl [--state-dir DIR] [--node NODE] [--output text|json] COMMAND [options]

Commands:
  up NETWORK_FILE     start one qnetd per node of a network file (detached)
  down                stop the network's daemons
  status              every node's status, or one's (--node)
  links               the links: name, ends, length, scheme, connected
  routes              --node's routing table (network layer, link-state)
  entangle            entangled pairs between --node and any other node
  measure             measure a KEEP pair's qubit held at --node
  bell-test           CHSH test between --node and any other node
  teleport            teleport a qubit state from --node to any other node
  eavesdrop           switch an intercept-resend eavesdropper on a link on or off
  qkd                 quantum key distribution between --node and any other node
  key                 fetch a shared key from --node by its key id

Global options (before or after the command):
  --state-dir DIR   the network's state directory (default .qnet/<network>; if
                    exactly one network is up under .qnet/, that one)
  --node NODE       the node a command talks to
  --output json     machine-readable output (stable field names)
  --help            this text; `qnetctl COMMAND --help` explains one command
)";

constexpr char kGlobalHelp[] = R"(
Global options: --state-dir DIR, --node NODE, --output text|json, --help (see qnetctl --help).
)";

// One command: its flags (beyond the global ones) and its --help text.
struct Command {
  std::string name;
  std::vector<std::string> flags;
  std::string help;
};

const std::vector<Command>& Commands() {
  static const std::vector<Command> commands = {
      {"up",
       {"--time-scale", "--keep-hold", "--qnetd"},
       R"(Usage: qnetctl up NETWORK_FILE [--time-scale S] [--keep-hold SECONDS] [--qnetd PATH]

Starts one qnetd per node of NETWORK_FILE on 127.0.0.1 (free ports), detached,
waits until every daemon serves, and records where they are in the state
directory (default .qnet/<network>) so that later commands can name nodes.

  --time-scale S        simulated seconds per wall-clock second (default 1)
  --keep-hold SECONDS   simulated seconds each KEEP pair stays held for `measure`
                        (default: qnetd's, 10)
  --qnetd PATH          the qnetd binary (default: the one next to qnetctl)
)"},
      {"down", {}, R"(Usage: qnetctl down

Stops every daemon of the network (SIGTERM, then SIGKILL after 5 s) and
removes its state directory's records.
)"},
      {"status", {}, R"(Usage: qnetctl status [--node NODE]

Each node's status (or one node's): process, address, uptime, simulated time,
memory qubits in use, simulated qubits held, and its neighbours. Exits 1 if a
node is down.
)"},
      {"links", {}, R"(Usage: qnetctl links

The network's links: name, ends, length, heralding scheme, and whether the
two daemons are connected.
)"},
      {"routes", {}, R"(Usage: qnetctl --node NODE routes

NODE's routing table, computed from the link-state adverts every daemon
floods: for each destination the next hop, the path, its cost (per link
1e-3 - ln((4F-1)/3), F the link's best fidelity) and the best end-to-end
fidelity the path gives by swapping alone. Then the adverts it knows: each
node's working links.
)"},
      {"entangle",
       {"--with", "--pairs", "--type", "--basis", "--min-fidelity", "--timeout"},
       R"(Usage: qnetctl --node NODE entangle --with NODE --pairs N [--type keep|measure]
         [--basis z|x|y|bb84|six-state|chsh] [--min-fidelity F] [--timeout DURATION]

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
)"},
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
)"},
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
)"},
      {"eavesdrop",
       {"--link", "--fraction"},
       R"(Usage: qnetctl eavesdrop --link LINK [--fraction X]

A fault for experiments: an intercept-resend eavesdropper on LINK (a name
from `qnetctl links`, e.g. alice-bob) who measures a fraction X of the
heralded pairs' photons in a random basis (Z or X) and resends what she
found. Entanglement-based QKD over the link then sees a QBER of about X/4 per
basis, and a CHSH value falling towards sqrt(2) at X = 1. Sets X at both
ends' daemons (the link's first node hosts the heralding station, where it is
in force) and prints how many pairs she has intercepted. Without --fraction,
only reports. Off (0) unless the network file says otherwise.

  --link LINK       the link (required)
  --fraction X      in [0, 1]; 0 switches her off
)"},
      {"qkd",
       {"--with", "--bits", "--protocol", "--pairs-per-block", "--min-fidelity", "--timeout", "--abort-qber",
        "--min-chsh", "--max-blocks", "--sample-fraction", "--show-key"},
       R"(Usage: qnetctl --node NODE qkd --with NODE --bits N [--protocol bbm92|e91|bb84|relay]
         [--pairs-per-block P] [--abort-qber Q] [--min-chsh S] [--min-fidelity F]
         [--timeout DURATION] [--max-blocks B] [--sample-fraction X] [--show-key yes]

Quantum key distribution between NODE and --with until at least N final key
bits are shared. Each block measures P raw pairs and runs the full classical
post-processing over the network's classical channel: sifting, parameter
estimation on a random sample (abort above the QBER threshold), Cascade
error correction, verification with a universal hash, and Toeplitz privacy
amplification to the finite-key length (Tomamichel et al. 2012 with Serfling
bounds). Streams progress, then prints the QBER per basis, the Cascade
efficiency f, the final key length, the secret key rate per simulated and per
wall second, and the key ids (fetch each end's copy with `qnetctl key`).

  --with NODE           the other end (required)
  --bits N              final key bits wanted, 1..10^7 (required)
  --protocol P          bbm92 (default): end-to-end entangled pairs, Z/X at
                        random at each end; e91: the same plus CHSH test
                        pairs (S reported, abort below --min-chsh); bb84:
                        prepare-and-measure single photons (a neighbour);
                        relay: trusted nodes - BBM92 on each link of the path,
                        keys joined by XOR at the relays (each learns the key)
  --pairs-per-block P   raw pairs per block (default 20000; larger blocks give a
                        larger key fraction: finite-size effects)
  --abort-qber Q        abort threshold (default 0.11)
  --sample-fraction X   share of the sifted bits disclosed to estimate the
                        QBER, in (0, 1) (default 0.1; short blocks need more)
  --min-chsh S          E91 abort threshold (default 2)
  --min-fidelity F      of each pair, in [0, 1] (default 0)
  --timeout DURATION    simulated time per block (default 600s)
  --max-blocks B        give up after B blocks (default 100)
  --show-key yes        print the key (hex); otherwise only its id
)"},
      {"key",
       {"--id"},
       R"(Usage: qnetctl --node NODE key --id KEY_ID

Prints the key NODE holds under KEY_ID (from `qnetctl qkd`; both ends hold
the same bits under the same id): its peer, protocol, length and bits (hex).
)"},
      {"measure",
       {"--id", "--basis"},
       R"(Usage: qnetctl --node NODE measure --id ENTANGLEMENT_ID --basis z|x|y|ANGLE

Measures NODE's qubit of a KEEP pair it holds (delivered by `entangle --type
keep`, at either end) on its simulated device, readout error included, and
frees the memory slot. Prints the outcome: 0 for the +1 eigenstate, 1 for -1,
raw (not corrected for the pair's Bell state). A pair is held for the
daemon's --keep-hold after delivery; measuring it again, or after that, is an
error.

  --id ID               the pair's entanglement id, e.g. alice-bob#17 (required)
  --basis z|x|y|ANGLE   Z, X, Y, or an angle in radians in the X-Z plane: the
                        observable cos(ANGLE) Z + sin(ANGLE) X (required)
)"},
  };
  return commands;
}

const Command* FindCommand(const std::string& name) {
  for (const Command& c : Commands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

bool IsGlobalFlag(const std::string& name) {
  return name == "--state-dir" || name == "--output" || name == "--node";
}

struct Args {
  std::string command;
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;  // "--name" -> value
  bool help = false;
};

// A progress count on stderr: rewritten in place on a terminal, one line per
// update when stderr goes to a file or a pipe (logs stay readable).
void ShowProgress(size_t done, size_t total, const char* what) {
  static const bool terminal = isatty(STDERR_FILENO) != 0;
  std::cerr << (terminal ? "\r" : "") << done << "/" << total << " " << what;
  if (!terminal || done == total) std::cerr << "\n";
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "qnetctl: %s\n", message.c_str());
  return 1;
}

absl::StatusOr<Args> Parse(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      args.help = true;
    } else if (a.rfind("-", 0) == 0 && a.size() > 1) {
      std::string name = a, value;
      const size_t eq = a.find('=');
      if (eq != std::string::npos) name = a.substr(0, eq);
      bool known = IsGlobalFlag(name);
      for (const Command& c : Commands()) {
        for (const std::string& f : c.flags) known = known || f == name;
      }
      if (!known) return absl::InvalidArgumentError(absl::StrCat("unknown option ", name, " (see qnetctl --help)"));
      if (eq != std::string::npos) {
        value = a.substr(eq + 1);
      } else {
        if (i + 1 >= argc) return absl::InvalidArgumentError(absl::StrCat(a, " needs a value (see qnetctl --help)"));
        value = argv[++i];
      }
      args.flags[name] = value;
    } else if (args.command.empty()) {
      args.command = a;
    } else {
      args.positional.push_back(a);
    }
  }
  return args;
}

std::string Flag(const Args& args, const std::string& name, const std::string& fallback = "") {
  auto it = args.flags.find(name);
  return it == args.flags.end() ? fallback : it->second;
}

absl::Status CheckFlags(const Args& args) {
  const Command* command = FindCommand(args.command);
  for (const auto& [name, value] : args.flags) {
    bool ok = IsGlobalFlag(name);
    if (command != nullptr) {
      for (const std::string& a : command->flags) ok = ok || a == name;
    }
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown option ", name, " for '", args.command, "' (see qnetctl ", args.command, " --help)"));
    }
  }
  std::string output = Flag(args, "--output", "text");
  if (output != "text" && output != "json") {
    return absl::InvalidArgumentError(absl::StrCat("--output must be text or json, got '", output, "'"));
  }
  return absl::OkStatus();
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

// The state directory: --state-dir, else the only network under .qnet/.
absl::StatusOr<fs::path> StateDir(const Args& args) {
  if (std::string dir = Flag(args, "--state-dir"); !dir.empty()) {
    if (!fs::exists(fs::path(dir) / "network")) {
      return absl::NotFoundError(absl::StrCat("no network state in ", dir, " (is the network up? qnetctl up FILE)"));
    }
    return fs::path(dir);
  }
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(".qnet", ec)) {
    if (fs::exists(entry.path() / "network")) found.push_back(entry.path());
  }
  if (found.empty()) return absl::NotFoundError("no network is up under .qnet/ (start one: qnetctl up NETWORK_FILE)");
  if (found.size() > 1) {
    return absl::FailedPreconditionError("several networks under .qnet/: choose one with --state-dir DIR");
  }
  return found.front();
}

std::string StateValue(const fs::path& dir, const std::string& key) {
  std::istringstream in(ReadFile(dir / "network"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + " ", 0) == 0) return Trim(line.substr(key.size() + 1));
  }
  return "";
}

absl::StatusOr<qnet::config::NetworkConfig> StateNetwork(const fs::path& dir) {
  std::string file = StateValue(dir, "file");
  if (file.empty()) return absl::DataLossError(absl::StrCat(dir.string(), "/network names no network file"));
  return qnet::config::LoadNetworkFile(file);
}

absl::StatusOr<std::string> NodeAddress(const fs::path& dir, const std::string& node) {
  fs::path path = dir / (node + ".address");
  if (!fs::exists(path)) {
    return absl::NotFoundError(absl::StrCat("node '", node, "' is not running in ", dir.string()));
  }
  return Trim(ReadFile(path));
}

absl::StatusOr<qnet::v1::GetStatusResponse> GetStatus(const std::string& address) {
  auto stub = qnet::v1::Node::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  qnet::v1::GetStatusResponse status;
  grpc::Status s = stub->GetStatus(&context, qnet::v1::GetStatusRequest(), &status);
  if (!s.ok()) return absl::UnavailableError(absl::StrCat(address, ": ", s.error_message()));
  return status;
}

std::string Json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out;
}

std::string FindQnetd(const Args& args) {
  if (std::string p = Flag(args, "--qnetd"); !p.empty()) return p;
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec).parent_path();
  for (fs::path candidate : {self / "qnetd", self / ".." / "daemon" / "qnetd"}) {
    if (fs::exists(candidate)) return fs::weakly_canonical(candidate).string();
  }
  return "qnetd";
}

int Up(const Args& args, bool json) {
  if (absl::Status s = CheckFlags(args); !s.ok()) return Fail(std::string(s.message()));
  if (args.positional.size() != 1) return Fail("up needs exactly one NETWORK_FILE (see qnetctl up --help)");
  qnet::cli::LaunchOptions o;
  o.qnetd_path = FindQnetd(args);
  o.network_file = args.positional[0];
  o.state_dir = Flag(args, "--state-dir");
  o.detached = true;
  if (std::string ts = Flag(args, "--time-scale"); !ts.empty()) {
    if (!absl::SimpleAtod(ts, &o.time_scale) || !(o.time_scale > 0)) {
      return Fail(absl::StrCat("--time-scale must be a positive number, got '", ts, "'"));
    }
  }
  if (std::string hold = Flag(args, "--keep-hold"); !hold.empty()) {
    double seconds = 0;
    if (!absl::SimpleAtod(hold, &seconds) || !(seconds >= 0) || !std::isfinite(seconds)) {
      return Fail(absl::StrCat("--keep-hold must be a non-negative number of simulated seconds, got '", hold, "'"));
    }
    o.extra_args = {"--keep-hold", hold};
  }
  auto net = qnet::cli::LocalNetwork::Start(o);
  if (!net.ok()) return Fail(std::string(net.status().message()));
  (*net)->Detach();
  if (json) {
    std::cout << "{\"network\":\"" << (*net)->network_name() << "\",\"state_dir\":\"" << (*net)->state_dir()
              << "\",\"nodes\":[";
    bool first = true;
    for (const std::string& node : (*net)->nodes()) {
      std::cout << (first ? "" : ",") << "{\"node\":\"" << node << "\",\"address\":\""
                << (*net)->Address(node).value_or("") << "\"}";
      first = false;
    }
    std::cout << "]}\n";
  } else {
    std::cout << "network " << (*net)->network_name() << " up (state dir " << (*net)->state_dir() << ")\n";
    for (const std::string& node : (*net)->nodes()) {
      std::cout << absl::StrFormat("  %-12s %s\n", node, (*net)->Address(node).value_or("?"));
    }
  }
  return 0;
}

int Down(const Args& args, bool json) {
  if (absl::Status s = CheckFlags(args); !s.ok()) return Fail(std::string(s.message()));
  auto dir = StateDir(args);
  if (!dir.ok()) return Fail(std::string(dir.status().message()));
  std::string name = StateValue(*dir, "name");
  if (absl::Status s = qnet::cli::StopStateDir(dir->string()); !s.ok()) return Fail(std::string(s.message()));
  // The state dir goes too, so the next `up` (and node resolution) starts clean.
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(*dir, ec)) {
    if (entry.path().extension() == ".address" || entry.path().extension() == ".pid") fs::remove(entry.path(), ec);
  }
  fs::remove(*dir / "network", ec);
  fs::remove(*dir / "peers", ec);
  if (json) {
    std::cout << "{\"network\":\"" << name << "\",\"stopped\":true}\n";
  } else {
    std::cout << "network " << name << " down\n";
  }
  return 0;
}

int Status(const Args& args, bool json) {
  if (absl::Status s = CheckFlags(args); !s.ok()) return Fail(std::string(s.message()));
  auto dir = StateDir(args);
  if (!dir.ok()) return Fail(std::string(dir.status().message()));
  auto network = StateNetwork(*dir);
  if (!network.ok()) return Fail(std::string(network.status().message()));
  std::vector<std::string> nodes;
  if (std::string one = Flag(args, "--node"); !one.empty()) {
    if (network->FindNode(one) == nullptr) return Fail(absl::StrCat("unknown node '", one, "'"));
    nodes.push_back(one);
  } else {
    for (const auto& n : network->nodes) nodes.push_back(n.name);
  }
  int rc = 0;
  if (json) std::cout << "[";
  bool first = true;
  for (const std::string& node : nodes) {
    absl::StatusOr<qnet::v1::GetStatusResponse> status = absl::UnavailableError("not running");
    if (auto address = NodeAddress(*dir, node); address.ok()) status = GetStatus(*address);
    if (json) {
      std::cout << (first ? "" : ",");
      if (status.ok()) {
        std::cout << Json(*status);
      } else {
        std::cout << "{\"node\":\"" << node << "\",\"error\":\"" << status.status().message() << "\"}";
      }
    } else if (status.ok()) {
      std::cout << absl::StrFormat("%-10s pid %-7d %-21s up %.1fs  t_sim %.6fs  memory %d/%d in use  qubits held %d\n",
                                   node, status->pid(), status->listen_address(), status->uptime_s(),
                                   status->simulated_time_s(), status->memory_qubits_in_use(),
                                   status->memory_qubits(), status->qubits_held());
      for (const auto& n : status->neighbours()) {
        std::cout << absl::StrFormat("           -> %-10s link %-14s %s\n", n.name(), n.link(),
                                     n.connected() ? "connected" : "DISCONNECTED");
      }
    } else {
      std::cout << absl::StrFormat("%-10s DOWN (%s)\n", node, status.status().message());
      rc = 1;
    }
    first = false;
  }
  if (json) std::cout << "]\n";
  return rc;
}

int Links(const Args& args, bool json) {
  if (absl::Status s = CheckFlags(args); !s.ok()) return Fail(std::string(s.message()));
  auto dir = StateDir(args);
  if (!dir.ok()) return Fail(std::string(dir.status().message()));
  auto network = StateNetwork(*dir);
  if (!network.ok()) return Fail(std::string(network.status().message()));
  if (json) std::cout << "[";
  bool first = true;
  for (const auto& link : network->links) {
    bool connected = false;
    if (auto address = NodeAddress(*dir, link.node_a); address.ok()) {
      if (auto status = GetStatus(*address); status.ok()) {
        for (const auto& n : status->neighbours()) connected = connected || (n.name() == link.node_b && n.connected());
      }
    }
    const std::string scheme(qnet::physical::SchemeName(link.scheme));
    if (json) {
      std::cout << (first ? "" : ",")
                << absl::StrFormat("{\"link\":\"%s\",\"node_a\":\"%s\",\"node_b\":\"%s\",\"length_km\":%g,"
                                   "\"scheme\":\"%s\",\"connected\":%s}",
                                   link.name, link.node_a, link.node_b, link.length_km, scheme,
                                   connected ? "true" : "false");
    } else {
      std::cout << absl::StrFormat("%-16s %-8s - %-8s %8.2f km  %-13s %s\n", link.name, link.node_a, link.node_b,
                                   link.length_km, scheme, connected ? "connected" : "DISCONNECTED");
    }
    first = false;
  }
  if (json) std::cout << "]\n";
  return 0;
}

// --min-fidelity and --timeout, shared by entangle and bell-test.
absl::Status SetFidelityAndTimeout(const Args& args, EntangleRequest& request) {
  if (std::string f = Flag(args, "--min-fidelity"); !f.empty()) {
    double v = 0;
    if (!absl::SimpleAtod(f, &v)) return absl::InvalidArgumentError(absl::StrCat("--min-fidelity must be a number, got '", f, "'"));
    request.set_min_fidelity(v);
  }
  if (std::string t = Flag(args, "--timeout"); !t.empty()) {
    absl::Duration d;
    if (!absl::ParseDuration(t, &d)) {
      return absl::InvalidArgumentError(absl::StrCat("--timeout must be a duration like 2s or 500ms, got '", t, "'"));
    }
    request.set_timeout_s(absl::ToDoubleSeconds(d));
  }
  return absl::OkStatus();
}

int Routes(const Args& args, bool json) {
  if (absl::Status s = CheckFlags(args); !s.ok()) return Fail(std::string(s.message()));
  const std::string node = Flag(args, "--node");
  if (node.empty()) return Fail("routes needs --node NODE (whose routing table)");
  auto dir = StateDir(args);
  if (!dir.ok()) return Fail(std::string(dir.status().message()));
  auto address = NodeAddress(*dir, node);
  if (!address.ok()) return Fail(std::string(address.status().message()));
  auto stub = qnet::v1::Node::NewStub(grpc::CreateChannel(*address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  qnet::v1::GetRoutesResponse routes;
  grpc::Status s = stub->GetRoutes(&context, qnet::v1::GetRoutesRequest(), &routes);
  if (!s.ok()) return Fail(absl::StrCat(node, ": ", s.error_message()));
  if (json) {
    std::cout << Json(routes) << "\n";
    return 0;
  }
  std::cout << absl::StrFormat("routes at %s (%d destinations)\n", routes.node(), routes.routes_size());
  for (const auto& r : routes.routes()) {
    std::cout << absl::StrFormat("  %-12s via %-12s %d hop%s  cost %.4f  best F %.4f  path %s\n", r.destination(),
                                 r.next_hop(), r.path_size() - 1, r.path_size() == 2 ? " " : "s", r.cost(),
                                 r.best_fidelity(), absl::StrJoin(r.path(), "-"));
  }
  std::cout << "link-state adverts:\n";
  for (const auto& a : routes.adverts()) {
    std::cout << absl::StrFormat("  %-12s seq %-20d links up: %s\n", a.origin(), a.sequence(),
                                 a.up_links().empty() ? "(none)" : absl::StrJoin(a.up_links(), ", "));
  }
  return 0;
}

int Entangle(const Args& args, bool json) {
  if (absl::Status s = CheckFlags(args); !s.ok()) return Fail(std::string(s.message()));
  const std::string node = Flag(args, "--node");
  const std::string with = Flag(args, "--with");
  if (node.empty()) return Fail("entangle needs --node NODE (the requesting end)");
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
  auto dir = StateDir(args);
  if (!dir.ok()) return Fail(std::string(dir.status().message()));
  auto address = NodeAddress(*dir, node);
  if (!address.ok()) return Fail(std::string(address.status().message()));

  auto on_pair = [json](const qnet::v1::PairEvent& p) {
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
  auto result = qnet::cli::RunEntangle(*address, request, absl::Hours(24), on_pair);
  if (!result.ok()) return Fail(absl::StrCat(absl::StatusCodeToString(result.status().code()), ": ", result.status().message()));

  double mean_f = 0;
  for (const auto& p : result->pairs) mean_f += p.fidelity_estimate();
  if (!result->pairs.empty()) mean_f /= static_cast<double>(result->pairs.size());
  const double duration = result->summary.duration_s();
  const double rate = duration > 0 ? static_cast<double>(result->pairs.size()) / duration : 0.0;
  std::optional<qnet::apps::PairStatistics> stats;
  if (request.type() == EntangleRequest::MEASURE) {
    auto far_address = NodeAddress(*dir, with);
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
    std::cout << "}}\n";
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
        std::cout << absl::StrFormat("  CHSH S: %.4f +- %.4f\n", stats->chsh->value, stats->chsh->standard_error);
      }
    }
  }
  return 0;
}

int BellTest(const Args& args, bool json) {
  if (absl::Status s = CheckFlags(args); !s.ok()) return Fail(std::string(s.message()));
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
    if (!json && (seen % 100 == 0 || seen == pairs)) {
      ShowProgress(seen, pairs, "pairs");
    }
  };
  auto result = qnet::cli::RunEntangle(*address, request, absl::Hours(24), on_pair);
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
        "\"violates_classical_bound\":%s,\"path\":[%s],\"duration_s\":%g}\n",
        result->pairs.size(), stats.pairs, s_value, error, sigmas, violates ? "true" : "false",
        absl::StrJoin(quoted, ","), result->summary.duration_s());
    return 0;
  }
  std::cout << absl::StrFormat("CHSH test %s - %s over %d pairs (%d matched at both ends)%s\n", node, with,
                               result->pairs.size(), stats.pairs,
                               result->summary.path_size() > 0
                                   ? absl::StrCat(", path ", absl::StrJoin(result->summary.path(), " - "))
                                   : std::string());
  std::cout << absl::StrFormat("  S = %.4f +- %.4f   (classical bound 2, quantum bound 2.828)\n", s_value, error);
  std::cout << (violates ? absl::StrFormat("  violates the classical bound by %.1f standard errors\n", sigmas)
                         : absl::StrFormat("  no significant violation (%.1f standard errors above 2; need > 3)\n",
                                           sigmas));
  return 0;
}

int Teleport(const Args& args, bool json) {
  if (absl::Status s = CheckFlags(args); !s.ok()) return Fail(std::string(s.message()));
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
  auto dir = StateDir(args);
  if (!dir.ok()) return Fail(std::string(dir.status().message()));
  auto address = NodeAddress(*dir, node);
  if (!address.ok()) return Fail(std::string(address.status().message()));
  size_t seen = 0;
  auto on_shot = [&](const qnet::v1::TeleportShot&) {
    ++seen;
    if (!json && (seen % 50 == 0 || seen == shots)) {
      ShowProgress(seen, shots, "shots");
    }
  };
  auto summary = qnet::cli::RunTeleport(*address, request, absl::Hours(24), on_shot);
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
    std::cout << absl::StrFormat("  fidelity from outcomes: %.4f +- %.4f  (95%% CI %.4f - %.4f)\n",
                                 summary->fidelity(), summary->fidelity_standard_error(), summary->fidelity_ci_low(),
                                 summary->fidelity_ci_high());
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
  return 0;
}

int Eavesdrop(const Args& args, bool json) {
  if (absl::Status s = CheckFlags(args); !s.ok()) return Fail(std::string(s.message()));
  const std::string link_name = Flag(args, "--link");
  if (link_name.empty()) return Fail("eavesdrop needs --link LINK (see qnetctl links)");
  qnet::v1::EavesdropRequest request;
  if (std::string f = Flag(args, "--fraction"); !f.empty()) {
    double x = 0;
    if (!absl::SimpleAtod(f, &x)) return Fail(absl::StrCat("--fraction must be a number in [0, 1], got '", f, "'"));
    request.set_set(true);
    request.set_fraction(x);
  }
  auto dir = StateDir(args);
  if (!dir.ok()) return Fail(std::string(dir.status().message()));
  auto network = StateNetwork(*dir);
  if (!network.ok()) return Fail(std::string(network.status().message()));
  const qnet::physical::LinkPhysics* link = network->FindLinkByName(link_name);
  if (link == nullptr) {
    std::vector<std::string> names;
    for (const auto& l : network->links) names.push_back(l.name);
    return Fail(absl::StrCat("no link '", link_name, "' in network ", network->name, " (links: ",
                             absl::StrJoin(names, ", "), ")"));
  }
  std::vector<qnet::v1::EavesdropResponse> ends;
  for (const auto& [node, neighbour] : {std::pair{link->node_a, link->node_b}, std::pair{link->node_b, link->node_a}}) {
    auto address = NodeAddress(*dir, node);
    if (!address.ok()) return Fail(std::string(address.status().message()));
    auto stub = qnet::v1::Node::NewStub(grpc::CreateChannel(*address, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    request.set_neighbour(neighbour);
    qnet::v1::EavesdropResponse response;
    grpc::Status s = stub->Eavesdrop(&context, request, &response);
    if (!s.ok()) {
      return Fail(absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code())), ": ", node,
                               ": ", s.error_message()));
    }
    ends.push_back(std::move(response));
  }
  const qnet::v1::EavesdropResponse& host = ends[0].station_here() ? ends[0] : ends[1];
  if (json) {
    std::cout << absl::StrFormat(
        "{\"link\":\"%s\",\"station\":\"%s\",\"fraction\":%g,\"pairs_seen\":%d,\"pairs_intercepted\":%d}\n",
        link_name, host.node(), host.fraction(), host.pairs_seen(), host.pairs_intercepted());
    return 0;
  }
  std::cout << absl::StrFormat("eavesdropper on %s: %s (fraction %g, in force at %s, which hosts the station)\n",
                               link_name, host.fraction() > 0 ? "ON" : "off", host.fraction(), host.node());
  std::cout << absl::StrFormat("  intercepted %d of %d heralded pairs so far; expect a QBER of about %.3f per basis\n",
                               host.pairs_intercepted(), host.pairs_seen(), host.fraction() / 4);
  return 0;
}

int Qkd(const Args& args, bool json) {
  if (absl::Status s = CheckFlags(args); !s.ok()) return Fail(std::string(s.message()));
  const std::string node = Flag(args, "--node");
  const std::string with = Flag(args, "--with");
  if (node.empty()) return Fail("qkd needs --node NODE (one end)");
  if (with.empty()) return Fail("qkd needs --with NODE (the other end)");
  qnet::v1::QkdRequest request;
  request.set_peer(with);
  uint32_t bits = 0;
  if (!absl::SimpleAtoi(Flag(args, "--bits"), &bits) || bits == 0) {
    return Fail("qkd needs --bits N (final key bits wanted, a positive number)");
  }
  request.set_bits(bits);
  const std::string protocol = absl::AsciiStrToLower(Flag(args, "--protocol", "bbm92"));
  if (protocol == "bbm92") {
    request.set_protocol(qnet::v1::QkdRequest::BBM92);
  } else if (protocol == "e91") {
    request.set_protocol(qnet::v1::QkdRequest::E91);
  } else if (protocol == "bb84") {
    request.set_protocol(qnet::v1::QkdRequest::BB84);
  } else if (protocol == "relay") {
    request.set_protocol(qnet::v1::QkdRequest::RELAY);
  } else {
    return Fail(absl::StrCat("--protocol must be bbm92, e91, bb84 or relay, got '", protocol, "'"));
  }
  struct NumberFlag {
    const char* name;
    std::function<void(double)> set;
  };
  for (const NumberFlag& f : std::vector<NumberFlag>{
           {"--pairs-per-block", [&](double v) { request.set_pairs_per_block(static_cast<uint32_t>(v)); }},
           {"--abort-qber", [&](double v) { request.set_abort_qber(v); }},
           {"--min-chsh", [&](double v) { request.set_min_chsh(v); }},
           {"--sample-fraction", [&](double v) { request.set_sample_fraction(v); }},
           {"--max-blocks", [&](double v) { request.set_max_blocks(static_cast<uint32_t>(v)); }}}) {
    const std::string text = Flag(args, f.name);
    if (text.empty()) continue;
    double v = 0;
    if (!absl::SimpleAtod(text, &v) || v <= 0) return Fail(absl::StrCat(f.name, " must be a positive number, got '", text, "'"));
    f.set(v);
  }
  EntangleRequest limits;
  if (absl::Status s = SetFidelityAndTimeout(args, limits); !s.ok()) return Fail(std::string(s.message()));
  request.set_min_fidelity(limits.min_fidelity());
  request.set_timeout_s(limits.timeout_s());
  const std::string show = Flag(args, "--show-key", "no");
  if (show != "yes" && show != "no") return Fail(absl::StrCat("--show-key must be yes or no, got '", show, "'"));
  request.set_show_key(show == "yes");
  auto dir = StateDir(args);
  if (!dir.ok()) return Fail(std::string(dir.status().message()));
  auto address = NodeAddress(*dir, node);
  if (!address.ok()) return Fail(std::string(address.status().message()));

  std::string last_stage;
  auto on_progress = [&](const qnet::v1::QkdProgress& p) {
    if (json || p.stage() == last_stage) return;
    last_stage = p.stage();
    std::cerr << absl::StrFormat("block %d %-10s raw %d, sifted %d, QBER %.4f, reconciled %d, key %d (total %d)\n",
                                 p.block() + 1, p.stage(), p.raw_pairs(), p.sifted_bits(), p.qber(),
                                 p.reconciled_bits(), p.final_key_bits(), p.total_key_bits() + p.final_key_bits());
  };
  auto summary = qnet::cli::RunQkd(*address, request, absl::Hours(24 * 7), on_progress);
  if (!summary.ok()) {
    return Fail(absl::StrCat(absl::StatusCodeToString(summary.status().code()), ": ", summary.status().message()));
  }
  if (json) {
    std::cout << Json(*summary) << "\n";
    return 0;
  }
  const auto& sm = *summary;
  std::cout << absl::StrFormat("%s key %s - %s: %d bits in %d block%s, path %s\n", sm.protocol(), node, with,
                               sm.final_key_bits(), sm.blocks_size(), sm.blocks_size() == 1 ? "" : "s",
                               absl::StrJoin(sm.path(), " - "));
  if (sm.relay_nodes_size() > 0) {
    std::cout << absl::StrFormat("  trusted relays (they know the key): %s\n", absl::StrJoin(sm.relay_nodes(), ", "));
  }
  std::cout << absl::StrFormat("  raw pairs %d, sifted bits %d, QBER Z %.4f, X %.4f\n", sm.raw_pairs(),
                               sm.sifted_bits(), sm.qber_z(), sm.qber_x());
  if (sm.protocol() == "E91") std::cout << absl::StrFormat("  CHSH S = %.4f\n", sm.chsh_s());
  std::cout << (sm.error_correction_efficiency() > 0
                    ? absl::StrFormat("  Cascade efficiency f = %.3f (leaked bits / (n h(QBER)))\n",
                                      sm.error_correction_efficiency())
                    : std::string("  Cascade efficiency f: - (no errors to correct)\n"));
  std::cout << absl::StrFormat("  secret key rate %.1f bits per simulated s (%.3f s), %.1f bits per wall s (%.3f s)\n",
                               sm.key_rate_per_simulated_s(), sm.simulated_duration_s(), sm.key_rate_per_wall_s(),
                               sm.wall_duration_s());
  for (const auto& b : sm.blocks()) {
    std::cout << absl::StrFormat("  key id %s: %d bits (QBER %.4f, f %.3f%s)\n", b.key_id(), b.final_key_bits(),
                                 b.qber(), b.error_correction_efficiency(),
                                 sm.protocol() == "E91" ? absl::StrFormat(", S %.3f +- %.3f", b.chsh_s(),
                                                                          b.chsh_s_standard_error())
                                                        : std::string());
  }
  if (!sm.key_hex().empty()) std::cout << "  key (hex): " << sm.key_hex() << "\n";
  return 0;
}

int Key(const Args& args, bool json) {
  if (absl::Status s = CheckFlags(args); !s.ok()) return Fail(std::string(s.message()));
  const std::string node = Flag(args, "--node");
  const std::string id = Flag(args, "--id");
  if (node.empty()) return Fail("key needs --node NODE");
  if (id.empty()) return Fail("key needs --id KEY_ID (from qnetctl qkd)");
  auto dir = StateDir(args);
  if (!dir.ok()) return Fail(std::string(dir.status().message()));
  auto address = NodeAddress(*dir, node);
  if (!address.ok()) return Fail(std::string(address.status().message()));
  auto fetched = qnet::cli::FetchKey(*address, id);
  if (!fetched.ok()) {
    return Fail(absl::StrCat(absl::StatusCodeToString(fetched.status().code()), ": ", fetched.status().message()));
  }
  const qnet::v1::GetKeyResponse& key = *fetched;
  if (json) {
    std::cout << Json(key) << "\n";
    return 0;
  }
  std::cout << absl::StrFormat("%s at %s: %d bits shared with %s (%s)\n%s\n", key.key_id(), node, key.bits(),
                               key.peer(), key.protocol(), key.key_hex());
  return 0;
}

int Measure(const Args& args, bool json) {
  if (absl::Status s = CheckFlags(args); !s.ok()) return Fail(std::string(s.message()));
  const std::string node = Flag(args, "--node");
  const std::string id = Flag(args, "--id");
  const std::string basis = Flag(args, "--basis");
  if (node.empty()) return Fail("measure needs --node NODE (the daemon holding the qubit)");
  if (id.empty()) return Fail("measure needs --id ENTANGLEMENT_ID (e.g. alice-bob#17)");
  if (basis.empty()) return Fail("measure needs --basis z|x|y|ANGLE");
  auto request = qnet::cli::MeasureRequest(id, basis);
  if (!request.ok()) return Fail(std::string(request.status().message()));
  auto dir = StateDir(args);
  if (!dir.ok()) return Fail(std::string(dir.status().message()));
  auto address = NodeAddress(*dir, node);
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

}  // namespace

int main(int argc, char** argv) {
  auto args = Parse(argc, argv);
  if (!args.ok()) return Fail(std::string(args.status().message()));
  if (args->command == "help") {  // qnetctl help [COMMAND]
    args->command = args->positional.empty() ? "" : args->positional.front();
    args->positional.clear();
    args->help = true;
  }
  const Command* command = FindCommand(args->command);
  if (!args->command.empty() && command == nullptr) {
    return Fail(absl::StrCat("unknown command '", args->command,
                             "' (commands: up, down, status, links, routes, entangle, measure, bell-test, teleport, eavesdrop, qkd, key; see qnetctl --help)"));
  }
  if (args->help || command == nullptr) {
    std::cout << (command != nullptr ? command->help + kGlobalHelp : std::string(kUsage));
    return args->help ? 0 : 2;
  }
  const bool json = Flag(*args, "--output") == "json";
  const std::string& c = args->command;
  if (c == "up") return Up(*args, json);
  if (c == "down") return Down(*args, json);
  if (c == "status") return Status(*args, json);
  if (c == "links") return Links(*args, json);
  if (c == "routes") return Routes(*args, json);
  if (c == "entangle") return Entangle(*args, json);
  if (c == "bell-test") return BellTest(*args, json);
  if (c == "teleport") return Teleport(*args, json);
  if (c == "eavesdrop") return Eavesdrop(*args, json);
  if (c == "qkd") return Qkd(*args, json);
  if (c == "key") return Key(*args, json);
  return Measure(*args, json);
}
