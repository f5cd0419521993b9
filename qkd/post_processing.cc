#include "qkd/post_processing.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "qkd/binary_entropy.h"

namespace qnet::qkd {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

std::string_view RoleName(Role role) { return role == Role::kAlice ? "Alice" : "Bob"; }

// Public, identical at both ends, and independent of the key's value.
std::string KeyIdFromSeed(const PrivacyAmplificationSeed& seed) {
  uint64_t h = 0x6a09e667f3bcc908ULL ^ seed.output_bits;
  auto mix = [&h](uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
    h ^= h >> 31;
  };
  mix(seed.input_bits);
  for (uint64_t w : seed.toeplitz_seed.words()) mix(w);
  return absl::StrFormat("qk-%016x", h);
}

uint64_t CountBits(uint64_t max_value) {
  // Bits needed to state a number in [0, max_value].
  uint64_t bits = 0;
  while (bits < 64 && (max_value >> bits) != 0) ++bits;
  return bits;
}

// A sifted key's X-basis bits, in order (decoy mode: the disclosed sample).
BitString XBasisBits(const SiftedKey& key) {
  BitString out;
  for (size_t i = 0; i < key.size(); ++i) {
    if (key.x_basis.Get(i)) out.PushBack(key.bits.Get(i));
  }
  return out;
}

}  // namespace

size_t WireBytes(const QkdMessage& message) {
  return std::visit([](const auto& m) { return m.WireBytes(); }, message);
}

std::string_view MessageName(const QkdMessage& message) {
  return std::visit(Overloaded{
                        [](const BasisAnnouncement&) { return "BasisAnnouncement"; },
                        [](const SampleAnnouncement&) { return "SampleAnnouncement"; },
                        [](const SampleReply&) { return "SampleReply"; },
                        [](const CascadeParityRequest&) { return "CascadeParityRequest"; },
                        [](const CascadeParityReply&) { return "CascadeParityReply"; },
                        [](const ReconciliationDone&) { return "ReconciliationDone"; },
                        [](const VerificationTag&) { return "VerificationTag"; },
                        [](const VerificationResult&) { return "VerificationResult"; },
                        [](const PrivacyAmplificationSeed&) { return "PrivacyAmplificationSeed"; },
                        [](const AbortNotice&) { return "AbortNotice"; },
                        [](const DecoyAnnouncement&) { return "DecoyAnnouncement"; },
                    },
                    message);
}

PostProcessing::PostProcessing(Role role, Sifting sifting, PostProcessingOptions options, uint64_t seed)
    : role_(role), sifting_(std::move(sifting)), options_(options), rng_(Rng(seed).Fork("qkd-post-processing")) {}

absl::StatusOr<PostProcessing> PostProcessing::Create(Role role, std::vector<Detection> detections,
                                                      PostProcessingOptions options, uint64_t seed) {
  if (auto s = ValidateParameterEstimationOptions(options.estimation); !s.ok()) return s;
  if (options.cascade.passes < 1 || options.cascade.passes > kMaxCascadePasses) {
    return absl::InvalidArgumentError(absl::StrFormat("post-processing: cascade passes %d must be in [1, %d]",
                                                      options.cascade.passes, kMaxCascadePasses));
  }
  const double eps_pa = options.privacy_amplification_failure_probability;
  if (!(eps_pa > 0.0 && eps_pa < 1.0)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "post-processing: privacy_amplification_failure_probability %g must be in (0, 1), e.g. 1e-10", eps_pa));
  }
  if (options.decoy.has_value()) {
    if (auto s = ValidateDecoyIntensities(options.decoy->intensities); !s.ok()) return s;
    const FiniteKeyOptions& f = options.decoy->finite_key;
    if (!(f.epsilon_secrecy > 0.0 && f.epsilon_secrecy < 1.0 && f.epsilon_correctness > 0.0 &&
          f.epsilon_correctness < 1.0)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "post-processing: decoy eps_sec %g and eps_cor %g must be in (0, 1), e.g. 1e-9 and 1e-15",
          f.epsilon_secrecy, f.epsilon_correctness));
    }
  }
  for (const Detection& d : detections) {
    if (d.intensity >= 3 || (d.intensity != 0 && !options.decoy.has_value())) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "post-processing: pair %d has intensity index %d; only decoy-state BB84 has intensities (0, 1, 2)",
          d.pair_id, d.intensity));
    }
  }
  const uint64_t raw = detections.size();
  auto sifting = Sifting::Create(std::move(detections));
  if (!sifting.ok()) return sifting.status();
  PostProcessing p(role, *std::move(sifting), options, seed);
  p.report_.raw_detections = raw;
  return p;
}

