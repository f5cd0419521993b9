#include "keydist/key_agreement.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "qkd/post_processing.h"

namespace qnet::keydist {

KeyAgreement::KeyAgreement(NodeContext& context, KeyDistribution& sessions, KeyStore& store)
    : context_(context), sessions_(sessions), store_(store) {
  sessions_.SetResponderHandler(
      lifetime_.Guard([this](const std::string& initiator, SessionId id, absl::StatusOr<QkdResult> result) {
        if (result.ok()) Store(*result);
        if (responder_observer_) responder_observer_(initiator, id, std::move(result));
      }));
}

KeyAgreement::~KeyAgreement() {
  lifetime_.End();
  sessions_.SetResponderHandler(nullptr);
  for (auto& [id, running] : requests_) {
    if (running.session_running) (void)sessions_.Cancel(running.session);
  }
}

void KeyAgreement::Store(const QkdResult& result) {
  store_.Put({.key_id = result.key_id,
              .peer = result.peer,
              .protocol = std::string(QkdProtocolName(result.protocol)),
              .bits = result.key});
}

absl::StatusOr<AgreementId> KeyAgreement::Start(KeyRequest request, AgreementProgressHandler progress,
                                                AgreementDoneHandler done) {
  if (request.peer.empty()) return absl::InvalidArgumentError("peer is required");
  if (request.peer == context_.node_name()) {
    return absl::InvalidArgumentError(absl::StrCat("peer '", request.peer, "' is this node"));
  }
  if (request.bits < 1 || request.bits > kMaxKeyRequestBits) {
    return absl::InvalidArgumentError(
        absl::StrCat("bits must be in 1..", kMaxKeyRequestBits, ", got ", request.bits));
  }
  if (request.max_blocks < 1) return absl::InvalidArgumentError("max_blocks must be at least 1");
  if (!done) return absl::InvalidArgumentError("a done handler is required");
  const AgreementId id = next_id_++;
  Running& r = requests_[id];
  r.result.protocol = request.block.protocol;
  r.result.peer = request.peer;
  r.request = std::move(request);
  r.progress = std::move(progress);
  r.done = std::move(done);
  r.started = context_.Now();
  if (absl::Status started = StartBlock(id); !started.ok()) {
    requests_.erase(id);  // refused at once (e.g. NO_ROUTE): nothing ran
    return started;
  }
  return id;
}

absl::Status KeyAgreement::StartBlock(AgreementId id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return absl::OkStatus();
  Running& r = it->second;
  const uint32_t block = static_cast<uint32_t>(r.result.blocks.size());
  absl::StatusOr<SessionId> session = sessions_.StartSession(
      r.request.peer, r.request.block,
      lifetime_.Guard([this, id, block](SessionId, const QkdProgress& p) {
        auto found = requests_.find(id);
        if (found == requests_.end() || !found->second.progress) return;
        // A copy: the handler may cancel the request (and so erase it).
        AgreementProgressHandler progress = found->second.progress;
        progress({.block = block, .session = p, .total_key_bits = found->second.result.key.size()});
      }),
      lifetime_.Guard([this, id](SessionId, absl::StatusOr<QkdResult> result) { OnBlockDone(id, std::move(result)); }));
  if (!session.ok()) return session.status();
  r.session = *session;
  r.session_running = true;
  return absl::OkStatus();
}

bool KeyAgreement::Cancel(AgreementId id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return false;
  if (it->second.session_running) (void)sessions_.Cancel(it->second.session);
  Finish(id, absl::CancelledError("the key request was cancelled"));
  return true;
}

void KeyAgreement::AbortAll(const absl::Status& status) {
  std::vector<AgreementId> ids;
  for (const auto& [id, running] : requests_) ids.push_back(id);
  for (AgreementId id : ids) {
    auto it = requests_.find(id);
    if (it == requests_.end()) continue;
    if (it->second.session_running) (void)sessions_.Cancel(it->second.session);
    Finish(id, status);
  }
}

void KeyAgreement::OnBlockDone(AgreementId id, absl::StatusOr<QkdResult> result) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  Running& r = it->second;
  r.session_running = false;
  KeyAgreementResult& sum = r.result;
  const uint32_t blocks = static_cast<uint32_t>(sum.blocks.size());
  if (!result.ok() && qkd::IsResidualErrorAbort(result.status()) &&
      blocks + sum.discarded_blocks + 1 < r.request.max_blocks) {
    ++sum.discarded_blocks;
    if (absl::Status s = StartBlock(id); !s.ok()) Finish(id, s);
    return;
  }
  if (!result.ok()) {
    std::vector<std::string> ids;
    for (const KeyBlock& b : sum.blocks) ids.push_back(b.key_id);
    const std::string before =
        ids.empty() ? "no key bits shared before it"
                    : absl::StrCat(sum.key.size(), " key bits shared before it, key ids ", absl::StrJoin(ids, ", "));
    Finish(id, absl::Status(result.status().code(), absl::StrCat("block ", blocks + 1, " (", before,
                                                                 "): ", result.status().message())));
    return;
  }
  Store(*result);
  const qkd::PostProcessingReport& report = result->report;
  if (sum.path.empty()) {
    sum.path = result->path;
    sum.relay_nodes = result->relay_nodes;
  }
  KeyBlock& b = sum.blocks.emplace_back();
  b.key_id = result->key_id;
  // BB84: the pulses sent (the report has Alice's records of Bob's clicks).
  b.raw_pairs = r.request.block.protocol == QkdProtocol::kBb84 ? r.request.block.pairs : report.raw_detections;
  b.sifted_bits = report.sifted_bits;
  b.qber = report.qber.overall.rate();
  b.qber_z = report.qber.z.rate();
  b.qber_x = report.qber.x.rate();
  b.error_correction_efficiency = report.error_correction_efficiency;
  b.final_key_bits = result->key.size();
  b.auth_bits_consumed = result->auth_bits_consumed;
  sum.auth_bits_consumed += result->auth_bits_consumed;
  b.chsh_s = result->chsh_s;
  b.chsh_s_stderr = result->chsh_s_stderr;
  b.decoy = report.decoy;
  b.simulated_duration = result->simulated_duration;
  if (result->chsh_s) r.chsh_sum += *result->chsh_s;
  r.z_sampled += report.qber.z.sampled;
  r.z_errors += report.qber.z.errors;
  r.x_sampled += report.qber.x.sampled;
  r.x_errors += report.qber.x.errors;
  if (report.error_correction_efficiency > 0) {
    r.efficiency_sum += report.error_correction_efficiency;
    ++r.efficiency_blocks;
  }
  sum.raw_pairs += b.raw_pairs;
  sum.sifted_bits += report.sifted_bits;
  for (size_t i = 0; i < result->key.size(); ++i) sum.key.PushBack(result->key.Get(i));

