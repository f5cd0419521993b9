// One qnet daemon, assembled: the event loop that owns the node's protocol
// state, the links to its neighbours, the distributed state backend, the
// node (stack::NodeStack, built from the network file: every layer and key
// distribution), and the gRPC server carrying the Peer, HardwarePlane and
// Node services plus health checking and reflection. The Node service only
// translates gRPC to the stack's API and back. qnetd is a thin main around
// this; tests run several in one process.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include "absl/status/statusor.h"
#include "daemon/access_policy.h"
#include "daemon/client_request_limit.h"
#include "daemon/daemon_node_context.h"
#include "daemon/distributed_state_backend.h"
#include "daemon/entanglement_service.h"
#include "daemon/event_loop.h"
#include "daemon/grpc_server_metrics.h"
#include "daemon/hardware_plane.h"
#include "daemon/key_manager.h"
#include "daemon/log.h"
#include "daemon/metrics_endpoint.h"
#include "daemon/peer_directory.h"
#include "daemon/peer_links.h"
#include "daemon/qkd_service.h"
#include "daemon/reflection_v1.h"
#include "daemon/circuit_service.h"
#include "daemon/ghz_service.h"
#include "daemon/teleport_service.h"
#include "daemon/topology.h"
#include "security/pki.h"
#include "stack/node_stack.h"
#include "qnet/v1/node_service.grpc.pb.h"

namespace qnet::daemon {

struct DaemonOptions {
  DaemonTopology topology;
  // The parsed network file the node stack is built from (required).
  std::shared_ptr<const config::NetworkConfig> network;
  std::string listen_address = "127.0.0.1:0";  // port 0: any free port
  std::string peers_file;                      // may be empty
  PeerAddresses peer_addresses;                // fixed entries, win over the file
  double time_scale = 1.0;                     // simulated seconds per wall second
  Duration keep_hold = kDefaultKeepHold;       // how long KEEP pairs wait for MeasureQubit (simulated)
  std::optional<int64_t> epoch_unix_ns;        // simulated time zero (default: start)
  uint64_t seed = 1;
  LogLevel log_level = LogLevel::kInfo;
  LogFormat log_format = LogFormat::kText;
  // Mutual TLS on the port and on channels to other daemons, with callers
  // authorised by their certificates (daemon/access_policy.h). Without it
  // the daemon is insecure-local-only: it listens on the loopback interface
  // only, and says so in its log and status.
  std::optional<security::TlsMaterial> tls;
  // Transport tests only: peer messages and neighbour events go to this
  // sink instead of the node stack (which is still built, and hears nothing).
  std::function<std::unique_ptr<PeerMessageSink>()> peer_sink_override;
  // The key manager (daemon/key_manager.h): its durable store, and where
  // the ETSI GS QKD 014 API listens ("" for no API). Without a store the
  // node keeps no key pools. Both need TLS.
  std::filesystem::path key_store;
  std::string kme_listen;
  PeerLinkTiming peer_timing;
  WallClock::duration move_deadline = std::chrono::seconds(10);
  // Entangle, Teleport and Qkd streams one client may have in flight here
  // (daemon/client_request_limit.h).
  uint32_t max_requests_per_client = kDefaultMaxRequestsPerClient;
  // Where the Prometheus endpoint listens (daemon/metrics_endpoint.h; "" for
  // none). With TLS it is HTTPS for monitor and operator certificates; an
  // insecure daemon's is plain HTTP and must be on the loopback interface.
  std::string metrics_listen;
};

class Daemon {
 public:
  // Builds everything, binds the server and starts the loop. Errors name
  // what to fix (bad topology, no or a bad network file, address in use).
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(DaemonOptions options);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Says Goodbye to the neighbours, finishes RPCs, stops the loop. Blocking,
  // idempotent; not from the loop thread.
  void Shutdown();

  const std::string& node() const { return options_.topology.self; }
  // The address the server is bound to, e.g. "127.0.0.1:41237".
  const std::string& listen_address() const { return listen_address_; }
  const AccessPolicy& policy() const { return *policy_; }
  const Logger& log() const { return log_; }
  // Node requests in flight per client (daemon/client_request_limit.h).
  const ClientRequestLimit& request_limit() const { return *request_limit_; }
  int port() const { return port_; }

