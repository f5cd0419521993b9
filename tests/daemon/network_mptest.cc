// Real qnetd processes started through the launcher, observed only over gRPC.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "cli/launcher.h"
#include "gtest/gtest.h"
#include "physical/state_backend.h"
#include "qnet/v1/hardware_service.grpc.pb.h"
#include "qnet/v1/node_service.grpc.pb.h"
#include "security/client_endpoints.h"
#include "security/grpc_tls.h"
#include "tests/common/multiprocess_test.h"
#include "tests/daemon/node_queries.h"

namespace qnet::daemon {
namespace {

using cli::LaunchOptions;
using cli::LocalNetwork;
using qnet::testing::Scaled;
using qnet::testing::WaitUntil;
namespace fs = std::filesystem;

class NetworkMpTest : public qnet::testing::MultiProcessTest {
 protected:
  LaunchOptions Options(const std::string& example) const { return LaunchOptionsFor(Example(example)); }
};

absl::StatusOr<v1::GetStatusResponse> GetStatus(LocalNetwork& net, const std::string& node) {
  auto address = net.Address(node);
  if (!address.ok()) return address.status();
  return testing::GetStatus(*address);
}

// Whether `node` reports `neighbour` connected (nullopt: no answer).
std::optional<bool> SeesConnected(LocalNetwork& net, const std::string& node, const std::string& neighbour) {
  auto status = GetStatus(net, node);
  if (!status.ok()) return std::nullopt;
  for (const auto& n : status->neighbours()) {
    if (n.name() == neighbour) return n.connected();
  }
  return std::nullopt;
}

std::string ReadFileOrEmpty(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool AllLinksUp(LocalNetwork& net) {
  for (const std::string& node : net.nodes()) {
    auto address = net.Address(node);
    if (!address.ok() || !testing::AllNeighboursConnected(*address)) return false;
  }
  return true;
}

TEST_F(NetworkMpTest, Chain3ComesUpRecoversFromACrashAndStopsCleanly) {
  auto started = LocalNetwork::Start(Options("chain3.yaml"));
  ASSERT_TRUE(started.ok()) << started.status();
  LocalNetwork& net = **started;
  EXPECT_EQ(net.network_name(), "chain3");
  EXPECT_EQ(net.nodes(), (std::vector<std::string>{"alice", "bob", "charlie"}));
  EXPECT_EQ(net.seed(), qnet::testing::TestSeed());  // the run's, not the file's
  EXPECT_NE(cli::FileTail((fs::path(net.state_dir()) / "network").string()).find(absl::StrCat("\nseed ", net.seed())),
            std::string::npos);
  for (const char* file : {"peers", "network", "alice.pid", "alice.address", "alice.log", "charlie.log"}) {
    EXPECT_TRUE(fs::exists(fs::path(net.state_dir()) / file)) << file;
  }
  for (const std::string& node : net.nodes()) {
    auto serving = cli::CheckServing(*net.Address(node));
    ASSERT_TRUE(serving.ok() && *serving) << node;
  }
  ASSERT_TRUE(WaitUntil("every link of chain3 up", [&] { return AllLinksUp(net); })) << net.LogTail("alice");

  auto bob = GetStatus(net, "bob");
  ASSERT_TRUE(bob.ok());
  EXPECT_EQ(bob->node(), "bob");
  EXPECT_EQ(bob->network(), "chain3");
  EXPECT_EQ(bob->memory_qubits(), 4u);
  ASSERT_EQ(bob->neighbours_size(), 2);
  EXPECT_EQ(bob->neighbours(0).name(), "alice");
  EXPECT_EQ(bob->neighbours(1).name(), "charlie");
  EXPECT_EQ(bob->pid(), *net.Pid("bob"));

  // The hardware plane answers a node of the network (bob's certificate): a
  // qubit nobody made is not found. The operator is no node: refused.
  {
    auto bob_tls = security::LoadTls(net.pki_dir(), {.network = "chain3", .role = security::Role::kNode,
                                                     .node = "bob", .name = "bob"});
    ASSERT_TRUE(bob_tls.ok()) << bob_tls.status();
    auto stub = v1::HardwarePlane::NewStub(security::OpenChannel(*net.Address("alice"), "alice", &*bob_tls));
    grpc::ClientContext context;
    v1::MoveGroupRequest request;
    request.set_qubit_id(physical::MakeQubitId(0, 12345));
    request.set_requester("bob");
    v1::MoveGroupResponse response;
    grpc::Status s = stub->MoveGroup(&context, request, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_TRUE(response.not_found());

    auto as_operator = v1::HardwarePlane::NewStub(security::ClientChannel(*net.Address("alice")));
    grpc::ClientContext context2;
    s = as_operator->MoveGroup(&context2, request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
    EXPECT_NE(s.error_message().find("only nodes use the hardware plane"), std::string::npos) << s.error_message();
  }

  // Crash bob: both neighbours notice.
  auto crashed = net.StopNode("bob", SIGKILL);
  ASSERT_TRUE(crashed.ok());
  EXPECT_EQ(crashed->signal, SIGKILL);
  ASSERT_TRUE(WaitUntil("alice and charlie to see bob down", [&] {
    return SeesConnected(net, "alice", "bob") == false && SeesConnected(net, "charlie", "bob") == false;
  }));

  // Restart it: the links come back.
  ASSERT_TRUE(net.StartNode("bob").ok());
  ASSERT_TRUE(WaitUntil("every link up after bob's restart", [&] { return AllLinksUp(net); })) << net.LogTail("bob");
  // The restarted daemon's clock continues the network's time line.
  auto restarted = GetStatus(net, "bob");
  ASSERT_TRUE(restarted.ok());
  EXPECT_GT(restarted->simulated_time_s(), restarted->uptime_s());

  std::vector<pid_t> pids;
  for (const std::string& node : net.nodes()) pids.push_back(*net.Pid(node));
  absl::Status stopped = net.StopAll();
  EXPECT_TRUE(stopped.ok()) << stopped;  // every daemon exited 0 on SIGTERM
  for (pid_t pid : pids) EXPECT_NE(kill(pid, 0), 0) << "pid " << pid << " still exists";
  EXPECT_FALSE(fs::exists(fs::path(net.state_dir()) / "alice.pid"));
}

// While a node is down any process may take its port (connect() draws
// ephemeral ports from the same range); CI saw it once. The restart then
// takes fresh ports and says where.
TEST_F(NetworkMpTest, ARestartWhoseMetricsPortWasTakenMovesToAFreshPortAndSaysSo) {
  auto started = LocalNetwork::Start(Options("chain3.yaml"));
  ASSERT_TRUE(started.ok()) << started.status();
  LocalNetwork& net = **started;
  ASSERT_TRUE(WaitUntil("every link of chain3 up", [&] { return AllLinksUp(net); }));
  const std::string old_url = net.MetricsUrl("bob");
  const int old_port = std::stoi(old_url.substr(old_url.rfind(':') + 1));
  ASSERT_TRUE(net.StopNode("bob", SIGKILL).ok());

  const int squatter = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(squatter, 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(static_cast<uint16_t>(old_port));
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(squatter, reinterpret_cast<sockaddr*>(&at), sizeof at), 0) << std::strerror(errno);
  ASSERT_EQ(listen(squatter, 1), 0);

  absl::Status restarted = net.StartNode("bob");
  close(squatter);
  ASSERT_TRUE(restarted.ok()) << restarted;
  const std::string new_url = net.MetricsUrl("bob");
  EXPECT_NE(new_url, old_url);
  const std::string log = ReadFileOrEmpty(fs::path(net.state_dir()) / "bob.log");
  EXPECT_NE(log.find(absl::StrCat("the metrics endpoint cannot listen on 127.0.0.1:", old_port,
                                  ": Address already in use")),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("launcher: node bob restarted with metrics port"), std::string::npos) << log;
  const std::string prometheus = ReadFileOrEmpty(net.PrometheusConfigPath());
  const int new_port = std::stoi(new_url.substr(new_url.rfind(':') + 1));
  EXPECT_NE(prometheus.find(absl::StrCat("'127.0.0.1:", new_port, "'")), std::string::npos)
      << prometheus;
  EXPECT_EQ(prometheus.find(absl::StrCat("'127.0.0.1:", old_port, "'")), std::string::npos) << prometheus;
  EXPECT_TRUE(WaitUntil("every link up after bob's restart", [&] { return AllLinksUp(net); }));
}

TEST_F(NetworkMpTest, SilentNeighbourIsDeclaredDownAndComesBack) {
  auto started = LocalNetwork::Start(Options("chain3.yaml"));
  ASSERT_TRUE(started.ok()) << started.status();
  LocalNetwork& net = **started;
  ASSERT_TRUE(WaitUntil("every link of chain3 up", [&] { return AllLinksUp(net); }));
  // A stopped process keeps its sockets open: only heartbeats reveal it.
  pid_t charlie = *net.Pid("charlie");
  ASSERT_EQ(kill(charlie, SIGSTOP), 0);
  const ::testing::AssertionResult noticed =
      WaitUntil("bob to see the stopped charlie down", [&] { return SeesConnected(net, "bob", "charlie") == false; });
  kill(charlie, SIGCONT);
  EXPECT_TRUE(noticed);
  EXPECT_TRUE(WaitUntil("every link up after SIGCONT", [&] { return AllLinksUp(net); }));
}

TEST_F(NetworkMpTest, Ring6ComesUpAndACleanStopIsSeenByBothNeighbours) {
  auto started = LocalNetwork::Start(Options("ring6.yaml"));
  ASSERT_TRUE(started.ok()) << started.status();
  LocalNetwork& net = **started;
  ASSERT_EQ(net.nodes().size(), 6u);
  ASSERT_TRUE(WaitUntil("every link of ring6 up", [&] { return AllLinksUp(net); }));
  auto hague = GetStatus(net, "hague");
  ASSERT_TRUE(hague.ok());
  std::vector<std::string> neighbours;
  for (const auto& n : hague->neighbours()) neighbours.push_back(n.name());
  EXPECT_EQ(neighbours, (std::vector<std::string>{"leiden", "delft"}));

  auto stopped = net.StopNode("hague");  // SIGTERM
  ASSERT_TRUE(stopped.ok());
  EXPECT_TRUE(stopped->clean()) << stopped->Describe();
  EXPECT_TRUE(WaitUntil("leiden and delft to see hague down", [&] {
    return SeesConnected(net, "leiden", "hague") == false && SeesConnected(net, "delft", "hague") == false;
  }));
  EXPECT_EQ(SeesConnected(net, "leiden", "amsterdam"), true);
}

TEST_F(NetworkMpTest, DetachedNetworkOutlivesItsLauncherAndStopsFromTheStateDir) {
  LaunchOptions o = Options("chain3.yaml");
  o.detached = true;  // as `qnetctl up`
  std::vector<pid_t> pids;
  {
    auto started = LocalNetwork::Start(o);
    ASSERT_TRUE(started.ok()) << started.status();
    for (const std::string& node : (*started)->nodes()) pids.push_back(*(*started)->Pid(node));
  }
  for (pid_t pid : pids) EXPECT_EQ(kill(pid, 0), 0) << "pid " << pid << " did not outlive the launcher";
  // A second launch of the same network into the same state dir is refused.
  auto again = LocalNetwork::Start(o);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists) << again.status();

  absl::Status stopped = cli::StopStateDir(state_dir_.string(), Scaled(absl::Seconds(5)));  // as `qnetctl down`
  EXPECT_TRUE(stopped.ok()) << stopped;
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);  // they are still this test's children
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "pid " << pid << " status " << status;
  }
}

TEST_F(NetworkMpTest, ADaemonThatFailsToStartFailsTheLaunchWithItsLog) {
  LaunchOptions o = Options("chain3.yaml");
  o.extra_args = {"--log-level", "loud"};
  o.detached = true;  // a failed launch is torn down all the same
  auto started = LocalNetwork::Start(o);
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.status().message().find("unknown log level 'loud'"), std::string::npos) << started.status();
  EXPECT_NE(started.status().message().find("exited with code 2"), std::string::npos) << started.status();
  for (const char* node : {"alice", "bob", "charlie"}) {
    EXPECT_FALSE(fs::exists(state_dir_ / absl::StrCat(node, ".pid"))) << node << " left running";
  }
}

}  // namespace
}  // namespace qnet::daemon
