#include "quantum/quantum_system.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <string>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/status.h"
#include "quantum/gates.h"

namespace qnet::quantum {
namespace {

using Complex = std::complex<double>;
using Index = Eigen::Index;
// Index and bit lists live on the stack up to a 6-qubit group: a repeater's
// swap (a 4-qubit group) made a dozen heap allocations with std::vector,
// about as long as its arithmetic.
using IndexList = absl::InlinedVector<Index, 64>;
using BitList = absl::InlinedVector<int, 12>;

// A group of 12 qubits is a 4096 x 4096 matrix (256 MiB); beyond that a merge
// is almost certainly a protocol bug (qubits never measured or discarded).
constexpr size_t kMaxGroupQubits = 12;
// Tolerances for validating caller-supplied matrices (rounding, not physics).
constexpr double kUnitarityTolerance = 1e-8;
constexpr double kStateTolerance = 1e-6;
// |z|^2 and |z| as the checks' magnitudes (see DeviationFromIdentity).
constexpr auto kSquaredMagnitude = [](const std::complex<double>& z) { return std::norm(z); };
constexpr auto kMagnitude = [](const std::complex<double>& z) { return std::abs(z); };

Index Dim(size_t qubits) { return Index{1} << qubits; }

// Index of a matrix row/column with the bits of `j` (k bits, MSB first)
// scattered to the bit positions `bits` (bits[0] receives j's MSB).
IndexList ScatterTable(std::span<const int> bits) {
  const int k = static_cast<int>(bits.size());
  IndexList table(static_cast<size_t>(Dim(k)));
  for (Index j = 0; j < Dim(k); ++j) {
    Index idx = 0;
    for (int t = 0; t < k; ++t) {
      if ((j >> (k - 1 - t)) & 1) idx |= Index{1} << bits[t];
    }
    table[j] = idx;
  }
  return table;
}

// Bit position in an n-qubit index of the member at `pos` (members[0] = MSB).
int BitOf(int n, int pos) { return n - 1 - pos; }

// The row (or column) indices with every target bit clear: each names one
// 2^k-dimensional block that the k-qubit operator mixes.
IndexList BlockBases(Index dim, std::span<const int> bits) {
  Index mask = 0;
  for (int b : bits) mask |= Index{1} << b;
  IndexList bases;
  bases.reserve(dim >> bits.size());
  for (Index r = 0; r < dim; ++r) {
    if (!(r & mask)) bases.push_back(r);
  }
  return bases;
}

// Whether every entry of `op` is real (H, X, Z, most Kraus operators):
// a real times a complex number is two products, not four and two sums.
bool IsReal(const Matrix& op) {
  for (Index j = 0; j < op.cols(); ++j) {
    for (Index i = 0; i < op.rows(); ++i) {
      if (op(i, j).imag() != 0.0) return false;
    }
  }
  return true;
}

// The one-qubit case of ApplyLeft and ApplyRightAdjoint below, with the
// operator's entries (conjugated for the right) as real or complex scalars.
template <typename Scalar>
void ApplyLeftOneQubit(Scalar u00, Scalar u01, Scalar u10, Scalar u11, Index step, Matrix& m) {
  const Index dim = m.rows();
  for (Index c = 0; c < m.cols(); ++c) {
    Complex* col = m.col(c).data();
    for (Index hi = 0; hi < dim; hi += 2 * step) {
      Complex* lo = col + hi;
      Complex* up = lo + step;
      for (Index r = 0; r < step; ++r) {
        const Complex a = lo[r], b = up[r];
        lo[r] = u00 * a + u01 * b;
        up[r] = u10 * a + u11 * b;
      }
    }
  }
}

template <typename Scalar>
void ApplyRightOneQubit(Scalar u00, Scalar u01, Scalar u10, Scalar u11, Index step, Matrix& m) {
  const Index dim = m.cols();
  const Index rows = m.rows();
  for (Index hi = 0; hi < dim; hi += 2 * step) {
    for (Index c = hi; c < hi + step; ++c) {
      Complex* a = m.col(c).data();
      Complex* b = m.col(c + step).data();
      for (Index r = 0; r < rows; ++r) {
        const Complex x = a[r], y = b[r];
        a[r] = u00 * x + u01 * y;
        b[r] = u10 * x + u11 * y;
      }
    }
  }
}

// m -> op_full * m and m -> m * op_full^dagger, where op_full is `op` acting
// on the qubits at bit positions `bits` (identity elsewhere), without forming
// op_full: within every column (resp. across every block of columns) the
// 2^k entries addressed by the targets are mixed by op. Both loops run along
// contiguous memory (Eigen matrices are column-major).
void ApplyLeft(const Matrix& op, std::span<const int> bits, Matrix& m) {
  const Index dim = m.rows();
  if (bits.size() == 1) {
    const Index step = Index{1} << bits[0];
    if (IsReal(op)) {
      return ApplyLeftOneQubit(op(0, 0).real(), op(0, 1).real(), op(1, 0).real(), op(1, 1).real(), step, m);
    }
    return ApplyLeftOneQubit(op(0, 0), op(0, 1), op(1, 0), op(1, 1), step, m);
  }
  const IndexList offset = ScatterTable(bits);
  const IndexList bases = BlockBases(dim, bits);
  const Index kdim = static_cast<Index>(offset.size());
  absl::InlinedVector<Complex, 16> v(static_cast<size_t>(kdim));
  for (Index c = 0; c < m.cols(); ++c) {
    Complex* col = m.col(c).data();
    for (Index base : bases) {
      for (Index j = 0; j < kdim; ++j) v[j] = col[base + offset[j]];
      for (Index i = 0; i < kdim; ++i) {
        Complex sum = 0;
        for (Index j = 0; j < kdim; ++j) sum += op(i, j) * v[j];
        col[base + offset[i]] = sum;
      }
    }
  }
}

void ApplyRightAdjoint(const Matrix& op, std::span<const int> bits, Matrix& m) {
  const Index dim = m.cols();
  const Index rows = m.rows();
  if (bits.size() == 1) {
    const Index step = Index{1} << bits[0];
    if (IsReal(op)) {
      return ApplyRightOneQubit(op(0, 0).real(), op(0, 1).real(), op(1, 0).real(), op(1, 1).real(), step, m);
    }
    return ApplyRightOneQubit(std::conj(op(0, 0)), std::conj(op(0, 1)), std::conj(op(1, 0)), std::conj(op(1, 1)),
                              step, m);
  }
  const IndexList offset = ScatterTable(bits);
  const IndexList bases = BlockBases(dim, bits);
  const Index kdim = static_cast<Index>(offset.size());
  const Matrix conj_op = op.conjugate();
  absl::InlinedVector<Complex*, 16> cols(static_cast<size_t>(kdim));
  absl::InlinedVector<Complex, 16> v(static_cast<size_t>(kdim));
  for (Index base : bases) {
    for (Index j = 0; j < kdim; ++j) cols[j] = m.col(base + offset[j]).data();
    for (Index r = 0; r < rows; ++r) {
      for (Index j = 0; j < kdim; ++j) v[j] = cols[j][r];
      for (Index i = 0; i < kdim; ++i) {
        Complex sum = 0;
        for (Index j = 0; j < kdim; ++j) sum += conj_op(i, j) * v[j];
        cols[i][r] = sum;
      }
    }
  }
}

// For an operator whose entries are all 0 except one 1 per column (X, CNOT,
// SWAP): target[j] = the row of column j's 1. Such a gate only moves entries,
// so conjugating by it needs no arithmetic (the swap of every repeater's Bell
// measurement starts with a CNOT on a 16 x 16 matrix).
bool AsPermutation(const Matrix& op, IndexList& target) {
  const Index k = op.rows();
  target.assign(static_cast<size_t>(k), -1);
  absl::InlinedVector<bool, 64> hit(static_cast<size_t>(k), false);
  for (Index j = 0; j < k; ++j) {
    for (Index i = 0; i < k; ++i) {
      const Complex v = op(i, j);
      if (v == Complex(0.0)) continue;
      if (v != Complex(1.0) || target[j] >= 0 || hit[i]) return false;
      target[j] = i;
      hit[i] = true;
    }
    if (target[j] < 0) return false;
  }
  return true;
}

// m -> P m P^dagger for a permutation P (target from AsPermutation): the
// entry at (row r, column c) moves to (P r, P c). In place (the rows within
// each column, then whole columns along the permutation's cycles), so a
// 12-qubit group needs no second 256 MiB matrix. Adding +0 makes every zero
// +0, as the arithmetic kernels' sums (which start from +0) do: the stored
// state is the same whichever path a gate takes, up to the sign of zeros
// (the arithmetic path's Symmetrize writes -0 above the diagonal).
void ConjugateByPermutation(std::span<const Index> target, std::span<const int> bits, Matrix& m) {
  const Index dim = m.rows();
  const IndexList offset = ScatterTable(bits);
  const Index kdim = static_cast<Index>(offset.size());
  // to[r]: where full index r goes; from: its inverse.
  IndexList to(static_cast<size_t>(dim)), from(static_cast<size_t>(dim));
  for (Index base : BlockBases(dim, bits)) {
    for (Index j = 0; j < kdim; ++j) to[base | offset[j]] = base | offset[target[j]];
  }
  for (Index r = 0; r < dim; ++r) from[to[r]] = r;
  const Complex zero(0.0, 0.0);
  absl::InlinedVector<Complex, 64> tmp(static_cast<size_t>(dim));
  for (Index c = 0; c < dim; ++c) {
    Complex* col = m.col(c).data();
    std::copy(col, col + dim, tmp.begin());
    for (Index r = 0; r < dim; ++r) col[to[r]] = tmp[r] + zero;
  }
  absl::InlinedVector<bool, 64> done(static_cast<size_t>(dim), false);
  for (Index start = 0; start < dim; ++start) {
    if (done[start] || from[start] == start) continue;
    // Column k receives column from[k]; rotate the cycle through `start`.
    std::copy(m.col(start).data(), m.col(start).data() + dim, tmp.begin());
    Index k = start;
    while (from[k] != start) {
      m.col(k) = m.col(from[k]);
      done[k] = true;
      k = from[k];
    }
    std::copy(tmp.begin(), tmp.end(), m.col(k).data());
    done[k] = true;
  }
}

// m -> K m K^dagger. Returns whether K was a permutation, which only moves
// entries: a Hermitian m stays Hermitian to the bit.
bool Conjugate(const Matrix& op, std::span<const int> bits, Matrix& m) {
  if (op.rows() > 2) {
    IndexList target;
    if (AsPermutation(op, target)) {
      ConjugateByPermutation(target, bits, m);
      return true;
    }
  }
  ApplyLeft(op, bits, m);
  ApplyRightAdjoint(op, bits, m);
  return false;
}

// Averages m with its adjoint in place, removing rounding asymmetry. Works in
// tiles so the transposed accesses stay in cache for large groups.
void Symmetrize(Matrix& m) {
  constexpr Index kTile = 32;
  const Index dim = m.rows();
  for (Index jb = 0; jb < dim; jb += kTile) {
    const Index jend = std::min(dim, jb + kTile);
    for (Index ib = jb; ib < dim; ib += kTile) {
      const Index iend = std::min(dim, ib + kTile);
      for (Index j = jb; j < jend; ++j) {
        for (Index i = std::max(ib, j + 1); i < iend; ++i) {
          const Complex avg = 0.5 * (m(i, j) + std::conj(m(j, i)));
          m(i, j) = avg;
          m(j, i) = std::conj(avg);
        }
      }
    }
  }
  for (Index j = 0; j < dim; ++j) m(j, j) = m(j, j).real();
}

// Partial trace of an n-qubit rho keeping the members at positions `keep`
// (in that order: keep[0] becomes the MSB of the result). With every
// position listed it is a pure reordering of the qubits.
Matrix Reduce(const Matrix& rho, int n, std::span<const int> keep) {
  BitList keep_bits, traced_bits;
  for (int pos : keep) keep_bits.push_back(BitOf(n, pos));
  for (int pos = 0; pos < n; ++pos) {
    if (std::find(keep.begin(), keep.end(), pos) == keep.end())
      traced_bits.push_back(BitOf(n, pos));
  }
  const IndexList kept = ScatterTable(keep_bits);
  const IndexList traced = ScatterTable(traced_bits);
  const Index kdim = static_cast<Index>(kept.size());
  Matrix out = Matrix::Zero(kdim, kdim);
  for (Index j = 0; j < kdim; ++j) {
    for (Index t : traced) {
      const Complex* col = rho.col(kept[j] | t).data();
      for (Index i = 0; i < kdim; ++i) out(i, j) += col[kept[i] | t];
    }
  }
  return out;
}

// <e|_pos rho |e>_pos: the unnormalised state of the other members after the
// member at `pos` was projected onto |e>.
Matrix ContractMember(const Matrix& rho, int n, int pos, const Eigen::Vector2cd& e) {
  BitList keep_bits;
  for (int p = 0; p < n; ++p) {
    if (p != pos) keep_bits.push_back(BitOf(n, p));
  }
  const IndexList kept = ScatterTable(keep_bits);
  const Index step = Index{1} << BitOf(n, pos);
  const Index kdim = static_cast<Index>(kept.size());
  const Complex w[2][2] = {{std::conj(e(0)) * e(0), std::conj(e(0)) * e(1)},
                           {std::conj(e(1)) * e(0), std::conj(e(1)) * e(1)}};
  for (int o = 0; o < 2; ++o) {
    // A computational-basis outcome (every Z measurement, both of a swap's)
    // selects a block; the weighted sum below would give the same values.
    const Complex zero(0.0);
    if (w[o][o] == Complex(1.0) && w[1 - o][1 - o] == zero && w[0][1] == zero && w[1][0] == zero) {
      Matrix out(kdim, kdim);
      for (Index j = 0; j < kdim; ++j) {
        const Complex* col = rho.col(kept[j] + o * step).data();
        for (Index i = 0; i < kdim; ++i) out(i, j) = col[kept[i] + o * step] + zero;
      }
      return out;
    }
  }
  Matrix out = Matrix::Zero(kdim, kdim);
  for (Index j = 0; j < kdim; ++j) {
    for (int b = 0; b < 2; ++b) {
      const Complex* col = rho.col(kept[j] + b * step).data();
      for (Index i = 0; i < kdim; ++i) {
        out(i, j) += w[0][b] * col[kept[i]] + w[1][b] * col[kept[i] + step];
      }
    }
  }
  return out;
}

Matrix Kron(const Matrix& a, const Matrix& b) {
  // Entry by entry down the columns: Eigen's block expressions cost more than
  // the products for the 4 x 4 pairs a swap merges.
  const Index br = b.rows(), bc = b.cols();
  Matrix out(a.rows() * br, a.cols() * bc);
  for (Index j = 0; j < a.cols(); ++j) {
    for (Index l = 0; l < bc; ++l) {
      Complex* col = out.col(j * bc + l).data();
      for (Index i = 0; i < a.rows(); ++i) {
        const Complex aij = a(i, j);
        for (Index k = 0; k < br; ++k) col[i * br + k] = aij * b(k, l);
      }
    }
  }
  return out;
}

std::string IdList(std::span<const QubitId> ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) absl::StrAppend(&s, i ? ", " : "", ids[i]);
  return s + "]";
}

// max over (i, j) of magnitude(sum_K (K^dagger K)_ij - delta_ij): how far the
// operators `ops` are from unitary (one operator) or trace preserving (a
// Kraus set). Entry by entry, with no product matrix: the check runs before
// every gate. The check compares std::norm (no hypot) with the squared
// tolerance; an error message reports std::abs, which cannot overflow.
template <typename Magnitude>
double DeviationFromIdentity(std::span<const Matrix> ops, Magnitude magnitude) {
  const Index dim = ops[0].cols();
  double worst = 0.0;
  for (Index j = 0; j < dim; ++j) {
    for (Index i = 0; i < dim; ++i) {
      Complex sum = i == j ? Complex(-1.0) : Complex(0.0);
      for (const Matrix& k : ops) {
        for (Index r = 0; r < k.rows(); ++r) sum += std::conj(k(r, i)) * k(r, j);
      }
      worst = std::max(worst, magnitude(sum));
    }
  }
  return worst;
}

absl::Status CheckSquare(const Matrix& m, size_t qubits, const char* op, absl::string_view what) {
  const Index dim = Dim(qubits);
  if (m.rows() != dim || m.cols() != dim) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": ", what, " is ", m.rows(), "x", m.cols(),
                                                   " but ", qubits, " qubit(s) need ", dim, "x",
                                                   dim));
  }
  if (!m.allFinite()) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": ", what, " has non-finite entries"));
  }
  return absl::OkStatus();
}

