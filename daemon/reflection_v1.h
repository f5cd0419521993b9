// gRPC server reflection v1 (grpc.reflection.v1.ServerReflection), which
// grpcurl and current grpcio clients ask before v1alpha. Debian's gRPC 1.51
// ships only v1alpha (still registered beside this one); v1 has the same
// messages, answered here from the generated descriptor pool: the schema of
// every service the daemon registered, and nothing else of the process.
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
