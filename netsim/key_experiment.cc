#include "netsim/key_experiment.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"

namespace qnet::netsim {

absl::StatusOr<KeyExperimentResult> RunKeyExperiment(SimulatedNetwork& network, const std::string& origin,
                                                     keydist::KeyRequest request, Duration simulated_limit) {
  stack::NodeStack* from = network.node(origin);
  stack::NodeStack* to = network.node(request.peer);
  if (from == nullptr) return absl::NotFoundError(absl::StrCat("no running node '", origin, "'"));
  if (to == nullptr) return absl::NotFoundError(absl::StrCat("no running node '", request.peer, "'"));
  if (from->key_agreement() == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("key distribution is stopped at '", origin, "'"));
  }
  // Routing adverts cross the network in a few link delays.
  network.RunFor(std::chrono::milliseconds(10));
  const uint64_t events_before = network.simulator().events_run();
  std::optional<absl::StatusOr<keydist::KeyAgreementResult>> outcome;
  absl::StatusOr<keydist::AgreementId> id = from->key_agreement()->Start(
      std::move(request), nullptr,
      [&outcome](absl::StatusOr<keydist::KeyAgreementResult> r) { outcome = std::move(r); });
  if (!id.ok()) return id.status();
  if (!network.RunUntil([&] { return outcome.has_value(); }, simulated_limit)) {
    from->key_agreement()->Cancel(*id);
    return absl::DeadlineExceededError(
        absl::StrCat("no key after ", FormatDuration(simulated_limit), " of simulated time"));
  }
  if (!outcome->ok()) return outcome->status();
  KeyExperimentResult result;
  result.agreement = **std::move(outcome);
  // The responder stores its copy when its own post-processing ends, a
  // message delay after the initiator's.
  auto peer_has_all = [&] {
    for (const keydist::KeyBlock& b : result.agreement.blocks) {
      if (!to->key_store().Find(b.key_id).ok()) return false;
    }
    return true;
  };
  network.RunUntil(peer_has_all, std::chrono::seconds(10));
  result.keys_match = true;
  size_t offset = 0;
  for (const keydist::KeyBlock& b : result.agreement.blocks) {
    absl::StatusOr<keydist::StoredKey> copy = to->key_store().Find(b.key_id);
    const qkd::BitString mine = result.agreement.key.Slice(offset, b.final_key_bits);
    offset += b.final_key_bits;
    if (!copy.ok()) {
      result.keys_match = false;
      if (result.keys_problem.empty()) result.keys_problem = absl::StrCat("key ", b.key_id, " missing at ", to->node_name());
    } else if (!(copy->bits == mine)) {
      result.keys_match = false;
      if (result.keys_problem.empty()) result.keys_problem = absl::StrCat("key ", b.key_id, " differs at ", to->node_name());
    }
  }
  result.events = network.simulator().events_run() - events_before;
  return result;
}

}  // namespace qnet::netsim
