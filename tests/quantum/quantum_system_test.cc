// QuantumSystem: the index-arithmetic kernels against full Kronecker
// references, group bookkeeping, Born-rule measurement, determinism, and the
// error paths.
#include "quantum/quantum_system.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/rng.h"
#include "quantum/channels.h"
#include "quantum/gates.h"
#include "tests/quantum/reference.h"

namespace qnet::quantum {
namespace {

using testing::EmbedOperator;
using testing::MaxAbsDiff;
using testing::NaivePartialTrace;

Matrix StateOf(const QuantumSystem& sys, std::vector<QubitId> ids) {
  auto rho = sys.ReducedState(ids);
  EXPECT_TRUE(rho.ok()) << rho.status();
  return rho.ok() ? *rho : Matrix();
}

TEST(QuantumSystemTest, CreateStartsInZeroAlone) {
  QuantumSystem sys;
  ASSERT_TRUE(sys.Create(5).ok());
  EXPECT_TRUE(sys.Exists(5));
  EXPECT_FALSE(sys.Exists(6));
  EXPECT_EQ(sys.GroupOf(5), std::vector<QubitId>{5});
  EXPECT_TRUE(sys.GroupOf(6).empty());
  Matrix zero = Matrix::Zero(2, 2);
  zero(0, 0) = 1;
  EXPECT_LT(MaxAbsDiff(StateOf(sys, {5}), zero), 1e-15);
}

// Unitaries on k of n qubits, in scrambled target orders, against U_full rho U_full^dagger.
TEST(QuantumSystemTest, UnitaryKernelMatchesKroneckerReference) {
  Rng rng(1);
  const std::vector<QubitId> ids = {10, 11, 12, 13, 14};
  const int n = 5;
  const std::vector<std::vector<int>> target_sets = {{2},    {0},       {4},         {3, 1},
                                                     {0, 4}, {2, 0, 3}, {4, 1, 3, 0}};
  for (const auto& positions : target_sets) {
    QuantumSystem sys;
    const Matrix rho = testing::RandomDensity(rng, 1L << n);
    ASSERT_TRUE(sys.Prepare(ids, rho).ok());
    const Matrix u = testing::RandomUnitary(rng, 1L << positions.size());
    std::vector<QubitId> targets;
    for (int p : positions) targets.push_back(ids[p]);
    ASSERT_TRUE(sys.ApplyUnitary(u, targets).ok());
    const Matrix full = EmbedOperator(u, positions, n);
    EXPECT_LT(MaxAbsDiff(StateOf(sys, ids), full * rho * full.adjoint()), 1e-12)
        << "targets of size " << positions.size();
  }
}

// Gates that only move entries (X, CNOT, SWAP, Toffoli, a cycle) take a path with no
// arithmetic; it must agree with U_full rho U_full^dagger for every target
// order, and a near-permutation (one entry off) must not take it.
TEST(QuantumSystemTest, PermutationGatesMatchKroneckerReference) {
  Rng rng(3);
  const std::vector<QubitId> ids = {20, 21, 22, 23, 24};
  const int n = 5;
  Matrix toffoli = Matrix::Identity(8, 8);
  toffoli(6, 6) = toffoli(7, 7) = 0;
  toffoli(6, 7) = toffoli(7, 6) = 1;
  Matrix swap = Matrix::Zero(4, 4);
  swap(0, 0) = swap(1, 2) = swap(2, 1) = swap(3, 3) = 1;
  Matrix cycle = Matrix::Zero(4, 4);  // |j> -> |j+1 mod 4>: not its own inverse
  for (int j = 0; j < 4; ++j) cycle((j + 1) % 4, j) = 1;
  Matrix near = gates::CNOT();  // CNOT with a phase on one entry: unitary, not a permutation
  near(3, 2) = std::complex<double>(0, 1);
  const std::vector<std::pair<Matrix, std::vector<int>>> cases = {
      {gates::X(), {3}},     {gates::CNOT(), {0, 1}}, {gates::CNOT(), {4, 1}}, {gates::CNOT(), {2, 0}},
      {swap, {3, 0}},        {cycle, {2, 4}},         {cycle, {1, 0}},         {toffoli, {1, 4, 2}},    {toffoli, {4, 0, 3}},    {near, {1, 3}}};
  for (const auto& [u, positions] : cases) {
    QuantumSystem sys;
    const Matrix rho = testing::RandomDensity(rng, 1L << n);
    ASSERT_TRUE(sys.Prepare(ids, rho).ok());
    std::vector<QubitId> targets;
    for (int p : positions) targets.push_back(ids[p]);
    ASSERT_TRUE(sys.ApplyUnitary(u, targets).ok());
    const Matrix full = EmbedOperator(u, positions, n);
    EXPECT_LT(MaxAbsDiff(StateOf(sys, ids), full * rho * full.adjoint()), 1e-12)
        << "a " << u.rows() << "x" << u.rows() << " gate on " << positions.size() << " targets";
  }
}

TEST(QuantumSystemTest, ChannelKernelMatchesKroneckerReference) {
  Rng rng(2);
  const std::vector<QubitId> ids = {1, 2, 3, 4};
  const Matrix rho = testing::RandomDensity(rng, 16);
  QuantumSystem sys;
  ASSERT_TRUE(sys.Prepare(ids, rho).ok());
  const auto kraus = channels::TwoQubitDepolarizing(0.3);
  const std::vector<QubitId> targets = {4, 2};
  ASSERT_TRUE(sys.ApplyChannel(kraus, targets).ok());
  Matrix expected = Matrix::Zero(16, 16);
  for (const Matrix& k : kraus) {
    const Matrix full = EmbedOperator(k, {3, 1}, 4);
    expected += full * rho * full.adjoint();
  }
  EXPECT_LT(MaxAbsDiff(StateOf(sys, ids), expected), 1e-12);

  const auto damping = channels::AmplitudeDamping(0.4);
  const std::vector<QubitId> one = {3};
  ASSERT_TRUE(sys.ApplyChannel(damping, one).ok());
  Matrix expected2 = Matrix::Zero(16, 16);
  for (const Matrix& k : damping) {
    const Matrix full = EmbedOperator(k, {2}, 4);
    expected2 += full * expected * full.adjoint();
  }
  EXPECT_LT(MaxAbsDiff(StateOf(sys, ids), expected2), 1e-12);
}

TEST(QuantumSystemTest, ReducedStateInAnyOrderAcrossGroups) {
  Rng rng(3);
  const Matrix rho_a = testing::RandomDensity(rng, 8);  // qubits 1, 2, 3
  const Matrix rho_b = testing::RandomDensity(rng, 4);  // qubits 7, 8
  QuantumSystem sys;
  ASSERT_TRUE(sys.Prepare(std::vector<QubitId>{1, 2, 3}, rho_a).ok());
  ASSERT_TRUE(sys.Prepare(std::vector<QubitId>{7, 8}, rho_b).ok());
  // Reference: the joint state over (1, 2, 3, 7, 8) is the tensor product.
  const Matrix joint = testing::Kron(rho_a, rho_b);
  EXPECT_LT(MaxAbsDiff(StateOf(sys, {3, 1}), NaivePartialTrace(joint, 5, {2, 0})), 1e-14);
  EXPECT_LT(MaxAbsDiff(StateOf(sys, {8, 2, 7}), NaivePartialTrace(joint, 5, {4, 1, 3})), 1e-14);
  EXPECT_LT(MaxAbsDiff(StateOf(sys, {7, 3, 1, 8, 2}), NaivePartialTrace(joint, 5, {3, 2, 0, 4, 1})),
            1e-14);
  EXPECT_EQ(sys.group_count(), 2u);  // reading state never merges groups
}

TEST(QuantumSystemTest, OperationAcrossGroupsMergesThem) {
  Rng rng(4);
  const Matrix rho_ab = testing::RandomDensity(rng, 4);
  const Matrix rho_cd = testing::RandomDensity(rng, 4);
  QuantumSystem sys;
  ASSERT_TRUE(sys.Prepare(std::vector<QubitId>{1, 2}, rho_ab).ok());
  ASSERT_TRUE(sys.Prepare(std::vector<QubitId>{3, 4}, rho_cd).ok());
  EXPECT_EQ(sys.group_count(), 2u);
  EXPECT_EQ(sys.qubit_count(), 4u);
  ASSERT_TRUE(sys.ApplyUnitary(gates::CNOT(), std::vector<QubitId>{3, 1}).ok());
  EXPECT_EQ(sys.group_count(), 1u);
  EXPECT_EQ(sys.qubit_count(), 4u);
  // Groups join in order of first appearance among the targets.
  EXPECT_EQ(sys.GroupOf(1), (std::vector<QubitId>{3, 4, 1, 2}));
  EXPECT_EQ(sys.GroupOf(4), sys.GroupOf(2));
  // Over (1, 2, 3, 4): CNOT with control position 2, target position 0.
  const Matrix full = EmbedOperator(gates::CNOT(), {2, 0}, 4);
  const Matrix expected = full * testing::Kron(rho_ab, rho_cd) * full.adjoint();
  EXPECT_LT(MaxAbsDiff(StateOf(sys, {1, 2, 3, 4}), expected), 1e-13);
}

TEST(QuantumSystemTest, RemoveTracesOut) {
  QuantumSystem sys;
  ASSERT_TRUE(sys.Prepare(std::vector<QubitId>{1, 2}, BellDensity(BellState::kPhiPlus)).ok());
  ASSERT_TRUE(sys.Remove(1).ok());
  EXPECT_FALSE(sys.Exists(1));
  EXPECT_EQ(sys.qubit_count(), 1u);
  EXPECT_EQ(sys.group_count(), 1u);
  EXPECT_LT(MaxAbsDiff(StateOf(sys, {2}), Matrix::Identity(2, 2) / 2), 1e-15);
  ASSERT_TRUE(sys.Remove(2).ok());
  EXPECT_EQ(sys.qubit_count(), 0u);
  EXPECT_EQ(sys.group_count(), 0u);
}

TEST(QuantumSystemTest, PrepareDetachesExistingQubitsAndCreatesNewOnes) {
  Rng rng(5);
  const Matrix rho = testing::RandomDensity(rng, 8);
  QuantumSystem sys;
  ASSERT_TRUE(sys.Prepare(std::vector<QubitId>{1, 2, 3}, rho).ok());
  ASSERT_TRUE(sys.Prepare(std::vector<QubitId>{2, 9}, BellDensity(BellState::kPsiMinus)).ok());
  EXPECT_EQ(sys.qubit_count(), 4u);
  EXPECT_EQ(sys.group_count(), 2u);
  EXPECT_EQ(sys.GroupOf(1), (std::vector<QubitId>{1, 3}));
  EXPECT_EQ(sys.GroupOf(9), (std::vector<QubitId>{2, 9}));
  EXPECT_LT(MaxAbsDiff(StateOf(sys, {1, 3}), NaivePartialTrace(rho, 3, {0, 2})), 1e-14);
  EXPECT_NEAR(*sys.Fidelity(std::vector<QubitId>{2, 9}, BellVector(BellState::kPsiMinus)), 1.0,
              1e-14);
}

TEST(QuantumSystemTest, ExtractInsertRoundTrip) {
  Rng rng(6);
  const Matrix rho = testing::RandomDensity(rng, 8);
  QuantumSystem a, b;
  ASSERT_TRUE(a.Prepare(std::vector<QubitId>{1, 2, 3}, rho).ok());
  ASSERT_TRUE(a.Create(4).ok());
  auto group = a.ExtractGroup(2);
  ASSERT_TRUE(group.ok());
  EXPECT_EQ(group->members, (std::vector<QubitId>{1, 2, 3}));
  EXPECT_LT(MaxAbsDiff(group->rho, rho), 1e-15);
  EXPECT_EQ(a.qubit_count(), 1u);
  EXPECT_EQ(a.group_count(), 1u);
  EXPECT_FALSE(a.Exists(1));
  ASSERT_TRUE(b.InsertGroup(*group).ok());
  EXPECT_EQ(b.qubit_count(), 3u);
  EXPECT_LT(MaxAbsDiff(StateOf(b, {1, 2, 3}), rho), 1e-15);
  // Inserting it again collides.
  EXPECT_EQ(b.InsertGroup(*group).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(a.InsertGroup(*std::move(group)).ok());
  EXPECT_EQ(a.group_count(), 2u);
}

// A random 3-qubit pure state; qubit 12 measured along a tilted axis. Outcome
// frequencies follow the Born rule within 5 sigma, and every post-measurement
// state equals the hand-projected one exactly.
TEST(QuantumSystemTest, MeasurementFollowsBornRuleAndCollapses) {
  Rng state_rng(7);
  const Vector psi = testing::HaarState(state_rng, 8);
  const Matrix rho = psi * psi.adjoint();
  const Basis basis{1.1, 0.4};
  Vector e0(2), e1(2);
  e0 << std::cos(basis.theta / 2), std::polar(std::sin(basis.theta / 2), basis.phi);
  e1 << std::sin(basis.theta / 2), -std::polar(std::cos(basis.theta / 2), basis.phi);
  const Matrix local = NaivePartialTrace(rho, 3, {1});
  const double p0 = (e0.adjoint() * local * e0)(0, 0).real();

  // Reference conditional states of qubits (11, 13).
  Matrix rest[2];
  for (int outcome = 0; outcome < 2; ++outcome) {
    const Vector& e = outcome == 0 ? e0 : e1;
    const Matrix proj = EmbedOperator(e * e.adjoint(), {1}, 3);
    const Matrix post = proj * rho * proj;
    rest[outcome] = NaivePartialTrace(post, 3, {0, 2}) / post.trace().real();
  }

  Rng rng(8);
  const int shots = 20000;
  int zeros = 0;
  for (int i = 0; i < shots; ++i) {
    QuantumSystem sys;
    ASSERT_TRUE(sys.Prepare(std::vector<QubitId>{11, 12, 13}, rho).ok());
    auto m = sys.Measure(12, basis, rng);
    ASSERT_TRUE(m.ok());
    zeros += *m == 0;
    if (i < 50) {
      const Vector& e = *m == 0 ? e0 : e1;
      EXPECT_EQ(sys.group_count(), 2u);
      EXPECT_EQ(sys.GroupOf(12), std::vector<QubitId>{12});
      EXPECT_EQ(sys.GroupOf(11), (std::vector<QubitId>{11, 13}));
      EXPECT_LT(MaxAbsDiff(StateOf(sys, {12}), e * e.adjoint()), 1e-12);
      EXPECT_LT(MaxAbsDiff(StateOf(sys, {11, 13}), rest[*m]), 1e-12);
      // Measuring again along the same axis repeats the outcome.
      EXPECT_EQ(*sys.Measure(12, basis, rng), *m);
    }
  }
  const double sigma = std::sqrt(p0 * (1 - p0) / shots);
  EXPECT_NEAR(static_cast<double>(zeros) / shots, p0, 5 * sigma) << "p0=" << p0;
}

TEST(QuantumSystemTest, MeasuringOneHalfOfPhiPlusFixesTheOther) {
  Rng rng(9);
  for (int i = 0; i < 100; ++i) {
    QuantumSystem sys;
    ASSERT_TRUE(sys.Prepare(std::vector<QubitId>{1, 2}, BellDensity(BellState::kPhiPlus)).ok());
    const int a = *sys.Measure(1, Basis::X(), rng);
    EXPECT_EQ(*sys.Measure(2, Basis::X(), rng), a);
  }
}

// Same seed, same outcome sequence; the sequence is not constant.
TEST(QuantumSystemTest, SameSeedSameOutcomes) {
  auto run = [](uint64_t seed) {
    Rng rng(seed);
    std::vector<int> outcomes;
    QuantumSystem sys;
    for (int i = 0; i < 200; ++i) {
      const QubitId a = 4 * i, b = a + 1, c = a + 2, d = a + 3;
      EXPECT_TRUE(sys.Prepare(std::vector<QubitId>{a, b}, BellDensity(BellState::kPhiPlus)).ok());
      EXPECT_TRUE(sys.Prepare(std::vector<QubitId>{c, d}, testing::Werner(0.9)).ok());
      outcomes.push_back(static_cast<int>(*sys.BellMeasure(b, c, rng)));
      outcomes.push_back(*sys.Measure(a, Basis::XZ(0.3 * i), rng));
      outcomes.push_back(*sys.Measure(d, Basis::Y(), rng));
    }
    return outcomes;
  };
  const std::vector<int> first = run(42);
  EXPECT_EQ(first, run(42));
  EXPECT_NE(first, run(43));
}

TEST(QuantumSystemTest, ErrorPaths) {
  QuantumSystem sys;
  Rng rng(1);
  ASSERT_TRUE(sys.Create(1).ok());
  ASSERT_TRUE(sys.Create(2).ok());
  EXPECT_EQ(sys.Create(1).code(), absl::StatusCode::kAlreadyExists);

  const std::vector<QubitId> unknown = {1, 99};
  const std::vector<QubitId> dup = {1, 1};
  const std::vector<QubitId> none;
  EXPECT_EQ(sys.ApplyUnitary(gates::CNOT(), unknown).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(sys.ApplyUnitary(gates::CNOT(), dup).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sys.ApplyUnitary(gates::X(), none).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sys.ApplyUnitary(gates::X(), std::vector<QubitId>{1, 2}).code(),
            absl::StatusCode::kInvalidArgument);  // 2x2 for two qubits
  EXPECT_EQ(sys.ApplyUnitary(2.0 * gates::X(), std::vector<QubitId>{1}).code(),
            absl::StatusCode::kInvalidArgument);  // not unitary
  EXPECT_EQ(sys.ApplyChannel(channels::Depolarizing(0.1), unknown).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(sys.ApplyChannel(channels::Depolarizing(0.1), std::vector<QubitId>{1, 2}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      sys.ApplyChannel(std::vector<Matrix>{gates::X(), gates::Z()}, std::vector<QubitId>{1}).code(),
      absl::StatusCode::kInvalidArgument);  // sum K^dagger K = 2 I
  EXPECT_EQ(sys.ApplyChannel(std::vector<Matrix>{}, std::vector<QubitId>{1}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sys.Measure(99, Basis::Z(), rng).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(sys.BellMeasure(1, 1, rng).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sys.BellMeasure(1, 99, rng).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(sys.Remove(99).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(sys.ReducedState(unknown).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(sys.ReducedState(dup).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sys.Fidelity(std::vector<QubitId>{1}, BellVector(BellState::kPhiPlus)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sys.ExtractGroup(99).status().code(), absl::StatusCode::kNotFound);

  EXPECT_EQ(sys.Prepare(dup, BellDensity(BellState::kPhiPlus)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sys.Prepare(std::vector<QubitId>{1, 2}, Matrix::Identity(4, 4)).code(),
            absl::StatusCode::kInvalidArgument);  // trace 4
  Matrix non_hermitian = Matrix::Identity(2, 2) / 2;
  non_hermitian(0, 1) = 0.3;
  EXPECT_EQ(sys.Prepare(std::vector<QubitId>{1}, non_hermitian).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sys.InsertGroup(GroupState{{1, 5}, BellDensity(BellState::kPhiPlus)}).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(sys.InsertGroup(GroupState{{6, 7}, Matrix::Identity(2, 2)}).code(),
            absl::StatusCode::kInvalidArgument);
  // The failed calls changed nothing.
  EXPECT_EQ(sys.qubit_count(), 2u);
  EXPECT_EQ(sys.group_count(), 2u);

  // A message names the offending qubit.
  EXPECT_NE(sys.ApplyUnitary(gates::CNOT(), unknown).message().find("99"), std::string::npos);
}

TEST(QuantumSystemTest, OversizedGroupIsRefused) {
  QuantumSystem sys;
  std::vector<QubitId> a, b;
  for (QubitId i = 0; i < 7; ++i) a.push_back(i);
  for (QubitId i = 100; i < 106; ++i) b.push_back(i);
  Matrix rho_a = Matrix::Zero(128, 128), rho_b = Matrix::Zero(64, 64);
  rho_a(0, 0) = rho_b(0, 0) = 1;
  ASSERT_TRUE(sys.Prepare(a, rho_a).ok());
  ASSERT_TRUE(sys.Prepare(b, rho_b).ok());
  const auto status = sys.ApplyUnitary(gates::CNOT(), std::vector<QubitId>{0, 100});
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_EQ(sys.group_count(), 2u);
}

}  // namespace
}  // namespace qnet::quantum
