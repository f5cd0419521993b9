// Gate matrices and their conventions (rotation signs, Pauli-correction order,
// control/target order as used through QuantumSystem::ApplyUnitary).
#include "quantum/gates.h"

#include <gtest/gtest.h>

#include <complex>

#include "quantum/quantum_system.h"
#include "tests/quantum/reference.h"

namespace qnet::quantum {
namespace {

using testing::MaxAbsDiff;
const std::complex<double> kI(0, 1);

TEST(GatesTest, AllGatesAreUnitary) {
  const Matrix all[] = {gates::I(),     gates::X(),        gates::Y(),     gates::Z(),
                        gates::H(),     gates::S(),        gates::Sdg(),   gates::T(),
                        gates::Rx(0.3), gates::Ry(-1.2),   gates::Rz(2.5), gates::CNOT(),
                        gates::CZ(),    gates::Pauli(1, 1)};
  for (const Matrix& u : all) {
    EXPECT_LT(MaxAbsDiff(u.adjoint() * u, Matrix::Identity(u.rows(), u.cols())), 1e-15);
  }
}

TEST(GatesTest, AlgebraicIdentities) {
  EXPECT_LT(MaxAbsDiff(gates::X() * gates::Y(), kI * gates::Z()), 1e-15);
  EXPECT_LT(MaxAbsDiff(gates::H() * gates::X() * gates::H(), gates::Z()), 1e-15);
  EXPECT_LT(MaxAbsDiff(gates::S() * gates::S(), gates::Z()), 1e-15);
  EXPECT_LT(MaxAbsDiff(gates::T() * gates::T(), gates::S()), 1e-15);
  EXPECT_LT(MaxAbsDiff(gates::Sdg(), gates::S().adjoint()), 1e-15);
  // exp(-i pi sigma / 2) = -i sigma.
  EXPECT_LT(MaxAbsDiff(gates::Rx(M_PI), -kI * gates::X()), 1e-15);
  EXPECT_LT(MaxAbsDiff(gates::Ry(M_PI), -kI * gates::Y()), 1e-15);
  EXPECT_LT(MaxAbsDiff(gates::Rz(M_PI), -kI * gates::Z()), 1e-15);
  // Ry(pi/2)|0> = |+>.
  EXPECT_NEAR(gates::Ry(M_PI / 2)(1, 0).real(), 1 / std::sqrt(2.0), 1e-15);
  // Pauli(x, z) = X^x Z^z.
  EXPECT_LT(MaxAbsDiff(gates::Pauli(0, 0), gates::I()), 1e-15);
  EXPECT_LT(MaxAbsDiff(gates::Pauli(1, 0), gates::X()), 1e-15);
  EXPECT_LT(MaxAbsDiff(gates::Pauli(0, 1), gates::Z()), 1e-15);
  EXPECT_LT(MaxAbsDiff(gates::Pauli(1, 1), gates::X() * gates::Z()), 1e-15);
  // CZ = |0><0| (x) I + |1><1| (x) Z.
  Matrix p0 = Matrix::Zero(2, 2), p1 = Matrix::Zero(2, 2);
  p0(0, 0) = 1;
  p1(1, 1) = 1;
  EXPECT_LT(MaxAbsDiff(gates::CZ(), testing::Kron(p0, gates::I()) + testing::Kron(p1, gates::Z())),
            1e-15);
  EXPECT_LT(
      MaxAbsDiff(gates::CNOT(), testing::Kron(p0, gates::I()) + testing::Kron(p1, gates::X())),
      1e-15);
}

TEST(GatesTest, CnotControlIsTheFirstTarget) {
  QuantumSystem sys;
  ASSERT_TRUE(sys.Create(1).ok());
  ASSERT_TRUE(sys.Create(2).ok());
  const QubitId one[] = {1};
  ASSERT_TRUE(sys.ApplyUnitary(gates::X(), one).ok());  // |1>|0>
  const QubitId reversed[] = {2, 1};
  ASSERT_TRUE(sys.ApplyUnitary(gates::CNOT(), reversed).ok());  // control 2 is |0>: no-op
  const QubitId both[] = {1, 2};
  Vector ten(4), eleven(4);
  ten << 0, 0, 1, 0;
  eleven << 0, 0, 0, 1;
  EXPECT_NEAR(*sys.Fidelity(both, ten), 1.0, 1e-15);
  ASSERT_TRUE(sys.ApplyUnitary(gates::CNOT(), both).ok());  // control 1 is |1>: flips 2
  EXPECT_NEAR(*sys.Fidelity(both, eleven), 1.0, 1e-15);
}

}  // namespace
}  // namespace qnet::quantum
