// qnetctl's commands for the network as a whole: up, ls, down, status, links,
// routes.
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include <grpcpp/grpcpp.h>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/entangle_client.h"
#include "cli/launcher.h"
#include "cli/qnetctl_command.h"
#include "cli/time_scale_probe.h"
#include "config/network_config.h"
#include "security/client_endpoints.h"
#include "security/pki.h"
#include "qnet/v1/node_service.grpc.pb.h"

namespace qnet::qnetctl {
namespace {

namespace fs = std::filesystem;

std::string FindQnetd(const Args& args) {
  if (std::string p = Flag(args, "--qnetd"); !p.empty()) return p;
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec).parent_path();
  for (fs::path candidate : {self / "qnetd", self / ".." / "daemon" / "qnetd"}) {
    if (fs::exists(candidate)) return fs::weakly_canonical(candidate).string();
  }
  return "qnetd";
}

// The daemons whose routing table does not yet reach every node their
// link-state database says they can reach, once all do or at `budget`:
// without this wait, a request right after `up` got NO_ROUTE while the
// adverts were still spreading. Reach is followed through the advertised
// up links (a link that cannot generate is advertised down, and is not
// waited for); a node named in an advert but not yet heard from has no
// route, so the wait goes on until its advert arrives.
std::vector<std::string> WaitForRoutes(qnet::cli::LocalNetwork& net, absl::Duration budget) {
  std::vector<std::string> waiting = net.nodes();
  const absl::Time give_up = absl::Now() + budget;
  while (!waiting.empty()) {
    std::vector<std::string> still;
    for (const std::string& node : waiting) {
      absl::StatusOr<std::string> address = net.Address(node);
      if (!address.ok() || !net.IsRunning(node)) continue;  // not running: nothing to wait for
      // First its own links: every running neighbour connected (a link is
      // advertised up only once its peer stream is).
      absl::StatusOr<qnet::v1::GetStatusResponse> status = qnet::cli::GetStatus(*address);
      bool linked = status.ok();
      for (int i = 0; linked && i < status->neighbours_size(); ++i) {
        const auto& n = status->neighbours(i);
        if (!n.connected() && net.IsRunning(n.name())) linked = false;
      }
      auto stub = qnet::v1::Node::NewStub(security::ClientChannel(*address));
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      qnet::v1::GetRoutesResponse routes;
      if (!linked || !stub->GetRoutes(&context, qnet::v1::GetRoutesRequest(), &routes).ok()) {
        still.push_back(node);
        continue;
      }
      std::map<std::string, std::vector<std::string>> links;
      for (const auto& advert : routes.adverts()) {
        links[advert.origin()].assign(advert.up_links().begin(), advert.up_links().end());
      }
      if (!links.contains(node)) {  // its own advert is not out yet
        still.push_back(node);
        continue;
      }
      std::set<std::string> routed;
      for (const auto& r : routes.routes()) routed.insert(r.destination());
      std::set<std::string> seen{node};
      std::vector<std::string> frontier{node};
      bool complete = true;
      while (!frontier.empty() && complete) {
        const std::string at = frontier.back();
        frontier.pop_back();
        for (const std::string& next : links[at]) {
          if (!seen.insert(next).second) continue;
          if (!routed.contains(next)) complete = false;
          frontier.push_back(next);
        }
      }
      if (!complete) still.push_back(node);
    }
    waiting = std::move(still);
    if (waiting.empty() || absl::Now() > give_up) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return waiting;
}

// Where an installed qnetctl's example networks are (PREFIX/share/qnet/examples).
// Empty if this program's path cannot be read.
fs::path InstalledExamples() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec || self.empty()) return {};
  return self.parent_path() / ".." / "share" / "qnet" / "examples";
}

