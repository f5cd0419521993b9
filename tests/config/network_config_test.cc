#include "config/network_config.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "physical/presets.h"

namespace qnet::config {
namespace {

using physical::HeraldingScheme;
using std::chrono::microseconds;
using std::chrono::nanoseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kChain[] = R"(network: chain3
seed: 42
nodes:
  - name: alice
    hardware: nv
    qubits: 4
    t2_s: 1.0
    two_qubit_gate_time_us: 250
    emission_cycle_time_us: 2.5
  - name: bob
    hardware: ideal
  - name: charlie
    hardware: nv
links:
  - between: [alice, bob]
    length_km: 10
  - between: [bob, charlie]
    length_km: 2.5
    scheme: single-click
    station_fraction: 0.25
    attenuation_db_per_km: 0.5
    detector_efficiency: 0.7
    dark_count_rate_hz: 100
    detection_window_ns: 12
    visibility: 0.95
)";

TEST(NetworkConfigTest, ParsesPresetsAndOverrides) {
  auto parsed = ParseNetworkConfig(kChain, "chain.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const NetworkConfig& c = *parsed;
  EXPECT_EQ(c.name, "chain3");
  EXPECT_EQ(c.seed, std::optional<uint64_t>(42));
  EXPECT_EQ(c.source, "chain.yaml");
  ASSERT_EQ(c.nodes.size(), 3u);

  const auto nv = physical::FindPreset("nv").value();
  const auto ideal = physical::FindPreset("ideal").value();
  const NodeConfig& alice = c.nodes[0];
  EXPECT_EQ(alice.name, "alice");
  EXPECT_EQ(alice.index, 0u);
  EXPECT_EQ(alice.hardware.preset, "nv");
  // Overridden.
  EXPECT_EQ(alice.hardware.num_qubits, 4);
  EXPECT_EQ(alice.hardware.t2_s, 1.0);
  EXPECT_EQ(alice.hardware.two_qubit_gate_time, microseconds(250));
  EXPECT_EQ(alice.hardware.emission_cycle_time, nanoseconds(2500));
  // From the preset.
  EXPECT_EQ(alice.hardware.t1_s, nv.node.t1_s);
  EXPECT_EQ(alice.hardware.emission_efficiency, nv.node.emission_efficiency);
  EXPECT_EQ(alice.hardware.readout_error_0, nv.node.readout_error_0);
  EXPECT_EQ(alice.hardware.measurement_time, nv.node.measurement_time);

  const NodeConfig& bob = c.nodes[1];
  EXPECT_EQ(bob.index, 1u);
  EXPECT_EQ(bob.hardware.preset, "ideal");
  EXPECT_EQ(bob.hardware.num_qubits, ideal.node.num_qubits);
  EXPECT_TRUE(std::isinf(bob.hardware.t2_s));
  EXPECT_EQ(c.nodes[2].index, 2u);

  ASSERT_EQ(c.links.size(), 2u);
  // Defaults: the optics of the first node's preset (nv), station in the middle.
  const physical::LinkPhysics& ab = c.links[0];
  EXPECT_EQ(ab.name, "alice-bob");
  EXPECT_EQ(ab.node_a, "alice");
  EXPECT_EQ(ab.node_b, "bob");
  EXPECT_EQ(ab.length_km, 10.0);
  EXPECT_EQ(ab.station_fraction, 0.5);
  EXPECT_EQ(ab.scheme, nv.link.scheme);
  EXPECT_EQ(ab.attenuation_db_per_km, nv.link.attenuation_db_per_km);
  EXPECT_EQ(ab.detector_efficiency, nv.link.detector_efficiency);
  EXPECT_EQ(ab.dark_count_rate_hz, nv.link.dark_count_rate_hz);
  EXPECT_EQ(ab.detection_window, nv.link.detection_window);
  EXPECT_EQ(ab.visibility, nv.link.visibility);
  // The second link starts from bob's preset (ideal: double-click), then overrides everything.
  const physical::LinkPhysics& bc = c.links[1];
  EXPECT_EQ(bc.name, "bob-charlie");
  EXPECT_EQ(bc.length_km, 2.5);
  EXPECT_EQ(bc.scheme, HeraldingScheme::kSingleClick);
  EXPECT_EQ(bc.station_fraction, 0.25);
  EXPECT_EQ(bc.attenuation_db_per_km, 0.5);
  EXPECT_EQ(bc.detector_efficiency, 0.7);
  EXPECT_EQ(bc.dark_count_rate_hz, 100.0);
  EXPECT_EQ(bc.detection_window, nanoseconds(12));
  EXPECT_EQ(bc.visibility, 0.95);

  // Lookups.
  EXPECT_EQ(c.FindNode("charlie"), &c.nodes[2]);
  EXPECT_EQ(c.FindNode("dave"), nullptr);
  EXPECT_EQ(c.FindLink("bob", "alice"), &c.links[0]);
  EXPECT_EQ(c.FindLink("alice", "charlie"), nullptr);
  EXPECT_EQ(c.FindLinkByName("bob-charlie"), &c.links[1]);
  EXPECT_THAT(c.Neighbours("bob"), ElementsAre("alice", "charlie"));
  EXPECT_THAT(c.Neighbours("alice"), ElementsAre("bob"));
  EXPECT_TRUE(c.Neighbours("dave").empty());
}

TEST(NetworkConfigTest, LinkDefaultsFollowTheFirstNodeNamed) {
  auto c = ParseNetworkConfig(R"(network: n
nodes: [{name: a, hardware: ideal}, {name: b, hardware: nv}]
links: [{between: [b, a], length_km: 1}]
)",
                              "flow.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->links[0].name, "b-a");
  EXPECT_EQ(c->links[0].scheme, physical::FindPreset("nv")->link.scheme);
  EXPECT_EQ(c->links[0].attenuation_db_per_km, physical::FindPreset("nv")->link.attenuation_db_per_km);
}

TEST(NetworkConfigTest, OptionalPartsMayBeOmitted) {
  auto c = ParseNetworkConfig("network: solo\nnodes:\n  - name: a\n    hardware: ideal\n    t1_s: .inf\n", "solo.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->seed.has_value());
  EXPECT_TRUE(c->links.empty());
  EXPECT_TRUE(std::isinf(c->nodes[0].hardware.t1_s));
}

TEST(NetworkConfigTest, EavesdropperFractionIsOptionalAndOffByDefault) {
  auto c = ParseNetworkConfig(R"(network: n
nodes: [{name: a, hardware: ideal}, {name: b, hardware: ideal}, {name: c, hardware: nv}]
links:
  - between: [a, b]
    length_km: 1
    eavesdropper_fraction: 0.2
  - between: [b, c]
    length_km: 1
)",
                              "eve.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->links[0].eavesdropper_fraction, 0.2);
  EXPECT_EQ(c->links[1].eavesdropper_fraction, 0.0);
}

// Parses `text` as "net.yaml" and checks the error starts with "net.yaml:L:C: "
// and mentions every one of `parts`.
void ExpectError(const std::string& text, const std::string& position, std::vector<std::string> parts) {
  auto c = ParseNetworkConfig(text, "net.yaml");
  ASSERT_FALSE(c.ok()) << "parsed without error:\n" << text;
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(c.status().message());
  EXPECT_THAT(message, StartsWith("net.yaml:" + position + ": ")) << text;
  for (const std::string& p : parts) EXPECT_THAT(message, HasSubstr(p)) << text;
}

std::string KnownPresets() { return absl::StrJoin(physical::PresetNames(), ", "); }

constexpr char kNodes[] = "network: n\nnodes:\n  - name: a\n    hardware: ideal\n  - name: b\n    hardware: ideal\n";

TEST(NetworkConfigErrorTest, MalformedYaml) {
  ExpectError("network: n\nnodes: [a, b\n", "3:1", {"not valid YAML"});
}

TEST(NetworkConfigErrorTest, UnknownKeys) {
  ExpectError("network: n\nnodez: []\n", "2:1", {"unknown key 'nodez'", "did you mean 'nodes'", "allowed keys: network, seed, nodes, links"});
  ExpectError("network: n\nnodes:\n  - name: a\n    hardware: ideal\n    qbits: 3\n", "5:5",
              {"node 'a'", "unknown key 'qbits'", "did you mean 'qubits'", "t1_s", "emission_cycle_time_us"});
  ExpectError(std::string(kNodes) + "links:\n  - between: [a, b]\n    length_km: 1\n    colour: blue\n", "10:5",
              {"link #1", "unknown key 'colour'", "allowed keys: between, length_km, scheme"});
}

TEST(NetworkConfigErrorTest, DuplicateKey) {
  ExpectError("network: n\nnodes:\n  - name: a\n    hardware: ideal\n    t2_s: 1\n    t2_s: 2\n", "6:5",
              {"duplicate key 't2_s'", "line 5"});
}

TEST(NetworkConfigErrorTest, WrongTypes) {
  ExpectError("network: n\nnodes:\n  - name: a\n    hardware: ideal\n    qubits: four\n", "5:13",
              {"qubits must be an integer", "'four'"});
  ExpectError("network: n\nnodes:\n  - name: a\n    hardware: ideal\n    qubits: 2.5\n", "5:13", {"qubits", "integer"});
  ExpectError("network: n\nnodes:\n  - name: a\n    hardware: ideal\n    t2_s: [1]\n", "5:11",
              {"t2_s must be a number", "a list"});
  ExpectError("network: n\nnodes:\n  - name: a\n    hardware: ideal\n    t2_s:\n", "5:5", {"t2_s must be a number", "nothing"});
  ExpectError("network: n\nnodes:\n  name: a\n", "3:3", {"nodes must be a non-empty list", "a mapping"});
  ExpectError("network: n\nnodes:\n  - a\n", "3:5", {"node #1 must be a mapping", "'a'"});
  ExpectError("- a\n- b\n", "1:1", {"the network file must be a mapping", "a list"});
  ExpectError(std::string(kNodes) + "links:\n  - between: a\n    length_km: 1\n", "8:14",
              {"between must be a list of two node names", "'a'"});
  ExpectError(std::string(kNodes) + "links:\n  - between: [a, b, a]\n    length_km: 1\n", "8:14",
              {"between must be a list of two node names", "3 entries"});
  ExpectError(std::string(kNodes) + "links: {a: b}\n", "7:8", {"links must be a list", "a mapping"});
  ExpectError("network: n\nseed: -3\nnodes: [{name: a, hardware: ideal}]\n", "2:7", {"seed must be an integer in [0, 2^64)", "'-3'"});
}

TEST(NetworkConfigErrorTest, ValuesOutOfRange) {
  ExpectError(std::string(kNodes) + "links:\n  - between: [a, b]\n    length_km: 1\n    visibility: 1.5\n", "10:17",
              {"link a-b", "visibility = 1.5 is outside [0, 1]"});
  ExpectError(std::string(kNodes) + "links:\n  - between: [a, b]\n    length_km: -2\n", "9:16",
              {"link a-b", "length_km = -2 is outside [0, 100000] km"});
  ExpectError(std::string(kNodes) + "links:\n  - between: [a, b]\n    length_km: 1\n    eavesdropper_fraction: 1.5\n",
              "10:28", {"link a-b", "eavesdropper_fraction = 1.5 is outside [0, 1]"});
  ExpectError(std::string(kNodes) + "links:\n  - between: [a, b]\n    length_km: 1\n    eavesdropper_fraction: -0.1\n",
              "10:28", {"link a-b", "eavesdropper_fraction = -0.1 is outside [0, 1]"});
  ExpectError(std::string(kNodes) + "links:\n  - between: [a, b]\n    length_km: 1\n    eavesdropper_fraction: .nan\n",
              "10:28", {"link a-b", "eavesdropper_fraction", "NaN"});
  ExpectError("network: n\nnodes:\n  - name: a\n    hardware: ideal\n    qubits: 0\n", "5:13",
              {"node 'a'", "qubits = 0 is outside [1, 1000]"});
  ExpectError("network: n\nnodes:\n  - name: a\n    hardware: ideal\n    emission_efficiency: 2\n", "5:26",
              {"emission_efficiency = 2 is outside [0, 1]"});
  ExpectError("network: n\nnodes:\n  - name: a\n    hardware: ideal\n    t1_s: -1\n", "5:11",
              {"t1_s = -1 is outside [1e-09, 1e+09] s", ".inf for a qubit that never decays"});
  ExpectError("network: n\nnodes:\n  - name: a\n    hardware: ideal\n    measurement_time_us: -1\n", "5:26",
              {"measurement_time_us = -1"});
  ExpectError("network: n\nnodes:\n  - name: a\n    hardware: ideal\n    t2_s: .nan\n", "5:11", {"t2_s", "NaN"});
  // T2 may not exceed 2 T1 (here T1 = 1 s overrides the preset's infinite T1).
  ExpectError("network: n\nnodes:\n  - name: a\n    hardware: ideal\n    t1_s: 1\n    t2_s: 3\n", "6:11",
              {"t2_s = 3 exceeds 2 * t1_s = 2"});
  ExpectError("network: n\nnodes:\n  - name: a\n    hardware: nv\n    t2_s: 8000\n", "5:11", {"t2_s = 8000", "preset 'nv'"});
  ExpectError(std::string(kNodes) + "links:\n  - between: [a, b]\n    length_km: 1\n    scheme: triple-click\n", "10:13",
              {"unknown scheme 'triple-click'", "single-click, double-click or werner"});
}

// The abstract Werner link and depolarising memories, as studies from other
// simulators and papers state them.
TEST(NetworkConfigTest, WernerLinksAndDepolarisingMemories) {
  auto c = ParseNetworkConfig(
      "network: n\nnodes:\n  - {name: a, hardware: ideal, depolarising_time_s: 0.5}\n  - {name: b, hardware: ideal}\n"
      "links:\n  - between: [a, b]\n    length_km: 2\n    scheme: werner\n    werner_fidelity: 0.93\n"
      "    success_probability: 0.01\n    attempt_duration_us: 20\n",
      "net.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->nodes[0].hardware.depolarising_time_s, 0.5);
  EXPECT_TRUE(std::isinf(c->nodes[1].hardware.depolarising_time_s));
  const physical::LinkPhysics& l = c->links[0];
  EXPECT_EQ(l.scheme, physical::HeraldingScheme::kWerner);
  EXPECT_EQ(l.werner_fidelity, 0.93);
  EXPECT_EQ(l.success_probability, 0.01);
  EXPECT_EQ(l.attempt_duration, std::chrono::microseconds(20));
}

TEST(NetworkConfigErrorTest, WernerKeysBelongToWernerLinks) {
  const std::string link = std::string(kNodes) + "links:\n  - between: [a, b]\n    length_km: 1\n";
  ExpectError(link + "    werner_fidelity: 0.9\n", "10:5",
              {"link a-b: werner_fidelity applies only to scheme: werner (this link is"});
  ExpectError(link + "    scheme: double-click\n    attempt_duration_us: 5\n", "11:5",
              {"attempt_duration_us applies only to scheme: werner (this link is double-click)"});
  ExpectError(link + "    scheme: werner\n    success_probability: 0.1\n", "8:5",
              {"scheme: werner needs werner_fidelity"});
  ExpectError(link + "    scheme: werner\n    werner_fidelity: 0.9\n", "8:5",
              {"scheme: werner needs success_probability"});
  ExpectError(link + "    scheme: werner\n    werner_fidelity: 1.5\n    success_probability: 0.1\n", "11:22",
              {"werner_fidelity = 1.5 is outside [0, 1]"});
  ExpectError(link + "    scheme: werner\n    werner_fidelity: 0.9\n    success_probability: 0.1\n"
                     "    attempt_duration_us: 0\n",
              "13:26", {"attempt_duration_us must be positive"});
  ExpectError(link + "    scheme: werner\n    werner_fidelity: 0.9\n    success_probability: 0.1\n"
                     "    attempt_duration_us: 1e8\n",
              "13:26", {"attempt_duration_us = 1e8 is outside [0, 1e+07] us"});
  ExpectError("network: n\nnodes:\n  - name: a\n    hardware: ideal\n    depolarising_time_s: 0\n", "5:26",
              {"depolarising_time_s = 0 is outside [1e-09, 1e+09] s"});
}

// Memories that entanglement attempts dephase (NV nuclear spins).
TEST(NetworkConfigTest, AttemptDephasing) {
  auto c = ParseNetworkConfig(
      "network: n\nnodes:\n  - {name: a, hardware: nv, attempt_dephasing_n: 1200}\n  - {name: b, hardware: nv}\n",
      "net.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->nodes[0].hardware.attempt_dephasing_n, 1200.0);
  EXPECT_TRUE(std::isinf(c->nodes[1].hardware.attempt_dephasing_n)) << "no preset sets it";
  ExpectError("network: n\nnodes:\n  - name: a\n    hardware: nv\n    attempt_dephasing_n: 0.5\n", "5:26",
              {"attempt_dephasing_n = 0.5 is outside [1, 1e+12] attempts"});
  ExpectError("network: n\nnodes:\n  - name: a\n    hardware: nv\n    attempt_dephasing_n: .nan\n", "5:26",
              {"attempt_dephasing_n"});
}

// Every number with a physical range: beyond it, and non-finite, is refused
// at the value with the range in the message.
TEST(NetworkConfigErrorTest, PhysicsOutOfRange) {
  const std::string link = std::string(kNodes) + "links:\n  - between: [a, b]\n    length_km: 1\n";
  ExpectError(std::string(kNodes) + "links:\n  - between: [a, b]\n    length_km: 1e300\n", "9:16",
              {"link a-b", "length_km = 1e300 is outside [0, 100000] km"});
  ExpectError(std::string(kNodes) + "links:\n  - between: [a, b]\n    length_km: 100001\n", "9:16",
              {"length_km = 100001 is outside [0, 100000] km"});
  ExpectError(std::string(kNodes) + "links:\n  - between: [a, b]\n    length_km: .inf\n", "9:16",
              {"length_km = .inf is outside [0, 100000] km"});
  ExpectError(std::string(kNodes) + "links:\n  - between: [a, b]\n    length_km: .nan\n", "9:16", {"length_km", "NaN"});
  ExpectError(link + "    attenuation_db_per_km: 1000\n", "10:28", {"attenuation_db_per_km = 1000 is outside [0, 100] dB/km"});
  ExpectError(link + "    attenuation_db_per_km: -.inf\n", "10:28", {"attenuation_db_per_km = -.inf is outside"});
  ExpectError(link + "    dark_count_rate_hz: 1e12\n", "10:25", {"dark_count_rate_hz = 1e12 is outside [0, 1e+09] Hz"});
  ExpectError(link + "    detection_window_ns: .inf\n", "10:26", {"detection_window_ns = .inf is outside [0, 1e+09] ns"});
  ExpectError(link + "    detection_window_ns: -1\n", "10:26", {"detection_window_ns = -1 is outside"});
  ExpectError(link + "    station_fraction: .inf\n", "10:23", {"station_fraction = .inf is outside [0, 1]"});
  ExpectError(link + "    detector_efficiency: -0.5\n", "10:26", {"detector_efficiency = -0.5 is outside [0, 1]"});
  const std::string node = "network: n\nnodes:\n  - name: a\n    hardware: ideal\n";
  ExpectError(node + "    t1_s: 1e-300\n", "5:11", {"t1_s = 1e-300 is outside [1e-09, 1e+09] s"});
  ExpectError(node + "    t2_s: 1e300\n", "5:11", {"t2_s = 1e300 is outside [1e-09, 1e+09] s"});
  ExpectError(node + "    t1_s: -.inf\n", "5:11", {"t1_s = -.inf is outside"});
  for (const char* key : {"single_qubit_gate_time_us", "two_qubit_gate_time_us", "measurement_time_us",
                          "emission_cycle_time_us"}) {
    const std::string column = std::to_string(std::string(key).size() + 7);
    ExpectError(node + "    " + key + ": 1e7\n", "5:" + column, {std::string(key) + " = 1e7 is outside [0, 1e+06] us"});
    ExpectError(node + "    " + key + ": .inf\n", "5:" + column, {std::string(key) + " = .inf is outside"});
    ExpectError(node + "    " + key + ": .nan\n", "5:" + column, {key, "NaN"});
  }
  for (const char* key : {"emission_efficiency", "single_qubit_gate_error", "two_qubit_gate_error", "readout_error_0",
                          "readout_error_1"}) {
    const std::string column = std::to_string(std::string(key).size() + 7);
    ExpectError(node + "    " + key + ": .inf\n", "5:" + column, {std::string(key) + " = .inf is outside [0, 1]"});
    ExpectError(node + "    " + key + ": -1e-9\n", "5:" + column, {std::string(key) + " = -1e-9 is outside [0, 1]"});
  }
}

TEST(NetworkConfigTest, RangesIncludeTheirBoundsAndInfiniteDecayTimes) {
  auto c = ParseNetworkConfig(
      "network: n\nnodes:\n  - {name: a, hardware: ideal, t1_s: .inf, t2_s: .inf, measurement_time_us: 1e6}\n"
      "  - {name: b, hardware: ideal, t1_s: 1e9, t2_s: 1e-9}\n"
      "links:\n  - {between: [a, b], length_km: 1e5, attenuation_db_per_km: 100, dark_count_rate_hz: 1e9}\n",
      "net.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->links[0].length_km, 1e5);
  EXPECT_TRUE(std::isinf(c->nodes[0].hardware.t1_s));
}

// The limits on size: refused with the limit named, before anything is built.
TEST(NetworkConfigErrorTest, TooManyNodesLinksOrBytes) {
  std::string nodes = "network: n\nnodes:\n";
  for (size_t i = 0; i <= kMaxNodes; ++i) nodes += "  - 0\n";  // the count is checked before each entry
  ExpectError(nodes, "3:3", {"lists 100001 nodes; at most 100000 are allowed"});

  std::string links = std::string(kNodes) + "links:\n";
  for (size_t i = 0; i <= kMaxLinks; ++i) links += "  - 0\n";
  ExpectError(links, "8:3", {"lists 400001 links; at most 400000 are allowed"});

  std::string big = std::string(kNodes) + "# " + std::string(kMaxFileBytes, 'x') + "\n";
  auto c = ParseNetworkConfig(big, "net.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("at most 67108864 are allowed"));
}

// The lookups are index based: they must agree with the vectors, in both
// orders and after Reindex.
TEST(NetworkConfigTest, LookupsUseTheIndexes) {
  auto c = ParseNetworkConfig(kChain, "chain.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_NE(c->FindNode("bob"), nullptr);
  EXPECT_EQ(c->FindNode("bob")->index, 1u);
  EXPECT_EQ(c->FindNode("zed"), nullptr);
  ASSERT_NE(c->FindLink("charlie", "bob"), nullptr);
  EXPECT_EQ(c->FindLink("charlie", "bob")->name, "bob-charlie");
  EXPECT_EQ(c->FindLink("alice", "charlie"), nullptr);
  EXPECT_EQ(c->FindLinkByName("alice-bob"), &c->links[0]);
  EXPECT_THAT(c->Neighbours("bob"), ElementsAre("alice", "charlie"));
  EXPECT_TRUE(c->Neighbours("zed").empty());
  NetworkConfig copy = *c;
  copy.links.pop_back();
  copy.Reindex();
  EXPECT_EQ(copy.FindLink("bob", "charlie"), nullptr);
  EXPECT_THAT(copy.Neighbours("bob"), ElementsAre("alice"));
}

TEST(NetworkConfigErrorTest, UnknownNodeMessageListsAFewNames) {
  std::string text = "network: n\nnodes:\n";
  for (int i = 0; i < 100; ++i) text += "  - {name: n" + std::to_string(i) + ", hardware: ideal}\n";
  text += "links:\n  - {between: [n0, zed], length_km: 1}\n";
  ExpectError(text, "104:20", {"unknown node 'zed'", "n19, ... (100 in all)"});
}

TEST(NetworkConfigErrorTest, UnknownPreset) {
  ExpectError("network: n\nnodes:\n  - name: a\n    hardware: nvv\n", "4:15",
              {"node 'a'", "unknown hardware preset 'nvv'", "known presets: " + KnownPresets()});
}

TEST(NetworkConfigErrorTest, DuplicateNodeName) {
  ExpectError("network: n\nnodes:\n  - name: a\n    hardware: ideal\n  - name: a\n    hardware: nv\n", "5:11",
              {"duplicate node name 'a'", "line 3"});
}

TEST(NetworkConfigErrorTest, InvalidName) {
  ExpectError("network: n\nnodes:\n  - name: 'a b'\n    hardware: ideal\n", "3:11", {"name 'a b' is not a valid name"});
}

TEST(NetworkConfigErrorTest, LinkToUnknownNode) {
  ExpectError(std::string(kNodes) + "links:\n  - between: [a, zed]\n    length_km: 1\n", "8:18",
              {"unknown node 'zed'", "nodes in this file: a, b"});
}

TEST(NetworkConfigErrorTest, SelfLink) {
  ExpectError(std::string(kNodes) + "links:\n  - between: [a, a]\n    length_km: 1\n", "8:14", {"links node 'a' to itself"});
}

TEST(NetworkConfigErrorTest, DuplicateLink) {
  ExpectError(std::string(kNodes) + "links:\n  - between: [a, b]\n    length_km: 1\n  - between: [b, a]\n    length_km: 2\n",
              "10:14", {"link #2", "duplicate link between 'b' and 'a'", "line 8"});
}

TEST(NetworkConfigErrorTest, CollidingLinkNames) {
  ExpectError("network: n\nnodes: [{name: a, hardware: ideal}, {name: b-c, hardware: ideal}, {name: a-b, hardware: ideal},"
              " {name: c, hardware: ideal}]\nlinks:\n  - between: [a, b-c]\n    length_km: 1\n"
              "  - between: [a-b, c]\n    length_km: 1\n",
              "6:14", {"'a-b-c' is already taken"});
}

TEST(NetworkConfigErrorTest, MissingRequiredKeys) {
  ExpectError("nodes: [{name: a, hardware: ideal}]\n", "1:1", {"missing required key 'network'"});
  ExpectError("network: n\n", "1:1", {"missing required key 'nodes'"});
  ExpectError("network: n\nnodes:\n  - hardware: ideal\n", "3:5", {"node #1", "missing required key 'name'"});
  ExpectError("network: n\nnodes:\n  - name: a\n", "3:5", {"node 'a'", "missing required key 'hardware'", KnownPresets()});
  ExpectError(std::string(kNodes) + "links:\n  - between: [a, b]\n", "8:5", {"link a-b", "missing required key 'length_km'"});
  ExpectError(std::string(kNodes) + "links:\n  - length_km: 3\n", "8:5", {"link #1", "missing required key 'between'"});
}

TEST(NetworkConfigErrorTest, EmptyAndMultiDocumentFiles) {
  ExpectError("", "1:1", {"the file is empty"});
  ExpectError("# only a comment\n", "1:1", {"the file is empty"});
  ExpectError(std::string(kNodes) + "---\nnetwork: m\n", "8:1", {"one YAML document"});
}

constexpr char kKeyManagementBase[] = R"(network: kmnet
nodes:
  - {name: alice, hardware: ideal}
  - {name: bob, hardware: ideal}
  - {name: charlie, hardware: ideal}
links:
  - {between: [alice, bob], length_km: 1}
  - {between: [bob, charlie], length_km: 1}
)";

absl::StatusOr<NetworkConfig> WithKeyManagement(const std::string& section) {
  return ParseNetworkConfig(std::string(kKeyManagementBase) + section, "km.yaml");
}

TEST(KeyManagementConfigTest, SaesAndPoolsWithDefaults) {
  auto config = WithKeyManagement(R"(key_management:
  saes:
    - {name: sae-a, node: alice}
    - {name: sae-c, node: charlie}
  pools:
    - between: [alice, charlie]
      low_watermark_bits: 1024
      pairs_per_block: 6500
      sample_fraction: 0.5
    - {between: [alice, bob], protocol: bb84, high_watermark_bits: 9000}
)");
  ASSERT_TRUE(config.ok()) << config.status();
  const KeyManagementConfig& km = config->key_management;
  ASSERT_EQ(km.saes.size(), 2u);
  EXPECT_EQ(km.FindSae("sae-c")->node, "charlie");
  EXPECT_EQ(km.FindSae("nobody"), nullptr);
  EXPECT_EQ(km.FindPool("charlie", "alice"), nullptr);  // pools are directed: alice fills this one
  const KeyPoolConfig* ac = km.FindPool("alice", "charlie");
  ASSERT_NE(ac, nullptr);
  EXPECT_EQ(ac->low_watermark_bits, 1024u);
  EXPECT_EQ(ac->high_watermark_bits, 8u * 1024);  // 8 x low unless given
  EXPECT_EQ(ac->pairs_per_block, 6500u);
  EXPECT_DOUBLE_EQ(ac->sample_fraction, 0.5);
  EXPECT_EQ(ac->protocol, "bbm92");
  const KeyPoolConfig* ab = km.FindPool("alice", "bob");
  ASSERT_NE(ab, nullptr);
  EXPECT_EQ(ab->protocol, "bb84");
  EXPECT_EQ(ab->low_watermark_bits, kDefaultLowWatermarkBits);
  EXPECT_EQ(ab->high_watermark_bits, 9000u);
  EXPECT_EQ(km.FindPool("bob", "charlie"), nullptr);
  // The other direction is a pool of its own.
  auto both = WithKeyManagement("key_management:\n  pools:\n    - {between: [alice, bob]}\n    - {between: [bob, alice], low_watermark_bits: 64}\n");
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(both->key_management.FindPool("bob", "alice")->low_watermark_bits, 64u);
  EXPECT_EQ(both->key_management.FindPool("alice", "bob")->low_watermark_bits, kDefaultLowWatermarkBits);
  // A file without the section has none.
  auto plain = ParseNetworkConfig(kKeyManagementBase, "km.yaml");
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->key_management.saes.empty());
  EXPECT_TRUE(plain->key_management.pools.empty());
}

TEST(KeyManagementConfigTest, MistakesAreNamedWithTheirLine) {
  struct Case {
    std::string section;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"key_management:\n  saes:\n    - {name: sae-a, node: dave}\n", "km.yaml:11:27: sae sae-a: unknown node 'dave'"},
      {"key_management:\n  saes:\n    - {name: s, node: alice}\n    - {name: s, node: bob}\n",
       "duplicate sae 's' (first defined on line 11)"},
      {"key_management:\n  saes:\n    - {name: 'bad name', node: alice}\n", "is not a valid name"},
      {"key_management:\n  pools:\n    - {between: [alice, alice]}\n", "a pool joins two different nodes"},
      {"key_management:\n  pools:\n    - {between: [alice]}\n", "between must list two nodes"},
      {"key_management:\n  pools:\n    - {between: [alice, bob]}\n    - {between: [alice, bob]}\n",
       "duplicate pool between 'alice' and 'bob' (first defined on line 11)"},
      {"key_management:\n  pools:\n    - {between: [alice, bob], low_watermark_bits: 5000, high_watermark_bits: 4000}\n",
       "high_watermark_bits (4000) must be above low_watermark_bits (5000)"},
      {"key_management:\n  pools:\n    - {between: [alice, bob], low_watermark_bits: 4}\n", "is outside [8, "},
      {"key_management:\n  pools:\n    - {between: [alice, bob], pairs_per_block: 0}\n",
       "pairs_per_block = 0 is outside [1, 1000000]"},
      {"key_management:\n  pools:\n    - {between: [alice, bob], sample_fraction: 1.5}\n", "is outside [0, 0.9]"},
      {"key_management:\n  pools:\n    - {between: [alice, bob], sample_fraction: 0}\n", "must be above 0"},
      {"key_management:\n  pools:\n    - {between: [alice, bob], protocol: bb85}\n",
       "unknown protocol 'bb85'; use one of bbm92, e91, bb84, relay"},
      {"key_management:\n  pools:\n    - {between: [alice, charlie], protocol: bb84}\n",
       "protocol bb84 runs over one link only"},
      {"key_management:\n  pools:\n    - {between: [alice, bob], low_watermark: 10}\n",
       "unknown key 'low_watermark'"},
      {"key_management:\n  sae:\n    - {name: s, node: alice}\n", "unknown key 'sae' (did you mean 'saes'?)"},
      {"key_management: [1, 2]\n", "key_management must be a mapping"},
  };
  for (const Case& c : cases) {
    auto config = WithKeyManagement(c.section);
    ASSERT_FALSE(config.ok()) << c.section;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(config.status().message()), HasSubstr(c.expected)) << c.section;
  }
}

TEST(NetworkConfigTest, LoadNetworkFileNamesThePath) {
  auto missing = LoadNetworkFile("/nonexistent/dir/net.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("/nonexistent/dir/net.yaml"));

  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("qnet_config_test_" + std::to_string(::getpid()) + ".yaml");
  {
    std::ofstream out(path);
    out << "network: n\nnodes:\n  - name: a\n    hardware: ideal\n    qubits: -1\n";
  }
  auto bad = LoadNetworkFile(path.string());
  std::filesystem::remove(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), StartsWith(path.string() + ":5:13: "));
}

}  // namespace
}  // namespace qnet::config

namespace qnet::config {
namespace {

TEST(SatelliteLinksTest, ParseFromAPresetWithOverridesAndStayOutOfTheFibreLinks) {
  auto c = ParseNetworkConfig(std::string(kNodes) + R"(satellite_links:
  - between: [a, b]
    preset: micius
    receiver_aperture_m: 0.8
    max_elevation_deg: 60
    detection_window_ns: 1
)",
                              "sat.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->links.empty()) << "the entanglement stack does not see satellite links";
  ASSERT_EQ(c->satellite_links.size(), 1u);
  const physical::SatelliteLink* link = c->FindSatelliteLink("b", "a");
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(link->name, "a-b");
  EXPECT_EQ(link->satellite, "a");
  EXPECT_EQ(link->ground, "b");
  EXPECT_EQ(link->channel.receiver_aperture_m, 0.8);
  EXPECT_EQ(link->channel.max_elevation_deg, 60.0);
  EXPECT_EQ(link->channel.altitude_km, 500.0) << "from the preset";
  EXPECT_EQ(link->source_rate_hz, 1e8) << "from the preset";
  EXPECT_EQ(link->detection_window, FromSeconds(1e-9));
  EXPECT_EQ(c->FindSatelliteLink("a", "c"), nullptr);
}

TEST(SatelliteLinksTest, MistakesAreNamedWithTheirPlace) {
  auto error = [](const std::string& links) {
    auto c = ParseNetworkConfig(std::string(kNodes) + "satellite_links:\n" + links, "net.yaml");
    return c.ok() ? std::string("parsed") : std::string(c.status().message());
  };
  EXPECT_THAT(error("  - between: [a, b]\n    preset: sputnik\n"),
              AllOf(StartsWith("net.yaml:9:13: "), HasSubstr("unknown satellite preset 'sputnik'")));
  EXPECT_THAT(error("  - between: [a, b]\n    min_elevation_deg: 50\n    max_elevation_deg: 40\n"),
              AllOf(StartsWith("net.yaml:8:5: "), HasSubstr("would never come up")));
  EXPECT_THAT(error("  - between: [a, z]\n"), AllOf(StartsWith("net.yaml:8:18: "), HasSubstr("unknown node 'z'")));
  EXPECT_THAT(error("  - between: [a, b]\n    altitude_kms: 500\n"),
              AllOf(StartsWith("net.yaml:9:5: "), HasSubstr("did you mean 'altitude_km'")));
  EXPECT_THAT(error("  - between: [a, b]\n    zenith_transmission: 1.5\n"), HasSubstr("is outside [0, 1]"));
  EXPECT_THAT(error("  - between: [a, b]\n  - between: [b, a]\n"), HasSubstr("are already linked"));
}

}  // namespace
}  // namespace qnet::config
