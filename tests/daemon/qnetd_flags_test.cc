// qnetd's command-line parsing and help text.
#include "daemon/qnetd_flags.h"

#include "daemon/peer_links.h"

#include "gtest/gtest.h"

namespace qnet::daemon {
namespace {

TEST(QnetdFlagsTest, ParsesEveryFlagInBothForms) {
  auto flags = ParseQnetdFlags({"--network", "net.yaml", "--node=alice", "--listen", "0.0.0.0:7000", "--peers",
                                "peers.txt", "--peer", "bob=127.0.0.1:7001", "--time-scale=0.001", "--seed", "9",
                                "--log-level", "debug", "--ready-file", "ready", "--epoch-unix-ns", "1700000000000000000",
                                "--keep-hold", "2.5", "--peer-timeout=0.5", "--pki", "certs",
                                "--max-requests-per-client", "5", "--max-peer-frames-per-second=0"});
  ASSERT_TRUE(flags.ok()) << flags.status();
  EXPECT_EQ(flags->network_file, "net.yaml");
  EXPECT_EQ(flags->node, "alice");
  EXPECT_EQ(flags->listen, "0.0.0.0:7000");
  EXPECT_EQ(flags->peers_file, "peers.txt");
  EXPECT_EQ(flags->peers.at("bob"), "127.0.0.1:7001");
  EXPECT_DOUBLE_EQ(flags->time_scale, 0.001);
  EXPECT_EQ(flags->seed, 9u);
  EXPECT_EQ(flags->log_level, LogLevel::kDebug);
  EXPECT_EQ(flags->ready_file, "ready");
  EXPECT_EQ(flags->epoch_unix_ns, int64_t{1700000000000000000});
  EXPECT_DOUBLE_EQ(flags->keep_hold_s, 2.5);
  EXPECT_EQ(flags->max_requests_per_client, 5u);
  EXPECT_DOUBLE_EQ(flags->max_peer_frames_per_second, 0);
  EXPECT_DOUBLE_EQ(flags->peer_timeout_s, 0.5);
  EXPECT_EQ(flags->pki_dir, "certs");
  EXPECT_FALSE(flags->insecure_local_only);
}

TEST(QnetdFlagsTest, ACertificateOrInsecureLocalOnlyIsRequired) {
  const std::vector<std::string> base = {"--network", "n", "--node", "a"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return ParseQnetdFlags(args);
  };
  EXPECT_NE(with({}).status().message().find("--insecure-local-only"), std::string::npos);
  EXPECT_NE(with({}).status().message().find("--pki"), std::string::npos);
  EXPECT_TRUE(with({"--insecure-local-only"}).ok());
  auto files = with({"--tls-cert", "c", "--tls-key", "k", "--tls-ca", "a"});
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(files->tls_cert, "c");
  EXPECT_EQ(files->tls_key, "k");
  EXPECT_EQ(files->tls_ca, "a");
  EXPECT_NE(with({"--tls-cert", "c"}).status().message().find("go together"), std::string::npos);
  EXPECT_NE(with({"--pki", "d", "--insecure-local-only"}).status().message().find("contradicts"), std::string::npos);
  EXPECT_NE(with({"--pki", "d", "--tls-cert", "c", "--tls-key", "k", "--tls-ca", "a"}).status().message().find("not both"),
            std::string::npos);
}

TEST(QnetdFlagsTest, DefaultsAndRequiredFlags) {
  auto flags = ParseQnetdFlags({"--network", "n.yaml", "--node", "a", "--insecure-local-only"});
  ASSERT_TRUE(flags.ok()) << flags.status();
  EXPECT_EQ(flags->listen, "127.0.0.1:0");
  EXPECT_EQ(flags->time_scale, 1.0);
  EXPECT_FALSE(flags->seed.has_value());
  EXPECT_EQ(flags->log_level, LogLevel::kInfo);
  EXPECT_DOUBLE_EQ(flags->keep_hold_s, 10.0);
  EXPECT_EQ(flags->max_requests_per_client, 64u);
  EXPECT_DOUBLE_EQ(flags->max_peer_frames_per_second, kDefaultMaxPeerFramesPerSecond);
  EXPECT_DOUBLE_EQ(flags->peer_timeout_s, 3.0);
  EXPECT_NE(ParseQnetdFlags({"--node", "a"}).status().message().find("--network"), std::string::npos);
  EXPECT_NE(ParseQnetdFlags({"--network", "n"}).status().message().find("--node"), std::string::npos);
  EXPECT_TRUE(ParseQnetdFlags({"--help"})->help);
}

TEST(QnetdFlagsTest, BadValuesNameTheFlag) {
  const std::vector<std::string> base = {"--network", "n", "--node", "a", "--insecure-local-only"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return ParseQnetdFlags(args).status();
  };
  EXPECT_NE(with({"--time-scale", "0"}).message().find("--time-scale"), std::string::npos);
  EXPECT_NE(with({"--time-scale", "fast"}).message().find("--time-scale"), std::string::npos);
  EXPECT_NE(with({"--seed", "-1"}).message().find("--seed"), std::string::npos);
  EXPECT_NE(with({"--keep-hold", "-1"}).message().find("--keep-hold"), std::string::npos);
  EXPECT_NE(with({"--keep-hold", "long"}).message().find("--keep-hold"), std::string::npos);
  EXPECT_NE(with({"--peer-timeout", "0"}).message().find("--peer-timeout"), std::string::npos);
  EXPECT_NE(with({"--max-requests-per-client", "0"}).message().find("--max-requests-per-client"), std::string::npos);
  EXPECT_NE(with({"--max-requests-per-client", "many"}).message().find("1 to 100000"), std::string::npos);
  EXPECT_NE(with({"--max-peer-frames-per-second", "-1"}).message().find("0 (no limit) or a number from 1 to 10000000"),
            std::string::npos);
  EXPECT_NE(with({"--max-peer-frames-per-second", "0.5"}).message().find("--max-peer-frames-per-second"),
            std::string::npos);
  EXPECT_NE(with({"--max-peer-frames-per-second", "nan"}).message().find("--max-peer-frames-per-second"),
            std::string::npos);
  EXPECT_NE(with({"--peer-timeout", "soon"}).message().find("--peer-timeout"), std::string::npos);
  EXPECT_NE(with({"--log-level", "loud"}).message().find("loud"), std::string::npos);
  EXPECT_NE(with({"--peer", "bob"}).message().find("--peer"), std::string::npos);
  EXPECT_NE(with({"--listen", "7000"}).message().find("HOST:PORT"), std::string::npos);
  EXPECT_NE(with({"--colour", "blue"}).message().find("--colour"), std::string::npos);
  EXPECT_NE(with({"--seed"}).message().find("needs a value"), std::string::npos);
}

TEST(QnetdFlagsTest, HelpMentionsEveryFlag) {
  std::string usage = QnetdUsage();
  for (const char* flag : {"--network", "--node", "--listen", "--peers", "--peer NAME", "--time-scale", "--seed",
                           "--log-level", "--ready-file", "--epoch-unix-ns", "--keep-hold", "--peer-timeout", "--pki", "--tls-cert", "--tls-key",
                           "--tls-ca", "--insecure-local-only", "--help"}) {
    EXPECT_NE(usage.find(flag), std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace qnet::daemon
