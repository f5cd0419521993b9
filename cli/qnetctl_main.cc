// qnetctl: starts and stops a local multi-process qnet network and talks to
// its daemons over the Node service (status, links, routes, entangle, measure).
// This file parses the command line and dispatches; the commands are in
// cli/commands_*.cc.
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "cli/qnetctl_command.h"
#include "config/network_config.h"

namespace qnet::qnetctl {
namespace {

constexpr char kUsage[] = R"(qnetctl: run and use a local multi-process qnet network.

Usage: qnetctl [--network NAME | --state-dir DIR | --address HOST:PORT] [--node NODE] [--output text|json] [--quiet] COMMAND [options]

Commands:
  up NETWORK_FILE     start one qnetd per node of a network file (detached)
  ls                  the networks started by up and not yet down, and where their state is
  down                stop the network's daemons
  status              every node's status, or one's (--node)
  links               the links: name, ends, length, scheme, connected
  routes              --node's routing table (network layer, link-state)
  entangle            entangled pairs between --node and any other node
  measure             measure a KEEP pair's qubit held at --node
  bell-test           CHSH test between --node and any other node
  teleport            teleport a qubit state from --node to any other node
  ghz                 GHZ states across 3 to 8 nodes (--nodes ROOT,B,C): fidelity
                      and Mermin value from outcomes
  circuit FILE        a circuit across nodes (gates, remote CNOTs by one pair,
                      measurements): the distribution of outcomes
  eavesdrop           switch an intercept-resend eavesdropper on a link on or off
  qkd                 quantum key distribution between --node and any other node
  key                 fetch a shared key from --node by its key id
  keys                the KMEs' key pools and SAEs (status, pool, sae, url)
  logs                the daemons' logs merged in time order; --request ID
                      follows one request across them, --follow yes tails
  ui                  a live web page of the network (topology, rates, memory,
                      key pools; start requests), on 127.0.0.1
  pki                 the network's certificates (init, issue), for daemons
                      started by hand or on several hosts
  gen KIND            write a generated network file: chain, ring, star, grid,
                      torus, random geometric or Waxman graph
  bundle NETWORK_FILE what each host needs to run its node's qnetd when the nodes
                      run on several machines (--peers FILE --dir DIR)

Global options (before or after the command):
  --network NAME    the network of that name under the state root: $QNET_STATE_DIR,
                    else $XDG_STATE_HOME/qnet, else ~/.local/state/qnet (default:
                    the only network there)
  --state-dir DIR   the network's state directory itself (as `up --state-dir` made it)
  --address HOST:PORT
                    one daemon by address, with no state directory (a qnetd started
                    by hand, or on another host): status, routes, entangle, measure,
                    teleport, ghz, circuit, qkd and key, with --node naming it. Mutual TLS with
                    QNET_CA_CERT, QNET_CLIENT_CERT and QNET_CLIENT_KEY (see qnetctl
                    pki issue); plaintext without QNET_CA_CERT
  --node NODE       the node a command talks to
  --output json     machine-readable output (stable field names)
  --quiet, -q       no progress lines on stderr (what a request waits for, pairs
                    or QKD stages so far): results and errors only
  --help            this text; `qnetctl COMMAND --help` explains one command
)";

constexpr char kGlobalHelp[] = R"(
Global options: --network NAME, --state-dir DIR, --address HOST:PORT, --node NODE, --output text|json, --quiet, --help (see qnetctl --help).
)";

// The dispatch table: every command file's commands.
const std::vector<Command>& Commands() {
  static const std::vector<Command> commands = [] {
    std::vector<Command> all;
    for (auto group : {NetworkCommands, EntangleCommands, TeleportCommands, GhzCommands, QkdCommands, PkiCommands, KeyCommands,
                       LogCommands, UiCommands, GenCommands, BundleCommands}) {
      for (Command& c : group()) all.push_back(std::move(c));
    }
    return all;
  }();
  return commands;
}

