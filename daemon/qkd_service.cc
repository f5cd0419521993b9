#include "daemon/qkd_service.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace qnet::daemon {
namespace {

absl::StatusOr<keydist::QkdProtocol> ToProtocol(v1::QkdRequest::Protocol protocol) {
  switch (protocol) {
    case v1::QkdRequest::BBM92:
      return keydist::QkdProtocol::kBbm92;
    case v1::QkdRequest::E91:
      return keydist::QkdProtocol::kE91;
    case v1::QkdRequest::RELAY:
      return keydist::QkdProtocol::kRelay;
    case v1::QkdRequest::BB84:
      return keydist::QkdProtocol::kBb84;
    default:
      return absl::InvalidArgumentError(absl::StrCat("unknown protocol ", static_cast<int>(protocol)));
  }
}

}  // namespace

std::string KeyHex(const qkd::BitString& key) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve((key.size() + 3) / 4);
  for (size_t i = 0; i < key.size(); i += 4) {
    int nibble = 0;
    for (size_t b = 0; b < 4; ++b) nibble = (nibble << 1) | (i + b < key.size() && key.Get(i + b) ? 1 : 0);
    hex.push_back(kDigits[nibble]);
  }
  return hex;
}

QkdService::QkdService(NodeContext& context, keydist::KeyDistribution& keys, const Logger& log)
    : context_(context), keys_(keys), log_(log) {}

QkdService::~QkdService() {
  *alive_ = false;
  keys_.SetResponderHandler(nullptr);
  for (auto& [handle, call] : calls_) {
    if (call.running) (void)keys_.Cancel(call.session);
  }
}

void QkdService::Start() {
  std::weak_ptr<bool> alive = alive_;
  keys_.SetResponderHandler([this, alive](const std::string& initiator, keydist::SessionId,
                                          absl::StatusOr<keydist::QkdResult> result) {
    if (alive.expired()) return;
    if (!result.ok()) {
      QNET_LOG(log_, kInfo, "QKD session from %s failed: %s", initiator, result.status().message());
      return;
    }
    QNET_LOG(log_, kInfo, "QKD key %s with %s: %d bits", result->key_id, initiator, result->key.size());
    Store(*result);
  });
}

void QkdService::Store(const keydist::QkdResult& result) {
  if (result.key_id.empty()) return;
  if (store_.contains(result.key_id)) return;
  store_[result.key_id] = {result.peer, std::string(keydist::QkdProtocolName(result.protocol)), result.key};
  store_order_.push_back(result.key_id);
  while (store_order_.size() > kKeyStoreCapacity) {
    store_.erase(store_order_.front());
    store_order_.pop_front();
  }
}

absl::StatusOr<v1::GetKeyResponse> QkdService::GetKey(const v1::GetKeyRequest& request) const {
  auto it = store_.find(request.key_id());
  if (it == store_.end()) {
    return absl::NotFoundError(absl::StrCat("no key '", request.key_id(), "' here (keys are kept for the last ",
                                            kKeyStoreCapacity, " sessions of this node)"));
  }
  v1::GetKeyResponse out;
  out.set_key_id(request.key_id());
  out.set_peer(it->second.peer);
  out.set_protocol(it->second.protocol);
  out.set_bits(it->second.bits.size());
  out.set_key_hex(KeyHex(it->second.bits));
  return out;
}

