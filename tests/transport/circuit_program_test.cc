// The circuit text format: what it accepts, and errors that name the line.
#include "transport/circuit_program.h"

#include "gtest/gtest.h"

namespace qnet::transport {
namespace {

TEST(CircuitProgramTest, ParsesGatesCnotsAndMeasurements) {
  absl::StatusOr<CircuitProgram> p = ParseCircuit(R"(# a Bell pair across two nodes
h alice.q          # superposition
rz alice.q -0.5
cnot alice.q bob.q
CX bob.q bob.r     # local, upper case accepted
measure alice.q x
measure bob.q
measure bob.r Y
)");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->instructions.size(), 7u);
  EXPECT_EQ(p->qubits.size(), 3u);
  EXPECT_EQ(p->nodes, (std::vector<std::string>{"alice", "bob"}));
  EXPECT_EQ(p->measurements, 3);
  EXPECT_EQ(p->remote_cnots, 1);
  EXPECT_EQ(p->instructions[1].gate.kind, physical::Gate::Kind::kRz);
  EXPECT_DOUBLE_EQ(p->instructions[1].gate.angle, -0.5);
  EXPECT_EQ(p->instructions[3].op, "cnot");
  EXPECT_EQ(p->instructions[3].line, 5);
  EXPECT_EQ(p->MeasurementLabels(), (std::vector<std::string>{"alice.q(x)", "bob.q(z)", "bob.r(y)"}));
}

TEST(CircuitProgramTest, ErrorsNameTheLine) {
  struct Case {
    const char* text;
    const char* message;
  };
  for (const Case& c : {
           Case{"h alice.q\nfoo alice.q\nmeasure alice.q", "line 2: unknown instruction 'foo'"},
           Case{"h alice\nmeasure alice.q", "line 1: 'alice' is not a qubit"},
           Case{"rx alice.q\nmeasure alice.q", "line 1: rx takes a qubit and an angle"},
           Case{"rx alice.q nan\nmeasure alice.q", "line 1: rx takes a qubit and an angle"},
           Case{"cnot alice.q alice.q\nmeasure alice.q", "line 1: a CNOT needs two different qubits"},
           Case{"measure alice.q\nh alice.q", "line 2: qubit alice.q was measured already"},
           Case{"measure alice.q w", "line 1: basis 'w'"},
           Case{"h alice.q", "measures nothing"},
           Case{"h al ice.q\nmeasure x.y", "line 1: h takes one qubit"},
       }) {
    absl::StatusOr<CircuitProgram> p = ParseCircuit(c.text);
    ASSERT_FALSE(p.ok()) << c.text;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(p.status().message().find(c.message), std::string::npos) << p.status();
  }
  std::string many;
  for (int i = 0; i <= kMaxCircuitQubits; ++i) many += "measure n.q" + std::to_string(i) + "\n";
  EXPECT_NE(ParseCircuit(many).status().message().find("at most"), std::string::npos);
}

}  // namespace
}  // namespace qnet::transport