// A density matrix handed in from outside: right shape, Hermitian, trace 1.
absl::Status CheckDensity(const Matrix& rho, size_t qubits, const char* op) {
  QNET_RETURN_IF_ERROR(CheckSquare(rho, qubits, op, "density matrix"));
  // max |rho - rho^dagger| (squared for the check), without a temporary matrix.
  const auto asymmetry = [&rho](auto magnitude) {
    double worst = 0.0;
    for (Index j = 0; j < rho.cols(); ++j) {
      for (Index i = j; i < rho.rows(); ++i) worst = std::max(worst, magnitude(rho(i, j) - std::conj(rho(j, i))));
    }
    return worst;
  };
  if (asymmetry(kSquaredMagnitude) > kStateTolerance * kStateTolerance) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": density matrix is not Hermitian (max |rho - rho^dagger| = ",
                                                   asymmetry(kMagnitude), ")"));
  }
  const Complex tr = rho.trace();
  if (std::abs(tr - Complex(1.0)) > kStateTolerance) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": density matrix has trace ", tr.real(), " + ", tr.imag(), "i, not 1"));
  }
  return absl::OkStatus();
}

absl::Status CheckDistinct(std::span<const QubitId> ids, const char* op) {
  for (size_t i = 0; i < ids.size(); ++i) {
    for (size_t j = i + 1; j < ids.size(); ++j) {
      if (ids[i] == ids[j]) {
        return absl::InvalidArgumentError(
            absl::StrCat(op, ": qubit ", ids[i], " appears twice in ", IdList(ids)));
      }
    }
  }
  return absl::OkStatus();
}

