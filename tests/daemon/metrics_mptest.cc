// The daemons' Prometheus endpoints, through the clients people use: curl
// scrapes with the certificates qnetctl up makes (and is refused without
// the right one), and a real Prometheus server (Debian's `prometheus`)
// scrapes a 3-node chain with the configuration qnetctl up writes, and its
// HTTP API shows the pairs each daemon delivered.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cli/entangle_client.h"
#include "cli/launcher.h"
#include "gtest/gtest.h"
#include "qnet/v1/node_service.grpc.pb.h"
#include "security/client_endpoints.h"
#include "security/grpc_tls.h"
#include "security/pki.h"
#include "tests/common/multiprocess_test.h"
#include "tests/common/run_command.h"
#include "tests/daemon/node_queries.h"

extern char** environ;

namespace qnet::daemon {
namespace {

namespace fs = std::filesystem;
using cli::LocalNetwork;
using qnet::testing::RunCommand;
using qnet::testing::Scaled;
using testing::WaitConnected;

constexpr const char* kPrometheus = "/usr/bin/prometheus";

struct HttpAnswer {
  int code = 0;
  std::string body;
};

// curl as a user runs it; `tls` are curl's certificate flags.
HttpAnswer Curl(const std::string& url, const std::string& tls = "", const std::string& extra = "") {
  int rc = 0;
  std::string out = RunCommand(absl::StrCat("curl -sS --max-time 10 -w '\\n%{http_code}' ", tls, " ", extra, " '",
                                            url, "' 2>&1"),
                               &rc);
  HttpAnswer a;
  const size_t last = out.rfind('\n');
  if (rc != 0 || last == std::string::npos || !absl::SimpleAtoi(out.substr(last + 1), &a.code)) {
    ADD_FAILURE() << "curl " << url << " failed (exit " << rc << "): " << out;
    return a;
  }
  a.body = out.substr(0, last);
  return a;
}

std::string CurlCertificate(const fs::path& pki, const std::string& stem) {
  return absl::StrCat("--cacert ", (pki / "ca.crt").string(), " --cert ", (pki / (stem + ".crt")).string(), " --key ",
                      (pki / (stem + ".key")).string());
}

// The samples of a text exposition: "name{labels}" -> value. Fails the test
// on a line that is neither a comment nor a sample.
std::map<std::string, double> ParseExposition(const std::string& text) {
  std::map<std::string, double> samples;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (line.front() == '#') {
      EXPECT_TRUE(absl::StartsWith(line, "# HELP ") || absl::StartsWith(line, "# TYPE ")) << line;
      continue;
    }
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space == absl::string_view::npos || !absl::SimpleAtod(line.substr(space + 1), &value)) {
      ADD_FAILURE() << "not a sample: " << line;
      continue;
    }
    samples[std::string(line.substr(0, space))] = value;
  }
  return samples;
}

// The value of the sample whose name is `name` and whose labels include
// every one of `labels` ("key=\"value\""); nullopt if none, a failure if several.
std::optional<double> Sample(const std::map<std::string, double>& samples, const std::string& name,
                             const std::vector<std::string>& labels) {
  std::optional<double> found;
  for (const auto& [key, value] : samples) {
    if (!absl::StartsWith(key, name + "{")) continue;
    bool all = true;
    for (const std::string& l : labels) all = all && key.find(l) != std::string::npos;
    if (!all) continue;
    EXPECT_FALSE(found.has_value()) << "more than one sample of " << name << " matches";
    found = value;
  }
  return found;
}

using MetricsMpTest = qnet::testing::MultiProcessTest;

v1::EntangleRequest MeasurePairs(const std::string& remote, uint32_t pairs) {
  v1::EntangleRequest request;
  request.set_remote_node(remote);
  request.set_pairs(pairs);
  request.set_type(v1::EntangleRequest::MEASURE);
  request.set_basis(v1::EntangleRequest::BB84);
  request.set_timeout_s(600);
  return request;
}