std::vector<QkdMessage> PostProcessing::Start() {
  std::vector<QkdMessage> out{sifting_.announcement()};
  for (const auto& m : out) {
    ++report_.messages_sent;
    report_.bytes_sent += WireBytes(m);
  }
  return out;
}

std::vector<QkdMessage> PostProcessing::Receive(const QkdMessage& message) {
  ++report_.messages_received;
  report_.bytes_received += WireBytes(message);
  std::vector<QkdMessage> out;
  if (state_ == State::kRunning) {
    out = Handle(message);
  }
  // After an abort or the end, messages still in flight are dropped.
  for (const auto& m : out) {
    ++report_.messages_sent;
    report_.bytes_sent += WireBytes(m);
  }
  return out;
}

std::vector<QkdMessage> PostProcessing::Handle(const QkdMessage& message) {
  if (const auto* notice = std::get_if<AbortNotice>(&message)) {
    absl::string_view reason = notice->reason;
    absl::ConsumePrefix(&reason, "QKD aborted: ");
    return Abort(absl::AbortedError(absl::StrFormat("QKD aborted by the peer: %s", reason)), /*notify_peer=*/false);
  }
  const bool alice = role_ == Role::kAlice;
  switch (step_) {
    case Step::kAwaitBases:
      if (const auto* m = std::get_if<BasisAnnouncement>(&message)) return OnBases(*m);
      break;
    case Step::kAwaitSampleAnnouncement:
      if (options_.decoy.has_value()) {
        if (const auto* m = std::get_if<DecoyAnnouncement>(&message)) return OnDecoyAnnouncement(*m);
      } else if (const auto* m = std::get_if<SampleAnnouncement>(&message)) {
        return OnSampleAnnouncement(*m);
      }
      break;
    case Step::kAwaitSampleReply:
      if (const auto* m = std::get_if<SampleReply>(&message)) return OnSampleReply(*m);
      break;
    case Step::kReconciling:
      if (alice) {
        if (const auto* m = std::get_if<CascadeParityRequest>(&message)) return OnParityRequest(*m);
        if (const auto* m = std::get_if<ReconciliationDone>(&message)) return OnReconciliationDone(*m);
      } else if (const auto* m = std::get_if<CascadeParityReply>(&message)) {
        return OnParityReply(*m);
      }
      break;
    case Step::kAwaitVerificationTag:
      if (const auto* m = std::get_if<VerificationTag>(&message)) return OnVerificationTag(*m);
      break;
    case Step::kAwaitVerificationResult:
      if (const auto* m = std::get_if<VerificationResult>(&message)) return OnVerificationResult(*m);
      break;
    case Step::kAwaitSeed:
      if (const auto* m = std::get_if<PrivacyAmplificationSeed>(&message)) return OnSeed(*m);
      break;
    case Step::kFinished:
      break;
  }
  return Abort(absl::InternalError(absl::StrFormat(
      "QKD protocol error: %s received an unexpected %s; the two ends run incompatible post-processing",
      RoleName(role_), MessageName(message))));
}

std::vector<QkdMessage> PostProcessing::OnBases(const BasisAnnouncement& peer) {
  auto sifted = sifting_.Sift(peer);
  if (!sifted.ok()) return Abort(sifted.status());
  sifted_ = *std::move(sifted);
  report_.sifted_bits = sifted_->size();
  if (role_ == Role::kBob) {
    estimation_bob_.emplace(*sifted_, options_.estimation);
    step_ = Step::kAwaitSampleAnnouncement;
    return {};
  }
  if (options_.decoy.has_value()) {
    // The X basis is the sample: all of it, with every intensity.
    DecoyAnnouncement announcement;
    announcement.intensities = sifted_->intensity;
    announcement.x_bits = XBasisBits(*sifted_);
    report_.sample_bits = announcement.x_bits.size();
    step_ = Step::kAwaitSampleReply;
    return {std::move(announcement)};
  }
  estimation_alice_.emplace(*sifted_, options_.estimation, rng_.NextU64());
  auto announcement = estimation_alice_->Announce();
  if (!announcement.ok()) return Abort(announcement.status());
  report_.sample_bits = announcement->sample_size;
  step_ = Step::kAwaitSampleReply;
  return {*std::move(announcement)};
}

