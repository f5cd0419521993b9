// qnetctl pki: the network's PKI for daemons started by hand or across
// hosts (qnetctl up makes one itself, in its state directory).
#include <iostream>

#include "absl/strings/str_cat.h"
#include "cli/qnetctl_command.h"
#include "config/network_config.h"
#include "security/pki.h"

namespace qnet::qnetctl {
namespace {

int Pki(const Args& args, bool json) {
  if (args.positional.empty()) return Fail("pki needs a subcommand: init NETWORK_FILE, or issue (see qnetctl pki --help)");
  const std::string dir = Flag(args, "--dir");
  if (dir.empty()) return Fail("pki needs --dir DIR (where the CA and the certificates live)");
  const std::string& sub = args.positional[0];
  if (sub == "init") {
    if (args.positional.size() != 2) return Fail("pki init needs exactly one NETWORK_FILE");
    absl::StatusOr<config::NetworkConfig> network = config::LoadNetworkFile(args.positional[1]);
    if (!network.ok()) return Fail(std::string(network.status().message()));
    std::vector<std::string> nodes;
    for (const config::NodeConfig& node : network->nodes) nodes.push_back(node.name);
    if (absl::Status s = security::InitNetworkPki(dir, network->name, nodes); !s.ok()) {
      return Fail(std::string(s.message()));
    }
    if (json) {
      std::cout << "{\"network\":\"" << network->name << "\",\"dir\":\"" << dir << "\"}\n";
    } else {
      std::cout << "PKI of network " << network->name << " in " << dir << ": ca.crt, a node-NAME certificate for each of "
                << nodes.size() << " nodes, and operator-operator (qnetctl's). Private keys are 0600;\n"
                << "copy ca.crt and a node's node-NAME.crt/.key to the host that runs it (qnetd --pki DIR).\n";
    }
    return 0;
  }
  if (sub == "issue") {
    if (args.positional.size() != 1) return Fail("pki issue takes no positional arguments (see qnetctl pki --help)");
    absl::StatusOr<std::string> network = security::PkiNetwork(dir);
    if (!network.ok()) return Fail(std::string(network.status().message()));
    absl::StatusOr<security::Role> role = security::ParseRole(Flag(args, "--role"));
    if (!role.ok()) return Fail(absl::StrCat("--role: ", role.status().message()));
    security::Identity who{.network = *network, .role = *role, .node = Flag(args, "--node"), .name = Flag(args, "--name")};
    if (*role == security::Role::kNode) {
      if (who.node.empty()) return Fail("a node certificate needs --node NODE");
      who.name = who.node;
    } else if (who.name.empty()) {
      return Fail(absl::StrCat("a ", security::RoleName(*role), " certificate needs --name NAME"));
    }
    if (*role == security::Role::kApp && who.node.empty()) return Fail("an app certificate needs --node NODE (its node)");
    if ((*role == security::Role::kOperator || *role == security::Role::kMonitor) && !who.node.empty()) {
      return Fail(absl::StrCat("a ", security::RoleName(*role), " is not bound to a node: drop --node"));
    }
    absl::StatusOr<std::filesystem::path> cert = security::IssueCertificate(dir, who);
    if (!cert.ok()) return Fail(std::string(cert.status().message()));
    std::filesystem::path key = *cert;
    key.replace_extension(".key");
    if (json) {
      std::cout << "{\"identity\":\"" << security::IdentityUri(who) << "\",\"cert\":\"" << cert->string()
                << "\",\"key\":\"" << key.string() << "\"}\n";
    } else {
      std::cout << "issued " << security::Describe(who) << " (" << security::IdentityUri(who) << "):\n  "
                << cert->string() << "\n  " << key.string() << " (private, 0600)\n";
    }
    return 0;
  }
  return Fail(absl::StrCat("unknown pki subcommand '", sub, "' (init or issue)"));
}

}  // namespace

std::vector<Command> PkiCommands() {
  return {
      {"pki",
       {"--dir", "--role", "--name"},
       R"(Usage: qnetctl pki init NETWORK_FILE --dir DIR
       qnetctl pki issue --dir DIR --role node|operator|app|monitor [--node NODE] [--name NAME]

The network's own certificate authority and certificates (mutual TLS on every
qnetd port). `qnetctl up` makes them itself in <state-dir>/pki; use these
commands for daemons started by hand or on several hosts.

  init    make DIR's CA for the network (kept if present) and a certificate per
          node (node-NAME.crt/.key) and for the operator (operator-operator):
          existing certificates are kept
  issue   one more certificate from DIR's CA:
            --role node --node NODE              a node's (re-issue, another host)
            --role operator --name NAME          a client that may do everything
            --role app --node NODE --name NAME   a client that may use only NODE's
                                                 entanglement, teleport, keys, status
            --role monitor --name NAME           a scraper (Prometheus): the daemons'
                                                 metrics, GetStatus and GetRoutes only
Keys are P-256, written 0600. A client uses a certificate of its own with
QNET_CLIENT_CERT=FILE QNET_CLIENT_KEY=FILE (qnetctl) or any gRPC client given
ca.crt, the certificate and key, and the node's name as TLS target name.
)",
       Pki},
  };
}

}  // namespace qnet::qnetctl