TEST_F(MetricsMpTest, CurlScrapesWithTheMonitorCertificateAndTheFiguresAreTheRequests) {
  auto net = StartNetwork(LaunchOptionsFor(Example("ideal-pair.yaml"), 10.0));
  ASSERT_NE(net, nullptr);
  const std::string alice = *net->Address("alice");
  ASSERT_TRUE(WaitConnected(alice));
  constexpr uint32_t kPairs = 300;
  auto result = cli::RunEntangle(alice, MeasurePairs("bob", kPairs), Scaled(absl::Seconds(120)));
  ASSERT_TRUE(result.ok()) << result.status() << "\n" << net->LogTail("alice");
  ASSERT_EQ(result->pairs.size(), kPairs);

  const fs::path pki = net->pki_dir();
  const std::string monitor = CurlCertificate(pki, security::CertificateStem(security::DefaultMonitor("ideal-pair")));
  for (const std::string node : {"alice", "bob"}) {
    SCOPED_TRACE(node);
    const std::string url = net->MetricsUrl(node);
    ASSERT_TRUE(absl::StartsWith(url, "https://127.0.0.1:")) << url;
    HttpAnswer scraped = Curl(url, monitor);
    ASSERT_EQ(scraped.code, 200) << scraped.body;
    int rc = 0;
    EXPECT_EQ(RunCommand(absl::StrCat("curl -sS -o /dev/null -w '%{content_type}' ", monitor, " '", url, "'"), &rc),
              "text/plain; version=0.0.4; charset=utf-8");
    const std::map<std::string, double> m = ParseExposition(scraped.body);
    const std::string self = absl::StrCat("node=\"", node, "\"");
    // Every pair of the request was delivered at both ends, on the one link,
    // each from one heralded generation; an ideal link's pairs are perfect.
    EXPECT_EQ(Sample(m, "qnet_pairs_delivered_total", {self, "layer=\"link\"", "type=\"measure\""}), kPairs);
    EXPECT_EQ(Sample(m, "qnet_pairs_delivered_total", {self, "layer=\"link\"", "type=\"keep\""}), 0);
    std::optional<double> heralded = Sample(m, "qnet_link_heralds_total", {self, "outcome=\"pair\""});
    ASSERT_TRUE(heralded.has_value());
    EXPECT_GE(*heralded, kPairs);
    EXPECT_LE(*heralded, kPairs + 2);  // at most one generation per memory slot in flight when it ended
    EXPECT_GE(Sample(m, "qnet_link_attempts_total", {self}).value_or(0), *heralded);
    std::optional<double> fidelity_sum = Sample(m, "qnet_link_pair_fidelity_sum", {self});
    std::optional<double> fidelity_count = Sample(m, "qnet_link_pair_fidelity_count", {self});
    ASSERT_TRUE(fidelity_sum && fidelity_count);
    EXPECT_EQ(*fidelity_count, kPairs);
    EXPECT_NEAR(*fidelity_sum / *fidelity_count, 1.0, 1e-9);
    EXPECT_EQ(Sample(m, "qnet_peer_connected", {self, "neighbour="}), 1);
    EXPECT_GT(Sample(m, "qnet_peer_messages_sent_total", {self}).value_or(0), 0);
    EXPECT_GT(Sample(m, "qnet_peer_sent_bytes_total", {self}).value_or(0), 0);
    EXPECT_EQ(Sample(m, "qnet_memory_qubits", {self}), 2);
    EXPECT_EQ(Sample(m, "qnet_time_scale", {self}), 10);
    EXPECT_TRUE(Sample(m, "qnet_event_loop_lag_seconds", {self, "quantile=\"0.99\""}).has_value());
    EXPECT_EQ(Sample(m, "qnet_grpc_server_handled_total",
                     {"service=\"qnet.v1.Node\"", "method=\"Entangle\"", "code=\"OK\"", self}),
              node == "alice" ? std::optional<double>(1) : std::nullopt);
  }
  // Every pair's far half went to the far end's daemon, most of them handed
  // over unasked; once the last hand-over is acknowledged no daemon keeps a
  // record of a qubit it passed on: memory does not grow with the pairs.
  double handed_over = 0;
  for (const std::string node : {"alice", "bob"}) {
    SCOPED_TRACE(node);
    const std::string self = absl::StrCat("node=\"", node, "\"");
    std::map<std::string, double> m;
    for (int i = 0; i < 50; ++i) {  // the last acknowledgement may still be on its way
      m = ParseExposition(Curl(net->MetricsUrl(node), monitor).body);
      if (Sample(m, "qnet_state_moved_records", {self}) == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(Sample(m, "qnet_state_moved_records", {self}), 0);
    EXPECT_EQ(Sample(m, "qnet_state_location_hints", {self}), 0);
    handed_over += Sample(m, "qnet_state_groups_handed_over_total", {self}).value_or(-1);
    EXPECT_TRUE(Sample(m, "qnet_state_moves_requested_total", {self}).has_value());
  }
  EXPECT_GE(handed_over, kPairs / 2);
  EXPECT_LE(handed_over, kPairs);

  // Who may not scrape, and what they are told.
  const std::string url = net->MetricsUrl("alice");
  HttpAnswer anonymous = Curl(url, absl::StrCat("--cacert ", (pki / "ca.crt").string()));
  EXPECT_EQ(anonymous.code, 401);
  EXPECT_NE(anonymous.body.find("no client certificate"), std::string::npos) << anonymous.body;
  HttpAnswer as_node = Curl(url, CurlCertificate(pki, "node-bob"));
  EXPECT_EQ(as_node.code, 403);
  EXPECT_NE(as_node.body.find("node bob may not read metrics"), std::string::npos) << as_node.body;
  const fs::path other = state_dir_ / "other-pki";
  ASSERT_TRUE(security::InitNetworkPki(other, "ideal-pair", {"alice"}).ok());
  HttpAnswer foreign = Curl(url, absl::StrCat("--cacert ", (pki / "ca.crt").string(), " --cert ",
                                              (other / "operator-operator.crt").string(), " --key ",
                                              (other / "operator-operator.key").string()));
  EXPECT_EQ(foreign.code, 401);
  EXPECT_NE(foreign.body.find("not signed by network ideal-pair's CA"), std::string::npos) << foreign.body;
  EXPECT_EQ(Curl(url, CurlCertificate(pki, "operator-operator")).code, 200);
  EXPECT_EQ(Curl(url, monitor, "-d ''").code, 405);
  const std::string elsewhere = absl::StrCat(std::string(absl::StripSuffix(url, "/metrics")), "/keys");
  EXPECT_EQ(Curl(elsewhere, monitor).code, 404);
  // A monitor reads the daemon's status over gRPC; it may not act on it.
  absl::StatusOr<security::TlsMaterial> monitor_tls = security::LoadTls(pki, security::DefaultMonitor("ideal-pair"));
  ASSERT_TRUE(monitor_tls.ok()) << monitor_tls.status();
  auto stub = v1::Node::NewStub(security::OpenChannel(alice, "alice", &*monitor_tls));
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::GetStatusResponse status;
    grpc::Status got = stub->GetStatus(&context, v1::GetStatusRequest(), &status);
    EXPECT_TRUE(got.ok()) << got.error_message();
    EXPECT_EQ(status.metrics_url(), url);
  }
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto stream = stub->Entangle(&context, MeasurePairs("bob", 1));
    v1::EntangleEvent event;
    EXPECT_FALSE(stream->Read(&event));
    grpc::Status refused = stream->Finish();
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED) << refused.error_message();
    EXPECT_NE(refused.error_message().find("a monitor may read"), std::string::npos) << refused.error_message();
  }
  EXPECT_TRUE(net->StopAll().ok());
}

