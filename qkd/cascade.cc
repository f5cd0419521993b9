#include "qkd/cascade.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_format.h"
#include "core/rng.h"
#include "qkd/wire_size.h"

namespace qnet::qkd {
namespace {

// Keys are indexed by 30-bit positions in the parity cache.
constexpr size_t kMaxKeyBits = (size_t{1} << 30) - 1;

BitString Shuffled(const BitString& key, const std::vector<uint32_t>& order) {
  BitString out(key.size());
  for (size_t j = 0; j < order.size(); ++j) {
    if (key.Get(order[j])) out.Set(j, true);
  }
  return out;
}

}  // namespace

std::vector<uint32_t> CascadeShuffle(uint64_t shuffle_seed, int pass, size_t key_bits) {
  Rng rng = Rng(shuffle_seed).Fork(static_cast<uint64_t>(pass));
  std::vector<uint32_t> order(key_bits);
  std::iota(order.begin(), order.end(), 0u);
  for (size_t i = key_bits; i > 1; --i) {
    const size_t j = static_cast<size_t>(rng.UniformInt(i));
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

size_t CascadeParityRequest::WireBytes() const { return 8 + 8 + 4 + 9 * ranges.size(); }
size_t CascadeParityReply::WireBytes() const { return 4 + PackedBitsBytes(parities.size()); }

// ---- Alice ----

CascadeAlice::CascadeAlice(BitString key) : key_(std::move(key)) {}

absl::StatusOr<CascadeParityReply> CascadeAlice::Answer(const CascadeParityRequest& request) {
  if (request.key_bits != key_.size()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "cascade: Bob reconciles a %d-bit key but Alice holds %d bits; the ends disagree on the sifted key",
        request.key_bits, key_.size()));
  }
  if (shuffle_seed_.has_value() && *shuffle_seed_ != request.shuffle_seed) {
    return absl::InvalidArgumentError("cascade: the shuffle seed changed in the middle of a reconciliation");
  }
  shuffle_seed_ = request.shuffle_seed;
  CascadeParityReply reply;
  reply.parities = BitString(request.ranges.size());
  for (size_t i = 0; i < request.ranges.size(); ++i) {
    const CascadeRange& r = request.ranges[i];
    if (r.pass >= kMaxCascadePasses || r.begin >= r.end || r.end > key_.size()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "cascade: malformed parity request for pass %d range [%d, %d) of a %d-bit key", r.pass, r.begin, r.end,
          key_.size()));
    }
    if (shuffled_.size() <= r.pass) shuffled_.resize(r.pass + 1);
    if (shuffled_[r.pass].size() != key_.size()) {
      shuffled_[r.pass] = Shuffled(key_, CascadeShuffle(request.shuffle_seed, r.pass, key_.size()));
    }
    if (shuffled_[r.pass].RangeParity(r.begin, r.end)) reply.parities.Set(i, true);
  }
  disclosed_bits_ += request.ranges.size();
  ++requests_;
  return reply;
}

// ---- Bob ----

CascadeBob::CascadeBob(BitString key, std::vector<uint32_t> block_sizes, uint64_t shuffle_seed)
    : key_(std::move(key)), block_sizes_(std::move(block_sizes)), shuffle_seed_(shuffle_seed) {
  stats_.key_bits = key_.size();
  stats_.block_sizes = block_sizes_;
}

