#include "network/routing_adverts.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "network/network_wire.h"

namespace qnet::network {

AdvertFlooding::AdvertFlooding(NodeContext& context, link::LinkLayer& link, physical::NodeHardware hardware,
                               std::vector<physical::PhysicalLink> links, Duration refresh, double hop_cost)
    : context_(context),
      link_(link),
      hardware_(std::move(hardware)),
      links_(std::move(links)),
      refresh_(refresh),
      database_(hop_cost) {
  // Newer incarnations start with larger numbers (the runtime's clock), so
  // their adverts replace the old ones.
  advert_sequence_ = static_cast<uint64_t>(std::max<int64_t>(0, ToNs(context.Now())));
}

AdvertFlooding::~AdvertFlooding() {
  lifetime_.End();
  if (refresh_timer_ != kNoTimer) context_.CancelTimer(refresh_timer_);
}

void AdvertFlooding::Start() {
  OriginateAdvert();
  ScheduleRefresh();
}

void AdvertFlooding::OriginateAdvert() {
  v1::LinkStateAdvert advert;
  advert.set_origin(Where());
  advert.set_sequence(++advert_sequence_);
  advert.set_memory_qubits(static_cast<uint32_t>(std::max(0, hardware_.num_qubits)));
  advert.set_t1_s(RateToWire(hardware_.t1_s));
  advert.set_t2_s(RateToWire(hardware_.t2_s));
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
  database_.Update(advert);
  v1::LinkStateAdverts adverts;
  *adverts.add_adverts() = std::move(advert);
  Flood(adverts, "");
}

void AdvertFlooding::Flood(const v1::LinkStateAdverts& adverts, const std::string& except) {
  if (adverts.adverts_size() == 0) return;
  for (const std::string& n : neighbours_up_) {
    if (n == except) continue;
    v1::NetworkMessage m;
    *m.mutable_adverts() = adverts;
    SendNetworkMessage(context_, n, std::move(m));
  }
}

void AdvertFlooding::OnAdverts(const std::string& from, const v1::LinkStateAdverts& adverts) {
  v1::LinkStateAdverts forward;
  bool reoriginate = false;
  for (const v1::LinkStateAdvert& a : adverts.adverts()) {
    if (a.origin() == Where()) {
      // An advert of an earlier incarnation of this node that is newer than
      // ours would shadow it: jump past it.
      if (a.sequence() >= advert_sequence_) {
        advert_sequence_ = a.sequence();
        reoriginate = true;
      }
      continue;
    }
    if (database_.Update(a)) *forward.add_adverts() = a;
  }
  Flood(forward, from);
  if (reoriginate) OriginateAdvert();
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
  OriginateAdvert();
  // Database exchange: the neighbour learns everything this node knows.
  v1::NetworkMessage m;
  for (const v1::LinkStateAdvert* a : database_.All()) *m.mutable_adverts()->add_adverts() = *a;
  SendNetworkMessage(context_, neighbour, std::move(m));
}

bool AdvertFlooding::MarkNeighbourDown(const std::string& neighbour) { return neighbours_up_.erase(neighbour) > 0; }

}  // namespace qnet::network
