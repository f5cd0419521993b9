// What a GHZ state's measured outcomes tell: its fidelity and its Mermin
// value, each with a standard error, from per-setting outcome tallies (the
// settings transport::GhzDistribution measures in turn).
//
// For |GHZ> = (|0...0> + |1...1>)/sqrt(2) on N qubits,
//   F = <GHZ|rho|GHZ> = (P(0...0) + P(1...1)) / 2 + Re rho(0...0, 1...1),
// and the coherence 2 Re rho(0...0, 1...1) = M / 2^(N-1), where
//   M = sum over X/Y strings S with an even number k of Y of (-1)^(k/2) <S>
// is Mermin's operator Re prod_j (X_j + i Y_j): every other off-diagonal
// element cancels in the sum. So the Z setting gives the populations and
// the 2^(N-1) X/Y settings the coherence and M together. Local hidden
// variables bound |M| by 2^(N/2) (N even) or 2^((N-1)/2) (N odd); the GHZ
// state reaches 2^(N-1). Each <S> is the mean of the outcomes' parity
// (+1/-1) over that setting's shots; standard errors are binomial,
// sqrt((1 - <S>^2) / n), combined in quadrature.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace qnet::apps {

// One setting's tallies: counts[pattern], bit i of pattern = qubit i's
// outcome (0 = +1 eigenstate); bases one letter per qubit (X, Y or Z).
struct GhzSettingTally {
  std::string bases;
  std::vector<uint64_t> counts;
};

struct GhzEstimate {
  int qubits = 0;
  uint64_t shots = 0;
  double populations = 0.0, populations_se = 0.0;  // P(0...0) + P(1...1), Z setting
  double coherence = 0.0, coherence_se = 0.0;      // 2 Re rho(0...0, 1...1) = M / 2^(N-1)
  double fidelity = 0.0, fidelity_se = 0.0;
  double mermin = 0.0, mermin_se = 0.0;
  double mermin_local_bound = 0.0;   // local hidden variables
  double mermin_quantum_max = 0.0;   // the GHZ state's value
  // (M - bound) / se: how many standard errors M lies above the local bound.
  double mermin_violation_sigmas = 0.0;
  struct Setting {
    std::string bases;
    uint64_t shots = 0;
    double expectation = 0.0;  // <S> (X/Y) or P(0...0) + P(1...1) (Z)
    double se = 0.0;
  };
  std::vector<Setting> settings;
};

// InvalidArgument unless the tallies hold the all-Z setting and every X/Y
// setting with an even number of Y, each with at least one shot, for one
// qubit count in [2, 16].
absl::StatusOr<GhzEstimate> EstimateGhz(const std::vector<GhzSettingTally>& tallies);

// Closed forms for fusion at one node of N-1 Werner pairs with Werner
// parameter p = (4F - 1)/3 and ideal local operations (docs/architecture.md,
// "GHZ states"): populations ((1+p)/2)^(N-1), coherence p^(N-1).
double GhzFusionFidelity(int qubits, double werner_parameter);
double GhzFusionMermin(int qubits, double werner_parameter);

}  // namespace qnet::apps
