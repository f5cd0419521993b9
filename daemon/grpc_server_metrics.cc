#include "daemon/grpc_server_metrics.h"

#include <chrono>

#include <google/protobuf/descriptor.h>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace qnet::daemon {
namespace {

// grpc::StatusCode names as gRPC's own tools print them.
const char* CodeName(int code) {
  static constexpr const char* kNames[] = {
      "OK",          "CANCELLED",          "UNKNOWN",      "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
      "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
      "OUT_OF_RANGE", "UNIMPLEMENTED",      "INTERNAL",     "UNAVAILABLE",      "DATA_LOSS",         "UNAUTHENTICATED"};
  if (code < 0 || code >= static_cast<int>(std::size(kNames))) return "UNKNOWN";
  return kNames[code];
}

// Only methods that exist get a label of their own: the generated
// descriptors of the services linked into qnetd (qnet.v1, health,
// reflection), so a client naming made-up methods cannot grow the label sets.
bool KnownMethod(absl::string_view service, absl::string_view method) {
  // gRPC's own health service has no descriptor in the generated pool.
  if (service == "grpc.health.v1.Health") return method == "Check" || method == "Watch";
  if (!absl::StartsWith(service, "qnet.v1.") && !absl::StartsWith(service, "grpc.")) return false;
  const google::protobuf::ServiceDescriptor* s =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(std::string(service));
  return s != nullptr && s->FindMethodByName(std::string(method)) != nullptr;
}

class CallTimer final : public grpc::experimental::Interceptor {
 public:
  CallTimer(GrpcServerMetrics& metrics, std::string method)
      : metrics_(metrics), method_(std::move(method)), start_(std::chrono::steady_clock::now()) {}

  // A call the client cancelled (or whose deadline passed) sends no status:
  // it is counted as CANCELLED when the call is done with its interceptor.
  ~CallTimer() override {
    if (!recorded_) Record(static_cast<int>(grpc::StatusCode::CANCELLED));
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      Record(static_cast<int>(methods->GetSendStatus().error_code()));
    }
    methods->Proceed();
  }

 private:
  void Record(int code) {
    recorded_ = true;
    metrics_.Record(method_, code, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }

  GrpcServerMetrics& metrics_;
  std::string method_;
  std::chrono::steady_clock::time_point start_;
  bool recorded_ = false;
};

class CallTimerFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CallTimerFactory(GrpcServerMetrics& metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    return new CallTimer(metrics_, info->method() == nullptr ? "" : info->method());
  }

 private:
  GrpcServerMetrics& metrics_;
};

}  // namespace

GrpcServerMetrics::GrpcServerMetrics(prometheus::Registry& registry, const std::string& node)
    : node_(node),
      handled_(prometheus::BuildCounter()
                   .Name("qnet_grpc_server_handled_total")
                   .Help("gRPC calls this daemon finished, by service, method and status code")
                   .Register(registry)),
      latency_(prometheus::BuildHistogram()
                   .Name("qnet_grpc_server_handling_seconds")
                   .Help("Wall seconds from a gRPC call's arrival to its status (a stream: its whole life)")
                   .Register(registry)) {}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> GrpcServerMetrics::InterceptorFactory() {
  return std::make_unique<CallTimerFactory>(*this);
}

void GrpcServerMetrics::Record(const std::string& full_method, int code, double seconds) {
  // "/package.Service/Method"
  absl::string_view name = full_method;
  std::string service = "other", method = "other";
  if (absl::StartsWith(name, "/")) {
    name.remove_prefix(1);
    const size_t slash = name.find('/');
    if (slash != absl::string_view::npos && KnownMethod(name.substr(0, slash), name.substr(slash + 1))) {
      service = std::string(name.substr(0, slash));
      method = std::string(name.substr(slash + 1));
    }
  }
  handled_.Add({{"node", node_}, {"service", service}, {"method", method}, {"code", CodeName(code)}}).Increment();
  // 100 us to ~100 s, four buckets a decade.
  static const prometheus::Histogram::BucketBoundaries kBuckets = [] {
    prometheus::Histogram::BucketBoundaries b;
    for (double v = 1e-4; v < 200; v *= 1.7782794100389228) b.push_back(v);
    return b;
  }();
  latency_.Add({{"node", node_}, {"service", service}, {"method", method}}, kBuckets).Observe(seconds);
}

}  // namespace qnet::daemon
