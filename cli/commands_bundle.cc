// qnetctl bundle: what each host of a network needs to run its node's qnetd,
// written once on the operator's machine: the network file, every node's
// address, the node's certificate and the CA's, a start script and a systemd
// unit with one shared epoch. Copying a directory to each host and starting
// it is then the whole setup (README, "Across hosts").
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/qnetctl_command.h"
#include "config/network_config.h"
#include "config/peers_file.h"
#include "security/pki.h"

namespace qnet::qnetctl {
namespace {

namespace fs = std::filesystem;

// An address another host can dial: a host name, dotted IPv4 or bracketed
// IPv6 (nothing else: the address goes into a shell script and a systemd
// unit), and not a wildcard or the loopback interface (those name a
// different machine on every host).
absl::Status CheckDialable(const std::string& node, const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 || !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 1 ||
      port > 65535 || address.substr(colon + 1).find_first_not_of("0123456789") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("node ", node, ": address '", address, "' is not HOST:PORT with a port in [1, 65535]"));
  }
  const std::string host = address.substr(0, colon);
  const bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']' &&
                         host.substr(1, host.size() - 2).find_first_not_of("0123456789abcdefABCDEF:.") ==
                             std::string::npos;
  const bool name = host.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") ==
                        std::string::npos &&
                    host.front() != '-' && host.front() != '.';
  if (!bracketed && !name) {
    return absl::InvalidArgumentError(absl::StrCat("node ", node, ": address '", address,
                                                   "' has a host part that is not a host name, an IPv4 address or "
                                                   "a bracketed IPv6 address"));
  }
  for (const char* local : {"0.0.0.0", "[::]", "127.0.0.1", "localhost", "[::1]"}) {
    if (host == local || host.rfind("127.", 0) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "node ", node, ": address '", address,
          "' cannot be dialled from another host; give each node the address its host is reached at"));
    }
  }
  return absl::OkStatus();
}

absl::Status CopyFile(const fs::path& from, const fs::path& to, fs::perms perms) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot copy ", from.string(), " to ", to.string(), ": ", ec.message()));
  fs::permissions(to, perms, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot set the mode of ", to.string(), ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status WriteText(const fs::path& path, const std::string& text, fs::perms perms) {
  if (absl::Status s = config::WriteFileAtomically(path.string(), text); !s.ok()) return s;
  std::error_code ec;
  fs::permissions(path, perms, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot set the mode of ", path.string(), ": ", ec.message()));
  return absl::OkStatus();
}

// Shell-quotes a word for the start script.
std::string Quoted(const std::string& word) {
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// A path that goes into run.sh and a systemd unit as it is: absolute, and
// free of what either would interpret (quotes, $, %, backslashes, spaces).
absl::Status CheckPlainPath(const std::string& flag, const std::string& path) {
  if (path.empty() || path.front() != '/' ||
      path.find_first_of(" \t\n'\"$%`\\;&|<>()*?[]{}!#~") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, " must be an absolute path without spaces, quotes or shell and systemd specials, got '", path, "'"));
  }
  return absl::OkStatus();
}

