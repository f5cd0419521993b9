#include "daemon/daemon.h"

#include <unistd.h>

#include <cmath>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"

namespace qnet::daemon {
namespace {

class NodeService final : public v1::Node::CallbackService {
 public:
  NodeService(Daemon& daemon, std::shared_ptr<LoopPoster> poster) : daemon_(daemon), poster_(std::move(poster)) {}

  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context, const v1::GetStatusRequest*,
                                      v1::GetStatusResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    Daemon* daemon = &daemon_;
    bool posted = poster_->Post([daemon, reactor, response] {
      *response = daemon->Status();
      reactor->Finish(grpc::Status::OK);
    });
    if (!posted) reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the daemon is shutting down"));
    return reactor;
  }

 private:
  Daemon& daemon_;
  std::shared_ptr<LoopPoster> poster_;
};

}  // namespace

Daemon::Daemon(DaemonOptions options)
    : options_(std::move(options)), log_(options_.topology.self, options_.log_level) {}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(DaemonOptions options) {
  std::unique_ptr<Daemon> daemon(new Daemon(std::move(options)));
  absl::Status started = daemon->Init();
  if (!started.ok()) {
    daemon->Shutdown();
    return started;
  }
  return daemon;
}

absl::Status Daemon::Init() {
  const DaemonTopology& topology = options_.topology;
  if (absl::Status valid = topology.Validate(); !valid.ok()) return valid;
  if (!(options_.time_scale > 0) || !std::isfinite(options_.time_scale)) {
    return absl::InvalidArgumentError(absl::StrCat("time scale must be a positive number, got ",
                                                   options_.time_scale));
  }
  loop_ = std::make_unique<EventLoop>(options_.time_scale, options_.epoch_unix_ns);
  EventLoop* loop = loop_.get();
  log_.set_clock([loop] { return loop->Now(); });
  calls_ = std::make_shared<CallCounter>();
  directory_ = std::make_unique<PeerDirectory>(options_.peers_file, options_.peer_addresses);
  hardware_client_ = std::make_unique<HardwarePlaneClient>(topology.self, *directory_, loop_->poster(), calls_,
                                                           options_.move_deadline);
  backend_ = std::make_unique<DistributedStateBackend>(*loop_, log_, topology.self, topology.nodes,
                                                       *hardware_client_);
  links_ = std::make_unique<PeerLinks>(*loop_, *directory_, log_, topology, calls_, options_.peer_timing);
  context_ = std::make_unique<DaemonNodeContext>(topology.self, options_.seed, *loop_, *links_);

  // The loop is not running yet, so building the stack here is still
  // single-threaded.
  StackFactory factory = options_.stack_factory ? options_.stack_factory : DefaultStackFactory();
  StackEnvironment env{*context_, *backend_, topology, options_.network.get(), log_};
  absl::StatusOr<StackHandle> stack = factory(env);
  if (!stack.ok()) {
    return absl::Status(stack.status().code(),
                        absl::StrCat("building the protocol stack of '", topology.self, "': ",
                                     stack.status().message()));
  }
  if (stack->sink == nullptr) return absl::InternalError("the stack factory returned no stack");
  stack_ = *std::move(stack);
  links_->SetSink(stack_.sink.get());

  hardware_service_ = std::make_unique<HardwarePlaneService>(*backend_, loop_->poster());
  node_service_ = std::make_unique<NodeService>(*this, loop_->poster());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default, which would let a second daemon bind
  // the same port and share its connections: a taken port must fail.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(options_.listen_address, grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(links_->service());
  builder.RegisterService(hardware_service_.get());
  builder.RegisterService(node_service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.listen_address,
                                               " (address in use, or not a HOST:PORT of this machine?)"));
  }
  std::string host = options_.listen_address.substr(0, options_.listen_address.rfind(':'));
  listen_address_ = absl::StrCat(host, ":", port_);

  loop_->Start();
  PeerLinks* links = links_.get();
  loop_->Post([links] { links->Start(); });
  QNET_LOG(log_, kInfo, "qnetd for node %s of network %s listening on %s (time scale %g, seed %d)", topology.self,
           topology.network, listen_address_, options_.time_scale, options_.seed);
  return absl::OkStatus();
}

Daemon::~Daemon() { Shutdown(); }

void Daemon::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (loop_ == nullptr) return;
  const std::string reason = absl::StrCat("node ", options_.topology.self, " is shutting down");
  if (server_ != nullptr) {
    PeerLinks* links = links_.get();
    DistributedStateBackend* backend = backend_.get();
    loop_->Call([links, backend, &reason] {
      links->CloseAll(reason);
      backend->Shutdown();
    });
    if (auto* health = server_->GetHealthCheckService()) health->SetServingStatus(false);
    // Streams get a moment to say Goodbye and finish; then the rest is cancelled.
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    hardware_client_->CancelAll();
    loop_->Call([links] { links->AbortAll(); });
    if (!calls_->WaitForZero(std::chrono::seconds(3))) {
      QNET_LOG(log_, kWarn, "%d gRPC calls still open at shutdown", calls_->count());
    }
    server_->Wait();
    QNET_LOG(log_, kInfo, "stopped");
  }
  loop_->Stop();
  // Loop-owned objects go now, the stack first (it refers to the others).
  stack_ = StackHandle{};
}

v1::GetStatusResponse Daemon::Status() {
  v1::GetStatusResponse status;
  const DaemonTopology& topology = options_.topology;
  status.set_node(topology.self);
  status.set_network(topology.network);
  status.set_uptime_s(std::chrono::duration<double>(WallClock::now() - loop_->created_at()).count());
  status.set_time_scale(loop_->time_scale());
  status.set_simulated_time_s(SecondsSinceEpoch(loop_->Now()));
  for (const NeighbourState& n : links_->Neighbours()) {
    v1::NeighbourStatus* out = status.add_neighbours();
    out->set_name(n.name);
    out->set_link(n.link);
    out->set_connected(n.connected);
    auto address = directory_->Lookup(n.name);
    if (address.ok()) out->set_address(*address);
    out->set_classical_delay_s(ToSeconds(n.classical_delay));
  }
  status.set_memory_qubits(topology.memory_qubits);
  status.set_memory_qubits_in_use(stack_.memory_qubits_in_use ? stack_.memory_qubits_in_use() : 0);
  status.set_qubits_held(static_cast<uint32_t>(backend_->system().qubit_count()));
  status.set_groups_held(static_cast<uint32_t>(backend_->system().group_count()));
  status.set_pid(getpid());
  status.set_listen_address(listen_address_);
  return status;
}

}  // namespace qnet::daemon
