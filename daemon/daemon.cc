#include "daemon/daemon.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <deque>
#include <mutex>
#include <type_traits>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/certificate_advert_authenticator.h"
#include "daemon/raw_messages.h"
#include "qnet/v1/hardware_service.grpc.pb.h"
#include "qnet/v1/key_management_service.grpc.pb.h"
#include "qnet/v1/peer_service.grpc.pb.h"
#include "security/grpc_tls.h"

namespace qnet::daemon {
namespace {

// A listen address on the loopback interface only (what an insecure daemon
// may bind): localhost, [::1] or a numeric 127.0.0.0/8 address (not a name
// such as 127.0.0.1.example.com, which could resolve anywhere).
bool IsLoopback(const std::string& address) {
  const std::string host = address.substr(0, address.rfind(':'));
  in_addr ipv4{};
  return host == "localhost" || host == "[::1]" ||
         (inet_pton(AF_INET, host.c_str(), &ipv4) == 1 && (ntohl(ipv4.s_addr) >> 24) == 127);
}

// Binds `address` ("host:port", IPv6 in brackets) once and lets it go, so a
// port that is taken gets a message that says so, rather than gRPC's own
// log of nested errors. Port 0 (any free port) needs no check.
absl::Status CheckListenAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--listen ", address, " is not HOST:PORT"));
  }
  std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  if (port == "0") return absl::OkStatus();
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int e = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found); e != 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot listen on ", address, ": ", gai_strerror(e)));
  }
  // As gRPC: a name that resolves to several addresses (localhost: ::1 and
  // 127.0.0.1) is fine if one of them binds, unless a port is taken.
  int bound = 0, last_error = 0;
  bool taken = false;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) {
      last_error = errno;
      continue;
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // as gRPC does: TIME_WAIT is no clash
    if (bind(fd, a->ai_addr, a->ai_addrlen) == 0) {
      ++bound;
    } else {
      last_error = errno;
      taken = taken || last_error == EADDRINUSE;
    }
    close(fd);
  }
  freeaddrinfo(found);
  if (taken) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address, ": ", std::strerror(EADDRINUSE),
                                               " (another process has the port: pick another, or 0 for any free one)"));
  }
  if (bound == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address, ": ", std::strerror(last_error),
                                               last_error == EADDRNOTAVAIL ? " (not an address of this machine)" : ""));
  }
  return absl::OkStatus();
}

// Wall-clock seconds a message between two local daemons may take.
constexpr double kWallMessageLatencyBudgetS = 0.02;
// Wall-clock seconds between re-floods of a node's link-state advert.
constexpr double kAdvertRefreshWallS = 30;

// Lag beyond a tenth of the node's shortest one-way classical delay counts
// as behind: it stretches the round trips the protocols pace themselves by
// (heralds, confirmations, swap outcomes) by more than a tenth. A node
// without links has no round trips to stretch: 1 us.
Duration LagBound(const DaemonTopology& topology) {
  Duration shortest = Duration::max();
  for (const NeighbourLink& n : topology.neighbours) shortest = std::min(shortest, n.classical_delay());
  if (shortest == Duration::max() || shortest <= Duration(0)) return std::chrono::microseconds(1);
  return std::max(shortest / 10, Duration(1));
}

