#include "link/link_wire.h"

namespace qnet::link {

v1::LinkErrorCode ErrorToWire(LinkError error) {
  switch (error) {
    case LinkError::kUnsupported: return v1::LINK_ERROR_UNSUPPORTED;
    case LinkError::kTimeout: return v1::LINK_ERROR_TIMEOUT;
    case LinkError::kNoResources: return v1::LINK_ERROR_NO_RESOURCES;
    case LinkError::kRejected: return v1::LINK_ERROR_REJECTED;
    case LinkError::kExpired: return v1::LINK_ERROR_EXPIRED;
    case LinkError::kPeerDown: return v1::LINK_ERROR_PEER_DOWN;
    case LinkError::kCancelled: return v1::LINK_ERROR_CANCELLED;
    case LinkError::kDeviceError: return v1::LINK_ERROR_DEVICE_ERROR;
  }
  return v1::LINK_ERROR_DEVICE_ERROR;
}

std::optional<LinkError> ErrorFromWire(v1::LinkErrorCode code) {
  switch (code) {
    case v1::LINK_ERROR_UNSUPPORTED: return LinkError::kUnsupported;
    case v1::LINK_ERROR_TIMEOUT: return LinkError::kTimeout;
    case v1::LINK_ERROR_NO_RESOURCES: return LinkError::kNoResources;
    case v1::LINK_ERROR_REJECTED: return LinkError::kRejected;
    case v1::LINK_ERROR_EXPIRED: return LinkError::kExpired;
    case v1::LINK_ERROR_PEER_DOWN: return LinkError::kPeerDown;
    case v1::LINK_ERROR_CANCELLED: return LinkError::kCancelled;
    case v1::LINK_ERROR_DEVICE_ERROR: return LinkError::kDeviceError;
    default: return std::nullopt;
  }
}

v1::LinkBasisChoice BasisToWire(BasisChoice basis) {
  switch (basis) {
    case BasisChoice::kZ: return v1::LINK_BASIS_Z;
    case BasisChoice::kX: return v1::LINK_BASIS_X;
    case BasisChoice::kY: return v1::LINK_BASIS_Y;
    case BasisChoice::kBb84: return v1::LINK_BASIS_BB84;
    case BasisChoice::kSixState: return v1::LINK_BASIS_SIX_STATE;
    case BasisChoice::kChsh: return v1::LINK_BASIS_CHSH;
    case BasisChoice::kE91: break;  // never sent: ValidateParams refuses it
  }
  return v1::LINK_BASIS_Z;
}

std::optional<BasisChoice> BasisFromWire(int basis) {
  switch (basis) {
    case v1::LINK_BASIS_Z: return BasisChoice::kZ;
    case v1::LINK_BASIS_X: return BasisChoice::kX;
    case v1::LINK_BASIS_Y: return BasisChoice::kY;
    case v1::LINK_BASIS_BB84: return BasisChoice::kBb84;
    case v1::LINK_BASIS_SIX_STATE: return BasisChoice::kSixState;
    case v1::LINK_BASIS_CHSH: return BasisChoice::kChsh;
    default: return std::nullopt;
  }
}

void RequestToWire(const EntanglementRequest& request, v1::LinkRequestSubmit* out) {
  out->set_pairs(request.number);
  out->set_type(request.type == RequestType::kKeep ? v1::LINK_REQUEST_TYPE_KEEP : v1::LINK_REQUEST_TYPE_MEASURE);
  out->set_basis(BasisToWire(request.basis));
  out->set_min_fidelity(request.min_fidelity);
  out->set_max_time_ns(request.max_time.count());
  out->set_priority(request.priority);
  out->set_purpose_id(request.purpose_id);
  out->set_open(request.open);
}

EntanglementRequest RequestFromWire(const v1::LinkRequestSubmit& submit, const std::string& origin) {
  EntanglementRequest params;
  params.remote_node = origin;
  params.number = submit.pairs();
  params.type = submit.type() == v1::LINK_REQUEST_TYPE_MEASURE ? RequestType::kMeasure : RequestType::kKeep;
  params.basis = BasisFromWire(submit.basis()).value_or(BasisChoice::kZ);
  params.min_fidelity = submit.min_fidelity();
  params.max_time = Duration(submit.max_time_ns());
  params.priority = submit.priority();
  params.purpose_id = submit.purpose_id();
  params.open = submit.open();
  return params;
}

v1::LinkMessage ExtendMessage(const std::string& origin, uint64_t number, uint32_t pairs) {
  v1::LinkMessage m;
  v1::LinkRequestExtend* e = m.mutable_extend();
  e->mutable_key()->set_origin(origin);
  e->mutable_key()->set_number(number);
  e->set_pairs(pairs);
  return m;
}

bool SubmitIsReadable(const v1::LinkRequestSubmit& submit) {
  return v1::LinkRequestType_IsValid(submit.type()) && BasisFromWire(submit.basis()).has_value();
}

int64_t ToNs(TimePoint t) { return t.time_since_epoch().count(); }
TimePoint FromNs(int64_t ns) { return TimePoint(Duration(ns)); }

}  // namespace qnet::link