// The QKD sample counters per peer: an intercept-resend eavesdropper on the
// one link makes a BBM92 session abort; the sample it was caught with is
// counted at both ends under the other end's name, with the error rate the
// eavesdropper causes (1/4 per basis: far above the 11% at which it aborts).
TEST_F(MetricsMpTest, QkdSamplesAreCountedPerPeerAndShowAnEavesdropper) {
  auto net = StartNetwork(LaunchOptionsFor(Example("ideal-pair.yaml"), 10.0));
  ASSERT_NE(net, nullptr);
  const std::string alice = *net->Address("alice");
  ASSERT_TRUE(WaitConnected(alice));
  {
    auto stub = v1::Node::NewStub(security::ClientChannel(alice));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::EavesdropRequest eve;
    eve.set_neighbour("bob");
    eve.set_set(true);
    eve.set_fraction(1.0);
    v1::EavesdropResponse response;
    ASSERT_TRUE(stub->Eavesdrop(&context, eve, &response).ok());
  }
  v1::QkdRequest request;
  request.set_peer("bob");
  request.set_protocol(v1::QkdRequest::BBM92);
  request.set_bits(64);
  request.set_pairs_per_block(4000);
  request.set_max_blocks(1);
  // Simulated seconds: at time scale 10 this is 800 wall seconds, room for a
  // loaded 2-core machine (CI once moved 63 pairs/s here; 600 s was too few).
  request.set_timeout_s(8000);
  auto tapped = cli::RunQkd(alice, request, Scaled(absl::Seconds(900)));
  ASSERT_FALSE(tapped.ok());
  EXPECT_EQ(tapped.status().code(), absl::StatusCode::kAborted) << tapped.status();

  const std::string monitor =
      CurlCertificate(net->pki_dir(), security::CertificateStem(security::DefaultMonitor("ideal-pair")));
  std::map<std::string, std::map<std::string, double>> scraped;
  for (const std::string node : {"alice", "bob"}) {
    HttpAnswer answer = Curl(net->MetricsUrl(node), monitor);
    ASSERT_EQ(answer.code, 200) << answer.body;
    scraped[node] = ParseExposition(answer.body);
  }
  double bits_total = 0, errors_total = 0;
  for (const std::string basis : {"Z", "X"}) {
    SCOPED_TRACE(basis);
    const std::string b = absl::StrCat("basis=\"", basis, "\"");
    std::optional<double> bits = Sample(scraped["alice"], "qnet_qkd_sample_bits_total", {b, "peer=\"bob\""});
    std::optional<double> errors = Sample(scraped["alice"], "qnet_qkd_sample_errors_total", {b, "peer=\"bob\""});
    ASSERT_TRUE(bits && errors);
    // About 4000 pairs x 1/2 sifted x 0.1 sampled / 2 bases = 100 bits.
    EXPECT_GT(*bits, 40);
    EXPECT_LT(*bits, 200);
    // The same comparison, seen from bob.
    EXPECT_EQ(Sample(scraped["bob"], "qnet_qkd_sample_bits_total", {b, "peer=\"alice\""}), *bits);
    EXPECT_EQ(Sample(scraped["bob"], "qnet_qkd_sample_errors_total", {b, "peer=\"alice\""}), *errors);
    bits_total += *bits;
    errors_total += *errors;
  }
  // 1/4 with ~200 bits: standard error 0.031, so (0.11, 0.40) is 4.5 sigma.
  EXPECT_GT(errors_total / bits_total, 0.11);
  EXPECT_LT(errors_total / bits_total, 0.40);
  EXPECT_GE(Sample(scraped["alice"], "qnet_qkd_sessions_total", {"outcome=\"failed\""}).value_or(0), 1);
  EXPECT_TRUE(net->StopAll().ok());
}