grpc::Status ToGrpc(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

// One server-streaming call (Entangle, Teleport, Qkd), raw on the wire
// (raw_messages.h): events are serialised as they are pushed. gRPC threads
// (OnWriteDone, OnCancel, OnDone) and the loop thread (events) meet under
// the Outbox's mutex; the loop side holds a shared_ptr to the Outbox, which
// outlives the reactor and drops what comes after OnDone.
template <typename Event>
class StreamingCall final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  struct Outbox {
    std::mutex mu;
    StreamingCall* reactor = nullptr;  // null once the call is done
    std::deque<grpc::ByteBuffer> pending;
    bool writing = false;
    std::optional<grpc::Status> finish;  // to send once the writes drain
    bool finished = false;

    void Push(const Event& event) {
      grpc::ByteBuffer wire = SerializeMessage(event);
      std::lock_guard lock(mu);
      if (reactor == nullptr || finished || finish.has_value()) return;
      pending.push_back(std::move(wire));
      if (!writing) {
        writing = true;
        reactor->StartWrite(&pending.front());
      }
    }
    void End(grpc::Status status) {
      std::lock_guard lock(mu);
      if (reactor == nullptr || finished || finish.has_value()) return;
      finish = std::move(status);
      if (!writing) {
        finished = true;
        reactor->Finish(*finish);
      }
    }
  };
  // Runs on the loop: starts the work, streaming through `push` and ending
  // once through `end`; returns what cancels it (run on the loop when the
  // client goes away), or an error to end the call with at once.
  using Cancel = std::function<void()>;
  using Starter = std::function<absl::StatusOr<Cancel>(std::function<void(Event)> push,
                                                       std::function<void(absl::Status)> end)>;

  // A call refused before any work (authorisation, the client's limit):
  // finished here, on the gRPC thread, so a refused client costs the event
  // loop nothing.
  explicit StreamingCall(grpc::Status refused) : outbox_(std::make_shared<Outbox>()) {
    outbox_->reactor = this;
    outbox_->finished = true;
    this->Finish(std::move(refused));
  }
  // `ticket`: the client's slot (client_request_limit.h), held until the call is done.
  StreamingCall(std::shared_ptr<LoopPoster> poster, Starter starter, std::shared_ptr<void> ticket = nullptr)
      : outbox_(std::make_shared<Outbox>()), poster_(std::move(poster)), ticket_(std::move(ticket)) {
    outbox_->reactor = this;
    auto outbox = outbox_;
    auto cancel = cancel_;
    bool posted = poster_->Post([outbox, cancel, starter = std::move(starter)] {
      absl::StatusOr<Cancel> started =
          starter([outbox](Event e) { outbox->Push(e); },
                  [outbox](absl::Status s) { outbox->End(ToGrpc(s)); });
      if (!started.ok()) {
        outbox->End(ToGrpc(started.status()));
        return;
      }
      *cancel = *std::move(started);
    });
    if (!posted) {
      std::lock_guard lock(outbox_->mu);
      outbox_->finished = true;
      this->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the daemon is shutting down"));
    }
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(outbox_->mu);
    outbox_->pending.pop_front();
    if (!ok) {
      // The stream broke (the client went away); OnCancel cancels the work.
      outbox_->writing = false;
      outbox_->pending.clear();
      if (!outbox_->finished) {
        outbox_->finished = true;
        this->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
      }
      return;
    }
    if (!outbox_->pending.empty()) {
      this->StartWrite(&outbox_->pending.front());
      return;
    }
    outbox_->writing = false;
    if (outbox_->finish.has_value() && !outbox_->finished) {
      outbox_->finished = true;
      this->Finish(*outbox_->finish);
    }
  }

  void OnCancel() override {
    // The client went away (or its deadline passed): cancel the work.
    auto cancel = cancel_;
    if (poster_ != nullptr) {  // null for a call refused before any work
      poster_->Post([cancel] {
        if (*cancel) (*cancel)();
      });
    }
    std::lock_guard lock(outbox_->mu);
    if (!outbox_->finished && !outbox_->writing) {
      outbox_->finished = true;
      this->Finish(grpc::Status::CANCELLED);
    }
  }

  void OnDone() override {
    {
      std::lock_guard lock(outbox_->mu);
      outbox_->reactor = nullptr;
    }
    delete this;
  }

 private:
  std::shared_ptr<Outbox> outbox_;
  std::shared_ptr<LoopPoster> poster_;
  std::shared_ptr<void> ticket_;
  // Loop thread only (empty until the work started).
  std::shared_ptr<Cancel> cancel_ = std::make_shared<Cancel>();
};

// Every Node method raw (raw_messages.h: an unparseable request gets
// INVALID_ARGUMENT, not gRPC's bare UNIMPLEMENTED).
using RawNodeService = v1::Node::WithRawCallbackMethod_GetStatus<v1::Node::WithRawCallbackMethod_Entangle<
    v1::Node::WithRawCallbackMethod_GetOutcomes<v1::Node::WithRawCallbackMethod_MeasureQubit<
        v1::Node::WithRawCallbackMethod_GetRoutes<v1::Node::WithRawCallbackMethod_Teleport<
            v1::Node::WithRawCallbackMethod_Eavesdrop<v1::Node::WithRawCallbackMethod_Qkd<
                v1::Node::WithRawCallbackMethod_GetKey<v1::Node::WithRawCallbackMethod_GetKeyPools<
                    v1::Node::WithRawCallbackMethod_Ghz<v1::Node::WithRawCallbackMethod_RunCircuit<
                        v1::Node::Service>>>>>>>>>>>>;

// The Node service: every handler runs on the loop and only translates
// between gRPC and the node stack's services. Requests are authorised, then
// parsed.
class NodeService final : public RawNodeService {
 public:
  NodeService(Daemon& daemon, std::shared_ptr<LoopPoster> poster, std::shared_ptr<ClientRequestLimit> limit)
      : daemon_(daemon), poster_(std::move(poster)), limit_(std::move(limit)) {}

  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override {
    return Unary<v1::GetStatusRequest>(context, "GetStatus", *request, response,
                                       [](Daemon& d, const v1::GetStatusRequest&) -> absl::StatusOr<v1::GetStatusResponse> {
                                         return d.Status();
                                       });
  }

