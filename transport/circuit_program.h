// A small text format for circuits across nodes (`qnetctl circuit FILE`,
// `qnetsim --circuit FILE`), and its parser. One instruction per line;
// `#` starts a comment; qubits are named NODE.NAME and start in |0> at
// their first use:
//
//   h alice.q                 one-qubit gates: x y z h s sdg t
//   rz alice.q 0.7854         rotations rx ry rz by an angle in radians
//   cnot alice.q bob.q        CNOT; between two nodes a remote CNOT that
//                             consumes one entangled pair (Eisert et al. 2000)
//   measure bob.q x           measurement in z (default), x or y; the
//                             qubit is not used again
//
// The result of a shot is the measurements' outcomes in program order.
#pragma once

#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include "physical/quantum_device.h"

namespace qnet::transport {

inline constexpr int kMaxCircuitInstructions = 1000;
inline constexpr int kMaxCircuitQubits = 64;

struct CircuitQubit {
  std::string node;
  std::string name;  // letters, digits and '_'
  std::string Label() const { return node + "." + name; }
};

struct CircuitInstruction {
  enum class Kind { kGate, kCnot, kMeasure };
  Kind kind = Kind::kGate;
  std::string op;       // as written: "h", "rz", "cnot", "measure"
  physical::Gate gate = physical::Gate::X();  // kGate
  int qubit = 0;        // index into CircuitProgram::qubits (the control for kCnot)
  int target = -1;      // kCnot
  char basis = 'z';     // kMeasure: 'x', 'y' or 'z'
  int line = 0;
};

struct CircuitProgram {
  std::vector<CircuitQubit> qubits;
  std::vector<CircuitInstruction> instructions;
  // The nodes the program uses, in order of first mention.
  std::vector<std::string> nodes;
  int measurements = 0;
  int remote_cnots = 0;  // per shot
  // "alice.q(z)" per measurement, in program order.
  std::vector<std::string> MeasurementLabels() const;
};

// InvalidArgument "line N: ..." for anything else, a qubit used after its
// measurement, a CNOT of a qubit with itself, a program that measures
// nothing, or more than kMaxCircuitInstructions / kMaxCircuitQubits.
absl::StatusOr<CircuitProgram> ParseCircuit(absl::string_view text);

}  // namespace qnet::transport
