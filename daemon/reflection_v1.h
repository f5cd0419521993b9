// gRPC server reflection v1 (grpc.reflection.v1.ServerReflection), which
// grpcurl and current grpcio clients ask before v1alpha. Debian's gRPC 1.51
// ships only v1alpha (still registered beside this one); v1 has the same
// messages, answered here from the generated descriptor pool: the schema
// (as v1alpha does, any .proto linked into qnetd can be asked for by name,
// the peer and key-distribution messages included: public wire formats, not
// state). If gRPC >= 1.57 is ever used, its own v1 registers the same file
// name and this one must go.
#pragma once

#include <string>
#include <vector>

#include "grpc/reflection/v1/reflection.grpc.pb.h"

namespace qnet::daemon {

class ServerReflectionV1 final : public grpc::reflection::v1::ServerReflection::Service {
 public:
  // `services`: the fully qualified names list_services answers with.
  explicit ServerReflectionV1(std::vector<std::string> services);

  grpc::Status ServerReflectionInfo(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<grpc::reflection::v1::ServerReflectionResponse,
                               grpc::reflection::v1::ServerReflectionRequest>* stream) override;

  // One request's answer; `sent` holds the files this stream has already
  // sent (a client asks for a file's imports only once).
  grpc::reflection::v1::ServerReflectionResponse Answer(const grpc::reflection::v1::ServerReflectionRequest& request,
                                                        std::vector<std::string>& sent) const;

 private:
  std::vector<std::string> services_;
};

}  // namespace qnet::daemon