  grpc::ServerWriteReactor<grpc::ByteBuffer>* Entangle(grpc::CallbackServerContext* context,
                                                        const grpc::ByteBuffer* request) override {
    return Streaming<v1::EntangleEvent, v1::EntangleRequest>(
        context, "Entangle", *request, [](Daemon& d, const v1::EntangleRequest& r, auto push, auto end) {
          return CancelFor(d.entanglement(),
                           d.entanglement().Entangle(r, {.event = std::move(push), .end = std::move(end)}));
        });
  }

  grpc::ServerWriteReactor<grpc::ByteBuffer>* Teleport(grpc::CallbackServerContext* context,
                                                        const grpc::ByteBuffer* request) override {
    return Streaming<v1::TeleportEvent, v1::TeleportRequest>(
        context, "Teleport", *request, [](Daemon& d, const v1::TeleportRequest& r, auto push, auto end) {
          return CancelFor(d.teleport(), d.teleport().Teleport(r, {.event = std::move(push), .end = std::move(end)}));
        });
  }

  grpc::ServerWriteReactor<grpc::ByteBuffer>* Ghz(grpc::CallbackServerContext* context,
                                                   const grpc::ByteBuffer* request) override {
    return Streaming<v1::GhzEvent, v1::GhzRequest>(
        context, "Ghz", *request, [](Daemon& d, const v1::GhzRequest& r, auto push, auto end) {
          return CancelFor(d.ghz(), d.ghz().Ghz(r, {.event = std::move(push), .end = std::move(end)}));
        });
  }

  grpc::ServerWriteReactor<grpc::ByteBuffer>* RunCircuit(grpc::CallbackServerContext* context,
                                                          const grpc::ByteBuffer* request) override {
    return Streaming<v1::RunCircuitEvent, v1::RunCircuitRequest>(
        context, "RunCircuit", *request, [](Daemon& d, const v1::RunCircuitRequest& r, auto push, auto end) {
          return CancelFor(d.circuits(),
                           d.circuits().RunCircuit(r, {.event = std::move(push), .end = std::move(end)}));
        });
  }

  grpc::ServerWriteReactor<grpc::ByteBuffer>* Qkd(grpc::CallbackServerContext* context,
                                                   const grpc::ByteBuffer* request) override {
    return Streaming<v1::QkdEvent, v1::QkdRequest>(
        context, "Qkd", *request, [](Daemon& d, const v1::QkdRequest& r, auto push, auto end) {
          return CancelFor(d.qkd(), d.qkd().Qkd(r, {.event = std::move(push), .end = std::move(end)}));
        });
  }

