// Channels between daemons (MakePeerChannel) on a loaded machine: a daemon
// whose connection handshake is slow is waited for, not given up on.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "daemon/peer_directory.h"
#include "gtest/gtest.h"
#include "in_process_daemons.h"
#include "qnet/v1/node_service.grpc.pb.h"

namespace qnet::daemon {
namespace {

using testing::InProcessNetwork;

// A TCP proxy on 127.0.0.1 that connects each accepted client to `target`
// only after `delay`, then relays bytes both ways: the server's HTTP/2
// SETTINGS reach the client `delay` late, as from a daemon that is slow to
// be scheduled.
class DelayingProxy {
 public:
  DelayingProxy(const std::string& target, std::chrono::milliseconds delay) : delay_(delay) {
    target_port_ = std::stoi(target.substr(target.rfind(':') + 1));
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address = Loopback(0);
    EXPECT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(listen(listener_, 8), 0);
    socklen_t length = sizeof(address);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~DelayingProxy() {
    stop_ = true;
    thread_.join();
    close(listener_);
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  static sockaddr_in Loopback(int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
  }

  // One client at a time: gRPC opens one connection per attempt.
  void Run() {
    while (!stop_) {
      pollfd p{listener_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int client = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      std::this_thread::sleep_for(delay_);
      int server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in target = Loopback(target_port_);
      if (connect(server, reinterpret_cast<sockaddr*>(&target), sizeof(target)) == 0) Relay(client, server);
      close(server);
      close(client);
    }
  }

  void Relay(int a, int b) {
    char buffer[16384];
    while (!stop_) {
      pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (poll(fds, 2, 50) <= 0) continue;
      for (int i = 0; i < 2; ++i) {
        if (fds[i].revents == 0) continue;
        const ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
        if (n <= 0) return;  // one side closed
        if (write(fds[1 - i].fd, buffer, static_cast<size_t>(n)) != n) return;
      }
    }
  }

  const std::chrono::milliseconds delay_;
  int target_port_ = 0;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(PeerChannelTest, ADaemonSlowToHandshakeIsReachedNotGivenUpOn) {
  InProcessNetwork net({"a", "b"});
  ASSERT_TRUE(net.ok());
  // 400 ms: longer than the 100 ms gRPC gave a connection attempt when the
  // channel's minimum reconnect backoff (which doubles as the connect
  // timeout) was 100 ms; every attempt failed then.
  DelayingProxy proxy(net[0].listen_address(), std::chrono::milliseconds(400));
  auto stub = v1::Node::NewStub(MakePeerChannel(proxy.address()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(4));
  v1::GetStatusResponse status;
  grpc::Status s = stub->GetStatus(&context, v1::GetStatusRequest(), &status);
  ASSERT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
  EXPECT_EQ(status.node(), "a");
}

}  // namespace
}  // namespace qnet::daemon
