// A qnet network's own public-key infrastructure: one certificate authority
// per network and one certificate per node and client, made with OpenSSL.
// The daemons and clients present these for mutual TLS on every gRPC port
// (security/grpc_tls.h); the qnet identity (security/identity.h) is a URI in
// each certificate's subjectAltName, and a node's certificate also carries
// its name as a DNS name so a client can check it reached the node it meant.
//
// A PKI directory holds ca.crt, ca.key and <stem>.crt / <stem>.key per
// certificate (CertificateStem). Private keys are written 0600 and the
// directory 0700. Keys are P-256 from OpenSSL's CSPRNG: unlike the simulated
// physics these are real secrets, never seeded.
#pragma once

#include <filesystem>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include "security/identity.h"

namespace qnet::security {

// PEM text a TLS endpoint needs: the network's CA, its own certificate and key.
struct TlsMaterial {
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
};

// "node-alice", "operator-ops", "app-alice-vpn1".
std::string CertificateStem(const Identity& identity);
// The operator certificate qnetctl uses unless told otherwise.
Identity DefaultOperator(const std::string& network);
// The monitor certificate `qnetctl up` issues for the Prometheus it configures.
Identity DefaultMonitor(const std::string& network);

// Makes DIR's CA for `network` if there is none (if there is, it must be
// that network's), then a certificate for every node in `nodes` and for the
// default operator, each only if it is missing: re-running keeps existing
// certificates, so a restarted network keeps its identities.
absl::Status InitNetworkPki(const std::filesystem::path& dir, const std::string& network,
                            const std::vector<std::string>& nodes);

// Issues (or re-issues) one certificate signed by DIR's CA; the identity's
// network must be the CA's. Returns the path of the new certificate.
absl::StatusOr<std::filesystem::path> IssueCertificate(const std::filesystem::path& dir, const Identity& identity);

// The network whose CA is in DIR (NotFound if DIR has none).
absl::StatusOr<std::string> PkiNetwork(const std::filesystem::path& dir);

// DIR/ca.crt with the identity's certificate and key.
absl::StatusOr<TlsMaterial> LoadTls(const std::filesystem::path& dir, const Identity& identity);
// Three PEM files; errors name the file.
absl::StatusOr<TlsMaterial> LoadTlsFiles(const std::filesystem::path& ca, const std::filesystem::path& cert,
                                         const std::filesystem::path& key);

// The qnet identity a PEM certificate names (its urn:qnet: URI SAN).
absl::StatusOr<Identity> IdentityOfCertificate(absl::string_view pem);
// The same, remembered by the certificate's bytes: for callers that see the
// same few certificates again and again (every gRPC call's TLS peer). Parsing
// a PEM certificate costs tens of microseconds in OpenSSL 3's decoders
// (BENCHMARKS.md); the answer is a function of the bytes alone. Thread-safe;
// holds at most kMaxCachedIdentities certificates, then starts over.
inline constexpr size_t kMaxCachedIdentities = 1024;
absl::StatusOr<Identity> CachedIdentityOfCertificate(absl::string_view pem);

}  // namespace qnet::security
