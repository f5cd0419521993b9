// Peer streams between in-process daemons: handshake, batching, classical
// delay, neighbour up/down.
#include "daemon/peer_links.h"

#include <future>
#include <limits>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "cli/launcher.h"
#include "gtest/gtest.h"
#include "in_process_daemons.h"
#include "qnet/v1/node_service.grpc.pb.h"
#include "tests/common/wait_until.h"

namespace qnet::daemon {
namespace {

using testing::InProcessNetwork;
using qnet::testing::WaitUntil;

class RecordingStack final : public PeerMessageSink {
 public:
  void OnPeerMessage(const std::string& from, const v1::PeerMessage& message) override {
    messages.emplace_back(from, message);
    received_unix_ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
  }
  void OnNeighbourUp(const std::string& n) override { events.push_back("up:" + n); }
  void OnNeighbourDown(const std::string& n) override { events.push_back("down:" + n); }

  std::vector<std::pair<std::string, v1::PeerMessage>> messages;
  std::vector<int64_t> received_unix_ns;
  std::vector<std::string> events;
};

void UseRecordingStack(DaemonOptions& o) {
  o.peer_sink_override = [] { return std::make_unique<RecordingStack>(); };
}

RecordingStack& Recorder(Daemon& d) { return static_cast<RecordingStack&>(d.peer_sink()); }

bool Connected(Daemon& d, const std::string& neighbour) {
  return d.loop().Call([&] { return d.links().IsConnected(neighbour); });
}

NeighbourState StateOf(Daemon& d, const std::string& neighbour) {
  return d.loop().Call([&] {
    for (const NeighbourState& n : d.links().Neighbours()) {
      if (n.name == neighbour) return n;
    }
    return NeighbourState{};
  });
}

v1::PeerMessage Numbered(uint64_t i) {
  v1::PeerMessage m;
  m.mutable_physical()->set_link("a-b");
  m.mutable_physical()->mutable_ready()->set_generation_id(i);
  return m;
}

TEST(PeerLinksTest, NeighboursConnectAndGetMessagesInOrderInOneBatch) {
  InProcessNetwork net({"a", "b", "c"}, 1.0, UseRecordingStack);
  ASSERT_TRUE(net.ok());
  ASSERT_TRUE(WaitUntil("all links of a - b - c up", [&] {
    return Connected(net[0], "b") && Connected(net[1], "a") && Connected(net[1], "c") && Connected(net[2], "b");
  }));
  EXPECT_FALSE(StateOf(net[0], "b").we_dial == StateOf(net[1], "a").we_dial);
  EXPECT_TRUE(StateOf(net[0], "b").we_dial);  // "a" < "b": a dials

  const uint64_t batches_before = StateOf(net[1], "a").batches_received;
  constexpr int kMessages = 100;
  net[0].loop().Call([&] {
    for (int i = 0; i < kMessages; ++i) net[0].context().SendToNeighbour("b", Numbered(i));
  });
  ASSERT_TRUE(WaitUntil("every message at b", [&] {
    return net[1].loop().Call([&] { return Recorder(net[1]).messages.size(); }) == static_cast<size_t>(kMessages);
  }));
  net[1].loop().Call([&] {
    const auto& got = Recorder(net[1]).messages;
    for (int i = 0; i < kMessages; ++i) {
      EXPECT_EQ(got[i].first, "a");
      EXPECT_EQ(got[i].second.physical().ready().generation_id(), static_cast<uint64_t>(i));
    }
  });
  // Sent in one loop turn, so one frame.
  EXPECT_EQ(StateOf(net[1], "a").batches_received, batches_before + 1);
  EXPECT_EQ(StateOf(net[0], "b").messages_sent, static_cast<uint64_t>(kMessages));
}

TEST(PeerLinksTest, MessagesToNonNeighboursOrDownLinksAreDropped) {
  InProcessNetwork net({"a", "b", "c"}, 1.0, UseRecordingStack);
  ASSERT_TRUE(net.ok());
  ASSERT_TRUE(WaitUntil("b - c up", [&] { return Connected(net[1], "c"); }));
  net.Stop(2);
  ASSERT_TRUE(WaitUntil("b to see c down", [&] { return !Connected(net[1], "c"); }));
  net[1].loop().Call([&] { net[1].context().SendToNeighbour("c", Numbered(1)); });
  EXPECT_EQ(StateOf(net[1], "c").messages_dropped, 1u);
  net[0].loop().Call([&] { net[0].context().SendToNeighbour("c", Numbered(2)); });  // not a neighbour of a
  EXPECT_EQ(StateOf(net[0], "b").messages_sent, 0u);
}

TEST(PeerLinksTest, DeliveryWaitsForTheClassicalDelay) {
  // 2000 km of fibre = 10 ms simulated; at time scale 0.1 that is 100 ms wall.
  InProcessNetwork net({"a", "b"}, 2000.0, [](DaemonOptions& o) {
    UseRecordingStack(o);
    o.time_scale = 0.1;
  });
  ASSERT_TRUE(net.ok());
  ASSERT_TRUE(WaitUntil("a - b up at both ends", [&] { return Connected(net[0], "b") && Connected(net[1], "a"); }));
  const int64_t hold_ns = 100'000'000;
  std::vector<int64_t> sent;
  for (int i = 0; i < 3; ++i) {
    sent.push_back(net[0].loop().Call([&] {
      int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
      net[0].context().SendToNeighbour("b", Numbered(i));
      return now;
    }));
  }
  ASSERT_TRUE(WaitUntil("3 messages at b", [&] {
    return net[1].loop().Call([&] { return Recorder(net[1]).messages.size(); }) == 3u;
  }));
  auto received = net[1].loop().Call([&] { return Recorder(net[1]).received_unix_ns; });
  for (int i = 0; i < 3; ++i) {
    // Lower bound only (the emulation promises "no earlier than"); 1 ms
    // allows for the steady and system clocks ticking apart.
    EXPECT_GE(received[i] - sent[i], hold_ns - 1'000'000) << "message " << i;
  }
}

TEST(PeerLinksTest, NeighbourDownAndUpReachTheStack) {
  InProcessNetwork net({"a", "b"}, 1.0, UseRecordingStack);
  ASSERT_TRUE(net.ok());
  ASSERT_TRUE(WaitUntil("a - b up", [&] { return Connected(net[0], "b"); }));
  const std::string b_address = net[1].listen_address();
  net.Stop(1);
  ASSERT_TRUE(WaitUntil("a to see b down", [&] { return !Connected(net[0], "b"); }));
  net.Restart(1, b_address);
  ASSERT_TRUE(WaitUntil("a - b up at both ends", [&] { return Connected(net[0], "b") && Connected(net[1], "a"); }));
  auto events = net[0].loop().Call([&] { return Recorder(net[0]).events; });
  EXPECT_EQ(events, (std::vector<std::string>{"up:b", "down:b", "up:b"}));
  EXPECT_EQ(StateOf(net[0], "b").times_connected, 2u);
}

// The simulated time line a Hello names.
struct TimeLine {
  double time_scale = 1.0;
  int64_t epoch_unix_ns = 0;
};

TimeLine TimeLineOf(Daemon& d) { return {d.loop().time_scale(), d.loop().epoch_unix_ns()}; }

// Stops node a of a two-node network, so that a test can pose as a to b (b
// takes one stream per neighbour, and a sorts lower, so a dials). Fails, with
// the wait's message, if b never sees a go.
::testing::AssertionResult StopAForAPoser(InProcessNetwork& net) {
  net.Stop(0);
  return WaitUntil("b sees a down", [&] { return !Connected(net[1], "a"); });
}

// A raw dialer's Hello and the status the acceptor ends the stream with.
grpc::Status DialWithHello(const std::string& address, const std::string& node, const std::string& network,
                           uint32_t version, TimeLine time_line = {}) {
  auto stub = v1::Peer::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->Exchange(&context);
  v1::PeerFrame hello;
  hello.mutable_hello()->set_node(node);
  hello.mutable_hello()->set_network(network);
  hello.mutable_hello()->set_protocol_version(version);
  hello.mutable_hello()->set_time_scale(time_line.time_scale);
  hello.mutable_hello()->set_epoch_unix_ns(time_line.epoch_unix_ns);
  stream->Write(hello);
  v1::PeerFrame reply;
  while (stream->Read(&reply)) {
    if (reply.has_hello()) {
      context.TryCancel();  // accepted; that is not what these tests want
    }
  }
  return stream->Finish();
}

TEST(PeerLinksTest, MismatchedHellosAreRejectedWithAClearStatus) {
  InProcessNetwork net({"a", "b", "c"}, 1.0);
  ASSERT_TRUE(net.ok());
  const std::string b = net[1].listen_address();

  grpc::Status wrong_network = DialWithHello(b, "a", "othernet", kPeerProtocolVersion);
  EXPECT_EQ(wrong_network.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(wrong_network.error_message().find("network 'othernet'"), std::string::npos)
      << wrong_network.error_message();

  grpc::Status wrong_version = DialWithHello(b, "a", "testnet", kPeerProtocolVersion + 1);
  EXPECT_EQ(wrong_version.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(wrong_version.error_message().find("protocol version"), std::string::npos);

  grpc::Status stranger = DialWithHello(net[0].listen_address(), "c", "testnet", kPeerProtocolVersion);
  EXPECT_EQ(stranger.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(stranger.error_message().find("not a neighbour"), std::string::npos) << stranger.error_message();

  // c sorts after b, so c must wait for b to dial.
  grpc::Status wrong_direction = DialWithHello(b, "c", "testnet", kPeerProtocolVersion);
  EXPECT_EQ(wrong_direction.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(wrong_direction.error_message().find("sorts lower dials"), std::string::npos);
}

// A neighbour on another simulated time line would have its heralds and time
// stamps read as other instants: the link stays down, and says why. Posing
// as a needs a stream from a that is down, so a stops first.
TEST(PeerLinksTest, AHelloOnAnotherTimeLineIsRejected) {
  InProcessNetwork net({"a", "b"}, 1.0);
  ASSERT_TRUE(net.ok());
  const std::string b = net[1].listen_address();
  const TimeLine same = TimeLineOf(net[1]);
  ASSERT_TRUE(StopAForAPoser(net));

  grpc::Status faster = DialWithHello(b, "a", "testnet", kPeerProtocolVersion, {10.0, same.epoch_unix_ns});
  EXPECT_EQ(faster.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(faster.error_message().find("node 'a' runs at time scale 10, node 'b' at 1"), std::string::npos)
      << faster.error_message();
  grpc::Status unset = DialWithHello(b, "a", "testnet", kPeerProtocolVersion, {0.0, same.epoch_unix_ns});
  EXPECT_EQ(unset.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << unset.error_message();
  grpc::Status negative =
      DialWithHello(b, "a", "testnet", kPeerProtocolVersion, {1.0, std::numeric_limits<int64_t>::min()});
  EXPECT_EQ(negative.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(negative.error_message().find("negative epoch"), std::string::npos) << negative.error_message();

  // 1 km of fibre: 5 us of classical delay, so 0.5 us of epoch is the most
  // that passes at time scale 1.
  grpc::Status later = DialWithHello(b, "a", "testnet", kPeerProtocolVersion, {1.0, same.epoch_unix_ns + 1000});
  EXPECT_EQ(later.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(later.error_message().find("1e-06 s of simulated time apart"), std::string::npos)
      << later.error_message();
  EXPECT_NE(later.error_message().find("--epoch-unix-ns"), std::string::npos);
  EXPECT_FALSE(Connected(net[1], "a"));

  // Within the bound the Hello is answered (DialWithHello then cancels).
  grpc::Status near = DialWithHello(b, "a", "testnet", kPeerProtocolVersion, {1.0, same.epoch_unix_ns + 400});
  EXPECT_EQ(near.error_code(), grpc::StatusCode::CANCELLED) << near.error_message();
}

// A neighbour refused for its configuration redials every few seconds: one
// warning per reason, not one per dial.
TEST(PeerLinksTest, ARepeatedRefusalWarnsOnce) {
  InProcessNetwork net({"a", "b"}, 1.0);
  ASSERT_TRUE(net.ok());
  const std::string b = net[1].listen_address();
  const TimeLine same = TimeLineOf(net[1]);
  ASSERT_TRUE(StopAForAPoser(net));

  ::testing::internal::CaptureStderr();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(DialWithHello(b, "a", "testnet", kPeerProtocolVersion, {10.0, same.epoch_unix_ns}).error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
  }
  // Another reason is warned about again, and so is the first once it changed.
  EXPECT_EQ(DialWithHello(b, "a", "testnet", kPeerProtocolVersion, {20.0, same.epoch_unix_ns}).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(DialWithHello(b, "a", "testnet", kPeerProtocolVersion, {10.0, same.epoch_unix_ns}).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  const std::string log = ::testing::internal::GetCapturedStderr();
  const auto warnings = [&log](const std::string& text) {
    size_t count = 0;
    for (size_t at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) ++count;
    return count;
  };
  EXPECT_EQ(warnings("rejected peer stream: node 'a' runs at time scale 10,"), 2u) << log;
  EXPECT_EQ(warnings("rejected peer stream: node 'a' runs at time scale 20,"), 1u) << log;
}

// A dialer that writes `bytes` as its one frame, raw, and returns the status
// the acceptor ends the stream with.
class RawFrameDialer final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  RawFrameDialer(const std::string& address, const std::string& bytes)
      : stub_(grpc::CreateChannel(address, grpc::InsecureChannelCredentials())) {
    grpc::Slice slice(bytes.data(), bytes.size());
    request_ = grpc::ByteBuffer(&slice, 1);
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    stub_.PrepareBidiStreamingCall(&context_, "/qnet.v1.Peer/Exchange", grpc::StubOptions(), this);
    StartWrite(&request_);
    StartRead(&response_);
    StartCall();
  }
  void OnWriteDone(bool) override {}  // no half-close: only the acceptor ends the stream
  void OnReadDone(bool ok) override {
    if (ok) StartRead(&response_);
  }
  void OnDone(const grpc::Status& status) override { done_.set_value(status); }
  grpc::Status Result() { return done_.get_future().get(); }

 private:
  grpc::GenericStub stub_;
  grpc::ClientContext context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  std::promise<grpc::Status> done_;
};

TEST(PeerLinksTest, GarbageOrAFirstFrameThatIsNotAHelloEndsTheStreamWithInvalidArgument) {
  InProcessNetwork net({"a", "b"}, 1.0);
  ASSERT_TRUE(net.ok());
  const std::string b = net[1].listen_address();

  // Not a protobuf at all (field 31 with the invalid wire type 7).
  grpc::Status garbage = RawFrameDialer(b, std::string("\xff\xff\xff\xff", 4)).Result();
  EXPECT_EQ(garbage.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << garbage.error_message();
  EXPECT_NE(garbage.error_message().find("frame 1 of this stream is not a qnet.v1.PeerFrame"), std::string::npos)
      << garbage.error_message();

  v1::PeerFrame heartbeat;
  heartbeat.mutable_heartbeat();
  grpc::Status no_hello = RawFrameDialer(b, heartbeat.SerializeAsString()).Result();
  EXPECT_EQ(no_hello.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << no_hello.error_message();
  EXPECT_NE(no_hello.error_message().find("must be a Hello"), std::string::npos) << no_hello.error_message();

  // The daemon serves on: its real neighbour connects.
  ASSERT_TRUE(WaitUntil("a - b up", [&] { return Connected(net[0], "b") && Connected(net[1], "a"); }));
}

// A neighbour that sends frames faster than --max-peer-frames-per-second
// has its stream closed with RESOURCE_EXHAUSTED; one within it is served.
TEST(PeerLinksTest, ANeighbourFloodingFramesHasItsStreamClosedWithResourceExhausted) {
  constexpr double kLimit = 50;
  InProcessNetwork net({"a", "b"}, 1.0, [](DaemonOptions& o) { o.peer_timing.max_frames_per_second = kLimit; });
  ASSERT_TRUE(net.ok());
  ASSERT_TRUE(WaitUntil("a - b up", [&] { return Connected(net[0], "b") && Connected(net[1], "a"); }));
  ASSERT_TRUE(StopAForAPoser(net));

  const TimeLine b_time_line = TimeLineOf(net[1]);
  // As a (a sorts lower, so it dials): a Hello, then up to `heartbeats`
  // heartbeats as fast as the stream takes them; the status b ends it with.
  auto stub = v1::Peer::NewStub(grpc::CreateChannel(net[1].listen_address(), grpc::InsecureChannelCredentials()));
  auto pose_as_a = [&](int heartbeats, int* written) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto stream = stub->Exchange(&context);
    v1::PeerFrame frame;
    frame.mutable_hello()->set_node("a");
    frame.mutable_hello()->set_network("testnet");
    frame.mutable_hello()->set_protocol_version(kPeerProtocolVersion);
    frame.mutable_hello()->set_time_scale(b_time_line.time_scale);
    frame.mutable_hello()->set_epoch_unix_ns(b_time_line.epoch_unix_ns);
    if (!stream->Write(frame)) return stream->Finish();
    frame.mutable_heartbeat();
    *written = 0;
    while (*written < heartbeats && stream->Write(frame)) ++*written;
    v1::PeerFrame reply;
    while (stream->Read(&reply)) {
    }
    return stream->Finish();
  };
  // At most 100000: beyond any flow-control window.
  int written = 0;
  grpc::Status closed = pose_as_a(100000, &written);
  const auto cut_at = std::chrono::steady_clock::now();
  EXPECT_EQ(closed.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << closed.error_message();
  EXPECT_NE(closed.error_message().find("neighbour 'a' sent frames faster than 50 per second"), std::string::npos)
      << closed.error_message();
  EXPECT_NE(closed.error_message().find("--max-peer-frames-per-second"), std::string::npos);
  EXPECT_LT(written, 100000) << "b never closed the stream";
  const NeighbourState flooded = StateOf(net[1], "a");
  EXPECT_EQ(flooded.frame_limit_closes, 1u);
  // The bucket holds a second's worth: b took about that many before closing.
  EXPECT_GE(flooded.frames_received, kLimit);
  EXPECT_FALSE(Connected(net[1], "a"));

  // The bucket outlives the stream: 40 frames at once from a new stream,
  // within the 50 a full bucket holds, are still too many while it refills
  // (at most 25 within half a second of the cut).
  int again = 0;
  const bool soon = std::chrono::steady_clock::now() - cut_at < std::chrono::milliseconds(500);
  grpc::Status reconnected = pose_as_a(40, &again);
  if (soon) {
    EXPECT_EQ(reconnected.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << "a reconnect refilled the bucket: " << reconnected.error_message();
    EXPECT_EQ(StateOf(net[1], "a").frame_limit_closes, 2u);
  }
  const uint64_t closes = StateOf(net[1], "a").frame_limit_closes;

  // After a second the bucket is full again, and the real a, back, sends its
  // start-up frames and heartbeats (every 200 ms here) well within the
  // limit: its link stays up.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  net.Restart(0, "127.0.0.1:0");
  ASSERT_TRUE(WaitUntil("a - b up again", [&] { return Connected(net[0], "b") && Connected(net[1], "a"); },
                        std::chrono::seconds(20)));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_TRUE(Connected(net[1], "a"));
  EXPECT_EQ(StateOf(net[1], "a").frame_limit_closes, closes);
}

TEST(PeerLinksTest, GetStatusReportsNeighbours) {
  InProcessNetwork net({"a", "b", "c"}, 5.0, UseRecordingStack);
  ASSERT_TRUE(net.ok());
  ASSERT_TRUE(WaitUntil("both links of b up", [&] { return Connected(net[1], "a") && Connected(net[1], "c"); }));
  // One memory slot taken on b's device: status counts it.
  ASSERT_TRUE(net[1].loop().Call([&] { return net[1].stack().device().Allocate().ok(); }));
  auto stub = v1::Node::NewStub(grpc::CreateChannel(net[1].listen_address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  v1::GetStatusResponse status;
  ASSERT_TRUE(stub->GetStatus(&context, v1::GetStatusRequest(), &status).ok());
  EXPECT_EQ(status.node(), "b");
  EXPECT_EQ(status.network(), "testnet");
  EXPECT_EQ(status.time_scale(), 1.0);
  EXPECT_EQ(status.listen_address(), net[1].listen_address());
  EXPECT_EQ(status.memory_qubits(), 2u);
  EXPECT_EQ(status.memory_qubits_in_use(), 1u);
  EXPECT_EQ(status.qubits_held(), 0u);
  ASSERT_EQ(status.neighbours_size(), 2);
  for (const auto& n : status.neighbours()) {
    EXPECT_TRUE(n.connected()) << n.name();
    EXPECT_DOUBLE_EQ(n.classical_delay_s(), 5.0 / 2e5);
  }
}

TEST(PeerLinksTest, ATakenPortFailsTheStartClearly) {
  InProcessNetwork net({"a", "b"});
  ASSERT_TRUE(net.ok());
  auto second = Daemon::Start(net.Options("b", net[0].listen_address()));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("cannot listen on " + net[0].listen_address()), std::string::npos)
      << second.status();
}

// Asks the server reflection service to list services, with hand-encoded
// grpc.reflection.v1alpha messages (their generated code is not installed):
// ServerReflectionRequest{list_services: ""} is the bytes 3a 00; the answer's
// raw bytes contain the service names.
class ReflectionProbe final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit ReflectionProbe(const std::string& address)
      : stub_(grpc::CreateChannel(address, grpc::InsecureChannelCredentials())) {
    static const char kListServices[] = {0x3a, 0x00};
    grpc::Slice slice(kListServices, sizeof(kListServices));
    request_ = grpc::ByteBuffer(&slice, 1);
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    stub_.PrepareBidiStreamingCall(&context_, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                   grpc::StubOptions(), this);
    StartWrite(&request_);
    StartRead(&response_);
    StartCall();
  }
  void OnWriteDone(bool) override { StartWritesDone(); }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    std::vector<grpc::Slice> slices;
    if (response_.Dump(&slices).ok()) {
      for (const auto& slice : slices) answer_.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
    StartRead(&response_);
  }
  void OnDone(const grpc::Status& status) override { done_.set_value(status); }
  std::string Answer() {
    grpc::Status status = done_.get_future().get();
    return status.ok() ? answer_ : "error: " + status.error_message();
  }

 private:
  grpc::GenericStub stub_;
  grpc::ClientContext context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  std::string answer_;
  std::promise<grpc::Status> done_;
};

TEST(PeerLinksTest, ServesHealthCheckingAndReflection) {
  InProcessNetwork net({"a"});
  ASSERT_TRUE(net.ok());
  auto serving = cli::CheckServing(net[0].listen_address());
  ASSERT_TRUE(serving.ok()) << serving.status();
  EXPECT_TRUE(*serving);
  ReflectionProbe probe(net[0].listen_address());
  std::string answer = probe.Answer();
  for (const char* service : {"qnet.v1.Node", "qnet.v1.Peer", "qnet.v1.HardwarePlane", "grpc.health.v1.Health"}) {
    EXPECT_NE(answer.find(service), std::string::npos) << service << " not in: " << answer;
  }
}

}  // namespace
}  // namespace qnet::daemon