int Up(const Args& args, bool json) {
  if (args.positional.size() != 1) return Fail("up needs exactly one NETWORK_FILE (see qnetctl up --help)");
  if (std::error_code ec; !fs::exists(args.positional[0], ec)) {
    // The README's examples/x.yaml, run from elsewhere than a source tree.
    const fs::path examples = InstalledExamples();
    const fs::path example = examples / fs::path(args.positional[0]).filename();
    if (!examples.empty() && fs::exists(example, ec)) {
      return Fail(absl::StrCat("no network file ", args.positional[0], " here; the example networks are installed in ",
                               fs::weakly_canonical(example.parent_path(), ec).string(), ": qnetctl up ",
                               fs::weakly_canonical(example, ec).string()));
    }
  }
  qnet::cli::LaunchOptions o;
  o.qnetd_path = FindQnetd(args);
  o.network_file = args.positional[0];
  o.state_dir = Flag(args, "--state-dir");
  o.detached = true;
  if (std::string security = Flag(args, "--security", "tls"); security == "insecure-local-only") {
    o.insecure = true;
  } else if (security != "tls") {
    return Fail(absl::StrCat("--security must be tls or insecure-local-only, got '", security, "'"));
  }
  const bool auto_scale = Flag(args, "--time-scale") == "auto";
  if (std::string ts = Flag(args, "--time-scale"); !ts.empty() && !auto_scale) {
    if (!absl::SimpleAtod(ts, &o.time_scale) || !(o.time_scale > 0) || !std::isfinite(o.time_scale)) {
      return Fail(absl::StrCat("--time-scale must be a positive number or 'auto', got '", ts, "'"));
    }
  }
  if (std::string hold = Flag(args, "--keep-hold"); !hold.empty()) {
    double seconds = 0;
    if (!absl::SimpleAtod(hold, &seconds) || !(seconds >= 0) || !std::isfinite(seconds)) {
      return Fail(absl::StrCat("--keep-hold must be a non-negative number of simulated seconds, got '", hold, "'"));
    }
    o.extra_args = {"--keep-hold", hold};
  }
  if (std::string format = Flag(args, "--log-format"); !format.empty()) {
    if (format != "text" && format != "json") {
      return Fail(absl::StrCat("--log-format must be text or json, got '", format, "'"));
    }
    o.extra_args.insert(o.extra_args.end(), {"--log-format", format});
  }
  absl::StatusOr<std::unique_ptr<qnet::cli::LocalNetwork>> net;
  std::string scale_note;
  if (auto_scale) {
    absl::StatusOr<config::NetworkConfig> file = config::LoadNetworkFile(o.network_file);
    if (!file.ok()) return Fail(std::string(file.status().message()));
    if (!Quiet()) {
      std::cerr << "finding the largest time scale this machine keeps up with (a short probe of every link per try)\n";
    }
    auto chosen = qnet::cli::StartAtAutoTimeScale(o, *file, absl::Seconds(1.5), [](const qnet::cli::TimeScaleTrial& t) {
      if (Quiet()) return;
      std::cerr << absl::StrFormat("  time scale %-6g %s (behind the physics %.1f%% of the probe, most at %s; %d events)\n",
                                   t.time_scale, t.kept_up ? "keeps up" : "falls behind", 100 * t.behind_fraction,
                                   t.worst_node, t.events);
    });
    if (!chosen.ok()) return Fail(std::string(chosen.status().message()));
    o.time_scale = chosen->time_scale;
    scale_note = chosen->kept_up
                     ? absl::StrFormat("time scale %g (auto: the largest that kept up with the physics)", o.time_scale)
                     : absl::StrFormat("time scale %g (auto: even this falls behind the physics on this machine; "
                                       "reports will say so)", o.time_scale);
    net = std::move(chosen->network);
  } else {
    net = qnet::cli::LocalNetwork::Start(o);
    scale_note = absl::StrFormat("time scale %g", o.time_scale);
  }
  if (!net.ok()) return Fail(std::string(net.status().message()));
  (*net)->Detach();
  const std::vector<std::string> unrouted = WaitForRoutes(**net, absl::Seconds(30));
  if (!unrouted.empty()) {
    std::cerr << "note: after 30 s the routes of " << absl::StrJoin(unrouted, ", ")
              << " do not reach every node yet; requests from there may get NO_ROUTE until the adverts spread "
                 "(qnetctl --node NODE routes)\n";
  }
  if (json) {
    std::cout << "{\"network\":\"" << (*net)->network_name() << "\",\"state_dir\":\"" << (*net)->state_dir()
              << "\",\"time_scale\":" << o.time_scale << ",\"nodes\":[";
    bool first = true;
    for (const std::string& node : (*net)->nodes()) {
      std::cout << (first ? "" : ",") << "{\"node\":\"" << node << "\",\"address\":\""
                << (*net)->Address(node).value_or("") << "\",\"kme_url\":\"" << (*net)->KmeUrl(node)
                << "\",\"metrics_url\":\"" << (*net)->MetricsUrl(node) << "\"}";
      first = false;
    }
    std::cout << "],\"prometheus_config\":\"" << (*net)->PrometheusConfigPath() << "\"}\n";
  } else {
    std::cout << "network " << (*net)->network_name() << " up (state dir " << (*net)->state_dir() << ", "
              << scale_note << ")\n";
    for (const std::string& node : (*net)->nodes()) {
      std::cout << absl::StrFormat("  %-12s %s", node, (*net)->Address(node).value_or("?"));
      if (std::string kme = (*net)->KmeUrl(node); !kme.empty()) std::cout << "   KME " << kme;
      std::cout << "   metrics " << (*net)->MetricsUrl(node) << "\n";
    }
    std::cout << "Prometheus: prometheus --config.file=" << (*net)->PrometheusConfigPath()
              << " (scrapes every daemon" << (o.insecure ? "" : " with the monitor certificate in the PKI") << ")\n";
    absl::StatusOr<config::NetworkConfig> network = config::LoadNetworkFile(o.network_file);
    if (network.ok() && !network->key_management.saes.empty() && !o.insecure) {
      const fs::path pki = (*net)->pki_dir();
      std::cout << "SAEs (ETSI GS QKD 014 clients; certificates in " << pki.string() << "):\n";
      for (const config::SaeConfig& sae : network->key_management.saes) {
        const security::Identity app{.network = network->name, .role = security::Role::kApp, .node = sae.node,
                                     .name = sae.name};
        std::cout << absl::StrFormat("  %-12s at %-10s --cert %s.crt --key %s.key\n", sae.name, sae.node,
                                     security::CertificateStem(app), security::CertificateStem(app));
      }
      const config::SaeConfig& master = network->key_management.saes.front();
      for (const config::SaeConfig& slave : network->key_management.saes) {
        if (slave.node == master.node || network->key_management.FindPool(master.node, slave.node) == nullptr) continue;
        const security::Identity app{.network = network->name, .role = security::Role::kApp, .node = master.node,
                                     .name = master.name};
        const std::string stem = (pki / security::CertificateStem(app)).string();
        std::cout << "e.g. " << master.name << " asks " << master.node << "'s KME for two 256-bit keys shared with "
                  << slave.name << ":\n"
                  << "  curl --cert " << stem << ".crt --key " << stem << ".key --cacert " << (pki / "ca.crt").string()
                  << " \\\n    '" << (*net)->KmeUrl(master.node) << "/api/v1/keys/" << slave.name
                  << "/enc_keys?number=2&size=256'\n";
        break;
      }
    }
  }
  return 0;
}

