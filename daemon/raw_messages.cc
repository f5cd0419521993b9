#include "daemon/raw_messages.h"

#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/proto_buffer_writer.h>

#include "absl/strings/str_cat.h"

namespace qnet::daemon {

absl::Status ParseRequest(const grpc::ByteBuffer& raw, absl::string_view method, google::protobuf::Message& into) {
  into.Clear();
  // The reader takes a mutable buffer; a copy shares the slices, not the bytes.
  grpc::ByteBuffer copy(raw);
  bool parsed = false;
  {
    grpc::ProtoBufferReader reader(&copy);
    parsed = reader.status().ok() && into.ParseFromZeroCopyStream(&reader);
  }
  if (parsed) return absl::OkStatus();
  into.Clear();
  return absl::InvalidArgumentError(absl::StrCat(
      "the ", method, " request (", raw.Length(), raw.Length() == 1 ? " byte" : " bytes", ") does not parse as ", into.GetDescriptor()->full_name(),
      " (is the client built from qnet's proto/qnet/v1 files?)"));
}

grpc::ByteBuffer SerializeMessage(const google::protobuf::Message& message) {
  grpc::ByteBuffer out;
  bool own_buffer = false;
  // Only fails for a message over 2 GiB, which no answer of the daemon is.
  (void)grpc::GenericSerialize<grpc::ProtoBufferWriter, google::protobuf::Message>(message, &out, &own_buffer);
  return out;
}

}  // namespace qnet::daemon
