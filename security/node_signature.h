// Signatures by a node's own certificate key, for what a node says that
// others relay (routing adverts): a neighbour that forwards an advert can
// vouch that it came over an authenticated stream, but not that its origin
// wrote it. A signature is self-contained: the signer's certificate (DER)
// and an ECDSA-SHA256 signature, so any node of the network verifies it
// against the network's CA alone.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "security/pki.h"

namespace qnet::security {

class NodeSigner {
 public:
  // The node's certificate and key (its TLS material).
  static absl::StatusOr<std::unique_ptr<NodeSigner>> Create(const TlsMaterial& tls);
  ~NodeSigner();
  std::string Sign(absl::string_view message) const;

 private:
  NodeSigner() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class NodeSignatureVerifier {
 public:
  // Trusts certificates issued by `ca_pem` for nodes of `network`.
  static absl::StatusOr<std::unique_ptr<NodeSignatureVerifier>> Create(const std::string& ca_pem,
                                                                       const std::string& network);
  ~NodeSignatureVerifier();
  // Ok when `signature` is node `node`'s over `message`; PermissionDenied
  // naming what is wrong otherwise. Verified certificates are cached.
  absl::Status Verify(absl::string_view node, absl::string_view message, absl::string_view signature) const;

 private:
  NodeSignatureVerifier() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qnet::security
