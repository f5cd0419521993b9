// Circuits across nodes in the simulator: a distributed Bell state and a
// 3-node GHZ state by remote CNOTs are exactly the ideal circuit's on ideal
// hardware and degrade as the closed form says on Werner pairs; local
// circuits use no pairs; failures end the run and free every qubit.
#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/transport/transport_harness.h"
#include "transport/distributed_circuit.h"

namespace qnet::transport {
namespace {

using qnet::testing::ExpectTransportClean;
using qnet::testing::SimStackNetwork;
using std::chrono::milliseconds;
using std::chrono::seconds;

// hub with leaves a and b on 2 km links (`link` keys appended).
std::string StarYaml(const std::string& link = "") {
  std::string yaml = "network: star\nnodes:\n";
  for (const char* n : {"hub", "a", "b"}) absl::StrAppend(&yaml, "  - {name: ", n, ", hardware: ideal, qubits: 10}\n");
  absl::StrAppend(&yaml, "links:\n");
  for (const char* n : {"a", "b"}) absl::StrAppend(&yaml, "  - {between: [hub, ", n, "], length_km: 2", link, "}\n");
  return yaml;
}
const char* kWerner = ", scheme: werner, werner_fidelity: 0.95, success_probability: 0.3, attempt_duration_us: 20";

absl::StatusOr<CircuitReport> RunCircuit(SimStackNetwork& net, const std::string& coordinator, const std::string& text,
                                         uint32_t shots, Duration limit = seconds(60)) {
  absl::StatusOr<CircuitProgram> program = ParseCircuit(text);
  if (!program.ok()) return program.status();
  net.RunFor(milliseconds(10));  // routing adverts spread
  CircuitRequest request;
  request.program = *program;
  request.shots = shots;
  request.timeout = limit;
  std::optional<absl::StatusOr<CircuitReport>> out;
  absl::StatusOr<CircuitRunId> id = net.node(coordinator).circuits().Run(
      request, [&out](CircuitRunId, absl::StatusOr<CircuitReport> r) { out = std::move(r); });
  if (!id.ok()) return id.status();
  net.RunUntil([&] { return out.has_value(); }, limit + seconds(1));
  if (!out.has_value()) return absl::DeadlineExceededError("no answer");
  return *out;
}

uint64_t Count(const CircuitReport& r, const std::string& outcome) {
  auto it = r.counts.find(outcome);
  return it == r.counts.end() ? 0 : it->second;
}

void ExpectCircuitsClean(SimStackNetwork& net) {
  net.RunFor(milliseconds(50));  // the last END and FREE messages arrive
  for (const config::NodeConfig& n : net.config().nodes) {
    EXPECT_EQ(net.node(n.name).circuits().held_slots(), 0) << n.name;
    EXPECT_EQ(net.node(n.name).circuits().active_runs(), 0u) << n.name;
    EXPECT_EQ(net.node(n.name).circuits().active_participations(), 0u) << n.name;
  }
  ExpectTransportClean(net);
}

constexpr char kBellZ[] = "h hub.q\ncnot hub.q a.q\nmeasure hub.q\nmeasure a.q\n";
constexpr char kBellX[] = "h hub.q\ncnot hub.q a.q\nmeasure hub.q x\nmeasure a.q x\n";
// Coordinated by a: the control of the first remote CNOT is a, of the second hub.
constexpr char kGhzZ[] = "h a.q\ncnot a.q hub.q\ncnot hub.q b.q\nmeasure a.q\nmeasure hub.q\nmeasure b.q\n";
constexpr char kGhzX[] = "h a.q\ncnot a.q hub.q\ncnot hub.q b.q\nmeasure a.q x\nmeasure hub.q x\nmeasure b.q x\n";

// Parity +1 share of X-basis outcome strings.
double EvenShare(const CircuitReport& r) {
  uint64_t even = 0;
  for (const auto& [o, n] : r.counts) even += std::count(o.begin(), o.end(), '1') % 2 == 0 ? n : 0;
  return static_cast<double>(even) / r.shots;
}

// Ideal hardware: the circuits' outcomes are the ideal circuit's support
// only (00/11; 000/111; even X parity), both halves present, one pair per
// remote CNOT and shot.
TEST(DistributedCircuitSimTest, IdealHardwareGivesTheIdealCircuit) {
  SimStackNetwork net(StarYaml(), 21);
  for (const char* text : {kBellZ, kBellX}) {
    absl::StatusOr<CircuitReport> r = RunCircuit(net, "hub", text, 400);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->shots, 400u);
    EXPECT_EQ(Count(*r, "00") + Count(*r, "11"), 400u);
    EXPECT_GT(Count(*r, "00"), 140u);  // 200 +- 10 expected: both occur
    EXPECT_GT(Count(*r, "11"), 140u);
    EXPECT_EQ(r->pairs_used, 400u);
  }
  absl::StatusOr<CircuitReport> z = RunCircuit(net, "a", kGhzZ, 400);
  ASSERT_TRUE(z.ok()) << z.status();
  EXPECT_EQ(Count(*z, "000") + Count(*z, "111"), 400u);
  EXPECT_GT(Count(*z, "000"), 140u);
  EXPECT_GT(Count(*z, "111"), 140u);
  EXPECT_EQ(z->pairs_used, 800u);
  EXPECT_EQ(z->measurements, (std::vector<std::string>{"a.q(z)", "hub.q(z)", "b.q(z)"}));
  absl::StatusOr<CircuitReport> x = RunCircuit(net, "hub", kGhzX, 400);  // another coordinator
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_DOUBLE_EQ(EvenShare(*x), 1.0);
  EXPECT_GE(x->counts.size(), 3u);  // the four even strings, not one
  // A local circuit uses no pairs: |1> at a.
  absl::StatusOr<CircuitReport> local = RunCircuit(net, "hub", "x a.q\ncnot a.q a.r\nmeasure a.r\n", 20);
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ(Count(*local, "1"), 20u);
  EXPECT_EQ(local->pairs_used, 0u);
  ExpectCircuitsClean(net);
}

// Werner pairs, F = 0.95, e = (1 - F)/3 per Pauli. A remote CNOT over a pair
// with Pauli error P on the target's half gives X on the target for P = X,
// Z on the control for Z, both for Y. Bell state: Z and X mismatch 2e each.
// GHZ by two remote CNOTs: the first's X copies onto b through the second,
// so P(000 or 111) = (F + e)^2 and <XXX> = (F - e)^2 = w^2; the state's
// fidelity F^2 + e^2 equals the fusion closed form for 3 nodes
// (docs/architecture.md, "GHZ states"). Within 5 standard errors; a model
// without the pairs' errors (mismatch 0) or with them doubled fails.
TEST(DistributedCircuitSimTest, WernerPairsDegradeAsTheClosedFormSays) {
  SimStackNetwork net(StarYaml(kWerner), 33);
  const double f = 0.95, e = (1 - f) / 3;
  const uint32_t shots = 6000;
  for (const char* text : {kBellZ, kBellX}) {
    absl::StatusOr<CircuitReport> r = RunCircuit(net, "hub", text, shots);
    ASSERT_TRUE(r.ok()) << r.status();
    const double mismatch = static_cast<double>(Count(*r, "01") + Count(*r, "10")) / shots;
    EXPECT_NEAR(mismatch, 2 * e, 5 * std::sqrt(2 * e * (1 - 2 * e) / shots)) << text;
  }
  absl::StatusOr<CircuitReport> z = RunCircuit(net, "a", kGhzZ, shots);
  ASSERT_TRUE(z.ok()) << z.status();
  const double same = static_cast<double>(Count(*z, "000") + Count(*z, "111")) / shots;
  const double p_same = (f + e) * (f + e);
  EXPECT_NEAR(same, p_same, 5 * std::sqrt(p_same * (1 - p_same) / shots));
  absl::StatusOr<CircuitReport> x = RunCircuit(net, "a", kGhzX, shots);
  ASSERT_TRUE(x.ok()) << x.status();
  const double parity = 2 * EvenShare(*x) - 1, w2 = (f - e) * (f - e);
  EXPECT_NEAR(parity, w2, 5 * std::sqrt((1 - w2 * w2) / shots));
  ExpectCircuitsClean(net);
}

TEST(DistributedCircuitSimTest, FailuresEndTheRunAndFreeEveryQubit) {
  SimStackNetwork net(StarYaml(), 8);
  // A node that is not in the network: refused at once.
  absl::StatusOr<CircuitReport> unknown = RunCircuit(net, "hub", "h hub.q\ncnot hub.q nowhere.q\nmeasure hub.q\n", 5);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound) << unknown.status();
  // More qubits at a than its 10 slots: NO_RESOURCES naming the line.
  std::string big;
  for (int i = 0; i < 11; ++i) big += "x a.q" + std::to_string(i) + "\n";
  big += "measure a.q0\n";
  absl::StatusOr<CircuitReport> full = RunCircuit(net, "hub", big, 2);
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted) << full.status();
  EXPECT_NE(full.status().message().find("line 11"), std::string::npos) << full.status();
  ExpectCircuitsClean(net);

  // b crashes mid-run: the run fails (its pair request or the deadline) and
  // nothing stays allocated at hub or a.
  absl::StatusOr<CircuitProgram> program = ParseCircuit(kGhzZ);
  ASSERT_TRUE(program.ok());
  CircuitRequest request;
  request.program = *program;
  request.shots = 100000;
  request.timeout = seconds(5);
  std::optional<absl::StatusOr<CircuitReport>> out;
  ASSERT_TRUE(net.node("a").circuits().Run(request, [&out](CircuitRunId, absl::StatusOr<CircuitReport> r) {
    out = std::move(r);
  }).ok());
  net.RunFor(milliseconds(20));
  ASSERT_FALSE(out.has_value());
  net.Crash("b");
  ASSERT_TRUE(net.RunUntil([&] { return out.has_value(); }, seconds(10)));
  EXPECT_FALSE(out->ok());
  net.RunFor(seconds(6));
  for (const char* n : {"hub", "a"}) {
    EXPECT_EQ(net.node(n).circuits().held_slots(), 0) << n;
    EXPECT_EQ(net.node(n).circuits().active_participations(), 0u) << n;
    EXPECT_EQ(net.node(n).memory_qubits_in_use(), 0u) << n;
  }
  // Garbage on the circuit purpose id changes nothing.
  for (const char* junk : {"", "GATE", "GATE 1 2 q 99 0", "RCX 1 0 q a q 2 5", "RCXB x 1 2 a b 3 4 1 1 1 q",
                           "DONE 1 0 7 -1", "FAIL 1 0 99 no", "RCXZ a 1 0 5", "BEGIN 1 0", "FREE x"}) {
    ASSERT_TRUE(net.node("hub").network().SendDatagram("a", kCircuitPurposeId, junk).ok());
  }
  net.RunFor(milliseconds(10));
  EXPECT_EQ(net.node("a").circuits().held_slots(), 0);
}

}  // namespace
}  // namespace qnet::transport
