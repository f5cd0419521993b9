// The four Bell states and their Pauli-frame labels. A heralded pair, a swap
// outcome and a teleportation correction are all named by a BellState.
#pragma once

#include <cstdint>
#include <string_view>

#include <Eigen/Dense>

namespace qnet::quantum {

// |B(x,z)> = (X^x Z^z (x) I)|Phi+>, index = x + 2z:
//   0 PHI+ = (|00>+|11>)/sqrt2   1 PSI+ = (|01>+|10>)/sqrt2
//   2 PHI- = (|00>-|11>)/sqrt2   3 PSI- = (|01>-|10>)/sqrt2
enum class BellState : uint8_t { kPhiPlus = 0, kPsiPlus = 1, kPhiMinus = 2, kPsiMinus = 3 };

inline int XBit(BellState b) { return static_cast<int>(b) & 1; }
inline int ZBit(BellState b) { return (static_cast<int>(b) >> 1) & 1; }
inline BellState FromBits(int x, int z) { return static_cast<BellState>((x & 1) | ((z & 1) << 1)); }
// Pauli-frame composition (phases dropped): XOR of the bits.
inline BellState Compose(BellState a, BellState b) {
  return FromBits(XBit(a) ^ XBit(b), ZBit(a) ^ ZBit(b));
}

Eigen::Vector4cd BellVector(BellState b);
Eigen::Matrix4cd BellDensity(BellState b);
std::string_view BellName(BellState b);  // "PHI+", ...

}  // namespace qnet::quantum
