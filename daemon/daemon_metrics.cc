// Daemon::CollectMetrics: the node's counters as Prometheus families. The
// protocol layers keep their own counts (stats() of each layer); a scrape
// reads them on the event loop, so there is no second bookkeeping to drift.
#include <future>

#include "absl/strings/str_cat.h"
#include "daemon/daemon.h"

namespace qnet::daemon {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

// Wall time a scrape waits for the event loop before answering 503.
constexpr auto kLoopWait = std::chrono::seconds(2);

class Families {
 public:
  explicit Families(std::string node) : node_(std::move(node)) {}

  void Counter(const std::string& name, const std::string& help, double value, Labels labels = {}) {
    Find(name, help, MetricType::Counter).metric.emplace_back(Metric(std::move(labels))).counter.value = value;
  }
  void Gauge(const std::string& name, const std::string& help, double value, Labels labels = {}) {
    Find(name, help, MetricType::Gauge).metric.emplace_back(Metric(std::move(labels))).gauge.value = value;
  }
  // A summary of `count` observations adding up to `sum`, with quantiles.
  void Summary(const std::string& name, const std::string& help, uint64_t count, double sum,
               std::vector<ClientMetric::Quantile> quantiles, Labels labels = {}) {
    ClientMetric& m = Find(name, help, MetricType::Summary).metric.emplace_back(Metric(std::move(labels)));
    m.summary.sample_count = count;
    m.summary.sample_sum = sum;
    m.summary.quantile = std::move(quantiles);
  }
  std::vector<MetricFamily> Take() { return std::move(families_); }

 private:
  ClientMetric Metric(Labels labels) const {
    ClientMetric m;
    m.label.push_back({"node", node_});
    for (auto& l : labels) m.label.push_back(std::move(l));
    return m;
  }
  MetricFamily& Find(const std::string& name, const std::string& help, MetricType type) {
    for (MetricFamily& f : families_) {
      if (f.name == name) return f;
    }
    return families_.emplace_back(MetricFamily{name, help, type, {}});
  }

  std::string node_;
  std::vector<MetricFamily> families_;
};

}  // namespace

