#include "daemon/qkd_service.h"

#include <cmath>
#include <memory>

#include "absl/strings/str_cat.h"

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
    case v1::QkdRequest::DECOY_BB84:
    case v1::QkdRequest::BB84_WCP:
      return keydist::QkdProtocol::kBb84;
    default:
      return absl::InvalidArgumentError(absl::StrCat("unknown protocol ", static_cast<int>(protocol)));
  }
}

v1::QkdSummary ToSummary(const keydist::KeyAgreementResult& r) {
  v1::QkdSummary sum;
  sum.set_protocol(std::string(keydist::QkdProtocolName(r.protocol)));
  sum.set_peer(r.peer);
  for (const std::string& n : r.path) sum.add_path(n);
  for (const std::string& n : r.relay_nodes) sum.add_relay_nodes(n);
  for (const keydist::KeyBlock& block : r.blocks) {
    v1::QkdBlock* b = sum.add_blocks();
    b->set_key_id(block.key_id);
    b->set_raw_pairs(block.raw_pairs);
    b->set_sifted_bits(block.sifted_bits);
    b->set_qber(block.qber);
    b->set_qber_z(block.qber_z);
    b->set_qber_x(block.qber_x);
    b->set_error_correction_efficiency(block.error_correction_efficiency);
    b->set_final_key_bits(block.final_key_bits);
    b->set_auth_bits_consumed(block.auth_bits_consumed);
    if (block.chsh_s) {
      b->set_chsh_s(*block.chsh_s);
      b->set_chsh_s_standard_error(block.chsh_s_stderr.value_or(0.0));
    }
    b->set_simulated_duration_s(ToSeconds(block.simulated_duration));
    if (block.decoy) {
      b->set_decoy_vacuum_events(block.decoy->vacuum_events_z_lower);
      b->set_decoy_single_photon_events(block.decoy->single_photon_events_z_lower);
      b->set_decoy_phase_error_upper(block.decoy->phase_error_upper);
    }
  }
  sum.set_raw_pairs(r.raw_pairs);
  sum.set_sifted_bits(r.sifted_bits);
  sum.set_qber_z(r.qber_z);
  sum.set_qber_x(r.qber_x);
  if (r.chsh_s) sum.set_chsh_s(*r.chsh_s);
  sum.set_error_correction_efficiency(r.error_correction_efficiency);
  sum.set_final_key_bits(r.key.size());
  sum.set_auth_bits_consumed(r.auth_bits_consumed);
  sum.set_discarded_blocks(r.discarded_blocks);
  const double simulated = ToSeconds(r.simulated_duration);
  sum.set_simulated_duration_s(simulated);
  sum.set_key_rate_per_simulated_s(simulated > 0 ? r.key.size() / simulated : 0.0);
  if (!r.blocks.empty()) sum.set_key_id(r.blocks.front().key_id);
  return sum;
}

}  // namespace

