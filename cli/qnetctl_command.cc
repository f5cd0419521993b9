#include "cli/qnetctl_command.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <system_error>
#include <map>
#include <mutex>
#include <cstdlib>

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "cli/launcher.h"
#include "security/client_endpoints.h"
#include "security/pki.h"
#include "qnet/v1/node_service.grpc.pb.h"

namespace qnet::qnetctl {

namespace fs = std::filesystem;
using v1::EntangleRequest;

namespace {

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

}  // namespace

namespace {
bool quiet = false;
bool waiting_shown = false;  // a rewritten waiting line is on the terminal
bool StderrIsTerminal() {
  static const bool terminal = isatty(STDERR_FILENO) != 0;
  return terminal;
}
}  // namespace

void SetQuiet(bool q) { quiet = q; }
bool Quiet() { return quiet; }

void ShowProgress(size_t done, size_t total, const char* what) {
  if (quiet) return;
  // Called per item: a line at most once a second (and the last one), so a
  // slow stream is never silent long and a fast one does not flood.
  static std::chrono::steady_clock::time_point last{};
  const auto now = std::chrono::steady_clock::now();
  if (done != total && now - last < std::chrono::seconds(1)) return;
  last = now;
  ClearWaiting();
  const bool terminal = StderrIsTerminal();
  std::cerr << (terminal ? "\r" : "") << done << "/" << total << " " << what;
  if (!terminal || done == total) std::cerr << "\n";
}

void ShowWaiting(const std::string& text) {
  if (quiet) return;
  if (StderrIsTerminal()) {
    std::cerr << "\r\x1b[K" << text << std::flush;  // erase the line's rest
    waiting_shown = true;
  } else {
    std::cerr << text << std::endl;
  }
}

void ClearWaiting() {
  if (!waiting_shown) return;
  std::cerr << "\r\x1b[K" << std::flush;
  waiting_shown = false;
}

std::string DescribeWait(const v1::EntangleProgress& p) {
  std::string text = absl::StrFormat("%d/%d pairs after %.3g simulated s; waiting %.0f s for %s", p.pairs_delivered(),
                                     p.pairs_requested(), p.elapsed_s(), p.wall_since_last_pair_s(), p.waiting_for());
  if (p.memory_qubits() > 0 && p.memory_qubits_in_use() >= p.memory_qubits() && p.next_free_wall_s() >= 0) {
    absl::StrAppend(&text, absl::StrFormat("; the first is freed in ~%.1f s", p.next_free_wall_s()));
  }
  return text;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "qnetctl: error: %s\n", message.c_str());
  return 1;
}

std::string Flag(const Args& args, const std::string& name, const std::string& fallback) {
  auto it = args.flags.find(name);
  return it == args.flags.end() ? fallback : it->second;
}

std::vector<fs::path> NetworksUnder(const fs::path& root) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (fs::exists(entry.path() / "network")) found.push_back(entry.path());
  }
  std::sort(found.begin(), found.end());
  return found;
}

absl::StatusOr<fs::path> StateDir(const Args& args) {
  if (!Flag(args, "--address").empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        args.command, " needs a network's state directory (the network file, or several daemons); --address reaches "
        "one daemon, for status, routes, entangle (not --sweep), measure, teleport, qkd and key"));
  }
  if (std::string dir = Flag(args, "--state-dir"); !dir.empty()) {
    if (!fs::exists(fs::path(dir) / "network")) {
      return absl::NotFoundError(absl::StrCat("no network state in ", dir, " (is the network up? qnetctl up FILE)"));
    }
    return fs::path(dir);
  }
  const fs::path root = qnet::cli::DefaultStateRoot();
  const std::vector<fs::path> found = NetworksUnder(root);
  std::vector<std::string> names;
  for (const fs::path& p : found) names.push_back(p.filename().string());
  const std::string listed = names.empty() ? "none" : absl::StrJoin(names, ", ");
  if (std::string name = Flag(args, "--network"); !name.empty()) {
    if (name.find('/') != std::string::npos || name == "." || name == "..") {
      return absl::InvalidArgumentError(absl::StrCat("--network takes a network's name, got '", name,
                                                     "' (a directory goes to --state-dir)"));
    }
    if (!fs::exists(root / name / "network")) {
      return absl::NotFoundError(absl::StrCat("no network '", name, "' under ", root.string(),
                                              " (there: ", listed, "; see qnetctl ls)"));
    }
    return root / name;
  }
  if (found.empty()) {
    return absl::NotFoundError(absl::StrCat("no network under ", root.string(),
                                            " (start one: qnetctl up NETWORK_FILE; or give --state-dir DIR)"));
  }
  if (found.size() > 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("several networks under ", root.string(), " (", listed,
                     "): choose one with --network NAME (see qnetctl ls)"));
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

