#include "physical/memory_noise.h"

#include <cmath>

#include "quantum/channels.h"

namespace qnet::physical {
namespace {

bool Present(double t) { return std::isfinite(t) && t > 0.0; }

}  // namespace

bool HasIdleNoise(const NodeHardware& node) {
  return Present(node.t1_s) || Present(node.t2_s) || Present(node.depolarising_time_s);
}

std::vector<quantum::Matrix> IdleNoise(const NodeHardware& node, double seconds) {
  if (!(seconds > 0.0) || !HasIdleNoise(node)) return {};
  if (!Present(node.depolarising_time_s)) return quantum::channels::MemoryDecay(seconds, node.t1_s, node.t2_s);
  // Relaxation, dephasing and depolarising act at once, and amplitude damping
  // and depolarising do not commute: applying one after the other would make
  // two waits of t differ from one of 2t. The exact solution of the joint
  // master equation instead: the |1> population relaxes at
  // G = 1/T1 + 1/tau towards p_inf = (1/(2 tau)) / G (generalised amplitude
  // damping), and the coherence decays as exp(-t/T2 - t/tau) in total
  // (T2 absent: exp(-t/(2 T1)) from relaxation alone).
  const double rate_1 = Present(node.t1_s) ? 1.0 / node.t1_s : 0.0;
  const double rate_2 = Present(node.t2_s) ? 1.0 / node.t2_s : rate_1 / 2.0;
  const double rate_d = 1.0 / node.depolarising_time_s;
  const double total = rate_1 + rate_d;
  const double gamma = -std::expm1(-total * seconds);
  const double excited = (rate_d / 2.0) / total;
  // What generalised amplitude damping leaves of the coherence is
  // exp(-G t / 2); pure dephasing takes the rest (never more than 1: T2 <= 2 T1).
  const double dephase = std::exp(-seconds * (rate_2 + rate_d - total / 2.0));
  const double keep = std::sqrt(1.0 - gamma);
  const double a = std::sqrt(1.0 - excited), b = std::sqrt(excited), g = std::sqrt(gamma);
  std::vector<quantum::Matrix> damping(4, quantum::Matrix::Zero(2, 2));
  damping[0](0, 0) = a;
  damping[0](1, 1) = a * keep;
  damping[1](0, 1) = a * g;
  damping[2](0, 0) = b * keep;
  damping[2](1, 1) = b;
  damping[3](1, 0) = b * g;
  const std::vector<quantum::Matrix> dephasing = quantum::channels::Dephasing((1.0 - std::min(1.0, dephase)) / 2.0);
  std::vector<quantum::Matrix> both;
  both.reserve(damping.size() * dephasing.size());
  for (const quantum::Matrix& d : dephasing) {
    for (const quantum::Matrix& m : damping) both.push_back(d * m);
  }
  return both;
}

}  // namespace qnet::physical