void PostProcessing::RecordEstimate(const ErrorEstimate& estimate, const EstimatedKey& key) {
  report_.qber = estimate;
  report_.reconciled_bits = key.bits.size();
}

std::vector<QkdMessage> PostProcessing::OnSampleAnnouncement(const SampleAnnouncement& announcement) {
  auto reply = estimation_bob_->OnAnnouncement(announcement);
  if (!reply.ok()) return Abort(reply.status());
  report_.sample_bits = announcement.sample_size;
  key_ = estimation_bob_->TakeRemainingKey();
  const ErrorEstimate& estimate = estimation_bob_->estimate();
  RecordEstimate(estimate, key_);
  std::vector<QkdMessage> out{*std::move(reply)};
  if (auto s = CheckAbortThreshold(estimate, options_.estimation.abort_threshold); !s.ok()) {
    auto notice = Abort(s);
    out.insert(out.end(), notice.begin(), notice.end());
    return out;
  }
  // Block sizes from the measured QBER; a sample without errors still allows
  // about one error per sample size.
  const double qber = std::min(0.49, std::max(estimate.overall.rate(), 1.0 / static_cast<double>(
                                                                               std::max<uint64_t>(1, estimate.overall.sampled))));
  return StartCascadeBob(qber, std::move(out));
}

std::vector<QkdMessage> PostProcessing::StartCascadeBob(double qber, std::vector<QkdMessage> out) {
  auto bob = CascadeBob::Create(key_.bits, qber, rng_.NextU64(), options_.cascade);
  if (!bob.ok()) return Abort(bob.status());
  cascade_bob_.emplace(*std::move(bob));
  step_ = Step::kReconciling;
  auto request = cascade_bob_->Start();
  if (!request.ok()) return Abort(request.status());
  if (!request->has_value()) {
    auto finish = FinishReconciliation();
    out.insert(out.end(), finish.begin(), finish.end());
    return out;
  }
  out.push_back(**std::move(request));
  return out;
}

std::vector<QkdMessage> PostProcessing::OnDecoyAnnouncement(const DecoyAnnouncement& announcement) {
  if (announcement.intensities.size() != sifted_->size() || announcement.x_bits.size() != sifted_->x_bits()) {
    return Abort(absl::InvalidArgumentError(absl::StrFormat(
        "QKD protocol error: Alice announces %d intensities and %d X-basis bits; Bob sifted %d bits, %d in X",
        announcement.intensities.size(), announcement.x_bits.size(), sifted_->size(), sifted_->x_bits())));
  }
  SampleReply reply{XBasisBits(*sifted_)};
  report_.sample_bits = reply.sample_bits.size();
  std::vector<QkdMessage> out{reply};
  if (auto s = EstimateDecoy(announcement.intensities, announcement.x_bits, reply.sample_bits); !s.ok()) {
    auto notice = Abort(s);
    out.insert(out.end(), notice.begin(), notice.end());
    return out;
  }
  const ErrorRateBound& x = report_.qber.x;
  const double qber = std::min(0.49, std::max(x.rate(), 1.0 / static_cast<double>(std::max<uint64_t>(1, x.sampled))));
  return StartCascadeBob(qber, std::move(out));
}