absl::StatusOr<CascadeBob> CascadeBob::Create(BitString key, double qber_estimate, uint64_t shuffle_seed,
                                              CascadeOptions options) {
  if (options.passes < 1 || options.passes > kMaxCascadePasses) {
    return absl::InvalidArgumentError(
        absl::StrFormat("cascade: %d passes requested; use 1 to %d (4 is the usual)", options.passes,
                        kMaxCascadePasses));
  }
  if (!(qber_estimate >= 0.0 && qber_estimate < 0.5)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "cascade: QBER estimate %g must be in [0, 0.5); above 0.5 the keys are anti-correlated", qber_estimate));
  }
  if (options.extra_passes_at_cap < 0) {
    return absl::InvalidArgumentError("cascade: extra_passes_at_cap must not be negative");
  }
  if (!(options.first_block_factor > 0.0)) {
    return absl::InvalidArgumentError("cascade: first_block_factor must be positive (0.73 is the usual)");
  }
  if (key.size() > kMaxKeyBits) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "cascade: a %d-bit key exceeds the %d-bit frame limit; reconcile it in frames", key.size(), kMaxKeyBits));
  }
  const size_t n = key.size();
  const double cap = std::max<double>(1.0, std::ceil(static_cast<double>(n) / 2.0));
  double k = qber_estimate > 0.0 ? std::ceil(options.first_block_factor / qber_estimate) : cap;
  std::vector<uint32_t> sizes;
  for (int p = 0; p < options.passes; ++p) {
    sizes.push_back(static_cast<uint32_t>(std::clamp(k, 1.0, cap)));
    k *= 2;
  }
  if (n > 2 && sizes.back() >= static_cast<uint32_t>(cap)) {
    const int extra = std::min(options.extra_passes_at_cap, kMaxCascadePasses - options.passes);
    sizes.insert(sizes.end(), static_cast<size_t>(extra), static_cast<uint32_t>(cap));
  }
  return CascadeBob(std::move(key), std::move(sizes), shuffle_seed);
}

CascadeParityRequest CascadeBob::MakeRequest(std::vector<CascadeRange> ranges) {
  CascadeParityRequest request;
  request.shuffle_seed = shuffle_seed_;
  request.key_bits = key_.size();
  request.ranges = std::move(ranges);
  ++stats_.requests;
  stats_.bytes_sent += request.WireBytes();
  return request;
}

absl::StatusOr<std::optional<CascadeParityRequest>> CascadeBob::Start() {
  if (started_) return absl::FailedPreconditionError("cascade: Start called twice");
  started_ = true;
  if (key_.empty()) {
    done_ = true;
    return std::nullopt;
  }
  auto next = Advance();
  if (!next.has_value()) done_ = true;
  return next;
}

absl::StatusOr<std::optional<CascadeParityRequest>> CascadeBob::OnReply(const CascadeParityReply& reply) {
  if (!started_ || done_) return absl::FailedPreconditionError("cascade: reply when no request is outstanding");
  stats_.bytes_received += reply.WireBytes();
  stats_.disclosed_bits += reply.parities.size();
  if (pending_pass_.has_value()) {
    Pass& pass = *pending_pass_;
    if (reply.parities.size() != pass.blocks) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "cascade: Alice sent %d block parities for %d blocks", reply.parities.size(), pass.blocks));
    }
    pass.alice_parity = reply.parities;
    pass.mismatched = BitString(pass.blocks);
    for (uint32_t b = 0; b < pass.blocks; ++b) {
      const uint32_t begin = b * pass.block_size;
      const uint32_t end = std::min<uint32_t>(begin + pass.block_size, static_cast<uint32_t>(key_.size()));
      if (pass.shuffled.RangeParity(begin, end) != pass.alice_parity.Get(b)) {
        pass.mismatched.Set(b, true);
        pass.odd.insert(b);
      }
    }
    passes_.push_back(std::move(pass));
    pending_pass_.reset();
  } else {
    if (reply.parities.size() != waiting_.size()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "cascade: Alice sent %d parities for %d requested ranges", reply.parities.size(), waiting_.size()));
    }
    for (size_t i = 0; i < waiting_.size(); ++i) {
      const Search& s = searches_[waiting_[i]];
      const uint32_t mid = s.begin + (s.end - s.begin) / 2;
      known_parity_[CacheKey(search_pass_, s.begin, mid)] = reply.parities.Get(i);
    }
    waiting_.clear();
  }
  auto next = Advance();
  if (inconsistent_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "cascade: Alice's parities are inconsistent (more corrections than the %d key bits): a reply was altered",
        key_.size()));
  }
  if (!next.has_value()) done_ = true;
  return next;
}