  grpc::ServerUnaryReactor* GetOutcomes(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override {
    return Unary<v1::GetOutcomesRequest>(
        context, "GetOutcomes", *request, response,
        [](Daemon& d, const v1::GetOutcomesRequest& r) { return d.entanglement().Outcomes(r); });
  }

  grpc::ServerUnaryReactor* MeasureQubit(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                         grpc::ByteBuffer* response) override {
    // Completes on the loop once the device has measured (after its
    // measurement time, and a move of the pair's state if it is elsewhere).
    return UnaryAsync<v1::MeasureQubitRequest, v1::MeasureQubitResponse>(
        context, "MeasureQubit", *request, response, [](Daemon& d, const v1::MeasureQubitRequest& r, auto finish) {
          d.entanglement().MeasureQubit(r, std::move(finish));
        });
  }

  grpc::ServerUnaryReactor* GetRoutes(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override {
    return Unary<v1::GetRoutesRequest>(context, "GetRoutes", *request, response,
                                       [](Daemon& d, const v1::GetRoutesRequest&) { return d.Routes(); });
  }

  grpc::ServerUnaryReactor* GetKey(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override {
    return Unary<v1::GetKeyRequest>(context, "GetKey", *request, response,
                                    [](Daemon& d, const v1::GetKeyRequest& r) { return d.qkd().GetKey(r); });
  }

  grpc::ServerUnaryReactor* GetKeyPools(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override {
    // Answered off the loop: the key manager reads its own store.
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    absl::Status allowed = daemon_.policy().AuthorizeClient(*context, "GetKeyPools");
    if (allowed.ok()) allowed = ParseRequest<v1::GetKeyPoolsRequest>(*request, "GetKeyPools").status();
    if (!allowed.ok()) {
      reactor->Finish(ToGrpc(allowed));
      return reactor;
    }
    *response = SerializeMessage(daemon_.KeyPools());
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* Eavesdrop(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override {
    return Unary<v1::EavesdropRequest>(context, "Eavesdrop", *request, response,
                                       [](Daemon& d, const v1::EavesdropRequest& r) { return d.Eavesdrop(r); });
  }

 private:
  // A unary call answered on the loop: once authorised and parsed,
  // `run(daemon, request, finish)` calls finish(StatusOr<Response>) once, now
  // or later (still on the loop).
  template <typename Request, typename Response, typename Run>
  grpc::ServerUnaryReactor* UnaryAsync(grpc::CallbackServerContext* context, absl::string_view method,
                                       const grpc::ByteBuffer& raw, grpc::ByteBuffer* response, Run run) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    if (absl::Status allowed = daemon_.policy().AuthorizeClient(*context, method); !allowed.ok()) {
      reactor->Finish(ToGrpc(allowed));
      return reactor;
    }
    absl::StatusOr<Request> request = ParseRequest<Request>(raw, method);
    if (!request.ok()) {
      reactor->Finish(ToGrpc(request.status()));
      return reactor;
    }
    Daemon* daemon = &daemon_;
    bool posted =
        poster_->Post([daemon, reactor, response, request = *std::move(request), run = std::move(run)]() mutable {
          run(*daemon, request, [reactor, response](absl::StatusOr<Response> result) {
            if (!result.ok()) return reactor->Finish(ToGrpc(result.status()));
            *response = SerializeMessage(*result);
            reactor->Finish(grpc::Status::OK);
          });
        });
    if (!posted) reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the daemon is shutting down"));
    return reactor;
  }
  // A unary call whose answer `compute(daemon, request)` returns at once on the loop.
  template <typename Request, typename Compute>
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context, absl::string_view method,
                                  const grpc::ByteBuffer& raw, grpc::ByteBuffer* response, Compute compute) {
    using Response = typename std::invoke_result_t<Compute, Daemon&, const Request&>::value_type;
    return UnaryAsync<Request, Response>(
        context, method, raw, response,
        [compute = std::move(compute)](Daemon& d, const Request& r, auto finish) { finish(compute(d, r)); });
  }

  // A server-streaming call whose work `start(daemon, request, push, end)`
  // starts on the loop once the call is authorised, admitted and parsed; it
  // returns the Cancel for the client going away.
  template <typename Event, typename Request, typename Start>
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Streaming(grpc::CallbackServerContext* context,
                                                        absl::string_view method, const grpc::ByteBuffer& raw,
                                                        Start start) {
    using Call = StreamingCall<Event>;
    absl::Status allowed = daemon_.policy().AuthorizeClient(*context, method);
    if (!allowed.ok()) return new Call(ToGrpc(allowed));
    absl::StatusOr<Request> request = ParseRequest<Request>(raw, method);
    if (!request.ok()) return new Call(ToGrpc(request.status()));
    absl::StatusOr<ClientRequestLimit::Ticket> ticket = limit_->Admit(daemon_.policy().ClientName(*context), method);
    if (!ticket.ok()) {
      QNET_LOG(daemon_.log(), kWarn, "%s", ticket.status().message());
      return new Call(ToGrpc(ticket.status()));
    }
    Daemon* d = &daemon_;
    return new Call(
        poster_,
        [d, request = *std::move(request), start = std::move(start)](std::function<void(Event)> push,
                                                                     std::function<void(absl::Status)> end)
            -> absl::StatusOr<typename Call::Cancel> { return start(*d, request, std::move(push), std::move(end)); },
        *std::move(ticket));
  }

  // A started call's handle becomes the Cancel run when the client goes away.
  template <typename Service, typename Handle>
  static absl::StatusOr<std::function<void()>> CancelFor(Service& service, absl::StatusOr<Handle> id) {
    if (!id.ok()) return id.status();
    return std::function<void()>([&service, id = *id] { service.Cancel(id); });
  }

  Daemon& daemon_;
  std::shared_ptr<LoopPoster> poster_;
  std::shared_ptr<ClientRequestLimit> limit_;
};

}  // namespace

Daemon::Daemon(DaemonOptions options)
    : options_(std::move(options)), log_(options_.topology.self, options_.log_level, options_.log_format) {}

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
  loop_->lag().Configure(topology.self, LagBound(topology));
  if (options_.epoch_unix_ns.has_value() && *options_.epoch_unix_ns != loop_->epoch_unix_ns()) {
    // Its neighbours, given the same epoch, will refuse this node's Hello.
    QNET_LOG(log_, kWarn,
             "--epoch-unix-ns %d lies %.3f s in this host's future: the simulated clock starts now instead, and "
             "neighbours started with that epoch will refuse this node; check this host's clock (NTP)",
             *options_.epoch_unix_ns, (*options_.epoch_unix_ns - loop_->epoch_unix_ns()) * 1e-9);
  }
  if (options_.tls.has_value()) {
    absl::StatusOr<security::Identity> own = security::IdentityOfCertificate(options_.tls->cert_pem);
    if (!own.ok()) return absl::InvalidArgumentError(absl::StrCat("the daemon's certificate: ", own.status().message()));
    const security::Identity want{.network = topology.network, .role = security::Role::kNode, .node = topology.self,
                                  .name = topology.self};
    if (*own != want) {
      return absl::InvalidArgumentError(absl::StrCat("the daemon's certificate names ", security::Describe(*own),
                                                     " of network '", own->network, "', not node '", topology.self,
                                                     "' of network '", topology.network, "'"));
    }
  } else if (!IsLoopback(options_.listen_address)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "without TLS a daemon listens on the loopback interface only, not ", options_.listen_address,
        " (give it a certificate: --pki DIR, or --tls-cert/--tls-key/--tls-ca)"));
  }
  policy_ = std::make_unique<AccessPolicy>(topology, options_.tls.has_value(), log_);
  calls_ = std::make_shared<CallCounter>();
  directory_ = std::make_unique<PeerDirectory>(options_.peers_file, options_.peer_addresses, options_.tls);
  hardware_client_ = std::make_unique<HardwarePlaneClient>(topology.self, *directory_, loop_->poster(), calls_,
                                                           options_.move_deadline);
  backend_ = std::make_unique<DistributedStateBackend>(*loop_, log_, topology.self, topology.nodes,
                                                       *hardware_client_);
  // At least five heartbeats per silence limit, so that a few late ones do
  // not take a healthy link down.
  PeerLinkTiming peer_timing = options_.peer_timing;
  peer_timing.heartbeat_interval = std::min(peer_timing.heartbeat_interval, peer_timing.silence_limit / 5);
  links_ = std::make_unique<PeerLinks>(*loop_, *directory_, log_, topology, calls_, peer_timing);
  context_ = std::make_unique<DaemonNodeContext>(topology.self, options_.seed, *loop_, *links_);

