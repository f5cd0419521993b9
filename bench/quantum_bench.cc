// Cost of the density-matrix engine's hot operations: gates on qubits inside
// groups of growing size, cross-group merges, measurement, the Bell
// measurement of an entanglement swap, and memory decoherence.
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "core/rng.h"
#include "quantum/bell.h"
#include "quantum/channels.h"
#include "quantum/gates.h"
#include "quantum/quantum_system.h"

namespace qnet::quantum {
namespace {

std::vector<QubitId> Ids(int n, QubitId first = 0) {
  std::vector<QubitId> ids;
  for (int i = 0; i < n; ++i) ids.push_back(first + i);
  return ids;
}

// (|0...0> + |1...1>)/sqrt2 over n qubits: a fully entangled group.
Matrix Ghz(int n) {
  const Eigen::Index dim = Eigen::Index{1} << n;
  Matrix rho = Matrix::Zero(dim, dim);
  rho(0, 0) = rho(0, dim - 1) = rho(dim - 1, 0) = rho(dim - 1, dim - 1) = 0.5;
  return rho;
}

void BM_SingleQubitGate(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  QuantumSystem sys;
  const auto ids = Ids(n);
  if (!sys.Prepare(ids, Ghz(n)).ok()) state.SkipWithError("prepare failed");
  const Matrix h = gates::H();
  const std::vector<QubitId> target = {ids[n / 2]};
  for (auto _ : state) {
    benchmark::DoNotOptimize(sys.ApplyUnitary(h, target));
  }
}
BENCHMARK(BM_SingleQubitGate)->Arg(2)->Arg(4)->Arg(6)->Arg(8);

// Baseline for the benchmarks below that must re-create their pairs.
void BM_PrepareTwoPairs(benchmark::State& state) {
  const Matrix phi = BellDensity(BellState::kPhiPlus);
  for (auto _ : state) {
    QuantumSystem sys;
    benchmark::DoNotOptimize(sys.Prepare(std::vector<QubitId>{1, 2}, phi));
    benchmark::DoNotOptimize(sys.Prepare(std::vector<QubitId>{3, 4}, phi));
  }
}
BENCHMARK(BM_PrepareTwoPairs);

// CNOT across two 2-qubit groups: merge into a 4-qubit group, then apply.
void BM_CnotMergingTwoPairs(benchmark::State& state) {
  const Matrix phi = BellDensity(BellState::kPhiPlus);
  const Matrix cnot = gates::CNOT();
  for (auto _ : state) {
    QuantumSystem sys;
    benchmark::DoNotOptimize(sys.Prepare(std::vector<QubitId>{1, 2}, phi));
    benchmark::DoNotOptimize(sys.Prepare(std::vector<QubitId>{3, 4}, phi));
    benchmark::DoNotOptimize(sys.ApplyUnitary(cnot, std::vector<QubitId>{2, 3}));
  }
}
BENCHMARK(BM_CnotMergingTwoPairs);

// Prepare an n-qubit GHZ group and measure one member along X.
void BM_Measure(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const auto ids = Ids(n);
  const Matrix ghz = Ghz(n);
  Rng rng(1);
  QuantumSystem sys;
  for (auto _ : state) {
    benchmark::DoNotOptimize(sys.Prepare(ids, ghz));
    benchmark::DoNotOptimize(sys.Measure(ids[0], Basis::X(), rng));
  }
}
BENCHMARK(BM_Measure)->Arg(2)->Arg(4)->Arg(6);

// Entanglement swap: Bell measurement of the inner halves of two pairs and
// the Pauli correction of an outer half (includes preparing both pairs).
void BM_EntanglementSwap(benchmark::State& state) {
  const Matrix phi = BellDensity(BellState::kPhiPlus);
  const Matrix noisy = 0.9 * phi + 0.1 * Matrix::Identity(4, 4) / 4;
  Rng rng(2);
  QuantumSystem sys;
  for (auto _ : state) {
    benchmark::DoNotOptimize(sys.Prepare(std::vector<QubitId>{1, 2}, noisy));
    benchmark::DoNotOptimize(sys.Prepare(std::vector<QubitId>{3, 4}, noisy));
    auto label = sys.BellMeasure(2, 3, rng);
    benchmark::DoNotOptimize(
        sys.ApplyUnitary(gates::Pauli(XBit(*label), ZBit(*label)), std::vector<QubitId>{4}));
  }
}
BENCHMARK(BM_EntanglementSwap);

// Memory decoherence of one qubit inside an n-qubit group, Kraus set included.
void BM_MemoryDecay(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  QuantumSystem sys;
  const auto ids = Ids(n);
  if (!sys.Prepare(ids, Ghz(n)).ok()) state.SkipWithError("prepare failed");
  const std::vector<QubitId> target = {ids[0]};
  for (auto _ : state) {
    const auto kraus = channels::MemoryDecay(1e-3, 1.0, 0.5);
    benchmark::DoNotOptimize(sys.ApplyChannel(kraus, target));
  }
}
BENCHMARK(BM_MemoryDecay)->Arg(2)->Arg(4)->Arg(6);

}  // namespace
}  // namespace qnet::quantum
