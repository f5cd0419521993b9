#include "daemon/certificate_advert_authenticator.h"

namespace qnet::daemon {
namespace {
absl::string_view View(std::string_view s) { return absl::string_view(s.data(), s.size()); }
}  // namespace

absl::StatusOr<std::shared_ptr<CertificateAdvertAuthenticator>> CertificateAdvertAuthenticator::Create(
    const security::TlsMaterial& tls, const std::string& network) {
  auto signer = security::NodeSigner::Create(tls);
  if (!signer.ok()) return signer.status();
  auto verifier = security::NodeSignatureVerifier::Create(tls.ca_pem, network);
  if (!verifier.ok()) return verifier.status();
  auto out = std::make_shared<CertificateAdvertAuthenticator>();
  out->signer_ = *std::move(signer);
  out->verifier_ = *std::move(verifier);
  return out;
}

absl::StatusOr<std::string> CertificateAdvertAuthenticator::Sign(std::string_view advert_bytes) {
  return signer_->Sign(View(advert_bytes));
}

bool CertificateAdvertAuthenticator::Verify(std::string_view origin, std::string_view advert_bytes,
                                            std::string_view signature) {
  return verifier_->Verify(View(origin), View(advert_bytes), View(signature)).ok();
}

}  // namespace qnet::daemon
