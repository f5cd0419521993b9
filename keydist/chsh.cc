#include "keydist/chsh.h"

#include <algorithm>
#include <cmath>

namespace qnet::keydist {

ChshTally::Value ChshTally::Estimate() const {
  // Each term's sign is that of its ideal PHI+ correlation cos(a - b). Each
  // E is a mean of +-1 values, variance (1 - E^2)/n (at least 1/n^2 so that
  // a perfect sample still carries its sampling error).
  double total = 0.0, variance = 0.0;
  for (int a = 0; a < 2; ++a) {
    for (int b = 0; b < 2; ++b) {
      const double n = static_cast<double>(count_[a][b]);
      const double e = sum_[a][b] / n;
      total += (a == 1 && b == 1) ? -e : e;
      variance += std::max(1.0 - e * e, 1.0 / n) / n;
    }
  }
  return Value{total, std::sqrt(variance)};
}

}  // namespace qnet::keydist
