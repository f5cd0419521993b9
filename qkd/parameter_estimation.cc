#include "qkd/parameter_estimation.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_format.h"
#include "core/rng.h"
#include "qkd/wire_size.h"

namespace qnet::qkd {
namespace {

size_t SampleSize(const ParameterEstimationOptions& options, size_t sifted) {
  const auto k = static_cast<size_t>(std::llround(options.sample_fraction * static_cast<double>(sifted)));
  return std::clamp<size_t>(k, 1, sifted - 1);
}

BitString Gather(const BitString& bits, const std::vector<uint32_t>& positions) {
  BitString out(positions.size());
  for (size_t i = 0; i < positions.size(); ++i) {
    if (bits.Get(positions[i])) out.Set(i, true);
  }
  return out;
}

EstimatedKey RemoveSample(const SiftedKey& key, const std::vector<uint32_t>& positions) {
  EstimatedKey rest;
  rest.bits = BitString(key.size() - positions.size());
  rest.x_basis = BitString(key.size() - positions.size());
  size_t next = 0, out = 0;
  for (size_t i = 0; i < key.size(); ++i) {
    if (next < positions.size() && positions[next] == i) {
      ++next;
      continue;
    }
    if (key.bits.Get(i)) rest.bits.Set(out, true);
    if (key.x_basis.Get(i)) rest.x_basis.Set(out, true);
    ++out;
  }
  return rest;
}

// Both ends run this on the same public data (positions, bases, both samples).
ErrorEstimate Estimate(const SiftedKey& key, const std::vector<uint32_t>& positions, const BitString& alice,
                       const BitString& bob, const EstimatedKey& rest, double eps) {
  ErrorEstimate e;
  e.failure_probability = eps;
  for (size_t i = 0; i < positions.size(); ++i) {
    const bool error = alice.Get(i) != bob.Get(i);
    ErrorRateBound& basis = key.x_basis.Get(positions[i]) ? e.x : e.z;
    ++basis.sampled;
    ++e.overall.sampled;
    if (error) {
      ++basis.errors;
      ++e.overall.errors;
    }
  }
  e.overall.population = rest.bits.size();
  e.x.population = rest.z_bits();  // the X sample bounds the Z key's phase errors
  e.z.population = rest.x_bits();
  e.overall.upper_bound = SamplingUpperBound(e.overall.errors, e.overall.sampled, e.overall.population, eps);
  e.z.upper_bound = SamplingUpperBound(e.z.errors, e.z.sampled, e.z.population, eps / 2);
  e.x.upper_bound = SamplingUpperBound(e.x.errors, e.x.sampled, e.x.population, eps / 2);
  return e;
}

}  // namespace

absl::Status ValidateParameterEstimationOptions(const ParameterEstimationOptions& options) {
  if (!(options.sample_fraction > 0.0 && options.sample_fraction < 1.0)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "parameter estimation: sample_fraction %g must be in (0, 1), e.g. 0.1", options.sample_fraction));
  }
  if (!(options.failure_probability > 0.0 && options.failure_probability < 1.0)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "parameter estimation: failure_probability %g must be in (0, 1), e.g. 1e-10", options.failure_probability));
  }
  if (!(options.abort_threshold > 0.0 && options.abort_threshold <= 0.5)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "parameter estimation: abort_threshold %g must be in (0, 0.5], e.g. 0.11", options.abort_threshold));
  }
  return absl::OkStatus();
}

double SamplingUpperBound(uint64_t errors, uint64_t sampled, uint64_t population, double failure_probability) {
  if (sampled == 0 || population == 0) return 1.0;
  const double k = static_cast<double>(sampled);
  const double n = static_cast<double>(population);
  const double rate = static_cast<double>(errors) / k;
  const double d = std::sqrt((n + k) * (k + 1) * std::log(1.0 / failure_probability) / (2.0 * n * k * k));
  return std::min(1.0, rate + d);
}