absl::StatusOr<QkdService::CallHandle> QkdService::Qkd(const v1::QkdRequest& request, Stream stream) {
  if (request.peer().empty()) return absl::InvalidArgumentError("peer is required");
  if (request.peer() == context_.node_name()) {
    return absl::InvalidArgumentError(absl::StrCat("peer '", request.peer(), "' is this node"));
  }
  absl::StatusOr<keydist::QkdProtocol> protocol = ToProtocol(request.protocol());
  if (!protocol.ok()) return protocol.status();
  if (request.bits() < 1 || request.bits() > kMaxQkdBits) {
    return absl::InvalidArgumentError(absl::StrCat("bits must be in 1..", kMaxQkdBits, ", got ", request.bits()));
  }
  if (request.pairs_per_block() > kMaxPairsPerBlock) {
    return absl::InvalidArgumentError(absl::StrCat("pairs_per_block must be at most ", kMaxPairsPerBlock, ", got ",
                                                   request.pairs_per_block()));
  }
  if (!(request.timeout_s() >= 0) || !std::isfinite(request.timeout_s())) {
    return absl::InvalidArgumentError(absl::StrCat("timeout_s must be >= 0, got ", request.timeout_s()));
  }
  if (!(request.abort_qber() >= 0 && request.abort_qber() < 0.5)) {
    return absl::InvalidArgumentError(
        absl::StrCat("abort_qber must be in (0, 0.5) (0 = the default 0.11), got ", request.abort_qber()));
  }
  if (!(request.min_chsh() >= 0 && request.min_chsh() <= 2 * std::sqrt(2.0))) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_chsh must be in [0, 2.83] (0 = the default 2), got ", request.min_chsh()));
  }
  if (!(request.sample_fraction() >= 0 && request.sample_fraction() < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sample_fraction must be in (0, 1) (0 = the default 0.1), got ", request.sample_fraction()));
  }
  keydist::QkdSessionOptions options;
  options.protocol = *protocol;
  options.pairs = request.pairs_per_block() > 0 ? request.pairs_per_block() : kDefaultPairsPerBlock;
  options.min_fidelity = request.min_fidelity();
  options.timeout = FromSeconds(request.timeout_s() > 0 ? request.timeout_s() : kDefaultQkdBlockTimeoutS);
  if (request.abort_qber() > 0) options.post_processing.estimation.abort_threshold = request.abort_qber();
  if (request.min_chsh() > 0) options.e91_min_chsh = request.min_chsh();
  if (request.sample_fraction() > 0) options.post_processing.estimation.sample_fraction = request.sample_fraction();

  const CallHandle handle = next_call_++;
  Call& call = calls_[handle];
  call.request = request;
  call.options = options;
  call.stream = std::move(stream);
  call.started = context_.Now();
  call.wall_started = absl::Now();
  call.summary.set_protocol(std::string(keydist::QkdProtocolName(*protocol)));
  call.summary.set_peer(request.peer());
  if (absl::Status started = StartBlock(handle); !started.ok()) {
    calls_.erase(handle);  // refused at once (e.g. NO_ROUTE): the call fails before streaming
    return started;
  }
  return handle;
}

absl::Status QkdService::StartBlock(CallHandle handle) {
  auto it = calls_.find(handle);
  if (it == calls_.end()) return absl::OkStatus();
  Call& call = it->second;
  const uint32_t block = static_cast<uint32_t>(call.summary.blocks_size());
  std::weak_ptr<bool> alive = alive_;
  absl::StatusOr<keydist::SessionId> session = keys_.StartSession(
      call.request.peer(), call.options,
      [this, alive, handle, block](keydist::SessionId, const keydist::QkdProgress& p) {
        if (alive.expired()) return;
        auto c = calls_.find(handle);
        if (c == calls_.end()) return;
        v1::QkdEvent event;
        v1::QkdProgress* out = event.mutable_progress();
        out->set_block(block);
        out->set_stage(p.stage);
        out->set_raw_pairs(p.raw_pairs);
        out->set_sifted_bits(p.sifted_bits);
        out->set_qber(p.qber);
        out->set_reconciled_bits(p.reconciled_bits);
        out->set_final_key_bits(p.final_key_bits);
        out->set_total_key_bits(c->second.summary.final_key_bits());
        c->second.stream.event(std::move(event));
      },
      [this, alive, handle](keydist::SessionId, absl::StatusOr<keydist::QkdResult> result) {
        if (!alive.expired()) OnBlockDone(handle, std::move(result));
      });
  if (!session.ok()) return session.status();
  call.session = *session;
  call.running = true;
  return absl::OkStatus();
}

void QkdService::Cancel(CallHandle handle) {
  auto it = calls_.find(handle);
  if (it == calls_.end()) return;
  if (it->second.running) (void)keys_.Cancel(it->second.session);
  EndCall(handle, absl::CancelledError("the client cancelled the call"));
}