absl::StatusOr<keydist::KeyRequest> ToKeyRequest(const v1::QkdRequest& request) {
  if (request.peer().empty()) return absl::InvalidArgumentError("peer is required");
  absl::StatusOr<keydist::QkdProtocol> protocol = ToProtocol(request.protocol());
  if (!protocol.ok()) return protocol.status();
  if (request.bits() < 1 || request.bits() > keydist::kMaxKeyRequestBits) {
    return absl::InvalidArgumentError(
        absl::StrCat("bits must be in 1..", keydist::kMaxKeyRequestBits, ", got ", request.bits()));
  }
  const bool laser = request.protocol() == v1::QkdRequest::DECOY_BB84 || request.protocol() == v1::QkdRequest::BB84_WCP;
  const bool prepare_measure = laser || request.protocol() == v1::QkdRequest::BB84;
  // A pulse costs Alice a 24-byte record, a pair a memory qubit's round.
  const uint32_t max_block = prepare_measure ? kMaxPulsesPerBlock : kMaxPairsPerBlock;
  if (request.pairs_per_block() > max_block) {
    return absl::InvalidArgumentError(absl::StrCat("pairs_per_block must be at most ", max_block,
                                                   prepare_measure ? " (pulses)" : "", ", got ",
                                                   request.pairs_per_block()));
  }
  if (!laser && (request.mu() != 0 || request.nu() != 0 || request.intensity_probabilities_size() > 0)) {
    return absl::InvalidArgumentError("mu, nu and intensity_probabilities are for DECOY_BB84 and BB84_WCP (laser pulses)");
  }
  if (request.protocol() == v1::QkdRequest::BB84_WCP && (request.nu() != 0 || request.intensity_probabilities_size() > 0)) {
    return absl::InvalidArgumentError("BB84_WCP sends one intensity (mu); nu and intensity_probabilities are for DECOY_BB84");
  }
  // 0 means the default; anything else must be a mean photon number.
  for (const auto& [name, value] : {std::pair{"mu", request.mu()}, std::pair{"nu", request.nu()}}) {
    if (value != 0 && !(value > 0 && value <= 100)) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " must be a mean photon number in (0, 100] (0 = the default), got ", value));
    }
  }
  if (request.intensity_probabilities_size() != 0 && request.intensity_probabilities_size() != 3) {
    return absl::InvalidArgumentError(absl::StrCat("intensity_probabilities takes three numbers (signal, decoy, vacuum), got ",
                                                   request.intensity_probabilities_size()));
  }
  if (!(request.timeout_s() >= 0 && request.timeout_s() <= kMaxRequestTimeoutS)) {
    return absl::InvalidArgumentError(
        absl::StrCat("timeout_s must be in [0, ", kMaxRequestTimeoutS, "], got ", request.timeout_s()));
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
  keydist::KeyRequest out;
  out.peer = request.peer();
  out.bits = request.bits();
  out.max_blocks = request.max_blocks() > 0 ? request.max_blocks() : keydist::kDefaultMaxBlocks;
  keydist::QkdSessionOptions& block = out.block;
  block.protocol = *protocol;
  block.pairs = request.pairs_per_block() > 0                      ? request.pairs_per_block()
                : request.protocol() == v1::QkdRequest::DECOY_BB84 ? kDefaultDecoyPulsesPerBlock
                                                                    : kDefaultPairsPerBlock;
  const double mu = request.mu() > 0 ? request.mu() : 0.5;
  if (request.protocol() == v1::QkdRequest::BB84_WCP) block.laser_mean_photon_number = mu;
  if (request.protocol() == v1::QkdRequest::DECOY_BB84) {
    qkd::PostProcessingOptions::Decoy decoy;
    decoy.intensities.mean_photon_number = {mu, request.nu() > 0 ? request.nu() : 0.1, 0.0};
    if (request.intensity_probabilities_size() == 3) {
      for (int k = 0; k < 3; ++k) decoy.intensities.probability[k] = request.intensity_probabilities(k);
    }
    // The pipeline checks them when the block starts; say so now.
    if (absl::Status s = qkd::ValidateDecoyIntensities(decoy.intensities); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("mu, nu, intensity_probabilities: ", s.message()));
    }
    block.post_processing.decoy = decoy;
  }
  block.min_fidelity = request.min_fidelity();
  block.timeout = FromSeconds(request.timeout_s() > 0 ? request.timeout_s() : kDefaultQkdBlockTimeoutS);
  if (request.abort_qber() > 0) block.post_processing.estimation.abort_threshold = request.abort_qber();
  if (request.min_chsh() > 0) block.e91_min_chsh = request.min_chsh();
  if (request.sample_fraction() > 0) block.post_processing.estimation.sample_fraction = request.sample_fraction();
  return out;
}

QkdService::QkdService(stack::NodeStack& node, const LagMonitor& lag, const Logger& log)
    : node_(node), lag_(lag), log_(log) {
  (void)Agreement();
}

QkdService::~QkdService() {
  if (observed_ != nullptr && observed_ == node_.key_agreement()) observed_->SetResponderObserver(nullptr);
}

