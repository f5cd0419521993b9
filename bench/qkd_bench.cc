// Throughput of QKD post-processing: sifted bits per wall-clock second
// through Cascade error correction (both ends, every parity round trip
// in-process) followed by Toeplitz privacy amplification at both ends, for
// frames of 10^4, 10^5 and 10^6 bits at 1%, 3% and 5% QBER. The final length
// uses the asymptotic phase error (= the true QBER) so the Toeplitz matrix has
// a realistic height. What it costs the host per key bit, not a physical rate.
#include <benchmark/benchmark.h>

#include <cmath>

#include "core/rng.h"
#include "qkd/binary_entropy.h"
#include "qkd/bit_string.h"
#include "qkd/cascade.h"
#include "qkd/privacy_amplification.h"
#include "qkd/verification.h"

namespace qnet::qkd {
namespace {

void BM_QkdCascadePlusPrivacyAmplification(benchmark::State& state) {
  const auto bits = static_cast<size_t>(state.range(0));
  const double qber = static_cast<double>(state.range(1)) / 100.0;
  Rng rng(static_cast<uint64_t>(state.range(0) * 100 + state.range(1)));
  const BitString alice_key = BitString::Random(bits, rng);
  BitString bob_key = alice_key;
  for (size_t i = 0; i < bits; ++i) {
    if (rng.Bernoulli(qber)) bob_key.Flip(i);
  }
  uint64_t disclosed = 0, rounds = 0, final_bits = 0;
  for (auto _ : state) {
    CascadeAlice alice(alice_key);
    auto bob = CascadeBob::Create(bob_key, qber, rng.NextU64());
    if (!bob.ok()) return state.SkipWithError("cascade");
    auto request = bob->Start();
    while (request.ok() && request->has_value()) {
      auto reply = alice.Answer(**request);
      if (!reply.ok()) return state.SkipWithError("answer");
      request = bob->OnReply(*reply);
    }
    if (!request.ok() || !(bob->key() == alice_key)) return state.SkipWithError("not reconciled");
    SecretKeyLengthInputs in;
    in.z_key_bits = bits;
    in.z_phase_error_bound = qber;
    in.error_correction_leak = bob->stats().disclosed_bits;
    in.verification_leak = kVerificationDisclosedBits;
    const SecretKeyLength length = ComputeSecretKeyLength(in);
    const PrivacyAmplificationSeed seed = MakePrivacyAmplificationSeed(bits, length.bits, rng);
    auto alice_final = ApplyPrivacyAmplification(alice_key, seed);
    auto bob_final = ApplyPrivacyAmplification(bob->key(), seed);
    if (!alice_final.ok() || !bob_final.ok()) return state.SkipWithError("privacy amplification");
    benchmark::DoNotOptimize(alice_final->words().data());
    benchmark::DoNotOptimize(bob_final->words().data());
    disclosed = bob->stats().disclosed_bits;
    rounds = bob->stats().requests;
    final_bits = length.bits;
  }
  state.counters["sifted_bits_per_s"] =
      benchmark::Counter(static_cast<double>(bits), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["f"] = static_cast<double>(disclosed) / (static_cast<double>(bits) * BinaryEntropy(qber));
  state.counters["rounds"] = static_cast<double>(rounds);
  state.counters["final_bits"] = static_cast<double>(final_bits);
}

BENCHMARK(BM_QkdCascadePlusPrivacyAmplification)
    ->ArgNames({"bits", "qber_pct"})
    ->Args({10000, 1})
    ->Args({10000, 3})
    ->Args({10000, 5})
    ->Args({100000, 1})
    ->Args({100000, 3})
    ->Args({100000, 5})
    ->Unit(benchmark::kMillisecond);

// 10^6-bit frames: one iteration each keeps the suite cheap.
BENCHMARK(BM_QkdCascadePlusPrivacyAmplification)
    ->ArgNames({"bits", "qber_pct"})
    ->Args({1000000, 1})
    ->Args({1000000, 3})
    ->Args({1000000, 5})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace qnet::qkd