std::vector<prometheus::MetricFamily> Daemon::NodeMetrics() {
  Families out(node());
  const DaemonTopology& topology = options_.topology;
  out.Gauge("qnet_node_info", "This daemon's node and network (value 1)", 1,
            {{"network", topology.network}, {"transport_security", options_.tls ? "mutual-tls" : "insecure-local-only"}});
  out.Gauge("qnet_time_scale", "Simulated seconds per wall-clock second", loop_->time_scale());
  out.Gauge("qnet_simulated_time_seconds", "The protocol stack's clock, simulated seconds since the epoch",
            SecondsSinceEpoch(loop_->Now()));
  out.Gauge("qnet_memory_qubits", "Memory qubits of this node's device (network file)", topology.memory_qubits);
  out.Gauge("qnet_memory_qubits_in_use", "Memory qubits the protocol stack has allocated",
            stack_->memory_qubits_in_use());
  out.Gauge("qnet_qubits_held", "Simulated qubits whose state this daemon holds",
            static_cast<double>(backend_->system().qubit_count()));
  // State moves between daemons, and what they leave behind: a record per
  // qubit passed on that must not grow with the pairs served.
  out.Counter("qnet_state_moves_requested_total", "Requests this daemon sent for another daemon's group of qubits",
              static_cast<double>(backend_->moves_requested()));
  out.Counter("qnet_state_groups_handed_over_total",
              "Groups sent unasked to the node whose qubits they hold (the far half of a measured pair)",
              static_cast<double>(backend_->groups_handed_over()));
  out.Gauge("qnet_state_moved_records", "Qubits this daemon passed on and still remembers, to redirect requests",
            static_cast<double>(backend_->moved_records()));
  out.Gauge("qnet_state_location_hints", "Qubits held elsewhere whose holder this daemon was told",
            static_cast<double>(backend_->location_hints()));

  // Physical and link layers, per link.
  physical::PhysicalLayer& physical = stack_->physical();
  link::LinkLayer& link = stack_->link();
  for (const NeighbourState& n : links_->Neighbours()) {
    const Labels at = {{"link", n.link}, {"neighbour", n.name}};
    if (auto h = physical.HeraldStats(n.name); h.ok()) {
      out.Counter("qnet_link_attempts_total", "Entanglement attempts on the link (heralds seen here)",
                  static_cast<double>(h->attempts), at);
      Labels ok = at, failed = at;
      ok.push_back({"outcome", "pair"});
      failed.push_back({"outcome", "failed"});
      out.Counter("qnet_link_heralds_total", "Heralded generations seen here, by outcome",
                  static_cast<double>(h->heralded), ok);
      out.Counter("qnet_link_heralds_total", "", static_cast<double>(h->failed), failed);
    }
    if (auto p = physical.PhotonStats(n.name); p.ok()) {
      out.Counter("qnet_photon_pulses_sent_total", "Prepare-and-measure pulses this node sent on the link",
                  static_cast<double>(p->pulses_sent), at);
      out.Counter("qnet_photon_detections_total", "Detector clicks here of pulses from the neighbour",
                  static_cast<double>(p->detections), at);
    }
    if (auto pairs = link.PairStats(n.name); pairs.ok()) {
      for (auto [type, count] : {std::pair{"keep", pairs->delivered_keep}, {"measure", pairs->delivered_measure}}) {
        Labels l = at;
        l.push_back({"layer", "link"});
        l.push_back({"type", type});
        out.Counter("qnet_pairs_delivered_total",
                    "Pairs delivered at this node: link layer per link and type, network layer end to end",
                    static_cast<double>(count), l);
      }
      out.Summary("qnet_link_pair_fidelity", "Fidelity estimates of the link-layer pairs delivered here",
                  pairs->fidelity_estimates, pairs->fidelity_estimate_sum, {}, at);
    }
    out.Gauge("qnet_peer_connected", "1 while the peer stream to the neighbour is up", n.connected ? 1 : 0, at);
    out.Counter("qnet_peer_connects_total", "Times the peer stream to the neighbour came up",
                static_cast<double>(n.times_connected), at);
    out.Counter("qnet_peer_messages_sent_total", "Protocol messages sent to the neighbour",
                static_cast<double>(n.messages_sent), at);
    out.Counter("qnet_peer_messages_received_total", "Protocol messages received from the neighbour",
                static_cast<double>(n.messages_received), at);
    out.Counter("qnet_peer_messages_dropped_total", "Messages for the neighbour dropped while its link was down",
                static_cast<double>(n.messages_dropped), at);
    out.Counter("qnet_peer_sent_bytes_total", "Bytes of frames sent to the neighbour (serialized; messages and heartbeats)",
                static_cast<double>(n.bytes_sent), at);
    out.Counter("qnet_peer_received_bytes_total", "Bytes of frames received from the neighbour (serialized)",
                static_cast<double>(n.bytes_received), at);
    out.Counter("qnet_peer_received_frames_total", "Frames received from the neighbour (batches and heartbeats)",
                static_cast<double>(n.frames_received), at);
    out.Counter("qnet_peer_frame_limit_closes_total",
                "Streams from the neighbour closed for sending frames faster than qnetd --max-peer-frames-per-second",
                static_cast<double>(n.frame_limit_closes), at);
  }
  const link::LinkLayerStats& ls = link.stats();
  out.Counter("qnet_link_generations_started_total", "Link-layer generations started at this end",
              static_cast<double>(ls.generations_started));
  out.Counter("qnet_link_generations_failed_total", "Link-layer generations that ended without a pair",
              static_cast<double>(ls.generations_failed));
  out.Counter("qnet_link_lost_heralds_total", "Generations abandoned by the herald watchdog",
              static_cast<double>(ls.lost_heralds));
  out.Counter("qnet_link_pairs_expired_total", "Link-layer pairs that expired in memory",
              static_cast<double>(ls.pairs_expired));
  out.Counter("qnet_link_memory_waits_total", "Generations that waited for a free memory slot, by end",
              static_cast<double>(ls.memory_waits), {{"end", "near"}});
  out.Counter("qnet_link_memory_waits_total", "", static_cast<double>(ls.far_memory_waits), {{"end", "far"}});

  // Network layer.
  const network::NetworkLayerStats ns = stack_->network().stats();
  out.Counter("qnet_pairs_delivered_total", "", static_cast<double>(ns.pairs_delivered),
              {{"layer", "network"}, {"type", "all"}});
  out.Counter("qnet_circuits_set_up_total", "Virtual circuits installed at this node (any role)",
              static_cast<double>(ns.circuits_set_up));
  out.Counter("qnet_swaps_total", "Entanglement swaps (Bell-state measurements) performed here",
              static_cast<double>(ns.swaps));
  out.Counter("qnet_cutoff_discards_total", "Link pairs dropped here by the memory cutoff",
              static_cast<double>(ns.discarded_pairs));
  out.Counter("qnet_pairs_rejected_total", "End-to-end pairs refused for an estimate below min_fidelity",
              static_cast<double>(ns.rejected_pairs));
  out.Counter("qnet_purification_rounds_total", "DEJMPS purification rounds, by outcome",
              static_cast<double>(ns.purifications), {{"outcome", "success"}});
  out.Counter("qnet_purification_rounds_total", "", static_cast<double>(ns.purification_failures),
              {{"outcome", "failure"}});
  out.Counter("qnet_routing_adverts_total", "Link-state adverts received, by outcome",
              static_cast<double>(ns.adverts_received), {{"outcome", "received"}});
  out.Counter("qnet_routing_adverts_total", "", static_cast<double>(ns.adverts_refused), {{"outcome", "refused"}});
  out.Counter("qnet_routing_adverts_total", "", static_cast<double>(ns.adverts_unauthenticated),
              {{"outcome", "unauthenticated"}});

  // Transport layer.
  const transport::TransportLayerStats& ts = stack_->transport().stats();
  out.Counter("qnet_teleports_total", "Teleportations at this node, by role and outcome",
              static_cast<double>(ts.sent), {{"outcome", "sent"}});
  out.Counter("qnet_teleports_total", "", static_cast<double>(ts.received), {{"outcome", "received"}});
  out.Counter("qnet_teleports_total", "", static_cast<double>(ts.failed), {{"outcome", "failed"}});

  // Key distribution.
  const char* help = nullptr;
  if (const keydist::KeyDistribution* kd = stack_->key_distribution()) {
    const keydist::KeyDistributionStats& ks = kd->stats();
    help = "QKD sessions at this node (either role), by outcome";
    for (auto [outcome, n] : {std::pair{"started", ks.sessions_started}, {"accepted", ks.sessions_accepted},
                              {"succeeded", ks.sessions_succeeded}, {"failed", ks.sessions_failed},
                              {"relay_hop", ks.hop_sessions}}) {
      out.Counter("qnet_qkd_sessions_total", help, static_cast<double>(n), {{"outcome", outcome}});
      help = "";
    }
    out.Counter("qnet_qkd_final_key_bits_total", "Final (secret) key bits handed to users here",
                static_cast<double>(ks.key_bits));
    out.Counter("qnet_qkd_authentication_bits_total", "Authentication key bits this node's sessions used",
                static_cast<double>(ks.auth_bits_consumed));
    // By the session's other end: a neighbour's is its link's QBER.
    const char* bits_help =
        "Bits parameter estimation compared, by basis and the sessions' other end (those that ended here, aborted "
        "ones too)";
    const char* errors_help = "Of the compared bits, those that differed (the measured QBER is errors / bits)";
    for (const auto& [peer, sample] : ks.samples_by_peer) {
      out.Counter("qnet_qkd_sample_bits_total", bits_help, static_cast<double>(sample.z_bits),
                  {{"basis", "Z"}, {"peer", peer}});
      out.Counter("qnet_qkd_sample_bits_total", "", static_cast<double>(sample.x_bits), {{"basis", "X"}, {"peer", peer}});
      out.Counter("qnet_qkd_sample_errors_total", errors_help, static_cast<double>(sample.z_errors),
                  {{"basis", "Z"}, {"peer", peer}});
      out.Counter("qnet_qkd_sample_errors_total", "", static_cast<double>(sample.x_errors),
                  {{"basis", "X"}, {"peer", peer}});
      bits_help = errors_help = "";
    }
    help = "QKD messages ignored or refused, by reason";
    for (auto [reason, n] : {std::pair{"malformed", ks.malformed_messages}, {"stray", ks.stray_messages},
                             {"unauthenticated", ks.unauthenticated_messages}}) {
      out.Counter("qnet_qkd_messages_refused_total", help, static_cast<double>(n), {{"reason", reason}});
      help = "";
    }
  }

  // The software's lag behind the physics (last minute).
  const v1::LagStatus lag = loop_->lag().Recent(LagMonitor::Clock::now());
  help = "How late scheduled events ran behind the scaled clock, simulated seconds (last minute)";
  for (auto [quantile, value] : {std::pair{"0.5", lag.p50_s()}, {"0.99", lag.p99_s()}, {"1", lag.max_s()}}) {
    out.Gauge("qnet_event_loop_lag_seconds", help, value, {{"quantile", quantile}});
    help = "";
  }
  out.Gauge("qnet_event_loop_events", "Scheduled events the lag figures cover (last minute)",
            static_cast<double>(lag.events()));
  out.Gauge("qnet_event_loop_behind_ratio",
            "Share of the last minute's simulated span during which this node ran behind the physics",
            lag.behind_fraction());
  out.Gauge("qnet_event_loop_lag_bound_seconds", "Lag beyond which the node counts as behind, simulated seconds",
            lag.bound_s());
  return out.Take();
}

