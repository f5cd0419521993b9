// Mutual TLS for qnet's gRPC ports and channels, from a network's PKI
// (security/pki.h). Servers require and verify a client certificate from the
// network's CA; clients verify the server's certificate against the same CA
// and against the node name they meant to reach (the TLS target name), so a
// daemon is reached only as the node it is. Who the caller is comes from its
// certificate (CallerIdentity); what it may do is the daemon's policy.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/status/statusor.h"
#include "security/identity.h"
#include "security/pki.h"

namespace qnet::security {

// Requires a client certificate signed by the network's CA on every connection.
std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const TlsMaterial& tls);
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const TlsMaterial& tls);

// A channel to node `node` at `address`. With TLS (`tls` not null) the
// server must present a certificate of the network's CA naming `node`.
// Without, plaintext (daemons run with --insecure-local-only).
std::shared_ptr<grpc::Channel> OpenChannel(const std::string& address, const std::string& node, const TlsMaterial* tls,
                                           grpc::ChannelArguments args = {});

// The identity in the caller's verified certificate. Unauthenticated when
// the connection has none (plaintext); PermissionDenied when the
// certificate names no qnet identity.
absl::StatusOr<Identity> CallerIdentity(const grpc::ServerContextBase& context);

// The caller's address (for logs and refusals): "ipv4:127.0.0.1:4321".
std::string CallerAddress(const grpc::ServerContextBase& context);

}  // namespace qnet::security
