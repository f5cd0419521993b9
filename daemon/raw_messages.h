// Requests parsed, and answers serialised, by the daemon's own handlers
// instead of gRPC's typed ones. gRPC 1.51's typed callback handlers answer a
// request they cannot parse with UNIMPLEMENTED and no message, before any
// service code runs (grpcpp/impl/codegen/server_callback_handlers.h,
// RunHandler). The Node and HardwarePlane services therefore register their
// methods raw (ByteBuffer in and out, WithRawCallbackMethod_*) and parse
// here, so that a client built from other .proto files, or a fuzzer, gets
// INVALID_ARGUMENT naming the method and the message it should have sent.
#pragma once

#include <string>

#include <google/protobuf/message.h>
#include <grpcpp/support/byte_buffer.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace qnet::daemon {

// Parses `raw` into `into` (cleared first); INVALID_ARGUMENT says which
// method's request did not parse, its size and the expected message type.
absl::Status ParseRequest(const grpc::ByteBuffer& raw, absl::string_view method, google::protobuf::Message& into);

template <typename Request>
absl::StatusOr<Request> ParseRequest(const grpc::ByteBuffer& raw, absl::string_view method) {
  Request request;
  if (absl::Status parsed = ParseRequest(raw, method, request); !parsed.ok()) return parsed;
  return request;
}

// The wire form of an answer (a message serialises whatever it holds).
grpc::ByteBuffer SerializeMessage(const google::protobuf::Message& message);

}  // namespace qnet::daemon
