// Shared by the libFuzzer targets in fuzz/: a reader that turns the fuzzer's
// bytes into choices and length-prefixed chunks, the small networks the
// targets build (embedded, so a target needs no files), a bounded run of the
// simulator (hostile input must not make one input run forever), and the
// hook through which a target names its seed inputs (replay_main.cc writes
// them with --write-seeds). Every target is deterministic: fixed seeds only.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/time.h"
#include "sim/simulator.h"

namespace qnet::fuzz {

// Consumes the input front to back; past the end every read yields zero/empty,
// so any byte string is a valid input.
class FuzzReader {
 public:
  FuzzReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  // A chunk of up to 65535 bytes: a 2-byte little-endian length, then that
  // many bytes (fewer if the input ends first).
  std::string Chunk() {
    size_t n = Byte();
    n |= static_cast<size_t>(Byte()) << 8;
    n = std::min(n, size_ - std::min(pos_, size_));
    std::string out(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return out;
  }
  std::string Rest() {
    std::string out = pos_ < size_ ? std::string(reinterpret_cast<const char*>(data_ + pos_), size_ - pos_) : "";
    pos_ = size_;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// The inverse of FuzzReader::Chunk, for writing seeds.
inline std::string ChunkBytes(std::string_view bytes) {
  std::string out;
  out.push_back(static_cast<char>(bytes.size() & 0xff));
  out.push_back(static_cast<char>((bytes.size() >> 8) & 0xff));
  out.append(bytes.substr(0, 65535));
  return out;
}

// Noise-free hardware keeps the simulated physics cheap, so inputs spend
// their time in the protocol code. The chain has a repeater (bob).
inline constexpr char kFuzzChainYaml[] = R"(network: fuzz-chain
seed: 1
nodes:
  - name: alice
    hardware: ideal
  - name: bob
    hardware: ideal
    qubits: 4
  - name: charlie
    hardware: ideal
links:
  - between: [alice, bob]
    length_km: 1
  - between: [bob, charlie]
    length_km: 1
)";
inline constexpr uint64_t kFuzzNetworkSeed = 12345;

// Runs the simulator for at most `limit` of simulated time and `max_events`
// events, whichever ends first.
inline void RunBounded(sim::Simulator& simulator, Duration limit, uint64_t max_events) {
  const uint64_t start = simulator.events_run();
  simulator.RunUntil([&] { return simulator.events_run() - start >= max_events; }, simulator.Now() + limit);
}

// Each target defines this: its seed inputs (replay_main --write-seeds).
std::vector<std::string> Seeds();

}  // namespace qnet::fuzz