int PositionIn(const std::vector<QubitId>& members, QubitId id) {
  return static_cast<int>(std::find(members.begin(), members.end(), id) - members.begin());
}

}  // namespace

absl::Status QuantumSystem::Create(QubitId id) {
  if (Exists(id))
    return absl::AlreadyExistsError(absl::StrCat("Create: qubit ", id, " already exists"));
  Matrix rho = Matrix::Zero(2, 2);
  rho(0, 0) = 1.0;
  AddGroup({id}, std::move(rho));
  return absl::OkStatus();
}

bool QuantumSystem::Exists(QubitId id) const { return group_of_.contains(id); }

absl::Status QuantumSystem::Prepare(std::span<const QubitId> ids, const Matrix& rho) {
  if (ids.empty()) return absl::InvalidArgumentError("Prepare: no qubits given");
  if (ids.size() > kMaxGroupQubits) {
    return absl::ResourceExhaustedError(absl::StrCat("Prepare: ", ids.size(), " qubits exceed the ",
                                                     kMaxGroupQubits, "-qubit group limit"));
  }
  QNET_RETURN_IF_ERROR(CheckDistinct(ids, "Prepare"));
  QNET_RETURN_IF_ERROR(CheckDensity(rho, ids.size(), "Prepare"));
  for (QubitId id : ids) {
    if (Exists(id)) Detach(id);
  }
  Matrix state = rho;
  Symmetrize(state);
  AddGroup(std::vector<QubitId>(ids.begin(), ids.end()), std::move(state));
  return absl::OkStatus();
}