absl::StatusOr<keydist::KeyAgreement*> QkdService::Agreement() {
  keydist::KeyAgreement* agreement = node_.key_agreement();
  if (agreement == nullptr) {
    return absl::UnavailableError(absl::StrCat("key distribution is stopped at ", node_.node_name()));
  }
  if (agreement != observed_) {
    observed_ = agreement;
    agreement->SetResponderObserver(
        [log = &log_](const std::string& initiator, keydist::SessionId, absl::StatusOr<keydist::QkdResult> result) {
          if (!result.ok()) {
            QNET_LOG(*log, kInfo, "QKD session from %s failed: %s", initiator, result.status().message());
            return;
          }
          QNET_LOG(*log, kInfo, "QKD key %s with %s: %d bits", result->key_id, initiator, result->key.size());
        });
  }
  return agreement;
}

absl::StatusOr<QkdService::CallHandle> QkdService::Qkd(const v1::QkdRequest& request, Stream stream) {
  absl::StatusOr<keydist::KeyRequest> key_request = ToKeyRequest(request);
  if (!key_request.ok()) return key_request.status();
  absl::StatusOr<keydist::KeyAgreement*> agreement = Agreement();
  if (!agreement.ok()) return agreement.status();
  auto shared = std::make_shared<Stream>(std::move(stream));
  const absl::Time wall_started = absl::Now();
  const LagMonitor::Mark lag_mark = lag_.Begin(LagMonitor::Clock::now());
  const bool show_key = request.show_key();
  // The summary names the variant: the stack's protocol is BB84 for all three.
  const std::string protocol_name = request.protocol() == v1::QkdRequest::DECOY_BB84 ? "decoy-BB84"
                                    : request.protocol() == v1::QkdRequest::BB84_WCP ? "BB84-WCP"
                                                                                     : "";
  return (*agreement)->Start(
      *std::move(key_request),
      [shared](const keydist::KeyAgreementProgress& p) {
        v1::QkdEvent event;
        v1::QkdProgress* out = event.mutable_progress();
        out->set_block(p.block);
        out->set_stage(p.session.stage);
        out->set_raw_pairs(p.session.raw_pairs);
        out->set_sifted_bits(p.session.sifted_bits);
        out->set_qber(p.session.qber);
        out->set_reconciled_bits(p.session.reconciled_bits);
        out->set_final_key_bits(p.session.final_key_bits);
        out->set_total_key_bits(p.total_key_bits);
        shared->event(std::move(event));
      },
      [log = &log_, lag = &lag_, lag_mark, shared, wall_started,
       show_key, protocol_name](absl::StatusOr<keydist::KeyAgreementResult> result) {
        const v1::SoftwareLag lag_report = lag->Since(lag_mark, LagMonitor::Clock::now());
        if (!result.ok()) {
          QNET_LOG(*log, kInfo, "QKD request failed: %s", result.status().message());
          return shared->end(WithLagNote(result.status(), lag_report));
        }
        v1::QkdEvent event;
        v1::QkdSummary& sum = *event.mutable_summary();
        sum = ToSummary(*result);
        if (!protocol_name.empty()) sum.set_protocol(protocol_name);
        const double wall = absl::ToDoubleSeconds(absl::Now() - wall_started);
        sum.set_wall_duration_s(wall);
        sum.set_key_rate_per_wall_s(wall > 0 ? sum.final_key_bits() / wall : 0.0);
        if (show_key) sum.set_key_hex(keydist::KeyHex(result->key));
        *sum.mutable_lag() = lag_report;
        shared->event(std::move(event));
        shared->end(absl::OkStatus());
      });
}

void QkdService::Cancel(CallHandle call) {
  if (keydist::KeyAgreement* agreement = node_.key_agreement()) agreement->Cancel(call);
}

absl::StatusOr<v1::GetKeyResponse> QkdService::GetKey(const v1::GetKeyRequest& request) const {
  absl::StatusOr<keydist::StoredKey> key = node_.key_store().Find(request.key_id());
  if (!key.ok()) return key.status();
  v1::GetKeyResponse out;
  out.set_key_id(key->key_id);
  out.set_peer(key->peer);
  out.set_protocol(key->protocol);
  out.set_bits(key->bits.size());
  out.set_key_hex(keydist::KeyHex(key->bits));
  return out;
}

}  // namespace qnet::daemon