  // The loop is not running yet, so building the node here is still
  // single-threaded.
  if (options_.network == nullptr) {
    return absl::FailedPreconditionError("the daemon needs the network file (--network)");
  }
  stack::NodeStackOptions stack_options;
  // The key store holds the authentication pools too, so it opens before
  // the stack is built (keydist/authentication.h, "Restarts").
  if (!options_.kme_listen.empty() && options_.key_store.empty()) {
    return absl::InvalidArgumentError("--kme-listen needs a key store (--key-store FILE)");
  }
  if (!options_.key_store.empty() && !options_.tls) {
    return absl::FailedPreconditionError(
        "the key manager (--key-store, --kme-listen) needs TLS: SAEs and peer KMEs are authenticated by the "
        "network's certificates (--pki DIR, or --tls-cert/--tls-key/--tls-ca)");
  }
  std::shared_ptr<kme::KeyVault> vault;
  if (!options_.key_store.empty()) {
    absl::StatusOr<std::unique_ptr<kme::KeyVault>> opened = kme::KeyVault::Open(options_.key_store);
    if (!opened.ok()) {
      return absl::Status(opened.status().code(), absl::StrCat("the key store: ", opened.status().message()));
    }
    vault = *std::move(opened);
    stack_options.authentication_store = std::make_shared<VaultAuthenticationPoolStore>(vault);
  }
  // Messages between daemons take real time (gRPC, scheduling: a few ms of
  // wall time), which is S times as much simulated time: the link layer's
  // retransmission timeout and herald watchdog must not start below that,
  // or live generations are abandoned as lost. (The link layer's ack wait,
  // half this floor, is added to the timeout on top of the round trips.)
  stack_options.link.min_retransmit_timeout = std::max(
      stack_options.link.min_retransmit_timeout, FromSeconds(kWallMessageLatencyBudgetS * options_.time_scale));
  // Re-flooding adverts is only a safety net here (peer streams are reliable
  // and in order, and a neighbour that comes up gets the whole database), so
  // its period is wall time: a simulated one floods every advert through the
  // whole network S times as often (64 idle daemons of a grid at S = 100:
  // ~10% of a core each).
  stack_options.network.advert_refresh =
      std::max(stack_options.network.advert_refresh, FromSeconds(kAdvertRefreshWallS * options_.time_scale));
  // Advert sequence numbers start from wall-clock microseconds, which run
  // on across restarts of this node even when its simulated clock (epoch)
  // starts over. Refused adverts are worth a line in the log each.
  stack_options.network.adverts.sequence_clock = [] {
    return static_cast<uint64_t>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
               .count()));
  };
  // With TLS every advert carries its origin's signature (node certificate).
  if (options_.tls) {
    auto adverts = CertificateAdvertAuthenticator::Create(*options_.tls, topology.network);
    if (!adverts.ok()) return adverts.status();
    stack_options.network.adverts.authenticator = *std::move(adverts);
  }
  stack_options.network.adverts.on_refused = [this](const std::string&, const std::string& why) {
    QNET_LOG(log_, kWarn, "%s", why);
  };
  // Every node of a path logs its circuits under the same id, so that one
  // request can be followed across the daemons (qnetctl logs --request).
  stack_options.network.on_circuit = [this](const network::CircuitRecord& c) {
    const LogFields fields = {{"layer", "network"}, {"circuit", c.id}};
    const std::string role = c.position == 0 ? "as the requester"
                             : c.position + 1 == c.path.size()
                                 ? "as the far end"
                                 : absl::StrCat("as repeater ", c.position, " of ", c.path.size() - 2);
    if (!c.ended) {
      QNET_LOG_WITH(log_, kInfo, fields, "circuit %s installed here %s (path %s, %d pairs)", c.id, role,
                    absl::StrJoin(c.path, "-"), c.pairs);
    } else if (c.position == 0 || c.position + 1 == c.path.size()) {
      QNET_LOG_WITH(log_, kInfo, fields, "circuit %s ended: %s; %d pairs delivered here", c.id, c.outcome,
                    c.delivered);
    } else {
      QNET_LOG_WITH(log_, kInfo, fields, "circuit %s ended: %s", c.id, c.outcome);
    }
  };
  absl::StatusOr<std::unique_ptr<stack::NodeStack>> built =
      stack::NodeStack::Build(*context_, *backend_, *options_.network, std::move(stack_options));
  if (!built.ok()) {
    return absl::Status(built.status().code(), absl::StrCat("building the protocol stack of '", topology.self,
                                                            "': ", built.status().message()));
  }
  stack_ = *std::move(built);
  if (options_.peer_sink_override) sink_override_ = options_.peer_sink_override();
  links_->SetSink(&peer_sink());
  entanglement_ = std::make_unique<EntanglementService>(*context_, stack_->link(), &stack_->network(),
                                                        stack_->device(), topology, loop_->lag(), log_,
                                                        options_.keep_hold);
  if (absl::Status s = entanglement_->Start(); !s.ok()) return s;
  entanglement_->EnableProgress(
      [loop](std::chrono::milliseconds after, std::function<void()> fire) {
        loop->StartWallTimer(after, std::move(fire));
      },
      loop_->time_scale());
  teleport_ = std::make_unique<TeleportService>(*context_, stack_->transport(), stack_->network(), stack_->device(),
                                                &stack_->device(), loop_->lag(), log_);
  if (absl::Status s = teleport_->Start(); !s.ok()) return s;
  teleport_->EnableProgress([loop](std::chrono::milliseconds after, std::function<void()> fire) {
    loop->StartWallTimer(after, std::move(fire));
  });
  ghz_ = std::make_unique<GhzService>(*context_, stack_->ghz(), loop_->lag(), log_);
  circuits_ = std::make_unique<CircuitService>(*context_, stack_->circuits(), loop_->lag(), log_);
  auto wall_timer = [loop](std::chrono::milliseconds after, std::function<void()> fire) {
    loop->StartWallTimer(after, std::move(fire));
  };
  ghz_->EnableProgress(wall_timer);
  circuits_->EnableProgress(wall_timer);
  qkd_ = std::make_unique<QkdService>(*stack_, loop_->lag(), log_);

  hardware_service_ = std::make_unique<HardwarePlaneService>(*backend_, loop_->poster(), *policy_);
  links_->SetAccessPolicy(policy_.get());
  node_service_ = std::make_unique<NodeService>(*this, loop_->poster(), request_limit_);
  if (!options_.key_store.empty()) {
    absl::StatusOr<std::unique_ptr<KeyManager>> manager =
        KeyManager::Start({.store = options_.key_store, .vault = vault, .kme_listen = options_.kme_listen},
                          *options_.network,
                          topology.self, *stack_, *loop_, *directory_, *options_.tls, *policy_, log_);
    if (!manager.ok()) return manager.status();
    key_manager_ = *std::move(manager);
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  if (!options_.metrics_listen.empty()) {
    if (!options_.tls && !IsLoopback(options_.metrics_listen)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "without TLS the metrics endpoint listens on the loopback interface only, not ", options_.metrics_listen));
    }
    // Scrapes that come before the loop runs wait for it (or get a 503).
    absl::StatusOr<std::unique_ptr<MetricsEndpoint>> metrics = MetricsEndpoint::Start(
        {.listen = options_.metrics_listen, .network = topology.network, .tls = options_.tls},
        [this] { return CollectMetrics(); });
    if (!metrics.ok()) return metrics.status();
    metrics_ = *std::move(metrics);
    metrics_url_ = metrics_->url();
    grpc_metrics_ = std::make_unique<GrpcServerMetrics>(*metrics_registry_, topology.self);
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
    interceptors.push_back(grpc_metrics_->InterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
  }
  // gRPC sets SO_REUSEPORT by default, which would let a second daemon bind
  // the same port and share its connections: a taken port must fail.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (absl::Status free = CheckListenAddress(options_.listen_address); !free.ok()) return free;
  builder.SetMaxReceiveMessageSize(kMaxGrpcMessageBytes);  // peer_directory.h: what a caller can make us parse
  builder.AddListeningPort(options_.listen_address,
                           options_.tls ? security::ServerCredentials(*options_.tls) : grpc::InsecureServerCredentials(),
                           &port_);
  // qnet's services, one list for registration, health and reflection.
  // Node last: the launcher waits for its health, so by then every other
  // one is set.
  std::vector<std::pair<grpc::Service*, std::string>> qnet_services = {
      {links_->service(), v1::Peer::service_full_name()},
      {hardware_service_.get(), v1::HardwarePlane::service_full_name()}};
  if (key_manager_) qnet_services.emplace_back(key_manager_->service(), v1::KeyManagement::service_full_name());
  qnet_services.emplace_back(node_service_.get(), v1::Node::service_full_name());
  std::vector<std::string> qnet_service_names;
  for (const auto& [service, name] : qnet_services) {
    builder.RegisterService(service);
    qnet_service_names.push_back(name);
  }
  // Reflection v1 beside Debian's v1alpha: the same schema, for the clients
  // that ask v1 first. Like v1alpha and health, any caller the transport
  // admitted may read it: it tells the schema, never the node's state.
  std::vector<std::string> reflected = qnet_service_names;
  reflected.insert(reflected.end(), {"grpc.health.v1.Health", grpc::reflection::v1::ServerReflection::service_full_name(),
                                     "grpc.reflection.v1alpha.ServerReflection"});
  reflection_v1_ = std::make_unique<ServerReflectionV1>(std::move(reflected));
  builder.RegisterService(reflection_v1_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.listen_address,
                                               " (address in use, or not a HOST:PORT of this machine?)"));
  }
  std::string host = options_.listen_address.substr(0, options_.listen_address.rfind(':'));
  listen_address_ = absl::StrCat(host, ":", port_);
  // Health per service name too (grpc.health.v1 Check with service
  // "qnet.v1.Node" and so on), not only the server's "" entry: load
  // balancers and Kubernetes probes ask for a service by name.
  if (auto* health = server_->GetHealthCheckService()) {
    for (const std::string& name : qnet_service_names) health->SetServingStatus(name, true);
  }

  loop_->Start();
  PeerLinks* links = links_.get();
  loop_->Post([links] { links->Start(); });
  QNET_LOG(log_, kInfo, "qnetd for node %s of network %s listening on %s (time scale %g, seed %d; %s)", topology.self,
           topology.network, listen_address_, options_.time_scale, options_.seed, TransportSecurity());
  if (!metrics_url_.empty()) QNET_LOG(log_, kInfo, "metrics at %s", metrics_url_);
  if (!options_.tls) {
    QNET_LOG(log_, kWarn, "insecure-local-only: plaintext, no authentication; any local process can use this daemon");
  }
  return absl::OkStatus();
}