absl::Status QuantumSystem::ApplyUnitary(const Matrix& u, std::span<const QubitId> targets) {
  QNET_RETURN_IF_ERROR(CheckTargets(targets, "ApplyUnitary"));
  QNET_RETURN_IF_ERROR(CheckSquare(u, targets.size(), "ApplyUnitary", "unitary"));
  const std::span<const Matrix> ops(&u, 1);
  if (DeviationFromIdentity(ops, kSquaredMagnitude) > kUnitarityTolerance * kUnitarityTolerance) {
    return absl::InvalidArgumentError(absl::StrCat("ApplyUnitary: matrix is not unitary (max |U^dagger U - I| = ",
                                                   DeviationFromIdentity(ops, kMagnitude), ")"));
  }
  return ApplyOperators(std::span<const Matrix>(&u, 1), targets);
}

absl::Status QuantumSystem::ApplyChannel(std::span<const Matrix> kraus,
                                         std::span<const QubitId> targets) {
  QNET_RETURN_IF_ERROR(CheckTargets(targets, "ApplyChannel"));
  if (kraus.empty()) return absl::InvalidArgumentError("ApplyChannel: no Kraus operators given");
  for (size_t i = 0; i < kraus.size(); ++i) {
    QNET_RETURN_IF_ERROR(
        CheckSquare(kraus[i], targets.size(), "ApplyChannel", absl::StrCat("Kraus operator ", i)));
  }
  if (DeviationFromIdentity(kraus, kSquaredMagnitude) > kUnitarityTolerance * kUnitarityTolerance) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ApplyChannel: Kraus operators are not trace preserving (max |sum K^dagger K - I| = ",
        DeviationFromIdentity(kraus, kMagnitude), ")"));
  }
  return ApplyOperators(kraus, targets);
}