absl::StatusOr<std::optional<ClientCertificate>> ClientCertificateFiles(const fs::path& dir) {
  const fs::path pki = dir / "pki";
  if (!fs::exists(pki / "ca.crt")) return std::nullopt;  // an insecure network (qnetctl up --insecure) has none
  ClientCertificate files;
  files.ca_file = (pki / "ca.crt").string();
  if (const char* cert = std::getenv("QNET_CLIENT_CERT"); cert != nullptr && *cert != '\0') {
    const char* key = std::getenv("QNET_CLIENT_KEY");
    if (key == nullptr || *key == '\0') {
      return absl::InvalidArgumentError("QNET_CLIENT_CERT is set but QNET_CLIENT_KEY is not");
    }
    files.cert_file = cert;
    files.key_file = key;
    return files;
  }
  absl::StatusOr<std::string> network = security::PkiNetwork(pki);
  if (!network.ok()) return network.status();
  const std::string stem = security::CertificateStem(security::DefaultOperator(*network));
  files.cert_file = (pki / (stem + ".crt")).string();
  files.key_file = (pki / (stem + ".key")).string();
  return files;
}

absl::StatusOr<std::shared_ptr<const security::TlsMaterial>> ClientTls(const fs::path& dir) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const security::TlsMaterial>> loaded;
  std::lock_guard lock(mu);
  if (auto it = loaded.find(dir.string()); it != loaded.end()) return it->second;
  absl::StatusOr<std::optional<ClientCertificate>> files = ClientCertificateFiles(dir);
  if (!files.ok()) return files.status();
  std::shared_ptr<const security::TlsMaterial> tls;
  if (files->has_value()) {
    absl::StatusOr<security::TlsMaterial> material =
        security::LoadTlsFiles((*files)->ca_file, (*files)->cert_file, (*files)->key_file);
    if (!material.ok()) return material.status();
    tls = std::make_shared<const security::TlsMaterial>(*std::move(material));
  }
  loaded[dir.string()] = tls;
  return tls;
}

absl::StatusOr<std::string> NodeAddress(const fs::path& dir, const std::string& node) {
  fs::path path = dir / (node + ".address");
  if (!fs::exists(path)) {
    // A misspelt name is not a stopped node: say which names there are.
    if (absl::StatusOr<config::NetworkConfig> network = StateNetwork(dir);
        network.ok() && network->FindNode(node) == nullptr) {
      std::vector<std::string> names;
      for (const auto& n : network->nodes) names.push_back(n.name);
      return absl::NotFoundError(absl::StrCat("no node '", node, "' in network ", network->name,
                                              " (nodes: ", absl::StrJoin(names, ", "), ")"));
    }
    return absl::NotFoundError(absl::StrCat("node '", node, "' is not running in ", dir.string()));
  }
  // The ready file's first line (the ports of other endpoints follow).
  const std::string text = ReadFile(path);
  std::string address = Trim(text.substr(0, text.find('\n')));
  absl::StatusOr<std::shared_ptr<const security::TlsMaterial>> tls = ClientTls(dir);
  if (!tls.ok()) return tls.status();
  security::RegisterEndpoint(address, {.node = node, .tls = *tls});
  return address;
}

absl::StatusOr<std::string> AddressedNode(const Args& args, const std::string& node) {
  const std::string address = Flag(args, "--address");
  if (Flag(args, "--node").empty()) {
    return absl::InvalidArgumentError("--address needs --node NODE: the node the daemon there must be");
  }
  if (node != Flag(args, "--node")) {
    return absl::FailedPreconditionError(absl::StrCat(args.command, " also talks to ", node,
                                                      ", and --address reaches one daemon (", Flag(args, "--node"),
                                                      "'s): use the network's state (--network or --state-dir)"));
  }
  if (address.rfind(':') == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--address wants HOST:PORT, got '", address, "'"));
  }
  // Mutual TLS with files from the environment; plaintext without a CA (a
  // daemon started with --insecure-local-only).
  std::shared_ptr<const security::TlsMaterial> tls;
  const char* ca = std::getenv("QNET_CA_CERT");
  if (ca != nullptr && *ca != '\0') {
    const char* cert = std::getenv("QNET_CLIENT_CERT");
    const char* key = std::getenv("QNET_CLIENT_KEY");
    if (cert == nullptr || *cert == '\0' || key == nullptr || *key == '\0') {
      return absl::InvalidArgumentError(
          "QNET_CA_CERT is set but QNET_CLIENT_CERT and QNET_CLIENT_KEY (an operator or app certificate) are not");
    }
    absl::StatusOr<security::TlsMaterial> material = security::LoadTlsFiles(ca, cert, key);
    if (!material.ok()) return material.status();
    tls = std::make_shared<const security::TlsMaterial>(*std::move(material));
  }
  security::RegisterEndpoint(address, {.node = node, .tls = tls});
  return address;
}

