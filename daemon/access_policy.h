// Who may call what on one daemon: the authorisation half of qnet's trust
// model (docs/architecture.md, "Threat model"). With mutual TLS every caller
// presents a certificate of the network's CA naming a qnet identity
// (security/identity.h); this policy checks that identity against the
// network file on every call:
//   Peer.Exchange   a node of the network that is a neighbour of this node
//                   (the Hello must then name the same node);
//   HardwarePlane   a node of the network, acting as itself (the request's
//                   requester/sender is the certificate's node);
//   KeyManagement   a node of the network, acting as itself (the request's
//                   owner), that shares a key pool with this node;
//   Node            operator: every method; app: only its own node's
//                   entanglement, teleportation, keys and status.
// Without TLS (--insecure-local-only) nothing is checked: the daemon then
// listens on the loopback interface only and says so.
// A refusal is PERMISSION_DENIED (or UNAUTHENTICATED without a usable
// certificate) naming who was refused and why, and is logged.
#pragma once

#include <set>
#include <string>
#include "absl/strings/string_view.h"

#include <grpcpp/server_context.h>

#include "absl/status/statusor.h"
#include "daemon/log.h"
#include "daemon/topology.h"
#include "security/identity.h"

namespace qnet::daemon {

class AccessPolicy {
 public:
  // `tls`: whether callers have certificates (false: everything is allowed).
  AccessPolicy(const DaemonTopology& topology, bool tls, const Logger& log);

  bool tls() const { return tls_; }

  // Peer.Exchange: the neighbour the caller's certificate names ("" without TLS).
  absl::StatusOr<std::string> AuthorizePeer(const grpc::ServerContextBase& context) const;
  // HardwarePlane.<method>: the caller must be node `claimed` of the network.
  absl::Status AuthorizeHardware(const grpc::ServerContextBase& context, absl::string_view method,
                                 const std::string& claimed) const;
  // HardwarePlane.<method> forwarded on another node's behalf: the caller
  // must be a node of the network (any), acting as itself.
  absl::Status AuthorizeHardwareFromAnyNode(const grpc::ServerContextBase& context, absl::string_view method) const;
  // A node-to-node call (`what`: "Service.Method"): the caller must be node
  // `claimed` of the network; `why_nodes_only` ends the refusal of others.
  absl::Status AuthorizeNode(const grpc::ServerContextBase& context, const std::string& what,
                             const std::string& claimed, absl::string_view why_nodes_only) const;
  // Node.<method> by role.
  absl::Status AuthorizeClient(const grpc::ServerContextBase& context, absl::string_view method) const;

  // Who is calling, for per-client accounting (client_request_limit.h):
  // the certificate's identity with TLS, the connection's address without.
  // Call after an Authorize* call has let the caller in.
  std::string ClientName(const grpc::ServerContextBase& context) const;

  // The decision for an identity (no gRPC): tests and the fuzz targets.
  absl::Status AuthorizeClientIdentity(const security::Identity& caller, absl::string_view method) const;

 private:
  absl::StatusOr<security::Identity> Caller(const grpc::ServerContextBase& context, absl::string_view what) const;
  absl::Status Refuse(const grpc::ServerContextBase& context, absl::Status why) const;
  // The caller must be a node; if `claimed` is not null, that node.
  absl::Status CheckNode(const grpc::ServerContextBase& context, const std::string& what,
                         const std::string* claimed, absl::string_view why_nodes_only) const;

  const DaemonTopology& topology_;
  std::set<std::string> nodes_;
  const bool tls_;
  const Logger& log_;
};

}  // namespace qnet::daemon
