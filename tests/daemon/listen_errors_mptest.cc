// qnetd started on an address it cannot have: a port another process holds
// (one line that names the address and the reason, not gRPC's internal log
// of nested errors), or, without TLS, a name that only looks like loopback.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/common/run_command.h"

namespace qnet::daemon {
namespace {

std::string Qnetd(const std::string& listen, int* exit_code) {
  return qnet::testing::RunCommand(
      absl::StrCat(QNETD_PATH, " --network ", QNET_SOURCE_DIR, "/examples/ideal-pair.yaml --node alice",
                   " --insecure-local-only --metrics-listen off --listen ", listen, " 2>&1"),
      exit_code);
}

TEST(ListenErrorsMpTest, ATakenPortIsSaidPlainly) {
  const int holder = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(holder, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(listen(holder, 1), 0);
  socklen_t length = sizeof address;
  ASSERT_EQ(getsockname(holder, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const std::string taken = absl::StrCat("127.0.0.1:", ntohs(address.sin_port));

  int exit_code = -1;
  const std::string out = Qnetd(taken, &exit_code);
  close(holder);
  EXPECT_EQ(exit_code, 1) << out;
  EXPECT_EQ(out, absl::StrCat("qnetd: error: cannot listen on ", taken,
                              ": Address already in use (another process has the port: pick another, or 0 for any "
                              "free one)\n"));
}

TEST(ListenErrorsMpTest, ALoopbackLookalikeNameIsNotLoopback) {
  int exit_code = -1;
  const std::string out = Qnetd("127.0.0.1.example.invalid:7000", &exit_code);
  EXPECT_EQ(exit_code, 1) << out;
  EXPECT_NE(out.find("without TLS a daemon listens on the loopback interface only"), std::string::npos) << out;
}

}  // namespace
}  // namespace qnet::daemon
