// Per-client limits on long-running Node requests (daemon/client_request_limit.h):
// a client at its limit gets RESOURCE_EXHAUSTED naming the limit, another
// client is still served, and a request that ends gives its slot back. The
// limiter's own accounting is checked directly as well. In-process daemons
// without TLS, where a client is one connection.
#include "daemon/client_request_limit.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "gmock/gmock.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "in_process_daemons.h"
#include "qnet/v1/node_service.grpc.pb.h"
#include "tests/common/wait_until.h"

namespace qnet::daemon {
namespace {

using ::testing::HasSubstr;
using testing::InProcessNetwork;

TEST(ClientRequestLimitTest, CountsPerClientAndReleasesWhenTheLastTicketGoes) {
  auto limit = std::make_shared<ClientRequestLimit>(2);
  auto a1 = limit->Admit("a", "Entangle");
  auto a2 = limit->Admit("a", "Qkd");
  ASSERT_TRUE(a1.ok() && a2.ok());
  auto a3 = limit->Admit("a", "Teleport");
  EXPECT_EQ(a3.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(a3.status().message(), HasSubstr("Teleport refused: a already has 2 requests in flight"));
  EXPECT_TRUE(limit->Admit("b", "Entangle").ok());  // another client; its ticket goes at once
  EXPECT_EQ(limit->InFlight("b"), 0u);
  ClientRequestLimit::Ticket copy = *a1;
  a1->reset();
  EXPECT_EQ(limit->InFlight("a"), 2u);  // a copy still holds it
  copy.reset();
  EXPECT_EQ(limit->InFlight("a"), 1u);
  EXPECT_TRUE(limit->Admit("a", "Entangle").ok());
  // A ticket that outlives its limit is harmless.
  ClientRequestLimit::Ticket late = *std::move(a2);
  limit.reset();
  late.reset();
}

std::shared_ptr<grpc::Channel> OwnConnection(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // not shared with other channels: another client
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

// One Entangle stream, read to its end by its own thread (a client that
// stopped reading would stall the connection's flow control).
struct Stream {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v1::EntangleEvent>> reader;
  std::thread drain;
  grpc::Status status;
  // Waits for the end (Cancel first to end it now).
  grpc::Status Wait() {
    if (drain.joinable()) drain.join();
    return status;
  }
  grpc::Status Cancel() {
    context.TryCancel();
    return Wait();
  }
  ~Stream() { Cancel(); }
};

std::unique_ptr<Stream> StartEntangle(v1::Node::Stub& stub) {
  auto s = std::make_unique<Stream>();
  v1::EntangleRequest request;
  request.set_remote_node("b");
  request.set_pairs(100000);  // far more than the test lasts for
  request.set_type(v1::EntangleRequest::MEASURE);
  s->context.set_deadline(std::chrono::system_clock::now() + qnet::testing::Scaled(std::chrono::seconds(60)));
  s->reader = stub.Entangle(&s->context, request);
  Stream* raw = s.get();
  s->drain = std::thread([raw] {
    v1::EntangleEvent event;
    while (raw->reader->Read(&event)) {
    }
    raw->status = raw->reader->Finish();
  });
  return s;
}

TEST(ClientRequestLimitTest, AClientAtItsLimitIsRefusedOthersAreServedAndEndedRequestsFreeTheirSlot) {
  InProcessNetwork net({"a", "b"}, 1.0, [](DaemonOptions& o) { o.max_requests_per_client = 2; });
  ASSERT_TRUE(net.ok());
  const std::string address = net[0].listen_address();
  const ClientRequestLimit& limit = net[0].request_limit();
  auto in_flight = [&](uint32_t n) {
    return qnet::testing::WaitUntil(absl::StrCat(n, " requests in flight at a"),
                                    [&] { return limit.TotalInFlight() == n; });
  };
  auto stub = v1::Node::NewStub(OwnConnection(address));

  // Two long requests (the second waits for the link behind the first).
  std::vector<std::unique_ptr<Stream>> running;
  running.push_back(StartEntangle(*stub));
  running.push_back(StartEntangle(*stub));
  ASSERT_TRUE(in_flight(2));
  // The third from the same client: refused at once, with the limit named.
  const grpc::Status refused = StartEntangle(*stub)->Wait();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_THAT(refused.error_message(), HasSubstr("already has 2 requests in flight"));
  EXPECT_THAT(refused.error_message(), HasSubstr("at most 2 per client, qnetd --max-requests-per-client"));
  EXPECT_EQ(limit.TotalInFlight(), 2u);

  // Another client (its own connection) is admitted meanwhile.
  auto other = v1::Node::NewStub(OwnConnection(address));
  std::unique_ptr<Stream> others = StartEntangle(*other);
  EXPECT_TRUE(in_flight(3));
  EXPECT_EQ(others->Cancel().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(in_flight(2));

  // One of the first client's requests ends: its slot comes back.
  EXPECT_EQ(running[0]->Cancel().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(in_flight(1));
  running.push_back(StartEntangle(*stub));
  EXPECT_TRUE(in_flight(2));
  for (auto& r : running) r->Cancel();
  EXPECT_TRUE(in_flight(0));
}

}  // namespace
}  // namespace qnet::daemon