// A child process stopped (SIGTERM, then SIGKILL) when the test ends.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const fs::path& log) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~ChildProcess() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      usleep(50'000);
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  bool running() const { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }

 private:
  pid_t pid_ = -1;
};

TEST_F(MetricsMpTest, PrometheusScrapesEveryDaemonWithTheConfigurationQnetctlUpWrites) {
  if (!fs::exists(kPrometheus)) {
    GTEST_SKIP() << kPrometheus << " is absent: install Debian's prometheus package (./qnet test does)";
  }
  auto net = StartNetwork(LaunchOptionsFor(WriteIdealChain3("idealchain"), 10.0));
  ASSERT_NE(net, nullptr);
  const std::string n0 = *net->Address("n0");
  ASSERT_TRUE(WaitConnected(n0));
  ASSERT_TRUE(testing::WaitRoute(n0, "n2").ok());

  absl::StatusOr<int> port = cli::FreeLoopbackPort();
  ASSERT_TRUE(port.ok()) << port.status();
  const std::string web = absl::StrCat("127.0.0.1:", *port);
  ChildProcess prometheus({kPrometheus, absl::StrCat("--config.file=", net->PrometheusConfigPath()),
                           absl::StrCat("--storage.tsdb.path=", (state_dir_ / "prometheus-data").string()),
                           absl::StrCat("--web.listen-address=", web)},
                          state_dir_ / "prometheus.log");

  constexpr uint32_t kPairs = 40;
  auto result = cli::RunEntangle(n0, MeasurePairs("n2", kPairs), Scaled(absl::Seconds(120)));
  ASSERT_TRUE(result.ok()) << result.status() << "\n" << net->LogTail("n1");
  ASSERT_EQ(result->pairs.size(), kPairs);

  // Prometheus scrapes every 5 s; its query API shows each daemon's pairs
  // (link layer at all three, end to end at n0 and n2) once it has.
  // Link-layer pairs per node: n0 and n2 one link's, n1 both links'.
  const std::string query = absl::StrCat(
      "http://", web,
      "/api/v1/query?query=sum%20by%20(qnet_node)%20(qnet_pairs_delivered_total%7Blayer%3D%22link%22%7D)");
  std::map<std::string, double> delivered;
  const absl::Time deadline = absl::Now() + Scaled(absl::Seconds(60));
  while (absl::Now() < deadline && prometheus.running()) {
    int rc = 0;
    std::string body = RunCommand(absl::StrCat("curl -sS --max-time 5 '", query, "' 2>/dev/null"), &rc);
    delivered.clear();
    nlohmann::json answer = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (rc == 0 && answer.is_object() && answer.value("status", "") == "success") {
      for (const nlohmann::json& r : answer["data"]["result"]) {
        double v = 0;
        if (absl::SimpleAtod(r["value"][1].get<std::string>(), &v)) delivered[r["metric"].value("qnet_node", "")] = v;
      }
    }
    if (delivered.size() == 3 && delivered["n0"] >= kPairs && delivered["n1"] >= 2 * kPairs &&
        delivered["n2"] >= kPairs) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(500));
  }
  ASSERT_TRUE(prometheus.running()) << cli::FileTail((state_dir_ / "prometheus.log").string());
  ASSERT_EQ(delivered.size(), 3u) << cli::FileTail((state_dir_ / "prometheus.log").string());
  // Each end-to-end pair took one link pair on each link (no purification on
  // ideal links; a swap can fail only with noise), so Prometheus holds at
  // least that many (more only if a link pair was discarded).
  EXPECT_GE(delivered["n0"], kPairs);
  EXPECT_GE(delivered["n1"], 2 * kPairs);
  EXPECT_GE(delivered["n2"], kPairs);

  // Every target was scraped over mutual TLS and is up.
  int rc = 0;
  std::string targets = RunCommand(absl::StrCat("curl -sS --max-time 5 'http://", web, "/api/v1/targets'"), &rc);
  nlohmann::json t = nlohmann::json::parse(targets, nullptr, false);
  ASSERT_TRUE(t.is_object()) << targets;
  int up = 0;
  for (const nlohmann::json& target : t["data"]["activeTargets"]) {
    EXPECT_EQ(target.value("scrapeUrl", "").rfind("https://", 0), 0u) << target.dump();
    up += target.value("health", "") == "up";
  }
  EXPECT_EQ(up, 3) << targets;
  EXPECT_TRUE(net->StopAll().ok());
}

