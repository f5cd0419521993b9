// How this process's clients reach daemons: for each daemon address, the
// node it must be and the credentials to present (a network's operator or
// app certificate). qnetctl registers every daemon of the state directory's
// network, the launcher the daemons it starts; client code then opens
// channels by address alone (ClientChannel) and gets mutual TLS to the right
// node, or plaintext for an address nobody registered (daemons started with
// --insecure-local-only). Thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/support/channel_arguments.h>

#include "security/pki.h"

namespace qnet::security {

struct ClientEndpoint {
  std::string node;
  std::shared_ptr<const TlsMaterial> tls;  // null: plaintext
};

void RegisterEndpoint(const std::string& address, ClientEndpoint endpoint);
void ForgetEndpoint(const std::string& address);
std::optional<ClientEndpoint> FindEndpoint(const std::string& address);

// A channel to the daemon at `address` as registered (plaintext if not).
std::shared_ptr<grpc::Channel> ClientChannel(const std::string& address, grpc::ChannelArguments args = {});

}  // namespace qnet::security