Daemon::~Daemon() { Shutdown(); }

void Daemon::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (loop_ == nullptr) {
    metrics_.reset();
    return;
  }
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
  metrics_.reset();  // its scrapes read the loop: gone before the loop stops
  key_manager_.reset();  // its service is no longer called; it may still post to the loop
  loop_->Stop();
  // Loop-owned objects go now: the services first (they refer to the stack).
  // Cancels still queued for them were dropped with the loop's work above.
  qkd_.reset();
  circuits_.reset();
  ghz_.reset();
  teleport_.reset();
  entanglement_.reset();
  sink_override_.reset();
  stack_.reset();
}

v1::GetKeyPoolsResponse Daemon::KeyPools() const {
  v1::GetKeyPoolsResponse out;
  if (key_manager_) {
    out = key_manager_->Pools();
  } else {
    out.set_disabled_reason(options_.tls ? "no key store (--key-store): this node keeps no key pools"
                                         : "insecure-local-only: the key manager needs TLS");
  }
  // Every SAE of the network file, whether or not this node runs a KME.
  for (const config::SaeConfig& sae : options_.network->key_management.saes) {
    v1::SaeEntry* e = out.add_saes();
    e->set_name(sae.name);
    e->set_node(sae.node);
  }
  return out;
}

absl::StatusOr<v1::EavesdropResponse> Daemon::Eavesdrop(const v1::EavesdropRequest& request) {
  return HandleEavesdrop(*stack_, log_, request);
}

