// Conversions between the link service's vocabulary (link_service.h) and the
// link-layer wire messages (link_messages.proto), shared by the link layer's
// source files.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/time.h"
#include "link/link_service.h"
#include "qnet/v1/link_messages.pb.h"

namespace qnet::link {

v1::LinkErrorCode ErrorToWire(LinkError error);
// nullopt for LINK_ERROR_NONE (the request completed) and unknown codes.
std::optional<LinkError> ErrorFromWire(v1::LinkErrorCode code);

// Never called with kE91 (the link refuses it: the wire has no value for it).
v1::LinkBasisChoice BasisToWire(BasisChoice basis);
std::optional<BasisChoice> BasisFromWire(int basis);

// A request's parameters as submitted to the far end (all but remote_node).
void RequestToWire(const EntanglementRequest& request, v1::LinkRequestSubmit* out);
// The submitted parameters with remote_node = `origin`; an unreadable type
// or basis becomes KEEP or Z (the caller refuses it, see SubmitIsReadable).
EntanglementRequest RequestFromWire(const v1::LinkRequestSubmit& submit, const std::string& origin);
bool SubmitIsReadable(const v1::LinkRequestSubmit& submit);
// An open request's new total, for the master.
v1::LinkMessage ExtendMessage(const std::string& origin, uint64_t number, uint32_t pairs);

// Time points as nanoseconds since the epoch of the runtime's clock.
int64_t ToNs(TimePoint t);
TimePoint FromNs(int64_t ns);

}  // namespace qnet::link