int Down(const Args& args, bool json) {
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

// The networks under the state root: name, daemons running of those the
// file names, the state directory and the network file.
int List(const Args& args, bool json) {
  if (!args.positional.empty()) return Fail("ls takes no arguments (see qnetctl ls --help)");
  const fs::path root = qnet::cli::DefaultStateRoot();
  nlohmann::json out = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows;
  for (const fs::path& dir : NetworksUnder(root)) {
    const std::vector<std::string> running = qnet::cli::RunningNodes(dir.string());
    absl::StatusOr<config::NetworkConfig> network = StateNetwork(dir);
    const int nodes = network.ok() ? static_cast<int>(network->nodes.size()) : -1;
    const std::string state = running.empty() ? "stopped" : (static_cast<int>(running.size()) == nodes ? "up" : "partly up");
    out.push_back({{"network", StateValue(dir, "name")},
                   {"state", state},
                   {"running", running.size()},
                   {"nodes", nodes},
                   {"state_dir", dir.string()},
                   {"file", StateValue(dir, "file")}});
    rows.push_back({StateValue(dir, "name"), state,
                    absl::StrCat(running.size(), "/", nodes < 0 ? std::string("?") : absl::StrCat(nodes)),
                    dir.string(), StateValue(dir, "file")});
  }
  if (json) {
    std::cout << nlohmann::json{{"state_root", root.string()}, {"networks", out}}.dump() << "\n";
    return 0;
  }
  if (rows.empty()) {
    std::cout << "no networks under " << root.string() << " (start one: qnetctl up NETWORK_FILE)\n";
    return 0;
  }
  std::cout << absl::StrFormat("%-16s %-10s %-8s %s\n", "NETWORK", "STATE", "DAEMONS", "STATE DIR (network file)");
  for (const auto& r : rows) {
    std::cout << absl::StrFormat("%-16s %-10s %-8s %s (%s)\n", r[0], r[1], r[2], r[3], r[4]);
  }
  return 0;
}

int Status(const Args& args, bool json) {
  std::vector<std::string> nodes;
  if (!Flag(args, "--address").empty()) {
    nodes.push_back(Flag(args, "--node"));  // one daemon; StateNodeAddress checks --node
  } else {
    auto dir = StateDir(args);
    if (!dir.ok()) return Fail(std::string(dir.status().message()));
    auto network = StateNetwork(*dir);
    if (!network.ok()) return Fail(std::string(network.status().message()));
    if (std::string one = Flag(args, "--node"); !one.empty()) {
      if (network->FindNode(one) == nullptr) {
        std::vector<std::string> names;
        for (const auto& n : network->nodes) names.push_back(n.name);
        return Fail(absl::StrCat("unknown node '", one, "' (nodes of ", network->name, ": ",
                                 absl::StrJoin(names, ", "), ")"));
      }
      nodes.push_back(one);
    } else {
      for (const auto& n : network->nodes) nodes.push_back(n.name);
    }
  }
  if (!Flag(args, "--address").empty()) {
    if (auto address = StateNodeAddress(args, nodes.front()); !address.ok()) {
      return Fail(std::string(address.status().message()));
    }
  }
  int rc = 0;
  if (json) std::cout << "[";
  bool first = true;
  for (const std::string& node : nodes) {
    absl::StatusOr<qnet::v1::GetStatusResponse> status = absl::UnavailableError("not running");
    if (auto address = StateNodeAddress(args, node); address.ok()) {
      status = qnet::cli::GetStatus(*address);
    } else {
      status = address.status();
    }
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
      std::cout << "           " << LagStatusLine(status->lag()) << "\n";
      std::cout << "           security: " << status->transport_security() << "\n";
      if (!status->metrics_url().empty()) std::cout << "           metrics:  " << status->metrics_url() << "\n";
    } else {
      const char* ca = std::getenv("QNET_CA_CERT");
      const bool plaintext = !Flag(args, "--address").empty() && (ca == nullptr || *ca == '\0');
      std::cout << absl::StrFormat("%-10s DOWN (%s)%s\n", node, status.status().message(),
                                   plaintext ? "; a daemon with TLS needs QNET_CA_CERT, QNET_CLIENT_CERT and "
                                               "QNET_CLIENT_KEY"
                                             : "");
      rc = 1;
    }
    first = false;
  }
  if (json) std::cout << "]\n";
  return rc;
}

