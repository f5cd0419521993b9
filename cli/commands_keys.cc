// qnetctl's key management commands: keys status, keys pool, keys sae. They
// show what each node's key manager holds and where its applications (SAEs)
// get keys: the ETSI GS QKD 014 API (KME) URL and the SAE certificates.
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/qnetctl_command.h"
#include "security/client_endpoints.h"
#include "security/pki.h"
#include "qnet/v1/node_service.grpc.pb.h"

namespace qnet::qnetctl {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<v1::GetKeyPoolsResponse> KeyPools(const fs::path& dir, const std::string& node) {
  absl::StatusOr<std::string> address = NodeAddress(dir, node);
  if (!address.ok()) return address.status();
  auto stub = v1::Node::NewStub(security::ClientChannel(*address));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::GetKeyPoolsResponse pools;
  grpc::Status s = stub->GetKeyPools(&context, v1::GetKeyPoolsRequest(), &pools);
  if (!s.ok()) return absl::UnavailableError(absl::StrCat(node, ": ", s.error_message()));
  return pools;
}

// The nodes to ask: --node, else every node of the running network.
absl::StatusOr<std::vector<std::string>> Nodes(const Args& args, const fs::path& dir) {
  if (std::string node = Flag(args, "--node"); !node.empty()) return std::vector<std::string>{node};
  absl::StatusOr<config::NetworkConfig> network = StateNetwork(dir);
  if (!network.ok()) return network.status();
  std::vector<std::string> out;
  for (const config::NodeConfig& n : network->nodes) out.push_back(n.name);
  return out;
}

void PrintPool(const v1::KeyPoolState& p) {
  std::cout << absl::StrFormat("    -> %-10s %9d bits (low %d, high %d)  %-11s %d blocks, %d failed sessions",
                               p.peer(), p.available_bits(), p.low_watermark_bits(), p.high_watermark_bits(),
                               p.state(), p.blocks_committed(), p.sessions_failed());
  if (p.refill_bits_per_s() > 0) std::cout << absl::StrFormat(", refill %.0f bit/s", p.refill_bits_per_s());
  if (p.state() == "backing off") std::cout << absl::StrFormat(", next session in %.1f s", p.retry_in_s());
  std::cout << "\n";
  if (!p.last_error().empty()) std::cout << "       last failure: " << p.last_error() << "\n";
}

int KeysStatus(const Args& args, bool json) {
  auto dir = StateDir(args);
  if (!dir.ok()) return Fail(std::string(dir.status().message()));
  auto nodes = Nodes(args, *dir);
  if (!nodes.ok()) return Fail(std::string(nodes.status().message()));
  int failures = 0;
  if (json) std::cout << "[";
  bool first = true;
  for (const std::string& node : *nodes) {
    absl::StatusOr<v1::GetKeyPoolsResponse> pools = KeyPools(*dir, node);
    if (json) {
      std::cout << (first ? "" : ",") << "{\"node\":\"" << node << "\",";
      if (pools.ok()) {
        std::string body = Json(*pools);
        std::cout << "\"key_pools\":" << body << "}";
      } else {
        std::cout << "\"error\":\"" << pools.status().message() << "\"}";
      }
      first = false;
    } else if (!pools.ok()) {
      std::cout << absl::StrFormat("%-10s DOWN (%s)\n", node, pools.status().message());
    } else if (pools->kme_url().empty() && pools->pools_size() == 0) {
      std::cout << absl::StrFormat("%-10s no key manager (%s)\n", node, pools->disabled_reason());
    } else {
      std::cout << absl::StrFormat("%-10s KME %s  store %s\n", node,
                                   pools->kme_url().empty() ? "(off)" : pools->kme_url(), pools->store_path());
      std::cout << absl::StrFormat("           keys reserved for slave SAEs: %d, delivered: %d, blocks pending: %d\n",
                                   pools->reserved_keys(), pools->delivered_keys(), pools->pending_blocks());
      for (const v1::KeyPoolState& p : pools->pools()) PrintPool(p);
    }
    if (!pools.ok()) ++failures;
  }
  if (json) std::cout << "]\n";
  return failures == 0 ? 0 : 1;
}

int KeysPool(const Args& args, bool json) {
  const std::string node = Flag(args, "--node");
  const std::string peer = Flag(args, "--peer");
  if (node.empty() || peer.empty()) return Fail("keys pool needs --node NODE and --peer PEER (see --help)");
  auto dir = StateDir(args);
  if (!dir.ok()) return Fail(std::string(dir.status().message()));
  absl::StatusOr<v1::GetKeyPoolsResponse> pools = KeyPools(*dir, node);
  if (!pools.ok()) return Fail(std::string(pools.status().message()));
  for (const v1::KeyPoolState& p : pools->pools()) {
    if (p.peer() != peer) continue;
    if (json) {
      std::cout << Json(p) << "\n";
    } else {
      std::cout << "key pool " << node << " -> " << peer << " (" << p.protocol() << ")\n";
      PrintPool(p);
    }
    return 0;
  }
  return Fail(absl::StrCat("node '", node, "' keeps no key pool with '", peer,
                           "' (pools come from the network file's key_management.pools)"));
}

int KeysSae(const Args& args, bool json) {
  auto dir = StateDir(args);
  if (!dir.ok()) return Fail(std::string(dir.status().message()));
  absl::StatusOr<config::NetworkConfig> network = StateNetwork(*dir);
  if (!network.ok()) return Fail(std::string(network.status().message()));
  const std::string only = Flag(args, "--name");
  const fs::path pki = *dir / "pki";
  if (json) std::cout << "[";
  bool first = true;
  bool found = false;
  for (const config::SaeConfig& sae : network->key_management.saes) {
    if (!only.empty() && sae.name != only) continue;
    found = true;
    const security::Identity app{.network = network->name, .role = security::Role::kApp, .node = sae.node,
                                 .name = sae.name};
    const std::string stem = (pki / security::CertificateStem(app)).string();
    absl::StatusOr<v1::GetKeyPoolsResponse> pools = KeyPools(*dir, sae.node);
    const std::string url = pools.ok() ? pools->kme_url() : "";
    if (json) {
      std::cout << (first ? "" : ",") << absl::StrFormat(
          "{\"sae\":\"%s\",\"node\":\"%s\",\"kme_url\":\"%s\",\"cert\":\"%s.crt\",\"key\":\"%s.key\",\"ca\":\"%s\"}",
          sae.name, sae.node, url, stem, stem, (pki / "ca.crt").string());
      first = false;
      continue;
    }
    std::cout << absl::StrFormat("%-12s at %-10s KME %s\n", sae.name, sae.node, url.empty() ? "(not running)" : url);
    std::cout << absl::StrFormat("             --cert %s.crt --key %s.key --cacert %s\n", stem, stem,
                                 (pki / "ca.crt").string());
  }
  if (json) std::cout << "]\n";
  if (!found) {
    return Fail(only.empty() ? "the network file names no SAEs (key_management.saes)"
                             : absl::StrCat("no SAE '", only, "' in the network file"));
  }
  return 0;
}

int KeysUrl(const Args& args, bool json) {
  const std::string node = Flag(args, "--node");
  if (node.empty()) return Fail("keys url needs --node NODE");
  auto dir = StateDir(args);
  if (!dir.ok()) return Fail(std::string(dir.status().message()));
  absl::StatusOr<v1::GetKeyPoolsResponse> pools = KeyPools(*dir, node);
  if (!pools.ok()) return Fail(std::string(pools.status().message()));
  if (pools->kme_url().empty()) return Fail(absl::StrCat(node, " runs no KME: ", pools->disabled_reason()));
  if (json) {
    std::cout << "{\"node\":\"" << node << "\",\"kme_url\":\"" << pools->kme_url() << "\"}\n";
  } else {
    std::cout << pools->kme_url() << "\n";
  }
  return 0;
}

int Keys(const Args& args, bool json) {
  if (args.positional.empty()) {
    return Fail("keys needs a subcommand: status, pool, sae or url (see qnetctl keys --help)");
  }
  const std::string& sub = args.positional[0];
  if (sub == "status") return KeysStatus(args, json);
  if (sub == "pool") return KeysPool(args, json);
  if (sub == "sae") return KeysSae(args, json);
  if (sub == "url") return KeysUrl(args, json);
  return Fail(absl::StrCat("unknown keys subcommand '", sub, "': use status, pool, sae or url"));
}

}  // namespace

std::vector<Command> KeyCommands() {
  return {
      {"keys",
       {"--peer", "--name"},
       R"(Usage: qnetctl keys status [--node NODE]
       qnetctl keys pool --node NODE --peer PEER
       qnetctl keys sae [--name SAE]
       qnetctl keys url --node NODE

The key management entities (KMEs) of the running network: the pools of QKD
key each node keeps for applications, as the network file's key_management
section asks, and where applications (SAEs) fetch keys over the ETSI GS QKD
014 REST API (HTTPS, mutual TLS with the SAE's certificate).

  status   every node's (or NODE's) KME URL, key store, and per pool: key
           bits available, watermarks, state (full, refilling, backing off),
           blocks committed, failed sessions and the last failure's reason
  pool     one pool, NODE -> PEER
  sae      each SAE: its node, its KME's URL and the certificate, key and CA
           files to use, e.g.
             curl --cert CERT --key KEY --cacert CA \
               'https://127.0.0.1:PORT/api/v1/keys/SLAVE_SAE/enc_keys?number=2&size=256'
  url      NODE's KME URL alone (for scripts)
)",
       Keys},
  };
}

}  // namespace qnet::qnetctl
