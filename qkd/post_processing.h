// The QKD post-processing pipeline of one end: from this end's raw
// detections (pair id, basis, outcome) to a final secret key identical to the
// other end's, by sifting, parameter estimation (abort above the QBER
// threshold), Cascade error correction, verification and privacy
// amplification, in that order (see each step's header). The two ends are
// symmetric objects with roles: Alice chooses the sample and the privacy
// amplification seed and answers Cascade's parity questions; Bob corrects his
// key and chooses the verification hash.
//
// Decoy-state BB84 (options.decoy set; the sender's detections carry the
// intensity index of each pulse) replaces the random sample: after sifting,
// Alice announces the intensity of every sifted pulse and her bits of every
// X-basis one (DecoyAnnouncement), Bob answers with his X bits
// (SampleReply); the X basis is all disclosed and estimates the phase error,
// the key is every Z-basis bit (all intensities), and its length is Lim et
// al. 2014's finite-key bound (qkd/decoy_state.h) with the bits Cascade and
// verification actually disclosed as lambda_EC.
//
// Sans-I/O: the object only consumes and produces QkdMessage values; the
// runtime carries them to the other end in order (in tests, a loop; in the
// daemon, the peer channel). Nothing but these messages crosses between the
// ends. Usage:
//   auto alice = PostProcessing::Create(Role::kAlice, detections_a, options, seed_a);
//   outbox = alice->Start();  ... deliver each message to the other end's
//   Receive(), which returns the messages to send back, until finished().
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/rng.h"
#include "qkd/bit_string.h"
#include "qkd/cascade.h"
#include "qkd/decoy_state.h"
#include "qkd/parameter_estimation.h"
#include "qkd/privacy_amplification.h"
#include "qkd/sifting.h"
#include "qkd/verification.h"

namespace qnet::qkd {

enum class Role { kAlice, kBob };

// Part of the Aborted message when verification finds the keys differ after
// error correction: a discarded block, not a sign of an eavesdropper, so a
// runtime may simply run another block (IsResidualErrorAbort).
inline constexpr char kResidualErrorAbortText[] = "the keys differ after error correction";
bool IsResidualErrorAbort(const absl::Status& status);

// Message, Bob -> Alice, ending Cascade: how many bits Bob corrected (for the
// efficiency report; counted as disclosed, ceil(log2(n + 1)) bits).
struct ReconciliationDone {
  uint64_t corrected_bits = 0;
  size_t WireBytes() const { return 8; }
};

// Message, Alice -> Bob (decoy-state BB84): the intensity index of every
// sifted pulse, and Alice's bits of the X-basis ones, in sifted order.
struct DecoyAnnouncement {
  std::vector<uint8_t> intensities;  // one per sifted bit, each < 3
  BitString x_bits;                  // one per X-basis sifted bit
  // 2 bits an intensity, 1 a bit, and the two counts.
  size_t WireBytes() const { return 16 + (intensities.size() + 3) / 4 + (x_bits.size() + 7) / 8; }
};

// Message, either way: this end aborted the session, and why.
struct AbortNotice {
  std::string reason;
  size_t WireBytes() const { return 4 + reason.size(); }
};

using QkdMessage = std::variant<BasisAnnouncement, SampleAnnouncement, SampleReply, CascadeParityRequest,
                                CascadeParityReply, ReconciliationDone, VerificationTag, VerificationResult,
                                PrivacyAmplificationSeed, AbortNotice, DecoyAnnouncement>;
size_t WireBytes(const QkdMessage& message);
std::string_view MessageName(const QkdMessage& message);

struct PostProcessingOptions {
  ParameterEstimationOptions estimation;  // sample fraction, eps_PE, abort threshold (0.11)
  CascadeOptions cascade;
  double privacy_amplification_failure_probability = 1e-10;  // eps_PA
  // Set: decoy-state BB84 (above). Its eps_sec and eps_cor replace eps_PA;
  // the sample fraction is unused (the X basis is the sample).
  struct Decoy {
    DecoyIntensities intensities;
    FiniteKeyOptions finite_key;  // error_correction_efficiency unused: lambda_EC is measured
  };
  std::optional<Decoy> decoy;
};

struct PostProcessingReport {
  uint64_t raw_detections = 0;  // this end's
  uint64_t sifted_bits = 0;
  uint64_t sample_bits = 0;
  ErrorEstimate qber;            // measured QBER and upper bounds (overall, Z, X)
  uint64_t reconciled_bits = 0;  // key bits through error correction
  uint64_t corrected_bits = 0;   // errors Cascade corrected
  uint64_t cascade_rounds = 0;
  uint64_t leaked_error_correction_bits = 0;  // Cascade parities
  uint64_t leaked_error_count_bits = 0;       // ReconciliationDone's count
  uint64_t leaked_verification_bits = 0;      // the hash tag
  // f = leaked_error_correction_bits / (n h(corrected_bits / n)); 0 when no
  // bit was corrected (h = 0).
  double error_correction_efficiency = 0.0;
  double verification_failure_probability = 0.0;
  SecretKeyLength key_length;  // the privacy amplification bound
  uint64_t final_key_bits = 0;
  std::string key_id;  // the same at both ends; derived from public data only
  uint64_t messages_sent = 0;
  uint64_t messages_received = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  std::string abort_reason;  // empty unless aborted
  // Decoy-state BB84: sifted bits and X errors per intensity (pulses and
  // detections stay 0: Bob does not know the intensities of his clicks), and
  // Lim et al.'s bounds once the key length is known (the single-photon
  // bounds already at the announcement).
  std::array<IntensityCounts, 3> intensity_counts{};
  std::optional<FiniteKeyDecoyEstimate> decoy;
};

class PostProcessing {
 public:
  enum class State { kRunning, kDone, kAborted };

