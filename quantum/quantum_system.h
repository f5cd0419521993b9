// The simulated quantum state: an exact density-matrix model of qubits held
// as entangled *groups*. Each group's joint state is one density matrix over
// its members; an operation spanning two groups merges them; a measured or
// removed qubit leaves its group. This is the physics engine under the
// simulated device: protocol layers never include it.
//
// Conventions: a group's members are ordered; members[0] is the most
// significant bit of the matrix index (|q0 q1 ...>, textbook order). Matrices
// passed in for k qubits use the order of the `targets`/`ids` argument.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include <Eigen/Dense>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/rng.h"
#include "quantum/bell.h"

namespace qnet::quantum {

using QubitId = uint64_t;
using Matrix = Eigen::MatrixXcd;
using Vector = Eigen::VectorXcd;

// A measurement axis on the Bloch sphere: outcome 0 is the +1 eigenstate of
// n.sigma with n = (sin(theta)cos(phi), sin(theta)sin(phi), cos(theta)).
struct Basis {
  double theta = 0.0;
  double phi = 0.0;
  static Basis Z() { return {0.0, 0.0}; }
  static Basis X() { return {M_PI / 2, 0.0}; }
  static Basis Y() { return {M_PI / 2, M_PI / 2}; }
  // The axis at `angle` from Z towards X in the X-Z plane (CHSH settings).
  static Basis XZ(double angle) { return {angle, 0.0}; }
};

// One whole group, detached from a system: what the hardware plane moves
// between daemons.
struct GroupState {
  std::vector<QubitId> members;
  Matrix rho;
};

class QuantumSystem {
 public:
  // Adds a qubit in |0><0|, alone in its own group.
  absl::Status Create(QubitId id);
  bool Exists(QubitId id) const;

  // Sets the joint state of `ids` to `rho` (2^k x 2^k, order of ids): each
  // existing qubit is first traced out of its current group (other members
  // keep their reduced state), ids not yet present are created, then `ids`
  // form one new group. (A heralded pair is made this way.)
  absl::Status Prepare(std::span<const QubitId> ids, const Matrix& rho);

  // rho -> U rho U^dagger on `targets` (U is 2^k x 2^k, order of targets).
  absl::Status ApplyUnitary(const Matrix& u, std::span<const QubitId> targets);
  // rho -> sum_i K_i rho K_i^dagger on `targets`.
  absl::Status ApplyChannel(std::span<const Matrix> kraus, std::span<const QubitId> targets);

  // Projective measurement along `basis` with Born-rule sampling. The qubit
  // stays in the system, collapsed to the observed eigenstate and no longer
  // entangled with anything. Returns 0 (the +1 eigenstate) or 1.
  absl::StatusOr<int> Measure(QubitId id, const Basis& basis, Rng& rng);
  // Ideal Bell-state measurement of (a, b): which Bell state of quantum/bell.h
  // was projected onto. Both qubits stay, collapsed, unentangled.
  absl::StatusOr<BellState> BellMeasure(QubitId a, QubitId b, Rng& rng);

  // Traces the qubit out and forgets it.
  absl::Status Remove(QubitId id);

  // Reduced density matrix of `ids` (in that order); ids may span groups.
  absl::StatusOr<Matrix> ReducedState(std::span<const QubitId> ids) const;
  // <psi| rho_ids |psi>.
  absl::StatusOr<double> Fidelity(std::span<const QubitId> ids, const Vector& psi) const;

  // Members of the group holding `id` (empty if unknown).
  std::vector<QubitId> GroupOf(QubitId id) const;
  size_t qubit_count() const;
  size_t group_count() const;

  // Removes the whole group containing `id` and returns it.
  absl::StatusOr<GroupState> ExtractGroup(QubitId id);
  // Adds a detached group; none of its members may exist here yet.
  absl::Status InsertGroup(GroupState group);

 private:
  struct Group {
    std::vector<QubitId> members;  // members[0] is the most significant bit
    Matrix rho;
  };

  // Checks that `ids` is non-empty, duplicate-free and names existing qubits.
  absl::Status CheckTargets(std::span<const QubitId> ids, const char* op) const;
  // Merges the groups holding `ids` (tensor product, groups ordered by first
  // appearance in `ids`) and returns the merged group's key.
  absl::StatusOr<uint64_t> MergeGroupsOf(std::span<const QubitId> ids);
  // Applies rho -> sum_i K_i rho K_i^dagger on `targets` of one merged group.
  absl::Status ApplyOperators(std::span<const Matrix> ops, std::span<const QubitId> targets);
  // Takes `id` out of its group, leaving the other members' reduced state.
  void Detach(QubitId id);
  uint64_t AddGroup(std::vector<QubitId> members, Matrix rho);

  absl::flat_hash_map<uint64_t, Group> groups_;       // group key -> group
  absl::flat_hash_map<QubitId, uint64_t> group_of_;  // qubit -> group key
  uint64_t next_group_key_ = 1;
};

}  // namespace qnet::quantum