absl::Status QuantumSystem::ApplyOperators(std::span<const Matrix> ops,
                                           std::span<const QubitId> targets) {
  QNET_ASSIGN_OR_RETURN(const uint64_t key, MergeGroupsOf(targets));
  Group& g = groups_.at(key);
  const int n = static_cast<int>(g.members.size());
  BitList bits;
  for (QubitId id : targets) bits.push_back(BitOf(n, PositionIn(g.members, id)));
  if (ops.size() == 1) {
    // A permutation (a CNOT, every repeater's swap) adds no rounding to undo.
    if (Conjugate(ops[0], bits, g.rho)) return absl::OkStatus();
  } else {
    Matrix sum = Matrix::Zero(g.rho.rows(), g.rho.cols());
    Matrix term;
    for (const Matrix& k : ops) {
      term = g.rho;
      Conjugate(k, bits, term);
      sum += term;
    }
    g.rho = std::move(sum);
  }
  Symmetrize(g.rho);
  return absl::OkStatus();
}

absl::StatusOr<int> QuantumSystem::Measure(QubitId id, const Basis& basis, Rng& rng) {
  if (!Exists(id))
    return absl::NotFoundError(absl::StrCat("Measure: qubit ", id, " does not exist"));
  if (!std::isfinite(basis.theta) || !std::isfinite(basis.phi)) {
    return absl::InvalidArgumentError("Measure: basis angles must be finite");
  }
  const uint64_t key = group_of_.at(id);
  Group& g = groups_.at(key);
  const int n = static_cast<int>(g.members.size());
  const int pos = PositionIn(g.members, id);

  // Eigenstates of n.sigma: |+n> (outcome 0) and the orthogonal |-n>.
  const double c = std::cos(basis.theta / 2), s = std::sin(basis.theta / 2);
  const Complex phase = std::polar(1.0, basis.phi);
  Eigen::Vector2cd plus, minus;
  plus << c, phase * s;
  minus << s, -phase * c;

  // The measured qubit's reduced state, summed in Reduce's order (the other
  // members' indices ascending) but into a 2 x 2 on the stack.
  Eigen::Matrix2cd local = Eigen::Matrix2cd::Zero();
  const Index step = Index{1} << BitOf(n, pos);
  for (Index t = 0; t < g.rho.rows(); ++t) {
    if (t & step) continue;
    local(0, 0) += g.rho(t, t);
    local(1, 0) += g.rho(t + step, t);
    local(0, 1) += g.rho(t, t + step);
    local(1, 1) += g.rho(t + step, t + step);
  }
  const double trace = local.trace().real();
  double p0 = (plus.adjoint() * local * plus)(0, 0).real() / trace;
  p0 = std::clamp(p0, 0.0, 1.0);  // rounding can push it a hair outside
  const int outcome = rng.Uniform() < p0 ? 0 : 1;
  const Eigen::Vector2cd& e = outcome == 0 ? plus : minus;

  if (n > 1) {
    // The projected state factorises as |e><e| (x) rest: keep the rest in the
    // old group and give the measured qubit a group of its own.
    Matrix rest = ContractMember(g.rho, n, pos, e);
    const double norm = rest.trace().real();
    if (!(norm > 0.0)) {
      return absl::InternalError(absl::StrCat("Measure: qubit ", id, " collapsed onto outcome ",
                                              outcome, " of zero probability"));
    }
    rest /= norm;
    Symmetrize(rest);
    g.rho = std::move(rest);
    g.members.erase(g.members.begin() + pos);
    group_of_.erase(id);
    AddGroup({id}, Matrix(e * e.adjoint()));
  } else {
    g.rho = e * e.adjoint();
  }
  return outcome;
}