  // `seed` drives this end's random choices (sample, shuffles, hash point,
  // Toeplitz seed). Fails on invalid options or duplicate pair ids.
  static absl::StatusOr<PostProcessing> Create(Role role, std::vector<Detection> detections,
                                               PostProcessingOptions options, uint64_t seed);

  // The first messages (this end's basis announcement).
  std::vector<QkdMessage> Start();
  // Handles one message from the other end; returns the messages to send.
  // An abort (QBER above threshold, failed verification, no extractable key,
  // a malformed or unexpected message, the peer's AbortNotice) moves to
  // kAborted, with status() saying why.
  std::vector<QkdMessage> Receive(const QkdMessage& message);

  State state() const { return state_; }
  bool finished() const { return state_ != State::kRunning; }
  // OK while running or done; the abort error otherwise.
  const absl::Status& status() const { return status_; }
  Role role() const { return role_; }
  // The final key (empty until done).
  const BitString& key() const { return final_key_; }
  const PostProcessingReport& report() const { return report_; }

 private:
  enum class Step {
    kAwaitBases,
    kAwaitSampleAnnouncement,  // Bob
    kAwaitSampleReply,         // Alice
    kReconciling,
    kAwaitVerificationTag,     // Alice
    kAwaitVerificationResult,  // Bob
    kAwaitSeed,                // Bob
    kFinished,
  };

  PostProcessing(Role role, Sifting sifting, PostProcessingOptions options, uint64_t seed);

  std::vector<QkdMessage> Handle(const QkdMessage& message);
  std::vector<QkdMessage> OnBases(const BasisAnnouncement& peer);
  std::vector<QkdMessage> OnSampleAnnouncement(const SampleAnnouncement& announcement);
  std::vector<QkdMessage> OnDecoyAnnouncement(const DecoyAnnouncement& announcement);
  // Both ends, decoy mode, once both X-bit strings are known: the counts,
  // the key (the Z bits), the estimate and the abort checks.
  absl::Status EstimateDecoy(const std::vector<uint8_t>& intensities, const BitString& alice_x,
                             const BitString& bob_x);
  std::vector<QkdMessage> OnSampleReply(const SampleReply& reply);
  std::vector<QkdMessage> OnParityRequest(const CascadeParityRequest& request);
  std::vector<QkdMessage> OnParityReply(const CascadeParityReply& reply);
  std::vector<QkdMessage> OnReconciliationDone(const ReconciliationDone& done);
  std::vector<QkdMessage> OnVerificationTag(const VerificationTag& tag);
  std::vector<QkdMessage> OnVerificationResult(const VerificationResult& result);
  std::vector<QkdMessage> OnSeed(const PrivacyAmplificationSeed& seed);

  // Bob, once Cascade finishes: the count and the verification tag.
  std::vector<QkdMessage> FinishReconciliation();
  void RecordEstimate(const ErrorEstimate& estimate, const EstimatedKey& key);
  void RecordCorrected(uint64_t corrected_bits);
  // Also records the decoy estimate (decoy mode).
  SecretKeyLength KeyLength();
  absl::Status Finish(const PrivacyAmplificationSeed& seed);
  // Moves to kAborted; the AbortNotice to send (none when the peer aborted).
  std::vector<QkdMessage> Abort(absl::Status status, bool notify_peer = true);
  // Starts Bob's Cascade on key_ (block sizes from `qber`).
  std::vector<QkdMessage> StartCascadeBob(double qber, std::vector<QkdMessage> out);

  Role role_;
  Sifting sifting_;
  PostProcessingOptions options_;
  Rng rng_;
  State state_ = State::kRunning;
  Step step_ = Step::kAwaitBases;
  absl::Status status_;
  PostProcessingReport report_;

  std::optional<SiftedKey> sifted_;
  std::optional<ParameterEstimationAlice> estimation_alice_;
  std::optional<ParameterEstimationBob> estimation_bob_;
  EstimatedKey key_;  // after parameter estimation; Bob's is corrected by Cascade
  std::optional<CascadeAlice> cascade_alice_;
  std::optional<CascadeBob> cascade_bob_;
  BitString final_key_;
};

}  // namespace qnet::qkd
