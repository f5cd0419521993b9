// The network layer's fidelity model of a pair: a Bell-diagonal state, i.e.
// probabilities of the four Pauli-frame errors (index x + 2z as in
// quantum/bell.h) relative to the pair's labelled Bell state. Swapping two
// Bell-diagonal pairs composes their errors (XOR convolution), and the
// Pauli-twirled memory decay, gate noise and readout errors of a Bell-state
// measurement are Pauli channels, so the whole chain stays in this family.
// For the fidelity with a Bell state the twirl is exact (only the diagonal of
// the process matrix contributes); for states that are not Bell-diagonal it
// is the estimator's approximation. Repeaters and end nodes use it to plan a
// path (per-link targets, cutoffs) and to estimate each delivered pair's
// fidelity from calibrated figures and waiting times, never from simulated
// state.
#pragma once

#include <array>
#include <utility>

#include "core/time.h"
#include "physical/params.h"

namespace qnet::network {

struct BellDiagonal {
  // p[k]: probability of frame error k (0 none, 1 X, 2 Z, 3 Y).
  std::array<double, 4> p{1.0, 0.0, 0.0, 0.0};

  // Fidelity F with the labelled state, the rest spread evenly.
  static BellDiagonal Werner(double fidelity);
  double fidelity() const { return p[0]; }

  // The pair made by swapping `a` and `b` with an ideal Bell measurement
  // (errors compose by XOR; the frame is composed separately).
  static BellDiagonal Swap(const BellDiagonal& a, const BellDiagonal& b);
  // Composes a frame-error distribution `noise` into the state.
  BellDiagonal With(const BellDiagonal& noise) const { return Swap(*this, noise); }

  // One round of DEJMPS purification (Deutsch et al., PRL 77, 2818 (1996))
  // of pair `a` (kept) with pair `b` (sacrificed), both in the PHI+ frame:
  // Rx(pi/2) on one end's qubits, Rx(-pi/2) on the other's, CNOT a -> b at
  // both ends, both of b's qubits measured in Z; success iff the outcomes
  // agree. Returns the kept pair's state on success and the success
  // probability.
  static std::pair<BellDiagonal, double> Dejmps(const BellDiagonal& a, const BellDiagonal& b);
};

// Memory qubits' decoherence, as NodeHardware states it (infinite or
// non-positive times: absent).
struct MemoryDecayRates {
  double t1_s = physical::kInfinity;
  double t2_s = physical::kInfinity;
  double depolarising_time_s = physical::kInfinity;
  static MemoryDecayRates Of(const physical::NodeHardware& hardware) {
    return {hardware.t1_s, hardware.t2_s, hardware.depolarising_time_s};
  }
  static MemoryDecayRates None() { return {}; }
};

// The frame errors a qubit waiting `wait` adds to its pair: the Pauli twirl
// of amplitude damping (T1) with total coherence decay exp(-t/T2), then
// depolarising (X, Y, Z each with (1 - exp(-t/depolarising_time_s)) / 4).
BellDiagonal MemoryDecayErrors(Duration wait, const MemoryDecayRates& rates);

// Both qubits of `state` waiting `wait_a` and `wait_b` (negative waits count as 0).
BellDiagonal Decay(const BellDiagonal& state, Duration wait_a, const MemoryDecayRates& a, Duration wait_b,
                   const MemoryDecayRates& b);

// The frame errors a device's Bell-state measurement (CNOT, H, two readouts,
// as physical::SimulatedDevice performs it) adds to the swapped pair:
// two-qubit depolarising p2 randomises the outcome (uniform over the four
// labels), the H's depolarising p1 flips the z bit with p1/2, and each
// readout flips its bit with the mean readout error.
BellDiagonal BellMeasurementErrors(const physical::NodeHardware& hardware);
BellDiagonal BellMeasurementErrors(double single_qubit_gate_error, double two_qubit_gate_error,
                                   double readout_error_0, double readout_error_1);

}  // namespace qnet::network
