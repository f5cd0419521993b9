// Byte-size accounting for the plain message structs of QKD post-processing:
// the structs are carried by whatever channel the runtime has (in-process in
// tests, the peer channel in the daemon), and each reports the size it would
// take in a compact encoding (fixed-width integers, varint-coded sorted ids,
// packed bits), so the classical communication cost of a session is known.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qnet::qkd {

// Bytes of `value` as a base-128 varint.
inline size_t VarintBytes(uint64_t value) {
  size_t n = 1;
  while (value >= 128) {
    value >>= 7;
    ++n;
  }
  return n;
}

// Bytes of `bits` packed bits.
inline size_t PackedBitsBytes(size_t bits) { return (bits + 7) / 8; }

}  // namespace qnet::qkd
