#include "network/bell_diagonal.h"

#include <algorithm>
#include <cmath>

namespace qnet::network {
namespace {

bool Present(double t) { return std::isfinite(t) && t > 0.0; }

BellDiagonal FrameFlips(double x_flip, double z_flip) {
  BellDiagonal d;
  d.p = {(1 - x_flip) * (1 - z_flip), x_flip * (1 - z_flip), (1 - x_flip) * z_flip, x_flip * z_flip};
  return d;
}

}  // namespace

BellDiagonal BellDiagonal::Werner(double fidelity) {
  const double f = std::clamp(fidelity, 0.0, 1.0);
  BellDiagonal d;
  d.p = {f, (1 - f) / 3, (1 - f) / 3, (1 - f) / 3};
  return d;
}

BellDiagonal BellDiagonal::Swap(const BellDiagonal& a, const BellDiagonal& b) {
  BellDiagonal out;
  out.p = {0, 0, 0, 0};
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) out.p[static_cast<size_t>(i ^ j)] += a.p[static_cast<size_t>(i)] * b.p[static_cast<size_t>(j)];
  }
  return out;
}

std::pair<BellDiagonal, double> BellDiagonal::Dejmps(const BellDiagonal& a, const BellDiagonal& b) {
  // In the paper's labels A = PHI+, B = PSI-, C = PSI+, D = PHI- (our
  // indices 0, 3, 1, 2): A' = (A1 A2 + B1 B2)/N, B' = (C1 D2 + D1 C2)/N,
  // C' = (C1 C2 + D1 D2)/N, D' = (A1 B2 + B1 A2)/N,
  // N = (A1 + B1)(A2 + B2) + (C1 + D1)(C2 + D2).
  const double a1 = a.p[0], b1 = a.p[3], c1 = a.p[1], d1 = a.p[2];
  const double a2 = b.p[0], b2 = b.p[3], c2 = b.p[1], d2 = b.p[2];
  const double n = (a1 + b1) * (a2 + b2) + (c1 + d1) * (c2 + d2);
  BellDiagonal out;
  if (!(n > 0)) return {out, 0.0};
  out.p[0] = (a1 * a2 + b1 * b2) / n;
  out.p[3] = (c1 * d2 + d1 * c2) / n;
  out.p[1] = (c1 * c2 + d1 * d2) / n;
  out.p[2] = (a1 * b2 + b1 * a2) / n;
  return {out, n};
}

BellDiagonal MemoryDecayErrors(Duration wait, const MemoryDecayRates& rates) {
  const double t = std::max(0.0, ToSeconds(wait));
  const double keep1 = Present(rates.t1_s) ? std::exp(-t / rates.t1_s) : 1.0;
  const double coherence = Present(rates.t2_s) ? std::exp(-t / rates.t2_s) : std::sqrt(keep1);
  const double gamma = 1.0 - keep1;
  // Twirled channel: pX = pY = gamma/4, pI = (1+c)/2 - gamma/4, pZ = (1-c)/2 - gamma/4.
  BellDiagonal d;
  const double px = gamma / 4;
  const double pz = std::max(0.0, (1 - coherence) / 2 - gamma / 4);
  d.p = {1 - 2 * px - pz, px, pz, px};
  if (!Present(rates.depolarising_time_s)) return d;
  const double q = -std::expm1(-t / rates.depolarising_time_s);
  BellDiagonal depolarise;
  depolarise.p = {1 - 3 * q / 4, q / 4, q / 4, q / 4};
  return d.With(depolarise);
}

BellDiagonal Decay(const BellDiagonal& state, Duration wait_a, const MemoryDecayRates& a, Duration wait_b,
                   const MemoryDecayRates& b) {
  return state.With(MemoryDecayErrors(wait_a, a)).With(MemoryDecayErrors(wait_b, b));
}

BellDiagonal BellMeasurementErrors(double single_qubit_gate_error, double two_qubit_gate_error,
                                   double readout_error_0, double readout_error_1) {
  BellDiagonal uniform;
  const double p2 = std::clamp(two_qubit_gate_error, 0.0, 1.0);
  uniform.p = {1 - 3 * p2 / 4, p2 / 4, p2 / 4, p2 / 4};
  const double readout = (readout_error_0 + readout_error_1) / 2;
  const double z_flip_gate = std::clamp(single_qubit_gate_error, 0.0, 1.0) / 2;
  return uniform.With(FrameFlips(0.0, z_flip_gate)).With(FrameFlips(readout, readout));
}

BellDiagonal BellMeasurementErrors(const physical::NodeHardware& hardware) {
  return BellMeasurementErrors(hardware.single_qubit_gate_error, hardware.two_qubit_gate_error,
                               hardware.readout_error_0, hardware.readout_error_1);
}

}  // namespace qnet::network
