#include "daemon/access_policy.h"

#include <array>

#include "absl/strings/str_cat.h"
#include "security/grpc_tls.h"

namespace qnet::daemon {
namespace {

// What an `app` certificate may call on its own node: its entanglement,
// teleportation, GHZ states, circuits it coordinates and keys, and the
// node's status. Routing tables, the
// eavesdropper and other nodes are the operator's.
constexpr std::array<absl::string_view, 10> kAppMethods = {"GetStatus", "Entangle", "GetOutcomes",
                                                           "MeasureQubit", "Teleport", "Ghz", "RunCircuit",
                                                           "Qkd", "GetKey", "GetKeyPools"};

}  // namespace

AccessPolicy::AccessPolicy(const DaemonTopology& topology, bool tls, const Logger& log)
    : topology_(topology), nodes_(topology.nodes.begin(), topology.nodes.end()), tls_(tls), log_(log) {}

absl::Status AccessPolicy::Refuse(const grpc::ServerContextBase& context, absl::Status why) const {
  QNET_LOG(log_, kWarn, "refused a call from %s: %s", security::CallerAddress(context), why.message());
  return why;
}

absl::StatusOr<security::Identity> AccessPolicy::Caller(const grpc::ServerContextBase& context,
                                                        absl::string_view what) const {
  absl::StatusOr<security::Identity> caller = security::CallerIdentity(context);
  if (!caller.ok()) {
    return Refuse(context, absl::Status(caller.status().code(), absl::StrCat("node '", topology_.self, "' refuses ",
                                                                             what, ": ", caller.status().message())));
  }
  if (caller->network != topology_.network) {
    return Refuse(context, absl::PermissionDeniedError(
                               absl::StrCat("node '", topology_.self, "' refuses ", what, " from ",
                                            security::Describe(*caller), " of network '", caller->network,
                                            "': this is network '", topology_.network, "'")));
  }
  if (caller->role != security::Role::kOperator && caller->role != security::Role::kMonitor &&
      !nodes_.contains(caller->node)) {
    return Refuse(context, absl::PermissionDeniedError(absl::StrCat(
                               "node '", topology_.self, "' refuses ", what, " from ", security::Describe(*caller),
                               ": '", caller->node, "' is not a node of the network file")));
  }
  return caller;
}

std::string AccessPolicy::ClientName(const grpc::ServerContextBase& context) const {
  if (tls_) {
    absl::StatusOr<security::Identity> caller = security::CallerIdentity(context);
    if (caller.ok()) return security::Describe(*caller);
  }
  return absl::StrCat("the client at ", context.peer());
}

absl::StatusOr<std::string> AccessPolicy::AuthorizePeer(const grpc::ServerContextBase& context) const {
  if (!tls_) return std::string();
  absl::StatusOr<security::Identity> caller = Caller(context, "a peer stream");
  if (!caller.ok()) return caller.status();
  if (caller->role != security::Role::kNode) {
    return Refuse(context, absl::PermissionDeniedError(absl::StrCat("node '", topology_.self,
                                                                    "' refuses a peer stream from ",
                                                                    security::Describe(*caller),
                                                                    ": only nodes open peer streams")));
  }
  if (topology_.FindNeighbour(caller->node) == nullptr) {
    return Refuse(context, absl::PermissionDeniedError(
                               absl::StrCat("node '", topology_.self, "' refuses a peer stream from node '",
                                            caller->node, "': the network file has no link between them")));
  }
  return caller->node;
}

absl::Status AccessPolicy::AuthorizeHardware(const grpc::ServerContextBase& context, absl::string_view method,
                                             const std::string& claimed) const {
  return AuthorizeNode(context, absl::StrCat("HardwarePlane.", method), claimed, "only nodes use the hardware plane");
}

absl::Status AccessPolicy::AuthorizeHardwareFromAnyNode(const grpc::ServerContextBase& context,
                                                        absl::string_view method) const {
  return CheckNode(context, absl::StrCat("HardwarePlane.", method), nullptr, "only nodes use the hardware plane");
}

absl::Status AccessPolicy::AuthorizeNode(const grpc::ServerContextBase& context, const std::string& what,
                                         const std::string& claimed, absl::string_view why_nodes_only) const {
  return CheckNode(context, what, &claimed, why_nodes_only);
}

absl::Status AccessPolicy::CheckNode(const grpc::ServerContextBase& context, const std::string& what,
                                     const std::string* claimed, absl::string_view why_nodes_only) const {
  if (!tls_) return absl::OkStatus();
  absl::StatusOr<security::Identity> caller = Caller(context, what);
  if (!caller.ok()) return caller.status();
  if (caller->role != security::Role::kNode) {
    return Refuse(context, absl::PermissionDeniedError(absl::StrCat("node '", topology_.self, "' refuses ", what,
                                                                    " from ", security::Describe(*caller), ": ",
                                                                    why_nodes_only)));
  }
  if (claimed != nullptr && caller->node != *claimed) {
    return Refuse(context, absl::PermissionDeniedError(absl::StrCat("node '", topology_.self, "' refuses ", what,
                                                                    " from node '", caller->node,
                                                                    "' acting as node '", *claimed, "'")));
  }
  return absl::OkStatus();
}

absl::Status AccessPolicy::AuthorizeClientIdentity(const security::Identity& caller, absl::string_view method) const {
  const std::string what = absl::StrCat("Node.", method);
  switch (caller.role) {
    case security::Role::kOperator:
      return absl::OkStatus();
    case security::Role::kApp:
      if (caller.node != topology_.self) {
        return absl::PermissionDeniedError(absl::StrCat("node '", topology_.self, "' refuses ", what, " from ",
                                                        security::Describe(caller), ": an app may only use its own node ('",
                                                        caller.node, "')"));
      }
      for (absl::string_view allowed : kAppMethods) {
        if (allowed == method) return absl::OkStatus();
      }
      return absl::PermissionDeniedError(absl::StrCat("node '", topology_.self, "' refuses ", what, " from ",
                                                      security::Describe(caller),
                                                      ": apps may not call it (operator certificates may)"));
    case security::Role::kMonitor:
      // A scraper reads; it starts nothing and sees no key.
      if (method == "GetStatus" || method == "GetRoutes") return absl::OkStatus();
      return absl::PermissionDeniedError(absl::StrCat("node '", topology_.self, "' refuses ", what, " from ",
                                                      security::Describe(caller),
                                                      ": a monitor may read metrics, GetStatus and GetRoutes only"));
    case security::Role::kNode:
      break;
  }
  return absl::PermissionDeniedError(absl::StrCat("node '", topology_.self, "' refuses ", what, " from ",
                                                  security::Describe(caller),
                                                  ": node certificates are for peering; clients need an operator "
                                                  "or app certificate"));
}

absl::Status AccessPolicy::AuthorizeClient(const grpc::ServerContextBase& context, absl::string_view method) const {
  if (!tls_) return absl::OkStatus();
  absl::StatusOr<security::Identity> caller = Caller(context, absl::StrCat("Node.", method));
  if (!caller.ok()) return caller.status();
  absl::Status allowed = AuthorizeClientIdentity(*caller, method);
  if (!allowed.ok()) return Refuse(context, allowed);
  return absl::OkStatus();
}

}  // namespace qnet::daemon
