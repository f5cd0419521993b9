#include "quantum/bell.h"

#include <cmath>

namespace qnet::quantum {

Eigen::Vector4cd BellVector(BellState b) {
  const double s = 1.0 / std::sqrt(2.0);
  Eigen::Vector4cd v = Eigen::Vector4cd::Zero();
  switch (b) {
    case BellState::kPhiPlus:
      v << s, 0, 0, s;
      break;
    case BellState::kPsiPlus:
      v << 0, s, s, 0;
      break;
    case BellState::kPhiMinus:
      v << s, 0, 0, -s;
      break;
    case BellState::kPsiMinus:
      v << 0, s, -s, 0;
      break;
  }
  return v;
}

Eigen::Matrix4cd BellDensity(BellState b) {
  const Eigen::Vector4cd v = BellVector(b);
  return v * v.adjoint();
}

std::string_view BellName(BellState b) {
  switch (b) {
    case BellState::kPhiPlus:
      return "PHI+";
    case BellState::kPsiPlus:
      return "PSI+";
    case BellState::kPhiMinus:
      return "PHI-";
    case BellState::kPsiMinus:
      return "PSI-";
  }
  return "?";
}

}  // namespace qnet::quantum
