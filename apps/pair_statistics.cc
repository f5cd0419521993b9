#include "apps/pair_statistics.h"

#include <cmath>

namespace qnet::apps {
namespace {

struct Axis {
  double x, y, z;
};

Axis ToAxis(link::MeasurementBasis basis) {
  const quantum::Basis b = link::ToQuantumBasis(basis);
  return {std::sin(b.theta) * std::cos(b.phi), std::sin(b.theta) * std::sin(b.phi), std::cos(b.theta)};
}

bool IsChshA(link::MeasurementBasis b) {
  return b == link::MeasurementBasis::kChshA0 || b == link::MeasurementBasis::kChshA1;
}
bool IsChshB(link::MeasurementBasis b) {
  return b == link::MeasurementBasis::kChshB0 || b == link::MeasurementBasis::kChshB1;
}

}  // namespace

double ErrorRate::standard_error() const {
  if (pairs == 0) return 0.0;
  const double p = rate();
  return std::sqrt(std::max(p * (1.0 - p), 1.0 / static_cast<double>(pairs)) / static_cast<double>(pairs));
}

double IdealCorrelation(quantum::BellState state, link::MeasurementBasis a, link::MeasurementBasis b) {
  // |B> = (X^x Z^z (x) I)|PHI+>, and PHI+ has correlation matrix diag(1,-1,1),
  // so <n_a.sigma (x) n_b.sigma> = (P n_a P)^T diag(1,-1,1) n_b, where the
  // Pauli P flips the axis components it anticommutes with.
  Axis na = ToAxis(a);
  const Axis nb = ToAxis(b);
  if (quantum::XBit(state)) {  // X flips y and z
    na.y = -na.y;
    na.z = -na.z;
  }
  if (quantum::ZBit(state)) {  // Z flips x and y
    na.x = -na.x;
    na.y = -na.y;
  }
  return na.x * nb.x - na.y * nb.y + na.z * nb.z;
}

void PairTally::Add(const MeasuredPair& p) {
  ++pairs_;
  const int product = (p.outcome_a == p.outcome_b) ? 1 : -1;  // eigenvalues +1 for outcome 0
  const double ideal = IdealCorrelation(p.bell_state, p.basis_a, p.basis_b);
  if (p.basis_a == p.basis_b && !IsChshA(p.basis_a) && !IsChshB(p.basis_a)) {
    ErrorRate& e = p.basis_a == link::MeasurementBasis::kZ   ? z_
                   : p.basis_a == link::MeasurementBasis::kX ? x_
                                                             : y_;
    ++e.pairs;
    if ((ideal > 0) != (product > 0)) ++e.errors;
  } else if (IsChshA(p.basis_a) && IsChshB(p.basis_b)) {
    const int i = p.basis_a == link::MeasurementBasis::kChshA1;
    const int j = p.basis_b == link::MeasurementBasis::kChshB1;
    chsh_sum_[i][j] += (ideal > 0 ? 1.0 : -1.0) * product;
    ++chsh_n_[i][j];
  }
}

PairStatistics PairTally::Statistics() const {
  PairStatistics s;
  s.pairs = pairs_;
  s.z = z_;
  s.x = x_;
  s.y = y_;
  if (s.z.pairs > 0 && s.x.pairs > 0 && s.y.pairs > 0) {
    const double f = 1.0 - (s.z.rate() + s.x.rate() + s.y.rate()) / 2.0;
    const double se = std::sqrt(std::pow(s.z.standard_error(), 2) + std::pow(s.x.standard_error(), 2) +
                                std::pow(s.y.standard_error(), 2)) /
                      2.0;
    s.fidelity = Estimate{f, se};
  }
  if (chsh_n_[0][0] && chsh_n_[0][1] && chsh_n_[1][0] && chsh_n_[1][1]) {
    double total = 0.0, var = 0.0;
    for (int i = 0; i < 2; ++i) {
      for (int j = 0; j < 2; ++j) {
        const double n = static_cast<double>(chsh_n_[i][j]);
        const double e = chsh_sum_[i][j] / n;
        total += e;
        var += std::max(1.0 - e * e, 1.0 / n) / n;
      }
    }
    s.chsh = Estimate{total, std::sqrt(var)};
  }
  return s;
}

PairStatistics AnalysePairs(const std::vector<MeasuredPair>& pairs) {
  PairTally tally;
  for (const MeasuredPair& p : pairs) tally.Add(p);
  return tally.Statistics();
}

}  // namespace qnet::apps
