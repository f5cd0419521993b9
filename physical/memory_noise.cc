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
  std::vector<quantum::Matrix> decay;
  if (Present(node.t1_s) || Present(node.t2_s)) decay = quantum::channels::MemoryDecay(seconds, node.t1_s, node.t2_s);
  if (!Present(node.depolarising_time_s)) return decay;
  const std::vector<quantum::Matrix> depolarise =
      quantum::channels::Depolarizing(-std::expm1(-seconds / node.depolarising_time_s));
  if (decay.empty()) return depolarise;
  // The composition D o M has the products D_j M_i as Kraus operators.
  std::vector<quantum::Matrix> both;
  both.reserve(decay.size() * depolarise.size());
  for (const quantum::Matrix& d : depolarise) {
    for (const quantum::Matrix& m : decay) both.push_back(d * m);
  }
  return both;
}

}  // namespace qnet::physical