absl::StatusOr<BellState> QuantumSystem::BellMeasure(QubitId a, QubitId b, Rng& rng) {
  const QubitId pair[2] = {a, b};
  QNET_RETURN_IF_ERROR(CheckTargets(pair, "BellMeasure"));
  // Rotate the Bell basis onto the computational basis: CNOT then H maps
  // |B(x,z)> to |z x> (up to phase).
  const Matrix cnot = gates::CNOT(), h = gates::H();
  QNET_RETURN_IF_ERROR(ApplyOperators(std::span<const Matrix>(&cnot, 1), pair));
  QNET_RETURN_IF_ERROR(
      ApplyOperators(std::span<const Matrix>(&h, 1), std::span<const QubitId>(pair, 1)));
  QNET_ASSIGN_OR_RETURN(const int z, Measure(a, Basis::Z(), rng));
  QNET_ASSIGN_OR_RETURN(const int x, Measure(b, Basis::Z(), rng));
  return FromBits(x, z);
}

absl::Status QuantumSystem::Remove(QubitId id) {
  if (!Exists(id))
    return absl::NotFoundError(absl::StrCat("Remove: qubit ", id, " does not exist"));
  Detach(id);
  return absl::OkStatus();
}

absl::StatusOr<Matrix> QuantumSystem::ReducedState(std::span<const QubitId> ids) const {
  QNET_RETURN_IF_ERROR(CheckTargets(ids, "ReducedState"));
  // Reduce each group to its requested members, tensor the pieces together,
  // then reorder the qubits into the order of `ids`.
  std::vector<uint64_t> keys;
  for (QubitId id : ids) {
    const uint64_t key = group_of_.at(id);
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
  }
  std::vector<QubitId> order;
  Matrix joint = Matrix::Ones(1, 1);
  for (uint64_t key : keys) {
    const Group& g = groups_.at(key);
    std::vector<int> keep;
    for (QubitId id : ids) {
      if (group_of_.at(id) == key) {
        keep.push_back(PositionIn(g.members, id));
        order.push_back(id);
      }
    }
    const int n = static_cast<int>(g.members.size());
    joint = Kron(joint, Reduce(g.rho, n, keep));
  }
  std::vector<int> perm;
  for (QubitId id : ids) perm.push_back(PositionIn(order, id));
  bool identity = true;
  for (size_t i = 0; i < perm.size(); ++i) identity = identity && perm[i] == static_cast<int>(i);
  if (identity) return joint;
  return Reduce(joint, static_cast<int>(ids.size()), perm);
}

