#include "quantum/gates.h"

#include <cmath>
#include <complex>

namespace qnet::quantum::gates {
namespace {

using C = std::complex<double>;
constexpr C kI(0.0, 1.0);

Matrix Make2(C a, C b, C c, C d) {
  Matrix m(2, 2);
  m << a, b, c, d;
  return m;
}

}  // namespace

Matrix I() { return Matrix::Identity(2, 2); }
Matrix X() { return Make2(0, 1, 1, 0); }
Matrix Y() { return Make2(0, -kI, kI, 0); }
Matrix Z() { return Make2(1, 0, 0, -1); }
Matrix H() {
  const double s = 1.0 / std::sqrt(2.0);
  return Make2(s, s, s, -s);
}
Matrix S() { return Make2(1, 0, 0, kI); }
Matrix Sdg() { return Make2(1, 0, 0, -kI); }
Matrix T() { return Make2(1, 0, 0, std::exp(kI * (M_PI / 4))); }

Matrix Rx(double theta) {
  const double c = std::cos(theta / 2), s = std::sin(theta / 2);
  return Make2(c, -kI * s, -kI * s, c);
}
Matrix Ry(double theta) {
  const double c = std::cos(theta / 2), s = std::sin(theta / 2);
  return Make2(c, -s, s, c);
}
Matrix Rz(double theta) {
  return Make2(std::exp(-kI * (theta / 2)), 0, 0, std::exp(kI * (theta / 2)));
}

Matrix CNOT() {
  Matrix m = Matrix::Zero(4, 4);
  m(0, 0) = m(1, 1) = m(2, 3) = m(3, 2) = 1;
  return m;
}

Matrix CZ() {
  Matrix m = Matrix::Identity(4, 4);
  m(3, 3) = -1;
  return m;
}

Matrix Pauli(int x, int z) {
  Matrix m = I();
  if (z & 1) m = Z() * m;
  if (x & 1) m = X() * m;
  return m;
}

}  // namespace qnet::quantum::gates
