// Who a certificate of a qnet network names: a node of the network, an
// operator (may do everything), an application bound to one node (its
// own node's entanglement, teleportation and keys only), or a monitor (a
// metrics scraper such as Prometheus: reads metrics and status, nothing else). The identity is one
// URI in the certificate's subjectAltName, so it survives any subject
// formatting: urn:qnet:<network>:node:<node>, urn:qnet:<network>:operator:<name>,
// urn:qnet:<network>:app:<node>:<name>, urn:qnet:<network>:monitor:<name>. Names are network-file names (letters,
// digits, '_', '-', '.'), so ':' cannot occur inside a field.
#pragma once

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace qnet::security {

enum class Role { kNode, kOperator, kApp, kMonitor };

absl::string_view RoleName(Role role);
absl::StatusOr<Role> ParseRole(absl::string_view text);

struct Identity {
  std::string network;
  Role role = Role::kOperator;
  std::string node;  // kNode: the node; kApp: the node it is bound to; kOperator, kMonitor: empty
  std::string name;  // kNode: the node; others: the client's name

  bool operator==(const Identity&) const = default;
};

// "node alice", "operator ops", "app vpn1 of alice", "monitor prometheus" (for messages and logs).
std::string Describe(const Identity& identity);

std::string IdentityUri(const Identity& identity);
// InvalidArgument naming what is wrong when `uri` is not a qnet identity URI.
absl::StatusOr<Identity> ParseIdentityUri(absl::string_view uri);

// True when `text` is a valid name for a node, client or network.
bool IsValidName(absl::string_view text);

}  // namespace qnet::security
