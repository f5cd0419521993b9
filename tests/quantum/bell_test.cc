// The four Bell states: their vectors, labels, preparation by gates, and the
// ideal Bell-state measurement that must identify each with certainty.
#include "quantum/bell.h"

#include <gtest/gtest.h>

#include "core/rng.h"
#include "quantum/gates.h"
#include "quantum/quantum_system.h"
#include "tests/quantum/reference.h"

namespace qnet::quantum {
namespace {

using testing::MaxAbsDiff;

constexpr BellState kAll[] = {BellState::kPhiPlus, BellState::kPsiPlus, BellState::kPhiMinus,
                              BellState::kPsiMinus};

TEST(BellTest, VectorsAreOrthonormalAndMatchTheTable) {
  const double s = 1.0 / std::sqrt(2.0);
  EXPECT_NEAR(BellVector(BellState::kPhiPlus)(0).real(), s, 1e-15);
  EXPECT_NEAR(BellVector(BellState::kPhiPlus)(3).real(), s, 1e-15);
  EXPECT_NEAR(BellVector(BellState::kPsiPlus)(1).real(), s, 1e-15);
  EXPECT_NEAR(BellVector(BellState::kPsiPlus)(2).real(), s, 1e-15);
  EXPECT_NEAR(BellVector(BellState::kPhiMinus)(3).real(), -s, 1e-15);
  EXPECT_NEAR(BellVector(BellState::kPsiMinus)(2).real(), -s, 1e-15);
  for (BellState a : kAll) {
    for (BellState b : kAll) {
      const std::complex<double> overlap = BellVector(a).dot(BellVector(b));
      EXPECT_NEAR(std::abs(overlap), a == b ? 1.0 : 0.0, 1e-15);
    }
    EXPECT_LT(MaxAbsDiff(BellDensity(a), BellVector(a) * BellVector(a).adjoint()), 1e-15);
  }
}

TEST(BellTest, NamesBitsAndComposition) {
  EXPECT_EQ(BellName(BellState::kPhiPlus), "PHI+");
  EXPECT_EQ(BellName(BellState::kPsiPlus), "PSI+");
  EXPECT_EQ(BellName(BellState::kPhiMinus), "PHI-");
  EXPECT_EQ(BellName(BellState::kPsiMinus), "PSI-");
  EXPECT_EQ(FromBits(1, 0), BellState::kPsiPlus);
  EXPECT_EQ(FromBits(0, 1), BellState::kPhiMinus);
  EXPECT_EQ(FromBits(1, 1), BellState::kPsiMinus);
  EXPECT_EQ(Compose(BellState::kPsiPlus, BellState::kPhiMinus), BellState::kPsiMinus);
  EXPECT_EQ(Compose(BellState::kPsiMinus, BellState::kPsiMinus), BellState::kPhiPlus);
}

// |B(x,z)> = (X^x Z^z (x) I) CNOT (H (x) I) |00>.
void PrepareByGates(QuantumSystem& sys, QubitId a, QubitId b, BellState target) {
  ASSERT_TRUE(sys.Create(a).ok());
  ASSERT_TRUE(sys.Create(b).ok());
  const QubitId qa[] = {a};
  const QubitId ab[] = {a, b};
  ASSERT_TRUE(sys.ApplyUnitary(gates::H(), qa).ok());
  ASSERT_TRUE(sys.ApplyUnitary(gates::CNOT(), ab).ok());
  ASSERT_TRUE(sys.ApplyUnitary(gates::Pauli(XBit(target), ZBit(target)), qa).ok());
}

TEST(BellTest, GatePreparationMatchesBellDensity) {
  for (BellState b : kAll) {
    QuantumSystem sys;
    PrepareByGates(sys, 1, 2, b);
    const QubitId ab[] = {1, 2};
    auto rho = sys.ReducedState(ab);
    ASSERT_TRUE(rho.ok());
    EXPECT_LT(MaxAbsDiff(*rho, BellDensity(b)), 1e-12) << BellName(b);
    auto f = sys.Fidelity(ab, BellVector(b));
    ASSERT_TRUE(f.ok());
    EXPECT_NEAR(*f, 1.0, 1e-12);
  }
}

TEST(BellTest, BellMeasureIdentifiesEachStateWithCertainty) {
  Rng rng(7);
  for (int trial = 0; trial < 25; ++trial) {
    for (BellState b : kAll) {
      QuantumSystem sys;
      PrepareByGates(sys, 10, 20, b);
      auto label = sys.BellMeasure(10, 20, rng);
      ASSERT_TRUE(label.ok()) << label.status();
      EXPECT_EQ(*label, b) << "prepared " << BellName(b) << ", measured " << BellName(*label);
      // Both qubits stay, each alone, in the computational state |z>|x>.
      EXPECT_EQ(sys.qubit_count(), 2u);
      EXPECT_EQ(sys.group_count(), 2u);
      const QubitId qa[] = {10}, qb[] = {20};
      Vector z(2), x(2);
      z << 1 - ZBit(b), ZBit(b);
      x << 1 - XBit(b), XBit(b);
      EXPECT_NEAR(*sys.Fidelity(qa, z), 1.0, 1e-12);
      EXPECT_NEAR(*sys.Fidelity(qb, x), 1.0, 1e-12);
    }
  }
}

TEST(BellTest, BellMeasureOfPreparedDensities) {
  Rng rng(11);
  for (BellState b : kAll) {
    QuantumSystem sys;
    const QubitId ab[] = {3, 4};
    ASSERT_TRUE(sys.Prepare(ab, BellDensity(b)).ok());
    EXPECT_EQ(*sys.BellMeasure(3, 4, rng), b);
  }
}

}  // namespace
}  // namespace qnet::quantum
