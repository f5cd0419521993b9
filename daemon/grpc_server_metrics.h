// Prometheus metrics of a daemon's gRPC server, recorded by a server
// interceptor on every call: calls handled by method and status code, and
// how long each took (a histogram; for a stream, its whole life). The
// families live in a prometheus-cpp registry the metrics endpoint serves.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <grpcpp/support/server_interceptor.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace qnet::daemon {

class GrpcServerMetrics {
 public:
  // Registers qnet_grpc_server_handled_total and
  // qnet_grpc_server_handling_seconds in `registry`, labelled with `node`.
  GrpcServerMetrics(prometheus::Registry& registry, const std::string& node);

  // The interceptor factory for grpc::ServerBuilder::experimental().
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> InterceptorFactory();

  // A call to `full_method` ("/qnet.v1.Node/Entangle") ended with `code`
  // after `seconds`. Methods outside qnet's services (a client asking for
  // one that does not exist) share the label method="other", so a caller
  // cannot grow the label sets.
  void Record(const std::string& full_method, int code, double seconds);

 private:
  std::string node_;
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Histogram>& latency_;
};

}  // namespace qnet::daemon
