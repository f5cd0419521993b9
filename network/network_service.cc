#include "network/network_service.h"

#include "absl/strings/str_cat.h"

namespace qnet::network {

std::string_view NetworkErrorName(NetworkError error) {
  switch (error) {
    case NetworkError::kUnsupported: return "UNSUPPORTED";
    case NetworkError::kTimeout: return "TIMEOUT";
    case NetworkError::kNoResources: return "NO_RESOURCES";
    case NetworkError::kRejected: return "REJECTED";
    case NetworkError::kNoRoute: return "NO_ROUTE";
    case NetworkError::kPeerDown: return "PEER_DOWN";
    case NetworkError::kCancelled: return "CANCELLED";
    case NetworkError::kDeviceError: return "DEVICE_ERROR";
  }
  return "UNKNOWN";
}

absl::StatusCode ToStatusCode(NetworkError error) {
  switch (error) {
    case NetworkError::kUnsupported: return absl::StatusCode::kFailedPrecondition;
    case NetworkError::kTimeout: return absl::StatusCode::kDeadlineExceeded;
    case NetworkError::kNoResources: return absl::StatusCode::kResourceExhausted;
    case NetworkError::kRejected: return absl::StatusCode::kPermissionDenied;
    case NetworkError::kNoRoute: return absl::StatusCode::kNotFound;
    case NetworkError::kPeerDown: return absl::StatusCode::kUnavailable;
    case NetworkError::kCancelled: return absl::StatusCode::kCancelled;
    case NetworkError::kDeviceError: return absl::StatusCode::kInternal;
  }
  return absl::StatusCode::kUnknown;
}

absl::Status ToStatus(NetworkError error, std::string_view message) {
  return absl::Status(ToStatusCode(error),
                      absl::StrCat(std::string(NetworkErrorName(error)), ": ", std::string(message)));
}

uint32_t ToWire(std::optional<NetworkError> error) {
  return error.has_value() ? static_cast<uint32_t>(*error) + 1 : 0;
}

std::optional<NetworkError> NetworkErrorFromWire(uint32_t value) {
  if (value == 0 || value > static_cast<uint32_t>(NetworkError::kDeviceError) + 1) return std::nullopt;
  return static_cast<NetworkError>(value - 1);
}

std::string EndToEndId::ToString() const { return absl::StrCat(head, "-", tail, "#c", circuit, ".", sequence); }

}  // namespace qnet::network