int Bundle(const Args& args, bool json) {
  if (args.positional.size() != 1) return Fail("bundle needs exactly one NETWORK_FILE (see qnetctl bundle --help)");
  const std::string peers_path = Flag(args, "--peers");
  const std::string out = Flag(args, "--dir");
  if (peers_path.empty()) return Fail("bundle needs --peers FILE: one \"NODE HOST:PORT\" line per node");
  if (out.empty()) return Fail("bundle needs --dir DIR (where the per-host directories go)");
  double time_scale = 1.0;
  if (const std::string s = Flag(args, "--time-scale", "1"); !absl::SimpleAtod(s, &time_scale) ||
                                                              !(time_scale > 0 && time_scale <= 1e6)) {
    return Fail(absl::StrCat("--time-scale wants a number in (0, 10^6], got '", s, "'"));
  }
  const std::string qnetd = Flag(args, "--qnetd", "/usr/bin/qnetd");
  const std::string install = Flag(args, "--install-dir", "/etc/qnet");
  for (absl::Status s : {CheckPlainPath("--qnetd", qnetd), CheckPlainPath("--install-dir", install)}) {
    if (!s.ok()) return Fail(std::string(s.message()));
  }

  absl::StatusOr<config::NetworkConfig> network = config::LoadNetworkFile(args.positional[0]);
  if (!network.ok()) return Fail(std::string(network.status().message()));
  absl::StatusOr<config::PeerAddresses> peers = config::ReadPeersFile(peers_path);
  if (!peers.ok()) return Fail(std::string(peers.status().message()));
  std::vector<std::string> missing;
  for (const config::NodeConfig& node : network->nodes) {
    auto it = peers->find(node.name);
    if (it == peers->end()) {
      missing.push_back(node.name);
    } else if (absl::Status s = CheckDialable(node.name, it->second); !s.ok()) {
      return Fail(absl::StrCat(peers_path, ": ", s.message()));
    }
  }
  if (!missing.empty()) {
    return Fail(absl::StrCat(peers_path, ": no address for ", missing.size(), " node(s) of network ", network->name,
                             ": ", absl::StrJoin(missing.begin(), missing.begin() + std::min<size_t>(missing.size(), 12),
                                                 ", "),
                             missing.size() > 12 ? ", ..." : ""));
  }
  for (const auto& [node, address] : *peers) {
    if (network->FindNode(node) == nullptr) {
      return Fail(absl::StrCat(peers_path, ": '", node, "' is not a node of network ", network->name));
    }
  }

  // The CA and every certificate, kept in DIR/pki (with the CA's private
  // key, which stays with the operator: it is not in any host's directory).
  const fs::path dir(out);
  std::vector<std::string> names;
  for (const config::NodeConfig& node : network->nodes) names.push_back(node.name);
  if (absl::Status s = security::InitNetworkPki(dir / "pki", network->name, names); !s.ok()) {
    return Fail(std::string(s.message()));
  }
  // One time line for every daemon: the epoch is now, in the bundle.
  const int64_t epoch = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  std::string peers_text = "# node address: every node's, as each host reaches it\n";
  for (const config::NodeConfig& node : network->nodes) {
    absl::StrAppend(&peers_text, node.name, " ", peers->at(node.name), "\n");
  }
  constexpr fs::perms kPublic = fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                                fs::perms::others_read;
  constexpr fs::perms kPrivate = fs::perms::owner_read | fs::perms::owner_write;
  constexpr fs::perms kScript = kPublic | fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec;
  for (const config::NodeConfig& node : network->nodes) {
    const fs::path host = dir / "hosts" / node.name;
    std::error_code ec;
    fs::create_directories(host / "pki", ec);
    if (ec) return Fail(absl::StrCat("cannot make ", (host / "pki").string(), ": ", ec.message()));
    const std::string stem = absl::StrCat("node-", node.name);
    for (absl::Status s :
         {CopyFile(args.positional[0], host / "network.yaml", kPublic), WriteText(host / "peers", peers_text, kPublic),
          CopyFile(dir / "pki" / "ca.crt", host / "pki" / "ca.crt", kPublic),
          CopyFile(dir / "pki" / (stem + ".crt"), host / "pki" / (stem + ".crt"), kPublic),
          CopyFile(dir / "pki" / (stem + ".key"), host / "pki" / (stem + ".key"), kPrivate)}) {
      if (!s.ok()) return Fail(std::string(s.message()));
    }
    const std::string address = peers->at(node.name);
    const std::string flags = absl::StrCat(" --node ", node.name, " --listen ", address, " --time-scale ", time_scale,
                                           " --epoch-unix-ns ", epoch);
    // The script runs from wherever the directory was copied; QNETD names
    // another qnetd (a build tree's), extra arguments go to qnetd.
    const std::string script = absl::StrCat(
        "#!/bin/sh\n# qnetd for node ", node.name, " of network ", network->name,
        ", made by qnetctl bundle.\n# Extra arguments go to qnetd (e.g. --metrics-listen HOST:PORT).\n",
        "dir=$(cd \"$(dirname \"$0\")\" && pwd)\n", "exec \"${QNETD:-", qnetd,
        "}\" --network \"$dir/network.yaml\" --peers \"$dir/peers\" --pki \"$dir/pki\"", flags, " \"$@\"\n");
    const std::string unit = absl::StrCat(
        "# qnetd for node ", node.name, " of network ", network->name, ", made by qnetctl bundle.\n",
        "# Copy this directory to ", install, "/", node.name, " on the host, then:\n",
        "#   systemctl enable --now ", install, "/", node.name, "/qnetd-", node.name, ".service\n",
        "[Unit]\nDescription=qnet daemon for node ", node.name, " of network ", network->name,
        "\nAfter=network-online.target time-sync.target\nWants=network-online.target\n\n[Service]\nExecStart=", qnetd,
        " --network ", install, "/", node.name, "/network.yaml --peers ", install, "/", node.name, "/peers --pki ",
        install, "/", node.name, "/pki", flags,
        "\nRestart=on-failure\n# SIGTERM: neighbours are told and streams closed before exit.\nKillSignal=SIGTERM\n",
        "# It needs no privileges; add User= for an account that can read this directory.\n",
        "NoNewPrivileges=yes\nPrivateTmp=yes\nProtectHome=yes\nProtectSystem=full\n\n",
        "[Install]\nWantedBy=multi-user.target\n");
    for (absl::Status s : {WriteText(host / "run.sh", script, kScript),
                           WriteText(host / absl::StrCat("qnetd-", node.name, ".service"), unit, kPublic)}) {
      if (!s.ok()) return Fail(std::string(s.message()));
    }
  }
  // The operator's client: CA, certificate, key and the variables qnetctl reads.
  const fs::path op = dir / "operator";
  std::error_code ec;
  fs::create_directories(op, ec);
  if (ec) return Fail(absl::StrCat("cannot make ", op.string(), ": ", ec.message()));
  for (absl::Status s : {CopyFile(dir / "pki" / "ca.crt", op / "ca.crt", kPublic),
                         CopyFile(dir / "pki" / "operator-operator.crt", op / "operator.crt", kPublic),
                         CopyFile(dir / "pki" / "operator-operator.key", op / "operator.key", kPrivate)}) {
    if (!s.ok()) return Fail(std::string(s.message()));
  }
  const fs::path abs = fs::absolute(op);
  const std::string env = absl::StrCat("# source this, then: qnetctl --address HOST:PORT --node NODE status\n",
                                       "export QNET_CA_CERT=", Quoted((abs / "ca.crt").string()), "\n",
                                       "export QNET_CLIENT_CERT=", Quoted((abs / "operator.crt").string()), "\n",
                                       "export QNET_CLIENT_KEY=", Quoted((abs / "operator.key").string()), "\n");
  if (absl::Status s = WriteText(op / "env", env, kPublic); !s.ok()) return Fail(std::string(s.message()));

  if (json) {
    std::cout << "{\"network\":\"" << network->name << "\",\"dir\":\"" << dir.string() << "\",\"epoch_unix_ns\":" << epoch
              << ",\"hosts\":" << network->nodes.size() << "}\n";
  } else {
    std::cout << "bundle of network " << network->name << " in " << dir.string() << " (epoch " << epoch
              << ", time scale " << time_scale << "):\n"
              << "  hosts/NODE/   for each of " << network->nodes.size()
              << " nodes: copy it to the node's host and run run.sh there (or install\n"
              << "                qnetd-NODE.service from " << install << "/NODE); the hosts' clocks must agree\n"
              << "                (docs/architecture.md, \"Time across hosts\")\n"
              << "  operator/     ca.crt, operator.crt/.key and env for qnetctl --address HOST:PORT\n"
              << "  pki/          the CA with its private key: keep it here, for qnetctl pki issue\n";
  }
  return 0;
}

}  // namespace

