// What the KME multi-process tests use to act as applications: Debian's
// curl with an SAE's certificate against a KME's ETSI GS QKD 014 API, and
// the operator's view of a node's key pools (Node.GetKeyPools).
#pragma once

#include <openssl/evp.h>

#include <chrono>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "security/client_endpoints.h"
#include "security/pki.h"
#include "tests/common/run_command.h"
#include "qnet/v1/node_service.grpc.pb.h"

namespace qnet::kme::testing {

struct SaeCredentials {
  std::string cert, key, ca;  // files; cert and key empty: no client certificate

  static SaeCredentials Of(const std::string& pki_dir, const std::string& network, const std::string& node,
                           const std::string& name) {
    const security::Identity app{.network = network, .role = security::Role::kApp, .node = node, .name = name};
    const std::string stem = absl::StrCat(pki_dir, "/", security::CertificateStem(app));
    return {.cert = stem + ".crt", .key = stem + ".key", .ca = absl::StrCat(pki_dir, "/ca.crt")};
  }
};

struct HttpReply {
  int code = 0;      // 0: curl could not get an answer (message in body)
  std::string body;
};

// GET `url`, or POST `json_body` when it is not empty. Bounded in time.
inline HttpReply Curl(const SaeCredentials& sae, const std::string& url, const std::string& json_body = "") {
  std::string command = absl::StrCat("/usr/bin/curl -sS --max-time 30 --cacert '", sae.ca, "'");
  if (!sae.cert.empty()) absl::StrAppend(&command, " --cert '", sae.cert, "' --key '", sae.key, "'");
  if (!json_body.empty()) {
    absl::StrAppend(&command, " -H 'Content-Type: application/json' --data-binary '", json_body, "'");
  }
  absl::StrAppend(&command, " -w '\\n%{http_code}' '", url, "' 2>&1");
  int exit_code = -1;
  std::string out = qnet::testing::RunCommand(command, &exit_code);
  HttpReply reply;
  const size_t last = out.rfind('\n');
  if (exit_code != 0 || last == std::string::npos) {
    reply.body = absl::StrCat("curl exit ", exit_code, ": ", out);
    return reply;
  }
  reply.code = std::atoi(out.c_str() + last + 1);
  reply.body = out.substr(0, last);
  return reply;
}

inline std::string Base64Decode(const std::string& text) {
  std::string out(text.size() / 4 * 3 + 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return "";
  size_t size = static_cast<size_t>(n);
  for (size_t i = text.size(); i > 0 && text[i - 1] == '=' && size > 0; --i) --size;  // padding
  out.resize(size);
  return out;
}

// Node.GetKeyPools with the operator's credentials the launcher registered.
inline absl::StatusOr<v1::GetKeyPoolsResponse> KeyPools(const std::string& address) {
  auto stub = v1::Node::NewStub(security::ClientChannel(address));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::GetKeyPoolsResponse pools;
  grpc::Status s = stub->GetKeyPools(&context, v1::GetKeyPoolsRequest(), &pools);
  if (!s.ok()) return absl::UnavailableError(s.error_message());
  return pools;
}

}  // namespace qnet::kme::testing