absl::Status CheckAbortThreshold(const ErrorEstimate& estimate, double threshold) {
  const ErrorRateBound* worst = &estimate.overall;
  std::string where = "overall";
  for (const auto& [basis, name] : {std::pair{&estimate.z, "in the Z basis"}, std::pair{&estimate.x, "in the X basis"}}) {
    if (basis->sampled > 0 && basis->rate() > worst->rate()) {
      worst = basis;
      where = name;
    }
  }
  if (worst->rate() <= threshold) return absl::OkStatus();
  return absl::AbortedError(absl::StrFormat(
      "QKD aborted: measured QBER %.2f%% %s (%d of %d sampled bits differ; upper bound %.2f%%, overall QBER "
      "%.2f%%) exceeds the abort threshold %.2f%%: the channel is too noisy or eavesdropped, so no secret key "
      "can be distilled from it",
      100 * worst->rate(), where, worst->errors, worst->sampled, 100 * worst->upper_bound,
      100 * estimate.overall.rate(), 100 * threshold));
}

size_t SampleAnnouncement::WireBytes() const { return 3 * 8 + PackedBitsBytes(sample_bits.size()); }
size_t SampleReply::WireBytes() const { return 8 + PackedBitsBytes(sample_bits.size()); }

std::vector<uint32_t> ChooseSamplePositions(uint64_t seed, size_t population, size_t count) {
  Rng rng(seed);
  std::vector<uint32_t> index(population);
  std::iota(index.begin(), index.end(), 0u);
  count = std::min(count, population);
  for (size_t i = 0; i < count; ++i) {
    const size_t j = i + static_cast<size_t>(rng.UniformInt(population - i));
    std::swap(index[i], index[j]);
  }
  index.resize(count);
  std::sort(index.begin(), index.end());
  return index;
}

ParameterEstimationAlice::ParameterEstimationAlice(SiftedKey key, ParameterEstimationOptions options,
                                                   uint64_t sample_seed)
    : key_(std::move(key)), options_(options), sample_seed_(sample_seed) {}

absl::StatusOr<SampleAnnouncement> ParameterEstimationAlice::Announce() {
  if (auto s = ValidateParameterEstimationOptions(options_); !s.ok()) return s;
  if (key_.size() < 2) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "parameter estimation: the sifted key has %d bits, too few to sample and keep a key; collect more pairs",
        key_.size()));
  }
  if (key_.size() > UINT32_MAX) {
    return absl::InvalidArgumentError("parameter estimation: more than 2^32 sifted bits; split the session");
  }
  positions_ = ChooseSamplePositions(sample_seed_, key_.size(), SampleSize(options_, key_.size()));
  own_sample_ = Gather(key_.bits, positions_);
  announced_ = true;
  SampleAnnouncement a;
  a.sample_seed = sample_seed_;
  a.sifted_bits = key_.size();
  a.sample_size = positions_.size();
  a.sample_bits = own_sample_;
  return a;
}

absl::StatusOr<ErrorEstimate> ParameterEstimationAlice::OnReply(const SampleReply& reply) {
  if (!announced_) return absl::FailedPreconditionError("parameter estimation: reply before the announcement");
  if (reply.sample_bits.size() != positions_.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "parameter estimation: Bob's reply has %d sample bits, %d were asked for", reply.sample_bits.size(),
        positions_.size()));
  }
  remaining_ = RemoveSample(key_, positions_);
  return Estimate(key_, positions_, own_sample_, reply.sample_bits, remaining_, options_.failure_probability);
}

ParameterEstimationBob::ParameterEstimationBob(SiftedKey key, ParameterEstimationOptions options)
    : key_(std::move(key)), options_(options) {}

absl::StatusOr<SampleReply> ParameterEstimationBob::OnAnnouncement(const SampleAnnouncement& announcement) {
  if (auto s = ValidateParameterEstimationOptions(options_); !s.ok()) return s;
  if (announcement.sifted_bits != key_.size()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "parameter estimation: Alice sifted %d bits but Bob %d; the two ends disagree on the detected pairs",
        announcement.sifted_bits, key_.size()));
  }
  if (announcement.sample_size == 0 || announcement.sample_size >= key_.size() ||
      announcement.sample_bits.size() != announcement.sample_size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "parameter estimation: malformed announcement (sample of %d with %d bits from %d sifted bits)",
        announcement.sample_size, announcement.sample_bits.size(), key_.size()));
  }
  const std::vector<uint32_t> positions =
      ChooseSamplePositions(announcement.sample_seed, key_.size(), announcement.sample_size);
  SampleReply reply;
  reply.sample_bits = Gather(key_.bits, positions);
  remaining_ = RemoveSample(key_, positions);
  estimate_ = Estimate(key_, positions, announcement.sample_bits, reply.sample_bits, remaining_,
                       options_.failure_probability);
  return reply;
}

}  // namespace qnet::qkd