TEST_F(MetricsMpTest, AnInsecureDaemonServesPlainHttpOnTheLoopbackInterface) {
  cli::LaunchOptions o = LaunchOptionsFor(Example("ideal-pair.yaml"), 10.0);
  o.insecure = true;
  auto net = StartNetwork(o);
  ASSERT_NE(net, nullptr);
  const std::string url = net->MetricsUrl("alice");
  ASSERT_TRUE(absl::StartsWith(url, "http://127.0.0.1:")) << url;
  HttpAnswer scraped = Curl(url);
  ASSERT_EQ(scraped.code, 200) << scraped.body;
  const std::map<std::string, double> m = ParseExposition(scraped.body);
  EXPECT_EQ(Sample(m, "qnet_node_info", {"node=\"alice\"", "transport_security=\"insecure-local-only\""}), 1);
  // And qnetd refuses to serve it anywhere else without TLS.
  int rc = 0;
  std::string out = RunCommand(absl::StrCat(QNETD_PATH, " --network ", Example("ideal-pair.yaml"),
                                            " --node alice --insecure-local-only --metrics-listen 0.0.0.0:0 2>&1"),
                               &rc);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("loopback interface only"), std::string::npos) << out;
  EXPECT_TRUE(net->StopAll().ok());
}

}  // namespace
}  // namespace qnet::daemon
