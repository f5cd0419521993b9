// gRPC health checking (grpc.health.v1) as load balancers and probes use it:
// the server's "" entry and each qnet service by its full name are SERVING
// while the daemon runs; a name it does not serve is NOT_FOUND.
#include <condition_variable>
#include <mutex>

#include <google/protobuf/wrappers.pb.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include "cli/launcher.h"
#include "gtest/gtest.h"
#include "security/client_endpoints.h"
#include "tests/common/multiprocess_test.h"

namespace qnet::daemon {
namespace {

using HealthMpTest = qnet::testing::MultiProcessTest;

// HealthCheckRequest {string service = 1} is a StringValue on the wire, and
// HealthCheckResponse {ServingStatus status = 1} an Int32Value (1 = SERVING).
grpc::Status Check(const std::string& address, const std::string& service, int* status) {
  grpc::TemplatedGenericStub<google::protobuf::StringValue, google::protobuf::Int32Value> stub(
      security::ClientChannel(address));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  google::protobuf::StringValue request;
  request.set_value(service);
  google::protobuf::Int32Value response;
  std::mutex mu;
  std::condition_variable done_cv;
  bool done = false;
  grpc::Status result;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   std::lock_guard lock(mu);
                   result = std::move(s);
                   done = true;
                   done_cv.notify_all();
                 });
  std::unique_lock lock(mu);
  done_cv.wait(lock, [&] { return done; });
  *status = response.value();
  return result;
}

TEST_F(HealthMpTest, EveryServiceByNameIsServing) {
  auto net = StartNetwork(LaunchOptionsFor(Example("ideal-pair.yaml"), 1.0));
  ASSERT_NE(net, nullptr);
  const std::string alice = *net->Address("alice");
  for (const std::string service : {"", "qnet.v1.Node", "qnet.v1.Peer", "qnet.v1.HardwarePlane"}) {
    SCOPED_TRACE(service);
    int status = -1;
    grpc::Status got = Check(alice, service, &status);
    EXPECT_TRUE(got.ok()) << got.error_message();
    EXPECT_EQ(status, 1);
  }
  int status = -1;
  EXPECT_EQ(Check(alice, "qnet.v1.Nope", &status).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(net->StopAll().ok());
}

}  // namespace
}  // namespace qnet::daemon
