// Fuzz target: QKD post-processing messages as a receiving session sees them.
// The input's chunks are decoded with keydist::DecodeQkdMessage (the wire
// form the key distribution protocol carries in datagrams); each one that
// decodes is fed to one end's qkd::PostProcessing session (sifting,
// estimation, Cascade, verification, privacy amplification), built from
// seeded detections. The seeds are an honest peer's messages of the same
// session, so mutations reach every step. Invariants: what decodes re-encodes
// to something that decodes to the same bytes, and what the session sends
// encodes and decodes.
//
// Input: [mode: bit 0 clear Alice, set Bob; bit 1 set: decoy-state BB84,
// Alice's detections carrying intensities] then chunks ([2-byte
// length][bytes]), at most 64.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/rng.h"
#include "fuzz/fuzz_common.h"
#include "keydist/qkd_wire.h"
#include "qkd/post_processing.h"

namespace qnet::fuzz {
namespace {

constexpr uint64_t kSession = 77;
constexpr int kDetections = 2000;
constexpr int kMaxMessages = 64;

// Small keys with loose security parameters, so that a short session gets
// through every step (the defaults need ~10^4 sifted bits for any key).
qkd::PostProcessingOptions Options(bool decoy) {
  qkd::PostProcessingOptions o;
  o.estimation.sample_fraction = 0.2;
  o.estimation.failure_probability = 1e-2;
  o.privacy_amplification_failure_probability = 1e-2;
  if (decoy) {
    qkd::PostProcessingOptions::Decoy d;
    d.finite_key.epsilon_secrecy = 1e-2;
    d.finite_key.epsilon_correctness = 1e-2;
    o.decoy = d;
  }
  return o;
}

// Both ends' detections of the same pairs: random bases at each end, Bob's
// outcome wrong on ~2% of the pairs measured in the same basis.
std::vector<qkd::Detection> Detections(qkd::Role role, bool decoy) {
  Rng rng(2024);
  Rng intensities(2025);  // its own stream: the pairs are the same in both modes
  std::vector<qkd::Detection> out;
  for (int i = 0; i < kDetections; ++i) {
    const uint64_t id = 3 * static_cast<uint64_t>(i) + rng.UniformInt(3);
    const bool alice_x = rng.Bernoulli(0.5), bob_x = rng.Bernoulli(0.5);
    const bool bit = rng.Bernoulli(0.5);
    const bool flip = rng.Bernoulli(0.02);
    const bool other = rng.Bernoulli(0.5);  // Bob's outcome in the other basis (drawn at both ends alike)
    if (role == qkd::Role::kAlice) {
      const double u = intensities.Uniform();
      const uint8_t k = !decoy ? 0 : u < 0.8 ? 0 : u < 0.9 ? 1 : 2;
      out.push_back({id, alice_x ? qkd::Basis::kX : qkd::Basis::kZ, bit, k});
    } else {
      out.push_back({id, bob_x ? qkd::Basis::kX : qkd::Basis::kZ, alice_x == bob_x ? bit != flip : other});
    }
  }
  return out;
}

qkd::PostProcessing Session(qkd::Role role, bool decoy) {
  auto s = qkd::PostProcessing::Create(role, Detections(role, decoy), Options(decoy),
                                       role == qkd::Role::kAlice ? 11 : 22);
  if (!s.ok()) {
    std::fprintf(stderr, "cannot build the session: %s\n", s.status().ToString().c_str());
    std::abort();
  }
  return *std::move(s);
}

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

}  // namespace

// An honest run between both ends; each seed is one end's whole inbox (or a
// prefix of it), so the fuzzer starts from sessions that finish.
std::vector<std::string> Seeds() {
  std::vector<std::string> seeds;
  for (const bool decoy : {false, true}) {
    qkd::PostProcessing alice = Session(qkd::Role::kAlice, decoy), bob = Session(qkd::Role::kBob, decoy);
    std::vector<std::string> to_alice, to_bob;
    std::vector<qkd::QkdMessage> from_alice = alice.Start(), from_bob = bob.Start();
    while ((!from_alice.empty() || !from_bob.empty()) && to_alice.size() + to_bob.size() < 1000) {
      std::vector<qkd::QkdMessage> next_alice, next_bob;
      for (const qkd::QkdMessage& m : from_alice) {
        to_bob.push_back(keydist::EncodeQkdMessage(kSession, m));
        for (qkd::QkdMessage& r : bob.Receive(m)) next_bob.push_back(std::move(r));
      }
      for (const qkd::QkdMessage& m : from_bob) {
        to_alice.push_back(keydist::EncodeQkdMessage(kSession, m));
        for (qkd::QkdMessage& r : alice.Receive(m)) next_alice.push_back(std::move(r));
      }
      from_alice = std::move(next_alice);
      from_bob = std::move(next_bob);
    }
    // The decoy session is too short for the decoy bounds and aborts after
    // the announcement: its seeds still reach the decoy steps.
    if (!decoy &&
        (alice.state() != qkd::PostProcessing::State::kDone || bob.state() != qkd::PostProcessing::State::kDone)) {
      std::fprintf(stderr, "the honest seed session did not finish: %s / %s\n", alice.status().ToString().c_str(),
                   bob.status().ToString().c_str());
    }
    for (int role = 0; role < 2; ++role) {
      const char mode = static_cast<char>(role | (decoy ? 2 : 0));
      const std::vector<std::string>& inbox = role == 0 ? to_alice : to_bob;
      for (size_t n = 1; n <= inbox.size() && n <= kMaxMessages; n = n < 4 ? n + 1 : n * 2) {
        std::string input(1, mode);
        for (size_t i = 0; i < n; ++i) input += ChunkBytes(inbox[i]);
        seeds.push_back(std::move(input));
      }
      std::string all(1, mode);
      for (size_t i = 0; i < inbox.size() && i < kMaxMessages; ++i) all += ChunkBytes(inbox[i]);
      seeds.push_back(std::move(all));
    }
  }
  return seeds;
}

}  // namespace qnet::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qnet;
  if (size > 262144) return 0;
  fuzz::FuzzReader in(data, size);
  const uint8_t mode = in.Byte();
  const qkd::Role role = mode % 2 == 0 ? qkd::Role::kAlice : qkd::Role::kBob;
  qkd::PostProcessing session = fuzz::Session(role, (mode & 2) != 0);
  std::vector<qkd::QkdMessage> out = session.Start();
  for (int i = 0; i < fuzz::kMaxMessages && !in.empty(); ++i) {
    for (const qkd::QkdMessage& m : out) {
      const std::string bytes = keydist::EncodeQkdMessage(fuzz::kSession, m);
      absl::StatusOr<keydist::QkdWireMessage> back = keydist::DecodeQkdMessage(bytes);
      fuzz::Check(back.ok(), "a message the session sends decodes");
      fuzz::Check(keydist::EncodeQkdMessage(back->session_id, back->message) == bytes,
                  "a sent message survives the round trip");
    }
    absl::StatusOr<keydist::QkdWireMessage> m = keydist::DecodeQkdMessage(in.Chunk());
    if (!m.ok()) {
      fuzz::Check(m.status().code() == absl::StatusCode::kInvalidArgument, "a bad message is InvalidArgument");
      out.clear();
      continue;
    }
    const std::string again = keydist::EncodeQkdMessage(m->session_id, m->message);
    absl::StatusOr<keydist::QkdWireMessage> back = keydist::DecodeQkdMessage(again);
    fuzz::Check(back.ok(), "a decoded message re-encodes to one that decodes");
    fuzz::Check(keydist::EncodeQkdMessage(back->session_id, back->message) == again,
                "re-encoding is stable");
    out = session.Receive(m->message);
  }
  return 0;
}