  const uint32_t done_blocks = blocks + 1;
  if (sum.key.size() < r.request.bits) {
    if (result->key.empty()) {
      Finish(id, absl::FailedPreconditionError(absl::StrCat(
                     "block ", done_blocks, " gave no key bits (QBER ", b.qber, ", ", b.sifted_bits,
                     " sifted bits): too few pairs per block for the finite-size bounds; ask for more pairs per block")));
      return;
    }
    if (done_blocks + sum.discarded_blocks >= r.request.max_blocks) {
      Finish(id, absl::ResourceExhaustedError(absl::StrCat("only ", sum.key.size(), " of ", r.request.bits,
                                                           " key bits after ", done_blocks, " blocks (max_blocks)")));
      return;
    }
    if (absl::Status s = StartBlock(id); !s.ok()) Finish(id, s);
    return;
  }
  sum.qber_z = r.z_sampled > 0 ? static_cast<double>(r.z_errors) / r.z_sampled : 0.0;
  sum.qber_x = r.x_sampled > 0 ? static_cast<double>(r.x_errors) / r.x_sampled : 0.0;
  if (r.request.block.protocol == QkdProtocol::kE91) sum.chsh_s = r.chsh_sum / done_blocks;
  sum.error_correction_efficiency = r.efficiency_blocks > 0 ? r.efficiency_sum / r.efficiency_blocks : 0.0;
  sum.simulated_duration = context_.Now() - r.started;
  Finish(id, std::move(sum));
}

void KeyAgreement::Finish(AgreementId id, absl::StatusOr<KeyAgreementResult> outcome) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  AgreementDoneHandler done = std::move(it->second.done);
  requests_.erase(it);
  done(std::move(outcome));
}

}  // namespace qnet::keydist
