// The CHSH value of E91's test pairs, S = E(Z,B0) + E(Z,B1) + E(X,B0) -
// E(X,B1), with its standard error: the Bell test both ends of an E91
// session compute alike from the same joint outcomes.
#pragma once

#include <cstdint>

namespace qnet::keydist {

// Joint outcomes of test pairs in the PHI+ frame: the head measured Z or X
// (setting a = 0 or 1), the tail B0 or B1 (b = 0 or 1).
class ChshTally {
 public:
  struct Value {
    double s = 0.0;
    double stderr_s = 0.0;
  };

  void Add(int a, int b, bool head_outcome, bool tail_outcome) {
    sum_[a][b] += head_outcome == tail_outcome ? 1.0 : -1.0;
    ++count_[a][b];
  }
  uint64_t count(int a, int b) const { return count_[a][b]; }
  uint64_t pairs() const { return count_[0][0] + count_[0][1] + count_[1][0] + count_[1][1]; }
  // Every pair of settings has outcomes: S can be estimated.
  bool complete() const { return count_[0][0] > 0 && count_[0][1] > 0 && count_[1][0] > 0 && count_[1][1] > 0; }
  // Needs complete().
  Value Estimate() const;

 private:
  double sum_[2][2] = {{0, 0}, {0, 0}};
  uint64_t count_[2][2] = {{0, 0}, {0, 0}};
};

}  // namespace qnet::keydist
