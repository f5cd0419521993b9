#include "security/grpc_tls.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/auth_context.h>

#include "absl/strings/str_cat.h"

namespace qnet::security {

std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const TlsMaterial& tls) {
  grpc::SslServerCredentialsOptions options(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = tls.ca_pem;
  options.pem_key_cert_pairs.push_back({tls.key_pem, tls.cert_pem});
  return grpc::SslServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const TlsMaterial& tls) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = tls.ca_pem;
  options.pem_private_key = tls.key_pem;
  options.pem_cert_chain = tls.cert_pem;
  return grpc::SslCredentials(options);
}

std::shared_ptr<grpc::Channel> OpenChannel(const std::string& address, const std::string& node, const TlsMaterial* tls,
                                           grpc::ChannelArguments args) {
  if (tls == nullptr) return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  // The node's name is the TLS target: its certificate carries it as a DNS
  // name, so reaching another node (or an impostor) at this address fails
  // the handshake.
  args.SetSslTargetNameOverride(node);
  return grpc::CreateCustomChannel(address, ChannelCredentials(*tls), args);
}

absl::StatusOr<Identity> CallerIdentity(const grpc::ServerContextBase& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) {
    return absl::UnauthenticatedError("the caller presented no certificate");
  }
  std::vector<grpc::string_ref> pem = auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pem.empty()) return absl::UnauthenticatedError("the caller's certificate is not available");
  return CachedIdentityOfCertificate(absl::string_view(pem.front().data(), pem.front().size()));
}

std::string CallerAddress(const grpc::ServerContextBase& context) { return context.peer(); }

}  // namespace qnet::security