absl::StatusOr<double> QuantumSystem::Fidelity(std::span<const QubitId> ids,
                                               const Vector& psi) const {
  QNET_ASSIGN_OR_RETURN(const Matrix rho, ReducedState(ids));
  if (psi.size() != rho.rows()) {
    return absl::InvalidArgumentError(absl::StrCat("Fidelity: state vector has ", psi.size(),
                                                   " entries but ", ids.size(), " qubit(s) need ",
                                                   rho.rows()));
  }
  const double norm = psi.norm();
  if (std::abs(norm - 1.0) > kStateTolerance) {
    return absl::InvalidArgumentError(
        absl::StrCat("Fidelity: state vector has norm ", norm, ", not 1"));
  }
  return (psi.adjoint() * rho * psi)(0, 0).real();
}

std::vector<QubitId> QuantumSystem::GroupOf(QubitId id) const {
  auto it = group_of_.find(id);
  if (it == group_of_.end()) return {};
  return groups_.at(it->second).members;
}

size_t QuantumSystem::qubit_count() const { return group_of_.size(); }
size_t QuantumSystem::group_count() const { return groups_.size(); }

absl::StatusOr<GroupState> QuantumSystem::ExtractGroup(QubitId id) {
  auto it = group_of_.find(id);
  if (it == group_of_.end()) {
    return absl::NotFoundError(absl::StrCat("ExtractGroup: qubit ", id, " does not exist"));
  }
  auto node = groups_.extract(it->second);
  Group& g = node.mapped();
  for (QubitId member : g.members) group_of_.erase(member);
  return GroupState{std::move(g.members), std::move(g.rho)};
}

