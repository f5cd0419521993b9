#include "transport/circuit_program.h"

#include <algorithm>
#include <cmath>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace qnet::transport {
namespace {

bool ValidName(absl::string_view s) {
  return !s.empty() && s.size() <= 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isalnum(c) || c == '_' || c == '-'; });
}

}  // namespace

std::vector<std::string> CircuitProgram::MeasurementLabels() const {
  std::vector<std::string> labels;
  for (const CircuitInstruction& i : instructions) {
    if (i.kind == CircuitInstruction::Kind::kMeasure) {
      labels.push_back(absl::StrCat(qubits[static_cast<size_t>(i.qubit)].Label(), "(", std::string(1, i.basis), ")"));
    }
  }
  return labels;
}

absl::StatusOr<CircuitProgram> ParseCircuit(absl::string_view text) {
  CircuitProgram program;
  absl::flat_hash_map<std::string, int> index;
  std::vector<bool> measured;
  int line_no = 0;
  auto fail = [&line_no](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": ", why));
  };
  // NODE.NAME -> its index, declared at first use.
  auto qubit = [&](absl::string_view ref) -> absl::StatusOr<int> {
    const size_t dot = ref.find('.');
    if (dot == absl::string_view::npos || !ValidName(ref.substr(0, dot)) || !ValidName(ref.substr(dot + 1))) {
      return fail(absl::StrCat("'", std::string(ref), "' is not a qubit: write NODE.NAME (letters, digits, _ or -)"));
    }
    const std::string key(ref);
    auto it = index.find(key);
    if (it != index.end()) {
      if (measured[static_cast<size_t>(it->second)]) {
        return fail(absl::StrCat("qubit ", key, " was measured already"));
      }
      return it->second;
    }
    if (static_cast<int>(program.qubits.size()) >= kMaxCircuitQubits) {
      return fail(absl::StrCat("a circuit has at most ", kMaxCircuitQubits, " qubits"));
    }
    CircuitQubit q{std::string(ref.substr(0, dot)), std::string(ref.substr(dot + 1))};
    if (std::find(program.nodes.begin(), program.nodes.end(), q.node) == program.nodes.end()) {
      program.nodes.push_back(q.node);
    }
    program.qubits.push_back(std::move(q));
    measured.push_back(false);
    const int i = static_cast<int>(program.qubits.size()) - 1;
    index[key] = i;
    return i;
  };
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line_no;
    absl::string_view line = raw.substr(0, raw.find('#'));
    std::vector<std::string> f = absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (f.empty()) continue;
    if (static_cast<int>(program.instructions.size()) >= kMaxCircuitInstructions) {
      return fail(absl::StrCat("a circuit has at most ", kMaxCircuitInstructions, " instructions"));
    }
    CircuitInstruction in;
    in.line = line_no;
    in.op = absl::AsciiStrToLower(f[0]);
    static const absl::flat_hash_map<std::string, physical::Gate> kFixed = {
        {"x", physical::Gate::X()}, {"y", physical::Gate::Y()},   {"z", physical::Gate::Z()},  {"h", physical::Gate::H()},
        {"s", physical::Gate::S()}, {"sdg", physical::Gate::Sdg()}, {"t", physical::Gate::T()}};
    if (auto g = kFixed.find(in.op); g != kFixed.end()) {
      if (f.size() != 2) return fail(absl::StrCat(in.op, " takes one qubit: ", in.op, " NODE.NAME"));
      in.kind = CircuitInstruction::Kind::kGate;
      in.gate = g->second;
      absl::StatusOr<int> q = qubit(f[1]);
      if (!q.ok()) return q.status();
      in.qubit = *q;
    } else if (in.op == "rx" || in.op == "ry" || in.op == "rz") {
      double angle = 0;
      if (f.size() != 3 || !absl::SimpleAtod(f[2], &angle) || !std::isfinite(angle)) {
        return fail(absl::StrCat(in.op, " takes a qubit and an angle in radians: ", in.op, " NODE.NAME 0.785"));
      }
      in.kind = CircuitInstruction::Kind::kGate;
      in.gate = in.op == "rx" ? physical::Gate::Rx(angle) : in.op == "ry" ? physical::Gate::Ry(angle)
                                                                           : physical::Gate::Rz(angle);
      absl::StatusOr<int> q = qubit(f[1]);
      if (!q.ok()) return q.status();
      in.qubit = *q;
    } else if (in.op == "cnot" || in.op == "cx") {
      in.op = "cnot";
      if (f.size() != 3) return fail("cnot takes a control and a target: cnot NODE.NAME NODE.NAME");
      absl::StatusOr<int> c = qubit(f[1]);
      if (!c.ok()) return c.status();
      absl::StatusOr<int> t = qubit(f[2]);
      if (!t.ok()) return t.status();
      if (*c == *t) return fail("a CNOT needs two different qubits");
      in.kind = CircuitInstruction::Kind::kCnot;
      in.qubit = *c;
      in.target = *t;
      if (program.qubits[static_cast<size_t>(*c)].node != program.qubits[static_cast<size_t>(*t)].node) {
        ++program.remote_cnots;
      }
    } else if (in.op == "measure") {
      if (f.size() != 2 && f.size() != 3) return fail("measure takes a qubit and a basis: measure NODE.NAME [z|x|y]");
      const std::string basis = f.size() == 3 ? absl::AsciiStrToLower(f[2]) : "z";
      if (basis != "x" && basis != "y" && basis != "z") return fail(absl::StrCat("basis '", f[2], "': use z, x or y"));
      absl::StatusOr<int> q = qubit(f[1]);
      if (!q.ok()) return q.status();
      in.kind = CircuitInstruction::Kind::kMeasure;
      in.qubit = *q;
      in.basis = basis[0];
      measured[static_cast<size_t>(*q)] = true;
      ++program.measurements;
    } else {
      return fail(absl::StrCat("unknown instruction '", f[0],
                               "' (x y z h s sdg t, rx ry rz ANGLE, cnot CONTROL TARGET, measure QUBIT [z|x|y])"));
    }
    program.instructions.push_back(std::move(in));
  }
  if (program.measurements == 0) {
    return absl::InvalidArgumentError("the circuit measures nothing: add `measure NODE.NAME` lines");
  }
  return program;
}

}  // namespace qnet::transport
