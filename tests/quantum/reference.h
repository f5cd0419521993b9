// Slow, obviously-correct reference constructions for the quantum engine's
// tests: full Kronecker-embedded operators, a naive partial trace, random
// states and unitaries drawn from a seeded qnet::Rng.
#pragma once

#include <Eigen/Dense>
#include <cmath>
#include <complex>
#include <vector>

#include "core/rng.h"
#include "quantum/bell.h"
#include "quantum/quantum_system.h"

namespace qnet::quantum::testing {

inline int Bit(long index, int n, int pos) {
  return static_cast<int>((index >> (n - 1 - pos)) & 1);
}

// The sub-index formed by the bits of `index` at member positions `positions`
// (positions[0] is the MSB of the result).
inline long SubIndex(long index, int n, const std::vector<int>& positions) {
  long sub = 0;
  for (int p : positions) sub = (sub << 1) | Bit(index, n, p);
  return sub;
}

// `op` acting on the members at `positions` of an n-qubit register, identity
// elsewhere, as a full 2^n x 2^n matrix.
inline Matrix EmbedOperator(const Matrix& op, const std::vector<int>& positions, int n) {
  std::vector<int> rest;
  for (int p = 0; p < n; ++p) {
    bool target = false;
    for (int t : positions) target = target || t == p;
    if (!target) rest.push_back(p);
  }
  const long dim = 1L << n;
  Matrix full = Matrix::Zero(dim, dim);
  for (long r = 0; r < dim; ++r) {
    for (long c = 0; c < dim; ++c) {
      if (SubIndex(r, n, rest) != SubIndex(c, n, rest)) continue;
      full(r, c) = op(SubIndex(r, n, positions), SubIndex(c, n, positions));
    }
  }
  return full;
}

// Partial trace keeping `keep` (in that order), straight from the definition.
inline Matrix NaivePartialTrace(const Matrix& rho, int n, const std::vector<int>& keep) {
  std::vector<int> traced;
  for (int p = 0; p < n; ++p) {
    bool kept = false;
    for (int k : keep) kept = kept || k == p;
    if (!kept) traced.push_back(p);
  }
  const long dim = 1L << n;
  Matrix out = Matrix::Zero(1L << keep.size(), 1L << keep.size());
  for (long r = 0; r < dim; ++r) {
    for (long c = 0; c < dim; ++c) {
      if (SubIndex(r, n, traced) != SubIndex(c, n, traced)) continue;
      out(SubIndex(r, n, keep), SubIndex(c, n, keep)) += rho(r, c);
    }
  }
  return out;
}

inline Matrix Kron(const Matrix& a, const Matrix& b) {
  Matrix out(a.rows() * b.rows(), a.cols() * b.cols());
  for (long i = 0; i < a.rows(); ++i) {
    for (long j = 0; j < a.cols(); ++j)
      out.block(i * b.rows(), j * b.cols(), b.rows(), b.cols()) = a(i, j) * b;
  }
  return out;
}

inline Matrix GaussianMatrix(Rng& rng, long rows, long cols) {
  Matrix g(rows, cols);
  for (long i = 0; i < rows; ++i) {
    for (long j = 0; j < cols; ++j) g(i, j) = std::complex<double>(rng.Normal(), rng.Normal());
  }
  return g;
}

// Haar-random pure state: a normalised complex Gaussian vector.
inline Vector HaarState(Rng& rng, long dim) {
  Vector v = GaussianMatrix(rng, dim, 1).col(0);
  return v / v.norm();
}

// A random full-rank mixed state (Ginibre ensemble).
inline Matrix RandomDensity(Rng& rng, long dim) {
  const Matrix g = GaussianMatrix(rng, dim, dim);
  Matrix rho = g * g.adjoint();
  return rho / rho.trace().real();
}

// A random unitary: the Q factor of a complex Gaussian matrix.
inline Matrix RandomUnitary(Rng& rng, long dim) {
  Eigen::HouseholderQR<Matrix> qr(GaussianMatrix(rng, dim, dim));
  return qr.householderQ() * Matrix::Identity(dim, dim);
}

// F |PHI+><PHI+| + (1-F)/3 (I - |PHI+><PHI+|).
inline Matrix Werner(double f) {
  const Matrix phi = BellDensity(BellState::kPhiPlus);
  return f * phi + (1.0 - f) / 3.0 * (Matrix::Identity(4, 4) - phi);
}

inline double MaxAbsDiff(const Matrix& a, const Matrix& b) { return (a - b).cwiseAbs().maxCoeff(); }

}  // namespace qnet::quantum::testing