absl::Status PostProcessing::EstimateDecoy(const std::vector<uint8_t>& intensities, const BitString& alice_x,
                                           const BitString& bob_x) {
  if (alice_x.size() != bob_x.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "QKD protocol error: %d X-basis bits from Bob, %d from Alice", bob_x.size(), alice_x.size()));
  }
  std::array<IntensityCounts, 3>& counts = report_.intensity_counts;
  counts = {};
  key_ = EstimatedKey();
  size_t xi = 0;
  for (size_t i = 0; i < intensities.size(); ++i) {
    const uint8_t k = intensities[i];
    if (k >= 3) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "QKD protocol error: sifted bit %d has intensity index %d; decoy-state BB84 has 0, 1 and 2", i, k));
    }
    if (sifted_->x_basis.Get(i)) {
      ++counts[k].sifted_x;
      if (alice_x.Get(xi) != bob_x.Get(xi)) ++counts[k].errors_x;
      ++xi;
    } else {
      ++counts[k].sifted_z;
      key_.bits.PushBack(sifted_->bits.Get(i));
      key_.x_basis.PushBack(false);
    }
  }
  // The report's QBER is the X basis's, all disclosed; the phase error bound
  // comes from the decoy estimate below.
  ErrorRateBound x;
  for (const IntensityCounts& c : counts) {
    x.sampled += c.sifted_x;
    x.errors += c.errors_x;
  }
  x.population = key_.bits.size();
  const DecoyIntensities& intensities_used = options_.decoy->intensities;
  FiniteKeyOptions preliminary = options_.decoy->finite_key;
  preliminary.error_correction_bits = 0.0;  // not known yet; the bounds do not depend on it
  absl::StatusOr<FiniteKeyDecoyEstimate> estimate = EstimateFiniteKey(intensities_used, counts, preliminary);
  if (!estimate.ok()) return estimate.status();
  x.upper_bound = estimate->phase_error_upper;
  report_.qber = ErrorEstimate();
  report_.qber.overall = x;
  report_.qber.x = x;
  report_.qber.failure_probability = options_.decoy->finite_key.epsilon_secrecy;
  report_.reconciled_bits = key_.bits.size();
  report_.decoy = *estimate;
  const IntensityCounts& signal = counts[0];
  if (signal.sifted_x > 0) {
    const double signal_qber = static_cast<double>(signal.errors_x) / static_cast<double>(signal.sifted_x);
    if (signal_qber > options_.estimation.abort_threshold) {
      return absl::AbortedError(absl::StrFormat(
          "QKD aborted: the signal pulses' QBER %.2f%% (X basis, %d of %d bits) exceeds the %.2f%% threshold",
          100 * signal_qber, signal.errors_x, signal.sifted_x, 100 * options_.estimation.abort_threshold));
    }
  }
  if (estimate->single_photon_events_z_lower <= 0.0) {
    return absl::AbortedError(absl::StrFormat(
        "QKD aborted: the decoy-state bound leaves no single-photon events in the key (s_Z1 >= 0 of %d Z bits; "
        "sifted per intensity signal/decoy/vacuum: Z %d/%d/%d, X %d/%d/%d): the decoy and vacuum pulses' gains do "
        "not fit a channel that treats every photon number alike, as under a photon-number-splitting attack, or "
        "the session is too short for the statistical margins",
        key_.bits.size(), counts[0].sifted_z, counts[1].sifted_z, counts[2].sifted_z, counts[0].sifted_x,
        counts[1].sifted_x, counts[2].sifted_x));
  }
  return absl::OkStatus();
}

std::vector<QkdMessage> PostProcessing::OnSampleReply(const SampleReply& reply) {
  if (options_.decoy.has_value()) {
    if (auto s = EstimateDecoy(sifted_->intensity, XBasisBits(*sifted_), reply.sample_bits); !s.ok()) {
      return Abort(s);
    }
    cascade_alice_.emplace(key_.bits);
    step_ = Step::kReconciling;
    return {};
  }
  auto estimate = estimation_alice_->OnReply(reply);
  if (!estimate.ok()) return Abort(estimate.status());
  key_ = estimation_alice_->TakeRemainingKey();
  RecordEstimate(*estimate, key_);
  if (auto s = CheckAbortThreshold(*estimate, options_.estimation.abort_threshold); !s.ok()) return Abort(s);
  cascade_alice_.emplace(key_.bits);
  step_ = Step::kReconciling;
  return {};
}

std::vector<QkdMessage> PostProcessing::OnParityRequest(const CascadeParityRequest& request) {
  auto reply = cascade_alice_->Answer(request);
  if (!reply.ok()) return Abort(reply.status());
  report_.leaked_error_correction_bits = cascade_alice_->disclosed_bits();
  report_.cascade_rounds = cascade_alice_->requests();
  return {*std::move(reply)};
}

std::vector<QkdMessage> PostProcessing::OnParityReply(const CascadeParityReply& reply) {
  auto request = cascade_bob_->OnReply(reply);
  if (!request.ok()) return Abort(request.status());
  if (request->has_value()) return {**std::move(request)};
  return FinishReconciliation();
}

