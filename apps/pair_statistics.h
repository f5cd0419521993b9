// What MEASURE pairs tell about the entanglement they came from, computed
// only from the two ends' outcomes and bases (as an experimenter would), never
// from simulated state: the error rate per basis (QBER), the fidelity with
// the heralded Bell state estimated from Z, X and Y error rates, and the CHSH
// value S. Outcomes are compared in the heralded Bell state's Pauli frame.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "link/link_service.h"
#include "quantum/bell.h"

namespace qnet::apps {

// One pair as both ends reported it.
struct MeasuredPair {
  quantum::BellState bell_state = quantum::BellState::kPhiPlus;  // the heralded (or tracked) state
  link::MeasurementBasis basis_a = link::MeasurementBasis::kZ;    // first qubit of the Bell state's frame
  link::MeasurementBasis basis_b = link::MeasurementBasis::kZ;
  int outcome_a = 0;
  int outcome_b = 0;
};

struct ErrorRate {
  uint64_t pairs = 0;   // pairs measured in this basis at both ends
  uint64_t errors = 0;  // outcomes that disagree with the Bell state's correlation
  double rate() const { return pairs == 0 ? 0.0 : static_cast<double>(errors) / static_cast<double>(pairs); }
  double standard_error() const;
};

struct Estimate {
  double value = 0.0;
  double standard_error = 0.0;
};

struct PairStatistics {
  uint64_t pairs = 0;
  ErrorRate z, x, y;  // same-basis pairs at both ends
  // F = 1 - (e_X + e_Y + e_Z)/2, exact for any two-qubit state; needs pairs
  // in all three bases.
  std::optional<Estimate> fidelity;
  // Sum of the four CHSH correlators, each signed as the ideal heralded state
  // predicts for the settings used; needs pairs in all four A/B settings.
  std::optional<Estimate> chsh;
};

// The statistics of pairs added one at a time: memory does not grow with
// the pairs (a long run need not keep its outcomes).
class PairTally {
 public:
  void Add(const MeasuredPair& pair);
  PairStatistics Statistics() const;

 private:
  uint64_t pairs_ = 0;
  ErrorRate z_, x_, y_;
  // CHSH: signed correlator sums and counts per (A setting, B setting).
  double chsh_sum_[2][2] = {{0, 0}, {0, 0}};
  uint64_t chsh_n_[2][2] = {{0, 0}, {0, 0}};
};

PairStatistics AnalysePairs(const std::vector<MeasuredPair>& pairs);

// The correlation <sigma_a (x) sigma_b> the ideal Bell state predicts for
// measurement axes a and b: +1 always equal outcomes, -1 always opposite.
double IdealCorrelation(quantum::BellState state, link::MeasurementBasis a, link::MeasurementBasis b);

}  // namespace qnet::apps
