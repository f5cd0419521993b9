#include "transport/qubit_state.h"

#include <cmath>
#include <complex>

#include "absl/strings/str_cat.h"

namespace qnet::transport {

BlochAngles ToAngles(NamedState state) {
  switch (state) {
    case NamedState::kZero: return {0.0, 0.0};
    case NamedState::kOne: return {M_PI, 0.0};
    case NamedState::kPlus: return {M_PI / 2, 0.0};
    case NamedState::kMinus: return {M_PI / 2, M_PI};
    case NamedState::kPlusI: return {M_PI / 2, M_PI / 2};
    case NamedState::kMinusI: return {M_PI / 2, -M_PI / 2};
  }
  return {};
}

std::string_view NamedStateName(NamedState state) {
  switch (state) {
    case NamedState::kZero: return "|0>";
    case NamedState::kOne: return "|1>";
    case NamedState::kPlus: return "|+>";
    case NamedState::kMinus: return "|->";
    case NamedState::kPlusI: return "|+i>";
    case NamedState::kMinusI: return "|-i>";
  }
  return "?";
}

absl::StatusOr<NamedState> ParseNamedState(std::string_view text) {
  std::string_view core = text;
  if (core.size() >= 2 && core.front() == '|' && core.back() == '>') core = core.substr(1, core.size() - 2);
  if (core == "0") return NamedState::kZero;
  if (core == "1") return NamedState::kOne;
  if (core == "+") return NamedState::kPlus;
  if (core == "-") return NamedState::kMinus;
  if (core == "+i") return NamedState::kPlusI;
  if (core == "-i") return NamedState::kMinusI;
  return absl::InvalidArgumentError(absl::StrCat("unknown state '", std::string(text),
                                                 "': use one of 0, 1, +, -, +i, -i (optionally as |...>)"));
}

quantum::Vector StateVector(const BlochAngles& state) {
  quantum::Vector v(2);
  v(0) = std::cos(state.theta / 2);
  v(1) = std::polar(std::sin(state.theta / 2), state.phi);
  return v;
}

std::array<double, 3> BlochVector(const BlochAngles& state) {
  return {std::sin(state.theta) * std::cos(state.phi), std::sin(state.theta) * std::sin(state.phi),
          std::cos(state.theta)};
}

int TeleportShotAxis(uint64_t transfer_id) { return static_cast<int>(transfer_id % 3); }

quantum::Basis AxisBasis(int axis) {
  switch (axis) {
    case 0:
      return quantum::Basis::X();
    case 1:
      return quantum::Basis::Y();
    default:
      return quantum::Basis::Z();
  }
}

absl::StatusOr<BlochEstimate> EstimateFromOutcomes(const AxisCounts& x, const AxisCounts& y, const AxisCounts& z,
                                                   const BlochAngles& intended) {
  const std::array<const AxisCounts*, 3> axes = {&x, &y, &z};
  const std::array<std::string_view, 3> names = {"X", "Y", "Z"};
  BlochEstimate e;
  const std::array<double, 3> n = BlochVector(intended);
  double fidelity_variance = 0.0;
  for (size_t i = 0; i < 3; ++i) {
    const AxisCounts& c = *axes[i];
    if (c.shots == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("no ", std::string(names[i]), "-basis outcomes: the estimate needs all three axes"));
    }
    if (c.plus > c.shots) {
      return absl::InvalidArgumentError(absl::StrCat(std::string(names[i]), "-basis counts: ", c.plus,
                                                     " +1 outcomes out of ", c.shots, " shots"));
    }
    const double shots = static_cast<double>(c.shots);
    e.r[i] = 2.0 * static_cast<double>(c.plus) / shots - 1.0;
    const double p = (static_cast<double>(c.plus) + 1.0) / (shots + 2.0);
    const double variance = 4.0 * p * (1.0 - p) / shots;
    e.standard_error[i] = std::sqrt(variance);
    e.fidelity += n[i] * e.r[i];
    fidelity_variance += n[i] * n[i] * variance;
  }
  e.fidelity = (1.0 + e.fidelity) / 2.0;
  e.fidelity_standard_error = std::sqrt(fidelity_variance) / 2.0;
  return e;
}

}  // namespace qnet::transport
