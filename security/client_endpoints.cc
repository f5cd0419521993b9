#include "security/client_endpoints.h"

#include <map>
#include <mutex>

#include "security/grpc_tls.h"

namespace qnet::security {
namespace {

struct Registry {
  std::mutex mu;
  std::map<std::string, ClientEndpoint> endpoints;
};

Registry& TheRegistry() {
  static Registry* registry = new Registry();  // never destroyed: used from any thread until exit
  return *registry;
}

}  // namespace

void RegisterEndpoint(const std::string& address, ClientEndpoint endpoint) {
  Registry& r = TheRegistry();
  std::lock_guard lock(r.mu);
  r.endpoints[address] = std::move(endpoint);
}

void ForgetEndpoint(const std::string& address) {
  Registry& r = TheRegistry();
  std::lock_guard lock(r.mu);
  r.endpoints.erase(address);
}

std::optional<ClientEndpoint> FindEndpoint(const std::string& address) {
  Registry& r = TheRegistry();
  std::lock_guard lock(r.mu);
  auto it = r.endpoints.find(address);
  if (it == r.endpoints.end()) return std::nullopt;
  return it->second;
}

std::shared_ptr<grpc::Channel> ClientChannel(const std::string& address, grpc::ChannelArguments args) {
  std::optional<ClientEndpoint> endpoint = FindEndpoint(address);
  if (!endpoint.has_value()) return OpenChannel(address, "", nullptr, std::move(args));
  return OpenChannel(address, endpoint->node, endpoint->tls.get(), std::move(args));
}

}  // namespace qnet::security
