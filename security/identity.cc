#include "security/identity.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace qnet::security {
namespace {
constexpr absl::string_view kPrefix = "urn:qnet:";
}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kNode: return "node";
    case Role::kOperator: return "operator";
    case Role::kApp: return "app";
    case Role::kMonitor: return "monitor";
  }
  return "?";
}

absl::StatusOr<Role> ParseRole(absl::string_view text) {
  if (text == "node") return Role::kNode;
  if (text == "operator") return Role::kOperator;
  if (text == "app") return Role::kApp;
  if (text == "monitor") return Role::kMonitor;
  return absl::InvalidArgumentError(absl::StrCat("unknown role '", text, "' (node, operator, app or monitor)"));
}

bool IsValidName(absl::string_view text) {
  if (text.empty() || text.size() > 128 || !absl::ascii_isalnum(static_cast<unsigned char>(text[0]))) return false;
  for (char c : text) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') return false;
  }
  return true;
}

std::string Describe(const Identity& identity) {
  switch (identity.role) {
    case Role::kNode: return absl::StrCat("node ", identity.node);
    case Role::kOperator: return absl::StrCat("operator ", identity.name);
    case Role::kApp: return absl::StrCat("app ", identity.name, " of ", identity.node);
    case Role::kMonitor: return absl::StrCat("monitor ", identity.name);
  }
  return "?";
}

std::string IdentityUri(const Identity& identity) {
  switch (identity.role) {
    case Role::kNode: return absl::StrCat(kPrefix, identity.network, ":node:", identity.node);
    case Role::kOperator: return absl::StrCat(kPrefix, identity.network, ":operator:", identity.name);
    case Role::kApp: return absl::StrCat(kPrefix, identity.network, ":app:", identity.node, ":", identity.name);
    case Role::kMonitor: return absl::StrCat(kPrefix, identity.network, ":monitor:", identity.name);
  }
  return "";
}

absl::StatusOr<Identity> ParseIdentityUri(absl::string_view uri) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("'", uri, "' is not a qnet identity: ", why));
  };
  if (uri.substr(0, kPrefix.size()) != kPrefix) return bad(absl::StrCat("it does not start with ", kPrefix));
  std::vector<absl::string_view> parts = absl::StrSplit(uri.substr(kPrefix.size()), ':');
  if (parts.size() < 3) return bad("too few fields");
  Identity id;
  id.network = std::string(parts[0]);
  absl::StatusOr<Role> role = ParseRole(parts[1]);
  if (!role.ok()) return bad(role.status().message());
  id.role = *role;
  const size_t want = id.role == Role::kApp ? 4 : 3;
  if (parts.size() != want) return bad(absl::StrCat("a ", RoleName(id.role), " identity has ", want, " fields"));
  if (id.role == Role::kApp) {
    id.node = std::string(parts[2]);
    id.name = std::string(parts[3]);
  } else if (id.role == Role::kNode) {
    id.node = id.name = std::string(parts[2]);
  } else {
    id.name = std::string(parts[2]);
  }
  for (absl::string_view field : {absl::string_view(id.network), absl::string_view(id.name)}) {
    if (!IsValidName(field)) return bad(absl::StrCat("'", field, "' is not a valid name"));
  }
  if (id.role == Role::kApp && !IsValidName(id.node)) return bad(absl::StrCat("'", id.node, "' is not a valid name"));
  return id;
}

}  // namespace qnet::security
