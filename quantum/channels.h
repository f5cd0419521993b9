// Noise channels as Kraus operator sets, for QuantumSystem::ApplyChannel.
// Each returns operators satisfying sum K^dagger K = I; every probability
// argument must lie in [0, 1] (checked: out-of-range input aborts, as it is a
// programming error, not user input - user input is validated at the edge).
#pragma once

#include <vector>

#include "quantum/quantum_system.h"

namespace qnet::quantum::channels {

// rho -> (1-p) rho + p I/2.
std::vector<Matrix> Depolarizing(double p);
// rho -> (1-p) rho + p I/4 on two qubits.
std::vector<Matrix> TwoQubitDepolarizing(double p);
// rho -> (1-p) rho + p Z rho Z.
std::vector<Matrix> Dephasing(double p);
// rho -> (1-p) rho + p X rho X.
std::vector<Matrix> BitFlip(double p);
// Energy relaxation |1> -> |0> with probability gamma.
std::vector<Matrix> AmplitudeDamping(double gamma);
// Memory decoherence while a qubit waits `seconds`: amplitude damping with
// gamma = 1 - exp(-t/T1) composed with the pure dephasing that makes the
// coherence decay as exp(-t/T2) in total. T1 or T2 <= 0 or infinite means
// that process is absent; requires T2 <= 2 T1 when both are finite.
std::vector<Matrix> MemoryDecay(double seconds, double t1_seconds, double t2_seconds);

}  // namespace qnet::quantum::channels
