#include "network/routing_adverts.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "network/network_wire.h"

namespace qnet::network {

AdvertFlooding::AdvertFlooding(NodeContext& context, link::LinkLayer& link, physical::NodeHardware hardware,
                               std::vector<physical::PhysicalLink> links, Duration refresh, double hop_cost,
                               AdvertOptions options)
    : context_(context),
      link_(link),
      hardware_(std::move(hardware)),
      links_(std::move(links)),
      refresh_(refresh),
      options_(std::move(options)),
      database_(hop_cost) {
  // Newer incarnations start with larger numbers (a clock that runs on
  // across restarts), so their adverts replace the old ones.
  advert_sequence_ = SequenceClock();
}

uint64_t AdvertFlooding::SequenceClock() const {
  if (options_.sequence_clock) return options_.sequence_clock();
  return static_cast<uint64_t>(std::max<int64_t>(0, ToNs(context_.Now()) / 1000));
}

std::string AdvertSigningBytes(const v1::LinkStateAdvert& advert) {
  if (advert.signature().empty()) return advert.SerializeAsString();
  v1::LinkStateAdvert unsigned_advert = advert;
  unsigned_advert.clear_signature();
  return unsigned_advert.SerializeAsString();
}

void AdvertFlooding::Refuse(const std::string& from, std::string why) {
  if (options_.on_refused) options_.on_refused(from, why);
  stats_.last_refusal = std::move(why);
}

bool AdvertFlooding::Accept(const std::string& from, const v1::LinkStateAdvert& advert) {
  // The bound moves with the clock: an advert pushed to it is overtaken by
  // its origin's next one.
  const uint64_t max_sequence = SequenceClock() + kMaxSequenceLead;
  if (absl::Status valid = ValidateAdvert(advert, options_.topology.get(), max_sequence); !valid.ok()) {
    ++stats_.refused_impossible;
    Refuse(from, absl::StrCat("refused an impossible advert from neighbour ", from, ": ", valid.message()));
    return false;
  }
  if (options_.authenticator != nullptr &&
      !options_.authenticator->Verify(advert.origin(), AdvertSigningBytes(advert), advert.signature())) {
    ++stats_.refused_unauthenticated;
    Refuse(from, absl::StrCat("refused an advert for '", advert.origin(), "' (sequence ", advert.sequence(),
                              ") from neighbour ", from, ": its signature is not ", advert.origin(), "'s"));
    return false;
  }
  return true;
}

AdvertFlooding::~AdvertFlooding() {
  lifetime_.End();
  if (refresh_timer_ != kNoTimer) context_.CancelTimer(refresh_timer_);
  if (origination_timer_ != kNoTimer) context_.CancelTimer(origination_timer_);
}

void AdvertFlooding::Start() {
  OriginateAdvert();
  ScheduleRefresh();
}

void AdvertFlooding::OriginateAdvert() {
  v1::LinkStateAdvert advert;
  advert.set_origin(Where());
  // Never behind the clock, so that a restart (which starts from the clock)
  // stays above every advert this incarnation sent.
  advert_sequence_ = std::max(advert_sequence_ + 1, SequenceClock());
  advert.set_sequence(advert_sequence_);
  advert.set_memory_qubits(static_cast<uint32_t>(std::max(0, hardware_.num_qubits)));
  advert.set_t1_s(RateToWire(hardware_.t1_s));
  advert.set_t2_s(RateToWire(hardware_.t2_s));
  advert.set_depolarising_time_s(RateToWire(hardware_.depolarising_time_s));
  advert.set_single_qubit_gate_error(hardware_.single_qubit_gate_error);
  advert.set_two_qubit_gate_error(hardware_.two_qubit_gate_error);
  advert.set_readout_error_0(hardware_.readout_error_0);
  advert.set_readout_error_1(hardware_.readout_error_1);
  for (const physical::PhysicalLink& l : links_) {
    const std::string& far = l.physics.node_a == Where() ? l.physics.node_b : l.physics.node_a;
    v1::LinkAdvert* a = advert.add_links();
    a->set_neighbour(far);
    a->set_delay_s(ToSeconds(FibreDelay(l.physics.length_km)));
    absl::StatusOr<const link::FidelityTable*> table = link_.FidelityTableFor(far);
    absl::StatusOr<link::FidelityTable::Choice> best =
        table.ok() ? (*table)->Best(link::RequestType::kKeep) : absl::StatusOr<link::FidelityTable::Choice>(table.status());
    // A link that cannot generate is advertised down: no path may use it.
    a->set_up(neighbours_up_.contains(far) && best.ok());
    if (best.ok()) {
      a->set_best_fidelity(best->expected_fidelity);
      const double mean_s = best->calibration->MeanGenerationSeconds();
      a->set_pair_rate_hz(mean_s > 0 && std::isfinite(mean_s) ? 1.0 / mean_s : 0.0);
    }
  }
  if (options_.authenticator != nullptr) {
    absl::StatusOr<std::string> signature = options_.authenticator->Sign(AdvertSigningBytes(advert));
    if (!signature.ok()) {
      Refuse(Where(), absl::StrCat("cannot sign this node's advert (not sent; retried at the next refresh): ",
                                   signature.status().message()));
      return;
    }
    advert.set_signature(*std::move(signature));
  }
  database_.Update(advert);
  v1::LinkStateAdverts adverts;
  *adverts.add_adverts() = std::move(advert);
  Flood(std::move(adverts), "");
}

void AdvertFlooding::Flood(v1::LinkStateAdverts adverts, const std::string& except) {
  if (adverts.adverts_size() == 0) return;
  std::vector<std::string> to;
  to.reserve(neighbours_up_.size());
  for (const std::string& n : neighbours_up_) {
    if (n != except) to.push_back(n);
  }
  if (to.empty()) return;
  // One message for all: the runtime may share it rather than copy it.
  v1::PeerMessage m;
  *m.mutable_network()->mutable_adverts() = std::move(adverts);
  context_.SendToNeighbours(to, std::move(m));
}

void AdvertFlooding::OnAdverts(const std::string& from, const v1::LinkStateAdverts& adverts) {
  v1::LinkStateAdverts forward;
  bool reoriginate = false;
  for (const v1::LinkStateAdvert& a : adverts.adverts()) {
    ++stats_.received;
    // Flooding brings each advert once per neighbour; only the first copy
    // can change anything, so the others skip the checks (and a signature
    // verification each). A stale advert is never stored or forwarded.
    // This node's own adverts come back too (a database exchange, or a
    // flood whose detour beat a direct link): the one it holds is an echo,
    // not an earlier incarnation's. Jumping past an echo would re-flood it
    // for ever round such a detour.
    if (a.origin() == Where() ? IsEchoOfOwnAdvert(a) : !database_.IsNewer(a)) {
      ++stats_.stale;
      continue;
    }
    if (!Accept(from, a)) continue;
    if (a.origin() == Where()) {
      // An advert of an earlier incarnation of this node, newer than ours
      // or as new but different, would shadow it: jump past it (bounded by
      // Accept).
      if (a.sequence() >= advert_sequence_) {
        advert_sequence_ = a.sequence();
        ++stats_.own_sequence_jumps;
        reoriginate = true;
      }
      continue;
    }
    if (database_.Update(a)) *forward.add_adverts() = a;
  }
  Flood(std::move(forward), from);
  if (reoriginate) OriginateAdvert();
}

bool AdvertFlooding::IsEchoOfOwnAdvert(const v1::LinkStateAdvert& advert) const {
  if (advert.sequence() < advert_sequence_) return true;
  if (advert.sequence() > advert_sequence_) return false;
  const v1::LinkStateAdvert* held = database_.Find(Where());
  return held != nullptr && held->sequence() == advert.sequence() &&
         held->SerializeAsString() == advert.SerializeAsString();
}

void AdvertFlooding::ScheduleRefresh() {
  refresh_timer_ = context_.StartTimer(refresh_, lifetime_.Guard([this] {
    refresh_timer_ = kNoTimer;
    OriginateAdvert();
    ScheduleRefresh();
  }));
}

void AdvertFlooding::OnNeighbourUp(const std::string& neighbour) {
  bool known = false;
  for (const physical::PhysicalLink& l : links_) {
    known = known || l.physics.node_a == neighbour || l.physics.node_b == neighbour;
  }
  if (!known) return;
  neighbours_up_.insert(neighbour);
  if (std::find(exchanges_pending_.begin(), exchanges_pending_.end(), neighbour) == exchanges_pending_.end()) {
    exchanges_pending_.push_back(neighbour);
  }
  ScheduleOrigination();
}

void AdvertFlooding::ScheduleOrigination() {
  if (origination_timer_ != kNoTimer) return;
  origination_timer_ = context_.StartTimer(Duration::zero(), lifetime_.Guard([this] {
    origination_timer_ = kNoTimer;
    OriginateAdvert();
    // Database exchange, after this node's new advert is in the database
    // (sent before, it would carry the old one across the network): each
    // neighbour that came up learns everything this node knows.
    std::vector<std::string> fresh = std::move(exchanges_pending_);
    exchanges_pending_.clear();
    for (const std::string& neighbour : fresh) {
      if (!neighbours_up_.contains(neighbour)) continue;  // went down again meanwhile
      v1::NetworkMessage m;
      for (const v1::LinkStateAdvert* a : database_.All()) *m.mutable_adverts()->add_adverts() = *a;
      SendNetworkMessage(context_, neighbour, std::move(m));
    }
  }));
}

bool AdvertFlooding::MarkNeighbourDown(const std::string& neighbour) { return neighbours_up_.erase(neighbour) > 0; }

}  // namespace qnet::network