absl::StatusOr<std::vector<prometheus::MetricFamily>> Daemon::CollectMetrics() {
  bool idle = false;
  if (!collecting_->compare_exchange_strong(idle, true)) {
    return absl::UnavailableError("the daemon's event loop has not finished the last scrape (overloaded?)");
  }
  auto done = std::make_shared<std::promise<std::vector<prometheus::MetricFamily>>>();
  std::future<std::vector<prometheus::MetricFamily>> result = done->get_future();
  if (!loop_->poster()->Post([this, done, collecting = collecting_] {
        done->set_value(NodeMetrics());
        *collecting = false;
      })) {
    *collecting_ = false;
    return absl::UnavailableError("the daemon is shutting down");
  }
  if (result.wait_for(kLoopWait) != std::future_status::ready) {
    return absl::UnavailableError("the daemon's event loop did not answer within 2 s (overloaded?)");
  }
  std::vector<prometheus::MetricFamily> families;
  try {
    families = result.get();
  } catch (const std::future_error&) {  // the loop stopped and dropped the work
    return absl::UnavailableError("the daemon is shutting down");
  }
  // Off the loop: the key manager and the gRPC counters are thread-safe.
  if (key_manager_) {
    Families pool_families(node());
    const v1::GetKeyPoolsResponse pools = key_manager_->Pools();
    for (const v1::KeyPoolState& p : pools.pools()) {
      // The end that fills a pool keeps its figures; the other end's are empty.
      if (!p.owned()) continue;
      const Labels peer = {{"peer", p.peer()}};
      pool_families.Gauge("qnet_key_pool_bits", "Key bits in the pool, committed at both ends and not yet handed out",
                          static_cast<double>(p.available_bits()), peer);
      pool_families.Gauge("qnet_key_pool_low_watermark_bits", "The pool is refilled below this many bits",
                          static_cast<double>(p.low_watermark_bits()), peer);
      pool_families.Counter("qnet_key_pool_blocks_committed_total", "Key blocks committed to the pool",
                            static_cast<double>(p.blocks_committed()), peer);
      pool_families.Counter("qnet_key_pool_sessions_failed_total", "Refill sessions that failed",
                            static_cast<double>(p.sessions_failed()), peer);
    }
    for (MetricFamily& f : pool_families.Take()) families.push_back(std::move(f));
  }
  for (MetricFamily& f : metrics_registry_->Collect()) families.push_back(std::move(f));
  return families;
}

}  // namespace qnet::daemon
