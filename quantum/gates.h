// Unitary gates as matrices, for QuantumSystem::ApplyUnitary. Two-qubit gates
// use the order (control, target) of the targets argument.
#pragma once

#include "quantum/quantum_system.h"

namespace qnet::quantum::gates {

Matrix I();
Matrix X();
Matrix Y();
Matrix Z();
Matrix H();
Matrix S();
Matrix Sdg();
Matrix T();
Matrix Rx(double theta);  // exp(-i theta X / 2)
Matrix Ry(double theta);
Matrix Rz(double theta);
Matrix CNOT();
Matrix CZ();
// The Pauli correction X^x Z^z (applied as Z first, then X).
Matrix Pauli(int x, int z);

}  // namespace qnet::quantum::gates