void CascadeBob::FlipKeyBit(uint32_t position) {
  key_.Flip(position);
  ++stats_.corrected_bits;
  for (Pass& pass : passes_) {
    const uint32_t index = pass.where[position];
    pass.shuffled.Flip(index);
    const uint32_t block = index / pass.block_size;
    pass.mismatched.Flip(block);
    if (pass.mismatched.Get(block)) {
      pass.odd.insert(block);
    } else {
      pass.odd.erase(block);
    }
  }
}

std::optional<CascadeParityRequest> CascadeBob::Advance() {
  while (true) {
    // Each true correction fixes one error, so more corrections than key
    // bits means contradictory parities (a tampered reply): without this
    // bound the cascade effect would flip bits back and forth forever.
    if (stats_.corrected_bits > key_.size()) {
      inconsistent_ = true;
      return std::nullopt;
    }
    // Bisect every running search as far as known parities allow.
    if (!searches_.empty()) {
      const Pass& pass = passes_[search_pass_];
      std::vector<CascadeRange> ranges;
      size_t kept = 0;
      for (size_t i = 0; i < searches_.size(); ++i) {
        Search s = searches_[i];
        bool finished = false;
        while (true) {
          if (s.end - s.begin == 1) {
            FlipKeyBit(pass.order[s.begin]);
            finished = true;
            break;
          }
          const uint32_t mid = s.begin + (s.end - s.begin) / 2;
          const auto known = known_parity_.find(CacheKey(search_pass_, s.begin, mid));
          if (known == known_parity_.end()) break;
          const bool alice_left = known->second;
          if (alice_left != pass.shuffled.RangeParity(s.begin, mid)) {
            s.end = mid;
            s.alice_parity = alice_left;
          } else {
            // The error is in the right half, whose parity follows from the
            // block's and the left half's: remember it, it costs nothing.
            s.alice_parity ^= alice_left;
            known_parity_[CacheKey(search_pass_, mid, s.end)] = s.alice_parity;
            s.begin = mid;
          }
        }
        if (finished) continue;
        searches_[kept] = s;
        waiting_.push_back(kept);
        ranges.push_back(
            CascadeRange{static_cast<uint8_t>(search_pass_), s.begin, s.begin + (s.end - s.begin) / 2});
        ++kept;
      }
      searches_.resize(kept);
      if (!ranges.empty()) return MakeRequest(std::move(ranges));
    }
    // Cascade effect: search the odd blocks of the earliest (smallest-block)
    // pass that has any.
    bool cascaded = false;
    for (size_t p = 0; p < passes_.size() && !cascaded; ++p) {
      Pass& pass = passes_[p];
      if (pass.odd.empty()) continue;
      search_pass_ = p;
      for (uint32_t b : pass.odd) {
        const uint32_t begin = b * pass.block_size;
        const uint32_t end = std::min<uint32_t>(begin + pass.block_size, static_cast<uint32_t>(key_.size()));
        searches_.push_back(Search{begin, end, pass.alice_parity.Get(b)});
      }
      cascaded = true;
    }
    if (cascaded) continue;
    // Next pass: ask Alice for all its block parities.
    if (passes_.size() < block_sizes_.size()) {
      Pass pass;
      const int index = static_cast<int>(passes_.size());
      pass.block_size = block_sizes_[passes_.size()];
      pass.blocks = static_cast<uint32_t>((key_.size() + pass.block_size - 1) / pass.block_size);
      pass.order = CascadeShuffle(shuffle_seed_, index, key_.size());
      pass.where.resize(key_.size());
      for (uint32_t j = 0; j < pass.order.size(); ++j) pass.where[pass.order[j]] = j;
      pass.shuffled = Shuffled(key_, pass.order);
      std::vector<CascadeRange> ranges;
      ranges.reserve(pass.blocks);
      for (uint32_t b = 0; b < pass.blocks; ++b) {
        const uint32_t begin = b * pass.block_size;
        const uint32_t end = std::min<uint32_t>(begin + pass.block_size, static_cast<uint32_t>(key_.size()));
        ranges.push_back(CascadeRange{static_cast<uint8_t>(index), begin, end});
      }
      pending_pass_ = std::move(pass);
      return MakeRequest(std::move(ranges));
    }
    return std::nullopt;
  }
}

}  // namespace qnet::qkd
