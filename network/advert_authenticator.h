// Who may speak for a node in routing: the network layer signs every
// link-state advert it originates and verifies every advert it receives
// (flooded, relayed or handed over in a database exchange) against the
// origin it names, through this interface. The in-process simulator is one
// trust domain and uses none (every advert is accepted); the daemon plugs in
// an implementation backed by the node certificates of the network's PKI.
// Because the signature is the origin's own, a relaying node cannot alter an
// advert it forwards, and a stream authenticated as one neighbour cannot
// inject adverts for another origin.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "qnet/v1/network_messages.pb.h"

namespace qnet::network {

class AdvertAuthenticator {
 public:
  virtual ~AdvertAuthenticator() = default;

  // This node's signature over `advert_bytes` (AdvertSigningBytes of its own
  // advert). An error leaves the advert unsent (the next refresh retries).
  virtual absl::StatusOr<std::string> Sign(std::string_view advert_bytes) = 0;
  // True if `signature` over `advert_bytes` was made by node `origin`.
  virtual bool Verify(std::string_view origin, std::string_view advert_bytes, std::string_view signature) = 0;
};

// The bytes an advert's signature covers: the advert serialised with its
// signature field empty. Protobuf writes known fields in field-number order,
// so every node derives the same bytes from the same advert.
std::string AdvertSigningBytes(const v1::LinkStateAdvert& advert);

}  // namespace qnet::network
