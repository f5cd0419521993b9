// Structured logs: three daemons of a chain started with --log-format json
// write one JSON object per line, and the lines of one end-to-end request
// join on its circuit id across the requesting daemon, the repeater and the
// far end; `qnetctl logs --request ID` merges exactly those lines into one
// time line, and `--follow yes` prints lines as they are written.
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/entangle_client.h"
#include "cli/launcher.h"
#include "gtest/gtest.h"
#include "tests/common/multiprocess_test.h"
#include "tests/common/run_command.h"
#include "tests/daemon/node_queries.h"

namespace qnet::daemon {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using qnet::testing::RunCommand;
using qnet::testing::Scaled;

class JsonLogsMpTest : public qnet::testing::MultiProcessTest {
 protected:
  // Every line of a node's log, parsed; a line that is not a JSON object
  // with the common fields fails the test.
  std::vector<Json> ReadLog(const std::string& node) {
    std::vector<Json> out;
    std::ifstream in(state_dir_ / (node + ".log"));
    std::string line;
    while (std::getline(in, line)) {
      Json j = Json::parse(line, nullptr, false);
      EXPECT_TRUE(j.is_object()) << node << ": not a JSON object: " << line;
      if (!j.is_object()) continue;
      for (const char* key : {"time", "t_sim_s", "level", "node", "msg"}) {
        EXPECT_TRUE(j.contains(key)) << node << ": no " << key << " in " << line;
      }
      EXPECT_EQ(j.value("node", ""), node) << line;
      out.push_back(std::move(j));
    }
    return out;
  }
};

std::vector<Json> WithCircuit(const std::vector<Json>& lines, const std::string& circuit) {
  std::vector<Json> out;
  for (const Json& j : lines) {
    if (j.value("circuit", "") == circuit) out.push_back(j);
  }
  return out;
}

bool AnyMessage(const std::vector<Json>& lines, const std::string& part) {
  for (const Json& j : lines) {
    if (absl::StrContains(j.value("msg", ""), part)) return true;
  }
  return false;
}

v1::EntangleRequest MeasurePairs(const std::string& remote, uint32_t pairs) {
  v1::EntangleRequest request;
  request.set_remote_node(remote);
  request.set_pairs(pairs);
  request.set_type(v1::EntangleRequest::MEASURE);
  request.set_timeout_s(600);
  return request;
}

TEST_F(JsonLogsMpTest, OneRequestsLinesJoinOnItsCircuitAcrossTheThreeDaemons) {
  cli::LaunchOptions o = LaunchOptionsFor(WriteIdealChain3("idealchain"), 10.0);
  o.extra_args = {"--log-format", "json"};
  auto net = StartNetwork(o);
  ASSERT_NE(net, nullptr);
  const std::string n0 = *net->Address("n0");
  ASSERT_TRUE(testing::WaitConnected(n0));
  ASSERT_TRUE(testing::WaitRoute(n0, "n2").ok());
  constexpr uint32_t kPairs = 20;
  auto result = cli::RunEntangle(n0, MeasurePairs("n2", kPairs), Scaled(absl::Seconds(120)));
  ASSERT_TRUE(result.ok()) << result.status() << "\n" << net->LogTail("n1");
  ASSERT_EQ(result->pairs.size(), kPairs);
  // The far end logs the circuit's end when its teardown arrives.
  ASSERT_TRUE(qnet::testing::WaitUntil("the circuit ended at every node", [&] {
    std::ifstream in(state_dir_ / "n2.log");
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return absl::StrContains(all, "ended");
  }));

  std::map<std::string, std::vector<Json>> logs;
  for (const std::string node : {"n0", "n1", "n2"}) logs[node] = ReadLog(node);

  // The requesting daemon names the request's circuit...
  std::string circuit;
  for (const Json& j : logs["n0"]) {
    if (j.contains("circuit") && absl::StrContains(j.value("msg", ""), "installed")) {
      circuit = j.value("circuit", "");
      break;
    }
  }
  ASSERT_TRUE(absl::StartsWith(circuit, "n0#")) << circuit;
  // ...and every daemon on the path logs its part of it, under that id.
  std::vector<Json> head = WithCircuit(logs["n0"], circuit);
  std::vector<Json> repeater = WithCircuit(logs["n1"], circuit);
  std::vector<Json> tail = WithCircuit(logs["n2"], circuit);
  EXPECT_TRUE(AnyMessage(head, "end-to-end request")) << head.size();
  EXPECT_TRUE(AnyMessage(head, "installed")) << head.size();
  EXPECT_TRUE(AnyMessage(head, "ended")) << head.size();
  EXPECT_TRUE(AnyMessage(repeater, "installed here as repeater")) << repeater.size();
  EXPECT_TRUE(AnyMessage(repeater, "ended")) << repeater.size();
  EXPECT_TRUE(AnyMessage(tail, "installed here as the far end")) << tail.size();
  EXPECT_TRUE(AnyMessage(tail, absl::StrCat(kPairs, " pairs delivered here"))) << tail.size();
  for (const auto* part : {&head, &repeater, &tail}) {
    for (const Json& j : *part) EXPECT_EQ(j.value("layer", ""), "network") << j.dump();
  }

  // qnetctl logs --request: exactly those lines, in time order.
  int rc = 0;
  const std::string qnetctl = absl::StrCat(QNETCTL_PATH, " --state-dir ", state_dir_.string());
  std::string merged = RunCommand(absl::StrCat(qnetctl, " logs --request '", circuit, "' 2>&1"), &rc);
  ASSERT_EQ(rc, 0) << merged;
  std::vector<std::string> lines = absl::StrSplit(merged, '\n', absl::SkipEmpty());
  EXPECT_EQ(lines.size(), head.size() + repeater.size() + tail.size()) << merged;
  std::set<std::string> nodes;
  std::string previous_time;
  for (const std::string& line : lines) {
    Json j = Json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << line;
    EXPECT_EQ(j.value("circuit", ""), circuit) << line;
    EXPECT_GE(j.value("time", ""), previous_time) << merged;
    previous_time = j.value("time", "");
    nodes.insert(j.value("node", ""));
  }
  EXPECT_EQ(nodes, (std::set<std::string>{"n0", "n1", "n2"})) << merged;
  // A pair's id as entangle prints it (n0-n2#cN.K) names the same circuit.
  const std::string pair_id = result->pairs.front().entanglement_id();
  ASSERT_TRUE(absl::StartsWith(pair_id, absl::StrCat("n0-n2#c", circuit.substr(3), "."))) << pair_id << " " << circuit;
  EXPECT_EQ(RunCommand(absl::StrCat(qnetctl, " logs --request '", pair_id, "' 2>&1"), &rc), merged);
  EXPECT_EQ(rc, 0);
  // An id no line has is an error, not an empty success.
  const std::string none = RunCommand(absl::StrCat(qnetctl, " logs --request 'n0#1' 2>&1"), &rc);
  EXPECT_NE(rc, 0) << none;
  EXPECT_NE(none.find("qnetctl: error: no log line of request n0#1"), std::string::npos) << none;

  // --follow: a request made while it runs shows up in its output.
  std::string followed;
  std::thread follower([&] {
    int follow_rc = 0;
    followed = RunCommand(absl::StrCat("timeout 6 ", qnetctl, " --node n1 logs --follow yes 2>&1"), &follow_rc);
  });
  absl::SleepFor(absl::Seconds(1));
  auto second = cli::RunEntangle(n0, MeasurePairs("n2", 2), Scaled(absl::Seconds(60)));
  follower.join();
  ASSERT_TRUE(second.ok()) << second.status();
  std::set<std::string> circuits_followed;
  for (absl::string_view line : absl::StrSplit(followed, '\n', absl::SkipEmpty())) {
    Json j = Json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("circuit")) circuits_followed.insert(j.value("circuit", ""));
  }
  circuits_followed.erase(circuit);
  // One new circuit (more if its set-up was retried for lack of memory).
  EXPECT_GE(circuits_followed.size(), 1u) << "the second request's circuit at the repeater:\n" << followed;
  EXPECT_TRUE(net->StopAll().ok());
}

}  // namespace
}  // namespace qnet::daemon