void QkdService::OnBlockDone(CallHandle handle, absl::StatusOr<keydist::QkdResult> result) {
  auto it = calls_.find(handle);
  if (it == calls_.end()) return;
  Call& call = it->second;
  call.running = false;
  const int block = call.summary.blocks_size();
  const uint32_t max_blocks = call.request.max_blocks() > 0 ? call.request.max_blocks() : kDefaultMaxBlocks;
  if (!result.ok() && qkd::IsResidualErrorAbort(result.status()) &&
      static_cast<uint32_t>(block) + call.discarded_blocks + 1 < max_blocks) {
    // Cascade left an error that verification caught: this block is
    // discarded at both ends (as QKD systems do); the next one starts.
    ++call.discarded_blocks;
    call.summary.set_discarded_blocks(call.discarded_blocks);
    QNET_LOG(log_, kInfo, "QKD block discarded: %s", result.status().message());
    if (absl::Status s = StartBlock(handle); !s.ok()) EndCall(handle, s);
    return;
  }
  if (!result.ok()) {
    EndCall(handle, absl::Status(result.status().code(),
                                 absl::StrCat("block ", block + 1, " (", call.summary.final_key_bits(),
                                              " key bits shared before it): ", result.status().message())));
    return;
  }
  Store(*result);
  const qkd::PostProcessingReport& r = result->report;
  v1::QkdSummary& sum = call.summary;
  if (sum.path_size() == 0) {
    for (const std::string& n : result->path) sum.add_path(n);
    for (const std::string& n : result->relay_nodes) sum.add_relay_nodes(n);
  }
  v1::QkdBlock* b = sum.add_blocks();
  b->set_key_id(result->key_id);
  b->set_raw_pairs(r.raw_detections);
  b->set_sifted_bits(r.sifted_bits);
  b->set_qber(r.qber.overall.rate());
  b->set_qber_z(r.qber.z.rate());
  b->set_qber_x(r.qber.x.rate());
  b->set_error_correction_efficiency(r.error_correction_efficiency);
  b->set_final_key_bits(result->key.size());
  if (result->chsh_s) {
    b->set_chsh_s(*result->chsh_s);
    b->set_chsh_s_standard_error(result->chsh_s_stderr.value_or(0.0));
    call.chsh_sum += *result->chsh_s;
  }
  b->set_simulated_duration_s(ToSeconds(result->simulated_duration));
  call.z_sampled += r.qber.z.sampled;
  call.z_errors += r.qber.z.errors;
  call.x_sampled += r.qber.x.sampled;
  call.x_errors += r.qber.x.errors;
  if (r.error_correction_efficiency > 0) {
    call.efficiency_sum += r.error_correction_efficiency;
    ++call.efficiency_blocks;
  }
  sum.set_raw_pairs(sum.raw_pairs() + r.raw_detections);
  sum.set_sifted_bits(sum.sifted_bits() + r.sifted_bits);
  sum.set_final_key_bits(sum.final_key_bits() + result->key.size());
  for (size_t i = 0; i < result->key.size(); ++i) call.key.PushBack(result->key.Get(i));

  const uint32_t blocks = static_cast<uint32_t>(sum.blocks_size());
  if (sum.final_key_bits() < call.request.bits()) {
    if (result->key.empty()) {
      EndCall(handle, absl::FailedPreconditionError(absl::StrCat(
                          "block ", blocks, " gave no key bits (QBER ", r.qber.overall.rate(), ", ", r.sifted_bits,
                          " sifted bits): too few pairs per block for the finite-size bounds; ask for more "
                          "pairs per block")));
      return;
    }
    if (blocks + call.discarded_blocks >= max_blocks) {
      EndCall(handle, absl::ResourceExhaustedError(absl::StrCat("only ", sum.final_key_bits(), " of ",
                                                                call.request.bits(), " key bits after ", blocks,
                                                                " blocks (max_blocks)")));
      return;
    }
    if (absl::Status s = StartBlock(handle); !s.ok()) EndCall(handle, s);
    return;
  }
  const double simulated = ToSeconds(context_.Now() - call.started);
  const double wall = absl::ToDoubleSeconds(absl::Now() - call.wall_started);
  sum.set_qber_z(call.z_sampled > 0 ? static_cast<double>(call.z_errors) / call.z_sampled : 0.0);
  sum.set_qber_x(call.x_sampled > 0 ? static_cast<double>(call.x_errors) / call.x_sampled : 0.0);
  if (call.options.protocol == keydist::QkdProtocol::kE91) sum.set_chsh_s(call.chsh_sum / blocks);
  sum.set_error_correction_efficiency(call.efficiency_blocks > 0 ? call.efficiency_sum / call.efficiency_blocks
                                                                 : 0.0);
  sum.set_simulated_duration_s(simulated);
  sum.set_wall_duration_s(wall);
  sum.set_key_rate_per_simulated_s(simulated > 0 ? sum.final_key_bits() / simulated : 0.0);
  sum.set_key_rate_per_wall_s(wall > 0 ? sum.final_key_bits() / wall : 0.0);
  sum.set_key_id(sum.blocks(0).key_id());
  if (call.request.show_key()) sum.set_key_hex(KeyHex(call.key));
  v1::QkdEvent event;
  *event.mutable_summary() = sum;
  call.stream.event(std::move(event));
  EndCall(handle, absl::OkStatus());
}

void QkdService::EndCall(CallHandle handle, absl::Status status) {
  auto it = calls_.find(handle);
  if (it == calls_.end()) return;
  Stream stream = std::move(it->second.stream);
  calls_.erase(it);
  stream.end(std::move(status));
}

}  // namespace qnet::daemon
