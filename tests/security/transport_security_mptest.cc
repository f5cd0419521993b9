// Mutual TLS and authorisation on every port of a network started like
// `qnetctl up` (through the launcher): a hostile Python grpcio client is
// refused everywhere it should be, the network keeps serving, and qnetd
// refuses to start without a certificate unless told it is local-only.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "cli/entangle_client.h"
#include "cli/launcher.h"
#include "gtest/gtest.h"
#include "security/pki.h"
#include "tests/common/multiprocess_test.h"
#include "tests/common/run_command.h"
#include "tests/daemon/node_queries.h"

namespace qnet::security {
namespace {
namespace fs = std::filesystem;

class TransportSecurityMpTest : public qnet::testing::MultiProcessTest {};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST_F(TransportSecurityMpTest, AHostileLocalClientIsRefusedOnEveryPortAndTheNetworkServesOn) {
  auto started = cli::LocalNetwork::Start(LaunchOptionsFor(Example("chain3.yaml")));
  ASSERT_TRUE(started.ok()) << started.status();
  cli::LocalNetwork& net = **started;
  const fs::path pki = net.pki_dir();
  ASSERT_TRUE(fs::exists(pki / "ca.crt"));
  ASSERT_TRUE(IssueCertificate(pki, {.network = "chain3", .role = Role::kApp, .node = "alice", .name = "vpn1"}).ok());
  // Another CA with the same network and node names: only the CA differs.
  const fs::path foreign = fs::path(state_dir_) / "foreign-pki";
  ASSERT_TRUE(InitNetworkPki(foreign, "chain3", {"alice", "bob", "charlie"}).ok());

  std::string command = absl::StrCat("/usr/bin/python3 ", QNET_SOURCE_DIR, "/tests/security/hostile_client.py ",
                                     pki.string(), " ", foreign.string(), " chain3");
  for (const std::string& node : net.nodes()) absl::StrAppend(&command, " ", node, "=", *net.Address(node));
  int exit_code = -1;
  const std::string out = qnet::testing::RunCommand(command + " 2>&1", &exit_code);
  std::cout << out;
  EXPECT_EQ(exit_code, 0) << "the hostile client's checks (above) failed";
  EXPECT_NE(out.find("all checks passed"), std::string::npos);

  // The refusals are logged by the daemons, naming who was refused.
  EXPECT_NE(ReadAll(fs::path(state_dir_) / "bob.log").find("refused"), std::string::npos);
  // ...and the network still serves its operator: every link up, pairs flow.
  ASSERT_TRUE(qnet::testing::WaitUntil("every link up", [&] {
    for (const std::string& node : net.nodes()) {
      if (!daemon::testing::AllNeighboursConnected(*net.Address(node))) return false;
    }
    return true;
  }));
  v1::EntangleRequest request;
  request.set_remote_node("charlie");
  request.set_pairs(3);
  request.set_type(v1::EntangleRequest::MEASURE);
  auto pairs = cli::RunEntangle(*net.Address("alice"), request, absl::Seconds(60));
  ASSERT_TRUE(pairs.ok()) << pairs.status();
  EXPECT_EQ(pairs->pairs.size(), 3u);
  auto status = cli::GetStatus(*net.Address("alice"));
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->transport_security(), "mutual TLS (CA of network chain3)");
}

// gRPC's typed handlers answer a request they cannot parse with
// UNIMPLEMENTED and no message; qnet's services parse requests themselves
// (daemon/raw_messages.h). kme-chain has key managers, so all three services
// with requests are there.
TEST_F(TransportSecurityMpTest, AnUnparseableRequestGetsInvalidArgumentOnEveryMethodAndTheDaemonsServeOn) {
  auto started = cli::LocalNetwork::Start(LaunchOptionsFor(Example("kme-chain.yaml")));
  ASSERT_TRUE(started.ok()) << started.status();
  cli::LocalNetwork& net = **started;
  std::string command = absl::StrCat("/usr/bin/python3 ", QNET_SOURCE_DIR, "/tests/security/unparseable_requests.py ",
                                     net.pki_dir());
  for (const std::string& node : net.nodes()) absl::StrAppend(&command, " ", node, "=", *net.Address(node));
  int exit_code = -1;
  const std::string out = qnet::testing::RunCommand(command + " 2>&1", &exit_code);
  std::cout << out;
  EXPECT_EQ(exit_code, 0) << "the checks above failed";
  EXPECT_NE(out.find("all checks passed"), std::string::npos);
  // 15 methods x 3 kinds of garbage + 2 checks at alice and charlie (key
  // managers); bob has no KeyManagement service, so 2 methods fewer.
  size_t passed = 0;
  for (size_t at = out.find("ok  "); at != std::string::npos; at = out.find("ok  ", at + 1)) ++passed;
  EXPECT_EQ(passed, 2u * (15 * 3 + 2) + (13 * 3 + 2));
}

TEST_F(TransportSecurityMpTest, QnetdRefusesToStartWithoutACertificateUnlessLocalOnly) {
  const std::string file = Example("ideal-pair.yaml");
  int exit_code = -1;
  std::string out = qnet::testing::RunCommand(
      absl::StrCat(QNETD_PATH, " --network ", file, " --node alice 2>&1"), &exit_code);
  EXPECT_EQ(exit_code, 2) << out;
  EXPECT_NE(out.find("no certificate"), std::string::npos) << out;
  EXPECT_NE(out.find("--insecure-local-only"), std::string::npos) << out;
  out = qnet::testing::RunCommand(
      absl::StrCat(QNETD_PATH, " --network ", file, " --node alice --insecure-local-only --listen 0.0.0.0:0 2>&1"),
      &exit_code);
  EXPECT_EQ(exit_code, 1) << out;
  EXPECT_NE(out.find("loopback interface only"), std::string::npos) << out;
  // A certificate of another node is refused at start.
  const fs::path pki = fs::path(state_dir_) / "pki";
  ASSERT_TRUE(InitNetworkPki(pki, "ideal-pair", {"alice", "bob"}).ok());
  out = qnet::testing::RunCommand(
      absl::StrCat(QNETD_PATH, " --network ", file, " --node alice --tls-ca ", (pki / "ca.crt").string(),
                   " --tls-cert ", (pki / "node-bob.crt").string(), " --tls-key ", (pki / "node-bob.key").string(),
                   " 2>&1"),
      &exit_code);
  EXPECT_EQ(exit_code, 1) << out;
  EXPECT_NE(out.find("names node bob"), std::string::npos) << out;
}

TEST_F(TransportSecurityMpTest, AnInsecureNetworkSaysSo) {
  cli::LaunchOptions options = LaunchOptionsFor(Example("ideal-pair.yaml"));
  options.insecure = true;
  auto started = cli::LocalNetwork::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_FALSE(fs::exists(fs::path(state_dir_) / "pki"));
  auto status = cli::GetStatus(*(*started)->Address("alice"));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_NE(status->transport_security().find("insecure-local-only"), std::string::npos);
  EXPECT_NE(ReadAll(fs::path(state_dir_) / "alice.log").find("insecure-local-only"), std::string::npos);
}

}  // namespace
}  // namespace qnet::security
