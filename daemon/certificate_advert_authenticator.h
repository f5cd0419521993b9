// Routing adverts signed with the node's certificate key and verified
// against the network's CA (security/node_signature.h): the daemon's
// network::AdvertAuthenticator. A relayed advert is accepted only with its
// origin's own signature, so neither a relaying neighbour nor a node posing
// as another can alter or forge one.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "network/advert_authenticator.h"
#include "security/node_signature.h"
#include "security/pki.h"

namespace qnet::daemon {

class CertificateAdvertAuthenticator final : public network::AdvertAuthenticator {
 public:
  // The node's TLS material (its certificate, key and the network's CA).
  static absl::StatusOr<std::shared_ptr<CertificateAdvertAuthenticator>> Create(const security::TlsMaterial& tls,
                                                                                const std::string& network);

  absl::StatusOr<std::string> Sign(std::string_view advert_bytes) override;
  bool Verify(std::string_view origin, std::string_view advert_bytes, std::string_view signature) override;

 private:
  std::unique_ptr<security::NodeSigner> signer_;
  std::unique_ptr<security::NodeSignatureVerifier> verifier_;
};

}  // namespace qnet::daemon
