// Single-qubit input states for teleportation, as a client names them: Bloch
// angles (theta, phi) or one of the six cardinal states, and the estimate of
// a teleported state from measurement outcomes alone (X, Y and Z counts), so
// a user can check a transfer without the simulator's ground truth.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "quantum/quantum_system.h"

namespace qnet::transport {

// cos(theta/2)|0> + e^{i phi} sin(theta/2)|1>.
struct BlochAngles {
  double theta = 0.0;
  double phi = 0.0;
};

enum class NamedState : uint8_t { kZero, kOne, kPlus, kMinus, kPlusI, kMinusI };

BlochAngles ToAngles(NamedState state);
std::string_view NamedStateName(NamedState state);  // "|0>", "|1>", "|+>", "|->", "|+i>", "|-i>"
// Accepts "0", "1", "+", "-", "+i", "-i", with or without "|...>".
absl::StatusOr<NamedState> ParseNamedState(std::string_view text);

quantum::Vector StateVector(const BlochAngles& state);
// The unit Bloch vector (x, y, z) of the pure state.
std::array<double, 3> BlochVector(const BlochAngles& state);

// How a receiver checks teleported qubits without the simulator's truth:
// the qubit of transfer `id` is measured on axis id % 3 (0 X, 1 Y, 2 Z), so
// the daemons' Teleport and qnetsim --teleport sample the axes alike.
int TeleportShotAxis(uint64_t transfer_id);
quantum::Basis AxisBasis(int axis);  // 0 X, 1 Y, anything else Z

// Outcome counts of one measurement axis (outcome 0 = the +1 eigenstate).
struct AxisCounts {
  uint64_t shots = 0;
  uint64_t plus = 0;
};

struct BlochEstimate {
  std::array<double, 3> r{};               // <X>, <Y>, <Z> estimated
  std::array<double, 3> standard_error{};  // of each component
  double fidelity = 0.0;                   // (1 + n.r)/2 with the intended state's n
  double fidelity_standard_error = 0.0;
};

// Estimates the Bloch vector from X, Y and Z counts (each axis at least one
// shot) and its fidelity with `intended`. Each component is 2 p - 1 with p
// the fraction of +1 outcomes; its standard error uses (plus+1)/(shots+2)
// for p, so an axis whose outcomes all agree still gets a non-zero error.
// The estimate is linear inversion: it may lie outside the Bloch ball (and
// the fidelity above 1) by sampling error.
absl::StatusOr<BlochEstimate> EstimateFromOutcomes(const AxisCounts& x, const AxisCounts& y, const AxisCounts& z,
                                                   const BlochAngles& intended);

}  // namespace qnet::transport