absl::StatusOr<std::string> StateNodeAddress(const Args& args, const std::string& node) {
  if (!Flag(args, "--address").empty()) return AddressedNode(args, node);
  auto dir = StateDir(args);
  if (!dir.ok()) return dir.status();
  return NodeAddress(*dir, node);
}

namespace {

// Protobuf's JSON mapping writes 64-bit integers as strings (for JavaScript's
// 53-bit numbers); qnetctl's readers (jq, Python, scripts) want numbers, so
// they are turned back, field by field as the message's descriptor says.
void Int64FieldsAsNumbers(const google::protobuf::Descriptor& type, nlohmann::ordered_json& object) {
  using google::protobuf::FieldDescriptor;
  auto number = [](const FieldDescriptor& field, nlohmann::ordered_json& value) {
    if (!value.is_string()) return;
    const std::string text = value.get<std::string>();
    if (field.cpp_type() == FieldDescriptor::CPPTYPE_INT64) {
      int64_t v = 0;
      if (absl::SimpleAtoi(text, &v)) value = v;
    } else if (field.cpp_type() == FieldDescriptor::CPPTYPE_UINT64) {
      uint64_t v = 0;
      if (absl::SimpleAtoi(text, &v)) value = v;
    }
  };
  for (int i = 0; i < type.field_count(); ++i) {
    const FieldDescriptor& field = *type.field(i);
    auto it = object.find(field.name());
    if (it == object.end()) continue;
    if (field.is_map()) {
      const FieldDescriptor& value_field = *field.message_type()->map_value();
      for (auto& [key, value] : it->items()) {
        if (value_field.message_type() != nullptr) {
          Int64FieldsAsNumbers(*value_field.message_type(), value);
        } else {
          number(value_field, value);
        }
      }
      continue;
    }
    const google::protobuf::Descriptor* message = field.message_type();
    // Well-known types (Timestamp, Duration, wrappers) have JSON forms of their own.
    if (message != nullptr && message->file()->package() == "google.protobuf") continue;
    auto apply = [&](nlohmann::ordered_json& value) {
      if (message != nullptr) {
        if (value.is_object()) Int64FieldsAsNumbers(*message, value);
      } else {
        number(field, value);
      }
    };
    if (field.is_repeated() && it->is_array()) {
      for (auto& element : *it) apply(element);
    } else {
      apply(*it);
    }
  }
}

}  // namespace

std::string Json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  nlohmann::ordered_json parsed = nlohmann::ordered_json::parse(out, nullptr, false);
  if (!parsed.is_object()) return out;
  Int64FieldsAsNumbers(*m.GetDescriptor(), parsed);
  return parsed.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

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

namespace {
std::string Seconds(double s) {
  if (s >= 1.0) return absl::StrFormat("%.3g s", s);
  if (s >= 1e-3) return absl::StrFormat("%.3g ms", s * 1e3);
  if (s >= 1e-6) return absl::StrFormat("%.3g us", s * 1e6);
  return absl::StrFormat("%.3g ns", s * 1e9);
}
}  // namespace

std::string LagWarning(const v1::SoftwareLag& lag) {
  if (!lag.behind()) return "";
  return absl::StrFormat(
      "  warning: the software fell behind the physics by up to %s (simulated) for %.0f%% of this request (at %s):\n"
      "           rates are a lower bound of what the network file gives; qnetsim on the same file gives the\n"
      "           network's own figures, and a smaller --time-scale (qnetctl up --time-scale auto) may keep up\n",
      Seconds(lag.max_lag_s()), 100.0 * lag.behind_fraction(), absl::StrJoin(lag.nodes_behind(), ", "));
}

std::string LagStatusLine(const v1::LagStatus& lag) {
  if (lag.events() == 0) return "lag: no physics events in the last minute";
  return absl::StrFormat("lag p50 %s  p99 %s  max %s (simulated; bound %s), behind %.1f%% of the last %.0f s%s",
                         Seconds(lag.p50_s()), Seconds(lag.p99_s()), Seconds(lag.max_s()), Seconds(lag.bound_s()),
                         100.0 * lag.behind_fraction(), lag.window_s(),
                         lag.behind() ? ": FELL BEHIND the physics" : "");
}

}  // namespace qnet::qnetctl
