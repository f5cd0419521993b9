// What every qnetctl command shares: the parsed command line, the entry each
// command file adds to qnetctl's dispatch table (name, flags, --help text,
// handler), and how a command finds the network's state directory and a
// node's daemon. The commands themselves live in cli/commands_*.cc.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <google/protobuf/message.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "config/network_config.h"
#include "qnet/v1/node_service.pb.h"

namespace qnet::qnetctl {

struct Args {
  std::string command;
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;  // "--name" -> value
  bool help = false;
};

// One command: its flags (beyond the global ones), its --help text, and what
// runs it (after the flags were checked against the command's); returns the
// exit code.
struct Command {
  std::string name;
  std::vector<std::string> flags;
  std::string help;
  int (*run)(const Args& args, bool json) = nullptr;
};

// Each command file's commands.
std::vector<Command> NetworkCommands();   // up, down, status, links, routes
std::vector<Command> EntangleCommands();  // entangle, bell-test, measure
std::vector<Command> TeleportCommands();  // teleport
std::vector<Command> GhzCommands();       // ghz, circuit
std::vector<Command> QkdCommands();       // eavesdrop, qkd, key
std::vector<Command> PkiCommands();       // pki
std::vector<Command> BundleCommands();    // bundle
std::vector<Command> KeyCommands();       // keys
std::vector<Command> LogCommands();       // logs
std::vector<Command> UiCommands();        // ui
std::vector<Command> GenCommands();       // gen

std::string Flag(const Args& args, const std::string& name, const std::string& fallback = "");
// Prints "qnetctl: error: message" on stderr; returns the exit code 1.
int Fail(const std::string& message);
// A progress count on stderr, for a call per item: at most one update a
// second (and the last), rewritten in place on a terminal, a line per update
// when stderr goes to a file or a pipe (logs stay readable).
void ShowProgress(size_t done, size_t total, const char* what);
// What a request waits for, on stderr: one line rewritten in place on a
// terminal (ClearWaiting removes it before other output), a plain line per
// call otherwise. Nothing with --quiet.
void ShowWaiting(const std::string& text);
void ClearWaiting();
// The entangle request's wait, in words (with ETA where one is known).
std::string DescribeWait(const v1::EntangleProgress& progress);
// --quiet: no progress or waiting lines (results and errors only).
void SetQuiet(bool quiet);
bool Quiet();

// The state directory: --state-dir; else the network --network NAME names
// under the state root (cli::DefaultStateRoot: $QNET_STATE_DIR, else
// $XDG_STATE_HOME/qnet or ~/.local/state/qnet); else the only network there.
absl::StatusOr<std::filesystem::path> StateDir(const Args& args);
// The networks that have state under the state root (a "network" file), by name.
std::vector<std::filesystem::path> NetworksUnder(const std::filesystem::path& root);
// A value recorded in the state directory's "network" file (name, file, ...).
std::string StateValue(const std::filesystem::path& dir, const std::string& key);
absl::StatusOr<config::NetworkConfig> StateNetwork(const std::filesystem::path& dir);
// The files qnetctl presents to the daemons: the network's CA, and the
// operator's certificate and key, or QNET_CLIENT_CERT and QNET_CLIENT_KEY
// (both, or an error) when set. nullopt for an insecure network (no PKI).
struct ClientCertificate {
  std::string ca_file, cert_file, key_file;
};
absl::StatusOr<std::optional<ClientCertificate>> ClientCertificateFiles(const std::filesystem::path& dir);
absl::StatusOr<std::string> NodeAddress(const std::filesystem::path& dir, const std::string& node);
// NodeAddress in StateDir(args); with --address HOST:PORT, that address for
// the --node it names (mutual TLS with QNET_CA_CERT, QNET_CLIENT_CERT and
// QNET_CLIENT_KEY; plaintext without QNET_CA_CERT), an error for any other node.
absl::StatusOr<std::string> StateNodeAddress(const Args& args, const std::string& node);

// A message as JSON with every field and the proto field names.
std::string Json(const google::protobuf::Message& m);
// "  warning: the software fell behind the physics ...\n" when the daemons'
// software did not keep up during a request, else "": the request's rates
// are then the runtime's, a lower bound of the network file's.
std::string LagWarning(const v1::SoftwareLag& lag);
// "lag p50 .. p99 .. max .. (simulated), behind ..% of the last .. s" for status.
std::string LagStatusLine(const v1::LagStatus& lag);
// The intercept-resend eavesdropper on a network's link, as the end hosting
// its heralding station reports it; set first when `fraction` is given.
// `photon_number_splitting`: switch the PNS attack on at both ends' photon
// sources (fraction 0) and report the end that has sent more pulses.
// NotFound (listing the links) for an unknown link; the daemons' errors as
// they come, naming the node.
absl::StatusOr<v1::EavesdropResponse> EavesdropOnLink(const std::filesystem::path& dir,
                                                      const config::NetworkConfig& network,
                                                      const std::string& link_name, std::optional<double> fraction,
                                                      bool photon_number_splitting = false);
// --min-fidelity and --timeout, shared by entangle and bell-test.
absl::Status SetFidelityAndTimeout(const Args& args, v1::EntangleRequest& request);

}  // namespace qnet::qnetctl