std::vector<Command> BundleCommands() {
  return {
      {"bundle",
       {"--peers", "--dir", "--time-scale", "--qnetd", "--install-dir"},
       R"(Usage: qnetctl bundle NETWORK_FILE --peers FILE --dir DIR [--time-scale S]
                      [--qnetd PATH] [--install-dir DIR]

What each host needs to run its node's qnetd when the nodes of a network run
on several machines, written once on the operator's machine:

  --peers FILE        every node's address, one "NODE HOST:PORT" line each ('#'
                      comments): where its daemon listens and the others dial it
                      (not 127.0.0.1 or 0.0.0.0: another host must reach it)
  --dir DIR           where the bundle goes:
                        DIR/hosts/NODE/  network.yaml, peers, pki/ (ca.crt and the
                                         node's certificate and key, 0600), run.sh
                                         and qnetd-NODE.service: copy it to the
                                         node's host and run run.sh (QNETD=PATH for
                                         another qnetd; extra arguments go to qnetd)
                        DIR/operator/    ca.crt, operator.crt/.key and env (source
                                         it, then qnetctl --address HOST:PORT ...)
                        DIR/pki/         the CA and its private key (kept here; a
                                         rerun keeps the certificates it finds)
  --time-scale S      simulated seconds per wall second for every daemon (default 1)
  --qnetd PATH        qnetd in the systemd units and run.sh (default /usr/bin/qnetd)
  --install-dir DIR   where the units expect the host directory (default /etc/qnet,
                      i.e. /etc/qnet/NODE)

Every daemon gets the same --epoch-unix-ns (the bundle's creation time), so
they share one simulated time line as long as the hosts' wall clocks agree to
well within each link's classical delay divided by S (docs/architecture.md,
"Time across hosts").
)",
       Bundle},
  };
}

}  // namespace qnet::qnetctl