int Links(const Args& args, bool json) {
  auto dir = StateDir(args);
  if (!dir.ok()) return Fail(std::string(dir.status().message()));
  auto network = StateNetwork(*dir);
  if (!network.ok()) return Fail(std::string(network.status().message()));
  if (json) std::cout << "[";
  bool first = true;
  for (const auto& link : network->links) {
    bool connected = false;
    if (auto address = NodeAddress(*dir, link.node_a); address.ok()) {
      if (auto status = qnet::cli::GetStatus(*address); status.ok()) {
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

int Routes(const Args& args, bool json) {
  const std::string node = Flag(args, "--node");
  if (node.empty()) return Fail("routes needs --node NODE (whose routing table)");
  auto address = StateNodeAddress(args, node);
  if (!address.ok()) return Fail(std::string(address.status().message()));
  auto stub = qnet::v1::Node::NewStub(security::ClientChannel(*address));
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

}  // namespace

std::vector<Command> NetworkCommands() {
  return {
      {"up",
       {"--time-scale", "--keep-hold", "--qnetd", "--security", "--log-format"},
       R"(Usage: qnetctl up NETWORK_FILE [--time-scale S|auto] [--keep-hold SECONDS] [--qnetd PATH]
                  [--security tls|insecure-local-only] [--log-format text|json]

Starts one qnetd per node of NETWORK_FILE on 127.0.0.1 (free ports), detached,
waits until every daemon serves and its routes reach every node its links
join it to (at most 30 s; a note says which do not), and records where they are in the state
directory (default <state root>/<network>, the state root being
$QNET_STATE_DIR, else $XDG_STATE_HOME/qnet, else ~/.local/state/qnet) so that
later commands, from any directory, can name nodes.

  --time-scale S        simulated seconds per wall-clock second (default 1). The
                        daemons emulate the physics on this scaled clock; when
                        their software cannot keep up, every report says so.
  --time-scale auto     try decades from 1 (up to 1000, down to 0.0001): start
                        the network, drive pairs on every link for 1.5 s, and
                        keep the largest scale at which no daemon fell behind
                        the physics (each try is printed on stderr)
  --keep-hold SECONDS   simulated seconds each KEEP pair stays held for `measure`
                        (default: qnetd's, 10)
  --qnetd PATH          the qnetd binary (default: the one next to qnetctl)
  --security tls        (default) mutual TLS on every daemon port with the
                        network's own CA, made once in <state-dir>/pki (kept
                        across restarts): a certificate per node and one for
                        the operator, which qnetctl uses by itself
  --security insecure-local-only
                        plaintext, no authentication, loopback only: any local
                        process can use the daemons (status says so)
  --log-format json     the daemons log one JSON object per line (default text);
                        `qnetctl logs` merges them either way

Each daemon also serves Prometheus metrics (its URL is printed); the state
directory gets prometheus.yml, a scrape configuration for all of them (with a
monitor certificate, pki/monitor-prometheus, under TLS).
)",
       Up},
      {"ls", {}, R"(Usage: qnetctl ls

The networks started by `up` and not stopped by `down` under the state root
($QNET_STATE_DIR, else $XDG_STATE_HOME/qnet, else ~/.local/state/qnet): name,
up / partly up / stopped (its daemons died without `down`: a crash, a
reboot), daemons running of the nodes in the file, the state directory and
the network file. With several there, other commands pick one with
--network NAME.
)",
       List},
      {"down", {}, R"(Usage: qnetctl down

Stops every daemon of the network (SIGTERM, then SIGKILL after 5 s) and
removes its state directory's records.
)",
       Down},
      {"status", {}, R"(Usage: qnetctl status [--node NODE]

Each node's status (or one node's): process, address, uptime, simulated time,
memory qubits in use, simulated qubits held, and its neighbours. Exits 1 if a
node is down.
)",
       Status},
      {"links", {}, R"(Usage: qnetctl links

The network's links: name, ends, length, heralding scheme, and whether the
two daemons are connected.
)",
       Links},
      {"routes", {}, R"(Usage: qnetctl --node NODE routes

NODE's routing table, computed from the link-state adverts every daemon
floods: for each destination the next hop, the path, its cost (per link
1e-3 - ln((4F-1)/3), F the link's best fidelity) and the best end-to-end
fidelity the path gives by swapping alone. Then the adverts it knows: each
node's working links.
)",
       Routes},
  };
}

}  // namespace qnet::qnetctl