absl::StatusOr<v1::EavesdropResponse> HandleEavesdrop(stack::NodeStack& stack, const Logger& log,
                                                      const v1::EavesdropRequest& request) {
  physical::PhysicalLayer& physical = stack.physical();
  if (request.set()) {
    if (request.photon_number_splitting() && request.fraction() > 0) {
      return absl::InvalidArgumentError(
          "photon-number splitting and intercept-resend at once: set the fraction to 0 for the PNS attack");
    }
    // Off first, so a switch between the two attacks passes either order.
    if (!request.photon_number_splitting()) {
      if (absl::Status s = physical.SetPhotonNumberSplitting(request.neighbour(), false); !s.ok()) return s;
    }
    absl::StatusOr<bool> here = physical.SetEavesdropperFraction(request.neighbour(), request.fraction());
    if (!here.ok()) return here.status();
    if (request.photon_number_splitting()) {
      if (absl::Status s = physical.SetPhotonNumberSplitting(request.neighbour(), true); !s.ok()) return s;
      QNET_LOG(log, kWarn, "photon-number-splitting eavesdropper on the photons to %s: ON", request.neighbour());
    } else {
      QNET_LOG(log, kWarn, "eavesdropper on the link to %s set to %g (%s)", request.neighbour(), request.fraction(),
               *here ? "in force: this node hosts the station" : "recorded: the far end hosts the station");
    }
  }
  absl::StatusOr<physical::LinkEavesdropper> eve = physical.Eavesdropper(request.neighbour());
  if (!eve.ok()) return eve.status();
  v1::EavesdropResponse out;
  out.set_node(stack.node_name());
  out.set_link(eve->link);
  out.set_station_here(eve->station_here);
  out.set_fraction(eve->fraction);
  out.set_pairs_seen(eve->stats.pairs_seen);
  out.set_pairs_intercepted(eve->stats.pairs_intercepted);
  out.set_photon_number_splitting(eve->photon_number_splitting);
  if (absl::StatusOr<physical::PhotonLinkStats> photons = physical.PhotonStats(request.neighbour()); photons.ok()) {
    out.set_pulses_sent(photons->pulses_sent);
    out.set_pulses_split(photons->pulses_intercepted);
    out.set_pulses_blocked(photons->pulses_blocked);
    out.set_photons_delivered(photons->photons_delivered);
  }
  return out;
}