const Command* FindCommand(const std::string& name) {
  for (const Command& c : Commands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// " (did you mean --pairs?)" when one of `known` is within two edits of `name`.
std::string DidYouMean(const std::string& name, const std::vector<std::string>& known) {
  std::string best;
  size_t best_distance = 3;
  for (const std::string& k : known) {
    const size_t d = config::EditDistance(name, k);
    if (d < best_distance) {
      best_distance = d;
      best = k;
    }
  }
  return best.empty() ? "" : absl::StrCat(" (did you mean ", best, "?)");
}

const std::vector<std::string>& GlobalFlags() {
  static const std::vector<std::string> flags = {"--state-dir", "--network", "--address", "--output", "--node",
                                                 "--quiet"};
  return flags;
}

bool IsGlobalFlag(const std::string& name) {
  return name == "--state-dir" || name == "--network" || name == "--address" || name == "--output" ||
         name == "--node" || name == "--quiet";
}

absl::StatusOr<Args> Parse(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      args.help = true;
    } else if (a == "--quiet" || a == "-q") {
      args.flags["--quiet"] = "yes";  // takes no value
    } else if (a.rfind("-", 0) == 0 && a.size() > 1) {
      std::string name = a, value;
      const size_t eq = a.find('=');
      if (eq != std::string::npos) name = a.substr(0, eq);
      bool known = IsGlobalFlag(name);
      for (const Command& c : Commands()) {
        for (const std::string& f : c.flags) known = known || f == name;
      }
      if (!known) {
        std::vector<std::string> all = GlobalFlags();
        for (const Command& c : Commands()) all.insert(all.end(), c.flags.begin(), c.flags.end());
        const std::string hint = DidYouMean(name, all);
        return absl::InvalidArgumentError(
            absl::StrCat("unknown option ", name, hint.empty() ? " (see qnetctl --help)" : hint));
      }
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

absl::Status CheckFlags(const Args& args) {
  const Command* command = FindCommand(args.command);
  for (const auto& [name, value] : args.flags) {
    bool ok = IsGlobalFlag(name);
    if (command != nullptr) {
      for (const std::string& a : command->flags) ok = ok || a == name;
    }
    if (!ok) {
      std::vector<std::string> all = GlobalFlags();
      if (command != nullptr) all.insert(all.end(), command->flags.begin(), command->flags.end());
      const std::string hint = DidYouMean(name, all);
      return absl::InvalidArgumentError(absl::StrCat("unknown option ", name, " for '", args.command, "'",
                                                     hint.empty() ? absl::StrCat(" (see qnetctl ", args.command,
                                                                                 " --help)")
                                                                  : hint));
    }
  }
  // Where the network is: one way at a time, and only for commands that use it.
  const bool address = !Flag(args, "--address").empty(), network = !Flag(args, "--network").empty(),
             state_dir = !Flag(args, "--state-dir").empty();
  if (address + network + state_dir > 1) {
    return absl::InvalidArgumentError("give one of --address, --network and --state-dir, not several");
  }
  for (const char* own : {"up", "ls", "pki", "gen", "bundle"}) {
    if (args.command != own) continue;
    for (const char* flag : {"--address", "--network"}) {
      if (!Flag(args, flag).empty()) {
        return absl::InvalidArgumentError(absl::StrCat(flag, " does not apply to '", own, "' (see qnetctl ", own,
                                                       " --help)"));
      }
    }
    if (std::string(own) != "up" && state_dir) {
      return absl::InvalidArgumentError(
          absl::StrCat("--state-dir does not apply to '", own, "' (see qnetctl ", own, " --help)"));
    }
  }
  if (std::string q = Flag(args, "--quiet"); !q.empty() && q != "yes" && q != "no") {
    return absl::InvalidArgumentError(absl::StrCat("--quiet takes no value (or =yes, =no), got '", q, "'"));
  }
  std::string output = Flag(args, "--output", "text");
  if (output != "text" && output != "json") {
    return absl::InvalidArgumentError(absl::StrCat("--output must be text or json, got '", output, "'"));
  }
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
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
                             "' (commands: up, ls, down, status, links, routes, entangle, measure, bell-test, teleport, ghz, circuit, eavesdrop, qkd, key, keys, logs, ui, pki, gen; see qnetctl --help)"));
  }
  if (args->help || command == nullptr) {
    std::cout << (command != nullptr ? command->help + kGlobalHelp : std::string(kUsage));
    return args->help ? 0 : 2;
  }
  if (absl::Status s = CheckFlags(*args); !s.ok()) return Fail(std::string(s.message()));
  SetQuiet(!Flag(*args, "--quiet").empty() && Flag(*args, "--quiet") != "no");
  return command->run(*args, Flag(*args, "--output") == "json");
}

}  // namespace
}  // namespace qnet::qnetctl

int main(int argc, char** argv) { return qnet::qnetctl::Main(argc, argv); }