absl::Status QuantumSystem::InsertGroup(GroupState group) {
  if (group.members.empty()) return absl::InvalidArgumentError("InsertGroup: group has no members");
  if (group.members.size() > kMaxGroupQubits) {
    return absl::ResourceExhaustedError(absl::StrCat("InsertGroup: ", group.members.size(),
                                                     " qubits exceed the ", kMaxGroupQubits,
                                                     "-qubit group limit"));
  }
  QNET_RETURN_IF_ERROR(CheckDistinct(group.members, "InsertGroup"));
  for (QubitId id : group.members) {
    if (Exists(id)) {
      return absl::AlreadyExistsError(absl::StrCat("InsertGroup: qubit ", id, " already exists"));
    }
  }
  QNET_RETURN_IF_ERROR(CheckDensity(group.rho, group.members.size(), "InsertGroup"));
  Symmetrize(group.rho);
  AddGroup(std::move(group.members), std::move(group.rho));
  return absl::OkStatus();
}

absl::Status QuantumSystem::CheckTargets(std::span<const QubitId> ids, const char* op) const {
  if (ids.empty()) return absl::InvalidArgumentError(absl::StrCat(op, ": no qubits given"));
  for (QubitId id : ids) {
    if (!Exists(id))
      return absl::NotFoundError(absl::StrCat(op, ": qubit ", id, " does not exist"));
  }
  return CheckDistinct(ids, op);
}

absl::StatusOr<uint64_t> QuantumSystem::MergeGroupsOf(std::span<const QubitId> ids) {
  absl::InlinedVector<uint64_t, 4> keys;
  size_t total = 0;
  for (QubitId id : ids) {
    const uint64_t key = group_of_.at(id);
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
      keys.push_back(key);
      total += groups_.at(key).members.size();
    }
  }
  if (keys.size() == 1) return keys[0];
  if (total > kMaxGroupQubits) {
    return absl::ResourceExhaustedError(
        absl::StrCat("operation on ", IdList(ids), " would entangle ", total,
                     " qubits in one group, more than the limit of ", kMaxGroupQubits,
                     " (are qubits left unmeasured or undiscarded?)"));
  }
  for (size_t i = 1; i < keys.size(); ++i) {
    auto node = groups_.extract(keys[i]);
    Group& other = node.mapped();
    Group& first = groups_.at(keys[0]);  // looked up after the extract
    first.rho = Kron(first.rho, other.rho);
    for (QubitId member : other.members) {
      first.members.push_back(member);
      group_of_[member] = keys[0];
    }
  }
  return keys[0];
}

void QuantumSystem::Detach(QubitId id) {
  const uint64_t key = group_of_.at(id);
  group_of_.erase(id);
  Group& g = groups_.at(key);
  if (g.members.size() == 1) {
    groups_.erase(key);
    return;
  }
  const int n = static_cast<int>(g.members.size());
  const int pos = PositionIn(g.members, id);
  BitList keep;
  for (int p = 0; p < n; ++p) {
    if (p != pos) keep.push_back(p);
  }
  g.rho = Reduce(g.rho, n, keep);
  g.members.erase(g.members.begin() + pos);
}

uint64_t QuantumSystem::AddGroup(std::vector<QubitId> members, Matrix rho) {
  const uint64_t key = next_group_key_++;
  for (QubitId id : members) group_of_[id] = key;
  groups_.emplace(key, Group{std::move(members), std::move(rho)});
  return key;
}

}  // namespace qnet::quantum