  EventLoop& loop() { return *loop_; }
  PeerDirectory& directory() { return *directory_; }
  // Loop thread only.
  PeerLinks& links() { return *links_; }
  DistributedStateBackend& backend() { return *backend_; }
  stack::NodeStack& stack() { return *stack_; }
  // Where peer messages go: the node stack, or the override (tests).
  PeerMessageSink& peer_sink() { return sink_override_ ? *sink_override_ : *stack_; }
  EntanglementService& entanglement() { return *entanglement_; }
  TeleportService& teleport() { return *teleport_; }
  GhzService& ghz() { return *ghz_; }
  CircuitService& circuits() { return *circuits_; }
  QkdService& qkd() { return *qkd_; }
  // Null when the node keeps no key pools (no key store given).
  KeyManager* key_manager() { return key_manager_.get(); }
  // Node.GetKeyPools.
  v1::GetKeyPoolsResponse KeyPools() const;
  NodeContext& context() { return *context_; }
  v1::GetStatusResponse Status();
  // GetStatusResponse.transport_security.
  std::string TransportSecurity() const;
  // The Prometheus endpoint's URL ("" when off).
  const std::string& MetricsUrl() const { return metrics_url_; }
  // The metrics endpoint's bound port (0 when off).
  int metrics_port() const;
  // Everything the metrics endpoint serves: the node's counters (read on the
  // loop; Unavailable if it does not answer within 2 s), the key pools and
  // the gRPC server's calls. Not from the loop thread.
  absl::StatusOr<std::vector<prometheus::MetricFamily>> CollectMetrics();
  // The network layer's routing table and link-state database (loop thread).
  absl::StatusOr<v1::GetRoutesResponse> Routes();
  // Node.Eavesdrop (loop thread).
  absl::StatusOr<v1::EavesdropResponse> Eavesdrop(const v1::EavesdropRequest& request);

 private:
  explicit Daemon(DaemonOptions options);
  absl::Status Init();
  // The stack's counters as metric families (loop thread; daemon_metrics.cc).
  std::vector<prometheus::MetricFamily> NodeMetrics();

  DaemonOptions options_;
  Logger log_;
  std::unique_ptr<EventLoop> loop_;
  std::shared_ptr<CallCounter> calls_;
  std::unique_ptr<PeerDirectory> directory_;
  std::unique_ptr<HardwarePlaneClient> hardware_client_;
  std::unique_ptr<DistributedStateBackend> backend_;
  std::unique_ptr<PeerLinks> links_;
  std::unique_ptr<DaemonNodeContext> context_;
  std::unique_ptr<stack::NodeStack> stack_;
  std::unique_ptr<PeerMessageSink> sink_override_;
  std::unique_ptr<EntanglementService> entanglement_;  // goes before stack_
  std::unique_ptr<TeleportService> teleport_;          // goes before stack_
  std::unique_ptr<GhzService> ghz_;                    // goes before stack_
  std::unique_ptr<CircuitService> circuits_;           // goes before stack_
  std::unique_ptr<QkdService> qkd_;                    // goes before stack_
  std::unique_ptr<AccessPolicy> policy_;
  std::unique_ptr<KeyManager> key_manager_;
  std::shared_ptr<ClientRequestLimit> request_limit_ =
      std::make_shared<ClientRequestLimit>(options_.max_requests_per_client);
  std::shared_ptr<prometheus::Registry> metrics_registry_ = std::make_shared<prometheus::Registry>();
  std::unique_ptr<GrpcServerMetrics> grpc_metrics_;  // outlives server_ (its interceptors)
  std::unique_ptr<MetricsEndpoint> metrics_;
  std::string metrics_url_;  // set once, before the gRPC server starts
  // One scrape's collection on the loop at a time: one that timed out still
  // runs there, and another would only add to an overloaded loop.
  std::shared_ptr<std::atomic<bool>> collecting_ = std::make_shared<std::atomic<bool>>(false);
  std::unique_ptr<HardwarePlaneService> hardware_service_;
  std::unique_ptr<grpc::Service> node_service_;
  std::unique_ptr<ServerReflectionV1> reflection_v1_;
  std::unique_ptr<grpc::Server> server_;
  std::string listen_address_;
  int port_ = 0;
  bool shut_down_ = false;
};

// Node.Eavesdrop on a node's stack (loop thread): sets the eavesdropper on
// the link to request.neighbour (with `set`) and reports it. Outside Daemon
// so that the request path can be fuzzed without a server (fuzz/).
absl::StatusOr<v1::EavesdropResponse> HandleEavesdrop(stack::NodeStack& stack, const Logger& log,
                                                      const v1::EavesdropRequest& request);

}  // namespace qnet::daemon