void PostProcessing::RecordCorrected(uint64_t corrected_bits) {
  report_.corrected_bits = corrected_bits;
  report_.leaked_error_count_bits = CountBits(key_.bits.size());
  const double n = static_cast<double>(key_.bits.size());
  const double h = n > 0 ? BinaryEntropy(static_cast<double>(corrected_bits) / n) : 0.0;
  report_.error_correction_efficiency =
      h > 0 ? static_cast<double>(report_.leaked_error_correction_bits) / (n * h) : 0.0;
}

std::vector<QkdMessage> PostProcessing::FinishReconciliation() {
  const CascadeStats& stats = cascade_bob_->stats();
  key_.bits = cascade_bob_->key();
  report_.leaked_error_correction_bits = stats.disclosed_bits;
  report_.cascade_rounds = stats.requests;
  RecordCorrected(stats.corrected_bits);
  step_ = Step::kAwaitVerificationResult;
  report_.leaked_verification_bits = kVerificationDisclosedBits;
  report_.verification_failure_probability = VerificationFailureProbability(key_.bits.size());
  return {ReconciliationDone{stats.corrected_bits}, MakeVerificationTag(key_.bits, rng_.NextU64())};
}

std::vector<QkdMessage> PostProcessing::OnReconciliationDone(const ReconciliationDone& done) {
  if (done.corrected_bits > key_.bits.size()) {
    return Abort(absl::InvalidArgumentError(absl::StrFormat(
        "QKD protocol error: Bob reports %d corrected bits in a %d-bit key", done.corrected_bits,
        key_.bits.size())));
  }
  RecordCorrected(done.corrected_bits);
  step_ = Step::kAwaitVerificationTag;
  return {};
}

SecretKeyLength PostProcessing::KeyLength() {
  if (options_.decoy.has_value()) {
    FiniteKeyOptions finite = options_.decoy->finite_key;
    // The verification hash is what makes the keys equal: eps_cor can be no
    // smaller than its failure probability on this key.
    finite.epsilon_correctness =
        std::max(finite.epsilon_correctness, VerificationFailureProbability(key_.bits.size()));
    finite.error_correction_bits = static_cast<double>(report_.leaked_error_correction_bits +
                                                       report_.leaked_error_count_bits +
                                                       report_.leaked_verification_bits);
    // E_Z from what Cascade corrected (for the report; lambda_EC is measured).
    std::array<IntensityCounts, 3> counts = report_.intensity_counts;
    counts[0].errors_z = report_.corrected_bits;
    SecretKeyLength out;
    absl::StatusOr<FiniteKeyDecoyEstimate> e = EstimateFiniteKey(options_.decoy->intensities, counts, finite);
    if (!e.ok()) return out;  // validated at Create: unreachable
    report_.decoy = *e;
    out.security_bits = e->security_bits;
    out.min_entropy_bits = e->min_entropy_bits;
    out.bound = e->key_length_bound;
    out.bits = e->key_bits;
    return out;
  }
  SecretKeyLengthInputs in;
  in.z_key_bits = key_.z_bits();
  in.x_key_bits = key_.x_bits();
  in.z_phase_error_bound = report_.qber.phase_error_bound_of_z_key();
  in.x_phase_error_bound = report_.qber.phase_error_bound_of_x_key();
  in.error_correction_leak = report_.leaked_error_correction_bits + report_.leaked_error_count_bits;
  in.verification_leak = report_.leaked_verification_bits;
  in.failure_probability = options_.privacy_amplification_failure_probability;
  return ComputeSecretKeyLength(in);
}

namespace {

absl::Status NoKeyError(const SecretKeyLength& length, uint64_t key_bits, const PostProcessingReport& report) {
  if (report.decoy.has_value()) {
    const FiniteKeyDecoyEstimate& e = *report.decoy;
    return absl::FailedPreconditionError(absl::StrFormat(
        "QKD aborted: no secret key can be extracted from %d reconciled bits: the decoy-state bound gives %.0f "
        "bits (s_Z0 >= %.0f vacuum and s_Z1 >= %.0f single-photon events, phase error <= %.2f%%, minus %.0f bits "
        "disclosed by error correction and verification and %.0f for eps_sec and eps_cor); use longer sessions "
        "(more pulses shrink the statistical margins) or a less lossy link",
        key_bits, length.bound, e.vacuum_events_z_lower, e.single_photon_events_z_lower,
        100 * e.phase_error_upper, e.error_correction_bits, length.security_bits));
  }
  return absl::FailedPreconditionError(absl::StrFormat(
      "QKD aborted: no secret key can be extracted from %d reconciled bits: the bound gives %.0f bits "
      "(min-entropy %.0f bits with phase error bounds Z %.2f%% and X %.2f%%, minus %d bits disclosed by error "
      "correction, %d by verification and %.0f for the security parameter); use longer sessions (more pairs "
      "shrink the statistical margins) or a less noisy link",
      key_bits, length.bound, length.min_entropy_bits, 100 * report.qber.phase_error_bound_of_z_key(),
      100 * report.qber.phase_error_bound_of_x_key(),
      report.leaked_error_correction_bits + report.leaked_error_count_bits, report.leaked_verification_bits,
      length.security_bits));
}

}  // namespace