absl::StatusOr<v1::GetRoutesResponse> Daemon::Routes() {
  const network::NetworkLayer& net = stack_->network();
  v1::GetRoutesResponse out;
  out.set_node(node());
  for (const network::RouteEntry& e : net.RoutingTable()) {
    v1::RouteEntry* r = out.add_routes();
    r->set_destination(e.destination);
    r->set_next_hop(e.next_hop);
    for (const std::string& n : e.route.path) r->add_path(n);
    r->set_cost(e.route.cost);
    for (double f : e.route.link_fidelity) r->add_link_fidelity(f);
    r->set_best_fidelity(network::ChainFidelity(e.route, net.routes(), -1.0, Duration(0)));
  }
  out.set_adverts_refused(net.stats().adverts_refused);
  out.set_adverts_unauthenticated(net.stats().adverts_unauthenticated);
  out.set_last_advert_refusal(net.advert_stats().last_refusal);
  for (const v1::LinkStateAdvert* a : net.routes().All()) {
    v1::LinkStateEntry* entry = out.add_adverts();
    entry->set_origin(a->origin());
    entry->set_sequence(a->sequence());
    for (const v1::LinkAdvert& l : a->links()) {
      if (l.up()) entry->add_up_links(l.neighbour());
    }
  }
  return out;
}

int Daemon::metrics_port() const { return metrics_ ? metrics_->port() : 0; }

std::string Daemon::TransportSecurity() const {
  if (options_.tls) return absl::StrCat("mutual TLS (CA of network ", options_.topology.network, ")");
  return "insecure-local-only: plaintext on the loopback interface, no authentication";
}

v1::GetStatusResponse Daemon::Status() {
  v1::GetStatusResponse status;
  const DaemonTopology& topology = options_.topology;
  status.set_node(topology.self);
  status.set_network(topology.network);
  status.set_transport_security(TransportSecurity());
  status.set_metrics_url(MetricsUrl());
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
  status.set_memory_qubits_in_use(stack_->memory_qubits_in_use());
  status.set_qubits_held(static_cast<uint32_t>(backend_->system().qubit_count()));
  status.set_groups_held(static_cast<uint32_t>(backend_->system().group_count()));
  status.set_pid(getpid());
  status.set_listen_address(listen_address_);
  *status.mutable_lag() = loop_->lag().Recent(LagMonitor::Clock::now());
  return status;
}

}  // namespace qnet::daemon
