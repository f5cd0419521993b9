#include "link/link_service.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace qnet::link {

std::string_view LinkErrorName(LinkError error) {
  switch (error) {
    case LinkError::kUnsupported: return "UNSUPPORTED";
    case LinkError::kTimeout: return "TIMEOUT";
    case LinkError::kNoResources: return "NO_RESOURCES";
    case LinkError::kRejected: return "REJECTED";
    case LinkError::kExpired: return "EXPIRED";
    case LinkError::kPeerDown: return "PEER_DOWN";
    case LinkError::kCancelled: return "CANCELLED";
    case LinkError::kDeviceError: return "DEVICE_ERROR";
  }
  return "UNKNOWN";
}

absl::StatusCode ToStatusCode(LinkError error) {
  switch (error) {
    case LinkError::kUnsupported: return absl::StatusCode::kFailedPrecondition;
    case LinkError::kTimeout: return absl::StatusCode::kDeadlineExceeded;
    case LinkError::kNoResources: return absl::StatusCode::kResourceExhausted;
    case LinkError::kRejected: return absl::StatusCode::kPermissionDenied;
    case LinkError::kExpired: return absl::StatusCode::kAborted;
    case LinkError::kPeerDown: return absl::StatusCode::kUnavailable;
    case LinkError::kCancelled: return absl::StatusCode::kCancelled;
    case LinkError::kDeviceError: return absl::StatusCode::kInternal;
  }
  return absl::StatusCode::kUnknown;
}

absl::Status ToStatus(LinkError error, std::string_view message) {
  return absl::Status(ToStatusCode(error), absl::StrCat(std::string(LinkErrorName(error)), ": ", std::string(message)));
}

std::optional<LinkError> LinkErrorFromStatusCode(absl::StatusCode code) {
  for (LinkError e : {LinkError::kUnsupported, LinkError::kTimeout, LinkError::kNoResources, LinkError::kRejected,
                      LinkError::kExpired, LinkError::kPeerDown, LinkError::kCancelled, LinkError::kDeviceError}) {
    if (ToStatusCode(e) == code) return e;
  }
  return std::nullopt;
}

quantum::Basis ToQuantumBasis(MeasurementBasis basis) {
  switch (basis) {
    case MeasurementBasis::kZ: return quantum::Basis::Z();
    case MeasurementBasis::kX: return quantum::Basis::X();
    case MeasurementBasis::kY: return quantum::Basis::Y();
    case MeasurementBasis::kChshA0: return quantum::Basis::XZ(0.0);
    case MeasurementBasis::kChshA1: return quantum::Basis::XZ(M_PI / 2);
    case MeasurementBasis::kChshB0: return quantum::Basis::XZ(M_PI / 4);
    case MeasurementBasis::kChshB1: return quantum::Basis::XZ(-M_PI / 4);
  }
  return quantum::Basis::Z();
}

std::string_view MeasurementBasisName(MeasurementBasis basis) {
  switch (basis) {
    case MeasurementBasis::kZ: return "Z";
    case MeasurementBasis::kX: return "X";
    case MeasurementBasis::kY: return "Y";
    case MeasurementBasis::kChshA0: return "A0";
    case MeasurementBasis::kChshA1: return "A1";
    case MeasurementBasis::kChshB0: return "B0";
    case MeasurementBasis::kChshB1: return "B1";
  }
  return "?";
}

std::string EntanglementId::ToString() const { return absl::StrCat(node_a, "-", node_b, "#", sequence); }

}  // namespace qnet::link