std::vector<QkdMessage> PostProcessing::OnVerificationTag(const VerificationTag& tag) {
  auto result = CheckVerificationTag(key_.bits, tag);
  if (!result.ok()) return Abort(result.status());
  report_.leaked_verification_bits = kVerificationDisclosedBits;
  report_.verification_failure_probability = VerificationFailureProbability(key_.bits.size());
  std::vector<QkdMessage> out{*result};
  if (!result->match) {
    // The result tells Bob; no separate notice.
    Abort(absl::AbortedError(absl::StrFormat(
              "QKD aborted: %s (verification hash mismatch on %d bits, %d "
              "corrected); Cascade left residual errors, so the session is discarded",
              kResidualErrorAbortText, key_.bits.size(), report_.corrected_bits)),
          /*notify_peer=*/false);
    return out;
  }
  const SecretKeyLength length = KeyLength();
  report_.key_length = length;
  if (length.bits == 0) {
    // Bob computes the same bound from the same public numbers and aborts too.
    Abort(NoKeyError(length, key_.bits.size(), report_), /*notify_peer=*/false);
    return out;
  }
  PrivacyAmplificationSeed seed = MakePrivacyAmplificationSeed(key_.bits.size(), length.bits, rng_);
  if (auto s = Finish(seed); !s.ok()) return Abort(s);
  out.push_back(std::move(seed));
  return out;
}

bool IsResidualErrorAbort(const absl::Status& status) {
  return status.code() == absl::StatusCode::kAborted &&
         status.message().find(kResidualErrorAbortText) != absl::string_view::npos;
}

std::vector<QkdMessage> PostProcessing::OnVerificationResult(const VerificationResult& result) {
  if (!result.match) {
    return Abort(absl::AbortedError(absl::StrFormat(
                     "QKD aborted: %s (verification hash mismatch on %d "
                     "bits, %d corrected); Cascade left residual errors, so the session is discarded",
                     kResidualErrorAbortText, key_.bits.size(), report_.corrected_bits)),
                 /*notify_peer=*/false);
  }
  const SecretKeyLength length = KeyLength();
  report_.key_length = length;
  if (length.bits == 0) return Abort(NoKeyError(length, key_.bits.size(), report_), /*notify_peer=*/false);
  step_ = Step::kAwaitSeed;
  return {};
}

std::vector<QkdMessage> PostProcessing::OnSeed(const PrivacyAmplificationSeed& seed) {
  if (seed.output_bits > report_.key_length.bits) {
    return Abort(absl::InvalidArgumentError(absl::StrFormat(
        "QKD protocol error: Alice asks for a %d-bit final key but the bound allows %d bits", seed.output_bits,
        report_.key_length.bits)));
  }
  if (auto s = Finish(seed); !s.ok()) return Abort(s);
  return {};
}

absl::Status PostProcessing::Finish(const PrivacyAmplificationSeed& seed) {
  auto key = ApplyPrivacyAmplification(key_.bits, seed);
  if (!key.ok()) return key.status();
  final_key_ = *std::move(key);
  report_.final_key_bits = final_key_.size();
  report_.key_id = KeyIdFromSeed(seed);
  step_ = Step::kFinished;
  state_ = State::kDone;
  return absl::OkStatus();
}

std::vector<QkdMessage> PostProcessing::Abort(absl::Status status, bool notify_peer) {
  state_ = State::kAborted;
  step_ = Step::kFinished;
  status_ = std::move(status);
  report_.abort_reason = std::string(status_.message());
  final_key_ = BitString();
  if (!notify_peer) return {};
  return {AbortNotice{std::string(status_.message())}};
}

}  // namespace qnet::qkd
