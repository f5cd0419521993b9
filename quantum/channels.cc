#include "quantum/channels.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "quantum/gates.h"

namespace qnet::quantum::channels {
namespace {

// A probability outside [0, 1] (or NaN) means a caller computed it wrongly:
// fail loudly rather than produce a non-physical channel.
void CheckProbability(double p, const char* channel, const char* what) {
  if (!(p >= 0.0 && p <= 1.0)) {
    std::fprintf(stderr, "qnet::quantum::channels::%s: %s = %.17g is outside [0, 1]\n", channel,
                 what, p);
    std::abort();
  }
}

// T <= 0 or infinite (or NaN) means the process is absent.
bool Present(double t) { return std::isfinite(t) && t > 0.0; }

}  // namespace

std::vector<Matrix> Depolarizing(double p) {
  CheckProbability(p, "Depolarizing", "p");
  // I/2 = (rho + X rho X + Y rho Y + Z rho Z) / 4 for any single-qubit rho.
  return {std::sqrt(1.0 - 0.75 * p) * gates::I(), std::sqrt(p / 4) * gates::X(),
          std::sqrt(p / 4) * gates::Y(), std::sqrt(p / 4) * gates::Z()};
}

std::vector<Matrix> TwoQubitDepolarizing(double p) {
  CheckProbability(p, "TwoQubitDepolarizing", "p");
  // I/4 is the uniform mixture of the 16 two-qubit Pauli conjugations.
  const Matrix paulis[4] = {gates::I(), gates::X(), gates::Y(), gates::Z()};
  std::vector<Matrix> kraus;
  kraus.reserve(16);
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) {
      const double w = (i == 0 && j == 0) ? std::sqrt(1.0 - 15.0 * p / 16) : std::sqrt(p / 16);
      Matrix k(4, 4);
      for (int r = 0; r < 4; ++r) {
        for (int c = 0; c < 4; ++c) k(r, c) = w * paulis[i](r / 2, c / 2) * paulis[j](r % 2, c % 2);
      }
      kraus.push_back(std::move(k));
    }
  }
  return kraus;
}

std::vector<Matrix> Dephasing(double p) {
  CheckProbability(p, "Dephasing", "p");
  return {std::sqrt(1.0 - p) * gates::I(), std::sqrt(p) * gates::Z()};
}

std::vector<Matrix> BitFlip(double p) {
  CheckProbability(p, "BitFlip", "p");
  return {std::sqrt(1.0 - p) * gates::I(), std::sqrt(p) * gates::X()};
}

std::vector<Matrix> AmplitudeDamping(double gamma) {
  CheckProbability(gamma, "AmplitudeDamping", "gamma");
  Matrix k0 = Matrix::Zero(2, 2), k1 = Matrix::Zero(2, 2);
  k0(0, 0) = 1.0;
  k0(1, 1) = std::sqrt(1.0 - gamma);
  k1(0, 1) = std::sqrt(gamma);
  return {k0, k1};
}

std::vector<Matrix> MemoryDecay(double seconds, double t1_seconds, double t2_seconds) {
  if (!(seconds >= 0.0)) {
    std::fprintf(stderr, "qnet::quantum::channels::MemoryDecay: seconds = %.17g is negative\n",
                 seconds);
    std::abort();
  }
  // Population: amplitude damping, |1> survives with 1 - gamma = exp(-t/T1).
  const double keep1 = Present(t1_seconds) ? std::exp(-seconds / t1_seconds) : 1.0;
  // Coherence: exp(-t/T2) in total; with T2 absent only T1 acts (exp(-t/2T1)).
  const double coherence = Present(t2_seconds) ? std::exp(-seconds / t2_seconds) : std::sqrt(keep1);
  if (Present(t1_seconds) && Present(t2_seconds) && t2_seconds > 2.0 * t1_seconds * (1.0 + 1e-12)) {
    std::fprintf(stderr,
                 "qnet::quantum::channels::MemoryDecay: T2 = %.17g s exceeds 2*T1 = %.17g s, "
                 "which no physical memory allows\n",
                 t2_seconds, 2.0 * t1_seconds);
    std::abort();
  }
  const double gamma = 1.0 - keep1;
  CheckProbability(gamma, "MemoryDecay", "gamma");
  // Amplitude damping (coherence factor sqrt(1-gamma)) followed by dephasing with
  // probability p (factor 1-2p) is the channel below, written with three Kraus
  // operators: K0 = diag(1, c), K1 = sqrt(gamma)|0><1|, K2 = diag(0, b),
  // c = coherence, b^2 = (1-gamma) - c^2 >= 0 exactly when T2 <= 2 T1.
  const double b2 = std::max(0.0, keep1 - coherence * coherence);
  std::vector<Matrix> kraus;
  Matrix k0 = Matrix::Zero(2, 2);
  k0(0, 0) = 1.0;
  k0(1, 1) = coherence;
  kraus.push_back(std::move(k0));
  if (gamma > 0.0) {
    Matrix k1 = Matrix::Zero(2, 2);
    k1(0, 1) = std::sqrt(gamma);
    kraus.push_back(std::move(k1));
  }
  if (b2 > 0.0) {
    Matrix k2 = Matrix::Zero(2, 2);
    k2(1, 1) = std::sqrt(b2);
    kraus.push_back(std::move(k2));
  }
  return kraus;
}

}  // namespace qnet::quantum::channels
