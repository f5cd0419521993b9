#include "cli/launcher.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <google/protobuf/wrappers.pb.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/security/credentials.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "security/client_endpoints.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "config/network_config.h"
#include "config/peers_file.h"
#include "core/status.h"

namespace qnet::cli {
namespace fs = std::filesystem;
namespace {

constexpr absl::Duration kPollInterval = absl::Milliseconds(20);

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The process is alive (not a zombie) and runs a qnetd binary: guards
// against signalling a recycled pid.
bool IsLiveQnetd(pid_t pid) {
  if (pid <= 0 || kill(pid, 0) != 0) return false;
  std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  auto close = stat.rfind(')');
  if (close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z') return false;
  std::string cmdline = ReadFile(absl::StrCat("/proc/", pid, "/cmdline"));
  std::string argv0 = cmdline.substr(0, cmdline.find('\0'));
  return fs::path(argv0).filename().string().find("qnetd") != std::string::npos;
}

std::optional<pid_t> ReadPid(const std::string& path) {
  std::string text(absl::StripAsciiWhitespace(ReadFile(path)));
  int pid = 0;
  if (text.empty() || !absl::SimpleAtoi(text, &pid) || pid <= 0) return std::nullopt;
  return pid;
}

ProcessExit FromWaitStatus(int status) {
  ProcessExit exit;
  if (WIFEXITED(status)) exit.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) exit.signal = WTERMSIG(status);
  return exit;
}

}  // namespace

std::string ProcessExit::Describe() const {
  std::string what = signal != 0 ? absl::StrCat("killed by signal ", signal, " (", strsignal(signal), ")")
                                 : absl::StrCat("exited with code ", exit_code);
  if (killed_after_grace) absl::StrAppend(&what, " after ignoring SIGTERM for the grace period");
  return what;
}

namespace {

// One health check in flight (grpc.health.v1 messages without their
// generated code: HealthCheckRequest's `string service = 1` is a
// StringValue on the wire, and HealthCheckResponse's `ServingStatus status =
// 1` an Int32Value's `value = 1`, 1 = SERVING). It asks for the Node
// service by name: the daemon marks it SERVING once every service is up,
// while the server's "" entry is SERVING from the moment it binds.
struct HealthCall {
  using Stub = grpc::TemplatedGenericStub<google::protobuf::StringValue, google::protobuf::Int32Value>;
  explicit HealthCall(const std::string& address) : address(address), stub(security::ClientChannel(address)) {
    request.set_value("qnet.v1.Node");
  }
  std::string address;
  Stub stub;
  grpc::ClientContext context;
  google::protobuf::StringValue request;
  google::protobuf::Int32Value response;
  grpc::Status status;
};

// Checks all addresses at once, each on its own channel, and waits for every
// answer: a large network's launch waits about one check, not one per daemon
// in turn (64 daemons checked one after the other took 2 s under load).
std::vector<absl::StatusOr<bool>> CheckServingAll(const std::vector<std::string>& addresses,
                                                  absl::Duration timeout) {
  std::mutex mu;
  std::condition_variable all_done;
  size_t done = 0;
  std::vector<std::unique_ptr<HealthCall>> calls;
  const auto deadline = absl::ToChronoTime(absl::Now() + timeout);
  for (const std::string& address : addresses) {
    HealthCall* call = calls.emplace_back(std::make_unique<HealthCall>(address)).get();
    call->context.set_deadline(deadline);
    call->stub.UnaryCall(&call->context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &call->request,
                         &call->response, [&, call](grpc::Status status) {
                           std::lock_guard<std::mutex> lock(mu);
                           call->status = std::move(status);
                           ++done;
                           all_done.notify_all();
                         });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    all_done.wait(lock, [&] { return done == calls.size(); });
  }
  std::vector<absl::StatusOr<bool>> serving;
  for (const auto& call : calls) {
    if (!call->status.ok()) {
      serving.push_back(absl::UnavailableError(
          absl::StrCat("health check of ", call->address, ": ", call->status.error_message())));
    } else {
      serving.push_back(call->response.value() == 1);
    }
  }
  return serving;
}

}  // namespace

absl::StatusOr<bool> CheckServing(const std::string& address, absl::Duration timeout) {
  return CheckServingAll({address}, timeout).front();
}

std::string DefaultStateRoot() {
  auto set = [](const char* name) -> std::string {
    const char* value = std::getenv(name);
    return value != nullptr ? value : "";
  };
  if (std::string dir = set("QNET_STATE_DIR"); !dir.empty()) return dir;
  if (std::string dir = set("XDG_STATE_HOME"); !dir.empty()) return (fs::path(dir) / "qnet").string();
  if (std::string home = set("HOME"); !home.empty()) return (fs::path(home) / ".local" / "state" / "qnet").string();
  return ".qnet";
}

absl::StatusOr<int> FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  if (port == 0) return absl::UnavailableError("no free port on 127.0.0.1 for a KME");
  return port;
}

std::string LocalNetwork::KmeUrl(const std::string& node) const {
  auto it = daemons_.find(node);
  if (it == daemons_.end() || !it->second.kme || it->second.kme_port == 0) return "";
  return absl::StrCat("https://127.0.0.1:", it->second.kme_port);
}

std::string LocalNetwork::MetricsUrl(const std::string& node) const {
  auto it = daemons_.find(node);
  if (it == daemons_.end() || it->second.metrics_port == 0) return "";
  return absl::StrCat(options_.insecure ? "http" : "https", "://127.0.0.1:", it->second.metrics_port, "/metrics");
}

std::string LocalNetwork::PrometheusConfigPath() const { return (fs::path(state_dir_) / "prometheus.yml").string(); }

absl::Status LocalNetwork::WritePrometheusConfig() const {
  // One job; each target carries its node's name. The daemons' certificates
  // name 127.0.0.1 too, so Prometheus verifies them against the network's CA
  // as they are reached.
  std::string yml = absl::StrCat(
      "# Written by qnetctl up for network ", network_name_,
      ": scrapes every daemon's metrics endpoint.\n"
      "# prometheus --config.file=", PrometheusConfigPath(), " --storage.tsdb.path=DIR\n"
      "global:\n  scrape_interval: 5s\n"
      "scrape_configs:\n  - job_name: qnet\n");
  if (!options_.insecure) {
    const fs::path pki = fs::absolute(pki_dir());
    const std::string stem = security::CertificateStem(security::DefaultMonitor(network_name_));
    absl::StrAppend(&yml, "    scheme: https\n    tls_config:\n      ca_file: ", (pki / "ca.crt").string(),
                    "\n      cert_file: ", (pki / (stem + ".crt")).string(), "\n      key_file: ",
                    (pki / (stem + ".key")).string(), "\n");
  }
  absl::StrAppend(&yml, "    static_configs:\n");
  for (const std::string& name : order_) {
    const Daemon& d = daemons_.at(name);
    absl::StrAppend(&yml, "      - targets: ['127.0.0.1:", d.metrics_port, "']\n        labels: {qnet_node: '", name,
                    "'}\n");
  }
  return config::WriteFileAtomically(PrometheusConfigPath(), yml);
}

std::string LocalNetwork::Path(const std::string& node, const std::string& suffix) const {
  return (fs::path(state_dir_) / (node + suffix)).string();
}

std::string FileTail(const std::string& path, int lines) {
  std::ifstream in(path);
  std::deque<std::string> tail;
  std::string line;
  while (std::getline(in, line)) {
    tail.push_back(line);
    if (static_cast<int>(tail.size()) > lines) tail.pop_front();
  }
  return absl::StrJoin(tail, "\n");
}

std::string LocalNetwork::LogTail(const std::string& node, int lines) const {
  return FileTail(Path(node, ".log"), lines);
}

absl::StatusOr<std::unique_ptr<LocalNetwork>> LocalNetwork::Start(LaunchOptions options) {
  if (options.qnetd_path.empty() || access(options.qnetd_path.c_str(), X_OK) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("qnetd binary '", options.qnetd_path, "' is not executable"));
  }
  auto network = config::LoadNetworkFile(options.network_file);
  if (!network.ok()) return network.status();

  std::unique_ptr<LocalNetwork> net(new LocalNetwork(options));
  net->network_name_ = network->name;
  net->network_file_ = fs::absolute(options.network_file).lexically_normal().string();
  net->seed_ = options.seed.value_or(network->seed.value_or(1));
  net->state_dir_ =
      options.state_dir.empty() ? (fs::path(DefaultStateRoot()) / network->name).string() : options.state_dir;
  net->epoch_unix_ns_ = absl::ToUnixNanos(absl::Now());
  std::error_code ec;
  fs::create_directories(net->state_dir_, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot create state directory ", net->state_dir_, ": ", ec.message()));
  }
  for (const config::NodeConfig& node : network->nodes) {
    if (auto pid = ReadPid(net->Path(node.name, ".pid")); pid && IsLiveQnetd(*pid)) {
      return absl::AlreadyExistsError(absl::StrCat("network '", network->name, "' is already running from ",
                                                   net->state_dir_, " (node ", node.name, " is pid ", *pid,
                                                   "); stop it first (qnetctl down)"));
    }
  }
  for (const config::NodeConfig& node : network->nodes) {
    for (const char* suffix : {".pid", ".address", ".log"}) fs::remove(net->Path(node.name, suffix), ec);
    net->order_.push_back(node.name);
    net->daemons_[node.name].node = node.name;
  }
  fs::remove(fs::path(net->state_dir_) / "peers", ec);
  if (!options.insecure) {
    std::vector<std::string> names;
    for (const config::NodeConfig& node : network->nodes) names.push_back(node.name);
    QNET_RETURN_IF_ERROR(security::InitNetworkPki(net->pki_dir(), network->name, names));
    absl::StatusOr<security::TlsMaterial> tls =
        security::LoadTls(net->pki_dir(), security::DefaultOperator(network->name));
    if (!tls.ok()) return tls.status();
    net->operator_tls_ = std::make_shared<const security::TlsMaterial>(*std::move(tls));
    // Every SAE of the network file gets its app certificate once (kept
    // across restarts, like the node certificates).
    for (const config::SaeConfig& sae : network->key_management.saes) {
      const security::Identity app{.network = network->name, .role = security::Role::kApp, .node = sae.node,
                                   .name = sae.name};
      const fs::path cert = fs::path(net->pki_dir()) / (security::CertificateStem(app) + ".crt");
      if (fs::exists(cert)) continue;
      absl::StatusOr<fs::path> issued = security::IssueCertificate(net->pki_dir(), app);
      if (!issued.ok()) return issued.status();
    }
    // The scraper's certificate for the prometheus.yml written below.
    const security::Identity monitor = security::DefaultMonitor(network->name);
    if (!fs::exists(fs::path(net->pki_dir()) / (security::CertificateStem(monitor) + ".crt"))) {
      absl::StatusOr<fs::path> issued = security::IssueCertificate(net->pki_dir(), monitor);
      if (!issued.ok()) return issued.status();
    }
    // Nodes with a key pool or an SAE run a key manager and its KME API.
    for (const config::KeyPoolConfig& pool : network->key_management.pools) {
      net->daemons_[pool.node_a].kme = true;
      net->daemons_[pool.node_b].kme = true;
    }
    for (const config::SaeConfig& sae : network->key_management.saes) net->daemons_[sae.node].kme = true;
  }
  if (absl::Status s = config::WriteFileAtomically(
          (fs::path(net->state_dir_) / "network").string(),
          absl::StrCat("name ", net->network_name_, "\nfile ", net->network_file_, "\nepoch_unix_ns ",
                       net->epoch_unix_ns_, "\nseed ", net->seed_, "\n"));
      !s.ok()) {
    return s;
  }

  std::vector<Daemon*> all;
  for (const std::string& name : net->order_) {
    Daemon& d = net->daemons_[name];
    if (absl::Status s = net->Spawn(d, 0); !s.ok()) return s;  // the destructor stops those started
    all.push_back(&d);
  }
  const absl::Time deadline = absl::Now() + options.ready_timeout;
  if (absl::Status s = net->WaitReady(all, deadline); !s.ok()) return s;
  if (absl::Status s = net->WritePrometheusConfig(); !s.ok()) return s;
  // Only a network that came up is left running: a failed launch is always
  // torn down by the destructor.
  net->detached_ = options.detached;
  return net;
}

LocalNetwork::~LocalNetwork() {
  if (!detached_) (void)StopAll();
}

std::vector<std::string> LocalNetwork::nodes() const { return order_; }

std::string LocalNetwork::pki_dir() const {
  if (options_.insecure) return "";
  return (fs::path(state_dir_) / "pki").string();
}

absl::StatusOr<std::string> LocalNetwork::Address(const std::string& node) const {
  auto it = daemons_.find(node);
  if (it == daemons_.end()) return absl::NotFoundError(absl::StrCat("no node '", node, "' in ", network_name_));
  if (it->second.pid < 0 || it->second.address.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("node '", node, "' is not running"));
  }
  return it->second.address;
}

absl::StatusOr<pid_t> LocalNetwork::Pid(const std::string& node) const {
  auto it = daemons_.find(node);
  if (it == daemons_.end()) return absl::NotFoundError(absl::StrCat("no node '", node, "' in ", network_name_));
  if (it->second.pid < 0) return absl::FailedPreconditionError(absl::StrCat("node '", node, "' is not running"));
  return it->second.pid;
}

bool LocalNetwork::IsRunning(const std::string& node) {
  auto it = daemons_.find(node);
  if (it == daemons_.end() || it->second.pid < 0) return false;
  return !Reap(it->second).has_value();
}

absl::Status LocalNetwork::Spawn(Daemon& d, int port) {
  std::error_code ec;
  fs::remove(Path(d.node, ".address"), ec);
  d.address.clear();
  std::vector<std::string> args = {
      options_.qnetd_path,
      "--network", network_file_,
      "--node", d.node,
      "--listen", absl::StrCat("127.0.0.1:", port),
      "--peers", (fs::path(state_dir_) / "peers").string(),
      "--time-scale", absl::StrCat(options_.time_scale),
      "--seed", absl::StrCat(seed_),
      "--epoch-unix-ns", absl::StrCat(epoch_unix_ns_),
      "--log-level", options_.log_level,
      "--ready-file", Path(d.node, ".address"),
  };
  if (options_.insecure) {
    args.push_back("--insecure-local-only");
  } else {
    args.insert(args.end(), {"--pki", pki_dir()});
  }
  // The first start takes any free port (the daemon binds port 0 and names
  // the port in its ready file: a port picked here could be taken by another
  // daemon before this one binds it). Restarts keep the port: it is
  // Prometheus's target, and SAEs find their KME there again.
  args.insert(args.end(), {"--metrics-listen", absl::StrCat("127.0.0.1:", d.metrics_port)});
  if (d.kme) {
    args.insert(args.end(), {"--key-store", Path(d.node, ".keys.sqlite"), "--kme-listen",
                             absl::StrCat("127.0.0.1:", d.kme_port)});
  }
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::string log_path = Path(d.node, ".log");
  int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return absl::InternalError(absl::StrCat("cannot open ", log_path, ": ", std::strerror(errno)));
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = getpid();
  const bool detached = options_.detached;
  // vfork, not fork: the child borrows this process's memory until it execs
  // instead of getting a copy of its page tables, which on this VM took ~30 ms
  // per daemon (2 of the 6 s a 64-daemon network took to come up). Until the
  // exec the child makes system calls only. Every signal stays blocked
  // around vfork so that no handler of this process runs in the child on the
  // shared memory.
  sigset_t all_signals, saved_mask;
  sigfillset(&all_signals);
  pthread_sigmask(SIG_SETMASK, &all_signals, &saved_mask);
  pid_t pid = vfork();
  if (pid == 0) {
    if (!detached) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(1);
    }
    setsid();  // away from the terminal's Ctrl-C; `down` or the parent stops it
    if (null_fd >= 0) dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    // The child's handler table is its own copy: reset this process's
    // handlers before unblocking (exec would reset them, but only then).
    for (int sig = 1; sig < NSIG; ++sig) {
      struct sigaction action;
      if (sigaction(sig, nullptr, &action) == 0 && action.sa_handler != SIG_DFL && action.sa_handler != SIG_IGN) {
        signal(sig, SIG_DFL);
      }
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(argv[0], argv.data());
    static const char kMsg[] = "launcher: exec of qnetd failed\n";
    (void)!write(2, kMsg, sizeof(kMsg) - 1);
    _exit(127);
  }
  const int vfork_error = errno;
  pthread_sigmask(SIG_SETMASK, &saved_mask, nullptr);
  if (pid < 0) {
    close(log_fd);
    if (null_fd >= 0) close(null_fd);
    return absl::InternalError(absl::StrCat("vfork: ", std::strerror(vfork_error)));
  }
  close(log_fd);
  if (null_fd >= 0) close(null_fd);
  d.pid = pid;
  return config::WriteFileAtomically(Path(d.node, ".pid"), absl::StrCat(pid, "\n"));
}

std::optional<ProcessExit> LocalNetwork::Reap(Daemon& d) {
  if (d.pid < 0) return ProcessExit{};
  int status = 0;
  pid_t r = waitpid(d.pid, &status, WNOHANG);
  if (r == 0) return std::nullopt;
  ProcessExit exit = r == d.pid ? FromWaitStatus(status) : ProcessExit{};
  d.pid = -1;
  std::error_code ec;
  fs::remove(Path(d.node, ".pid"), ec);
  return exit;
}

absl::Status LocalNetwork::WritePeers() {
  config::PeerAddresses peers;
  for (const auto& [name, d] : daemons_) {
    if (!d.address.empty()) peers[name] = d.address;
  }
  return config::WritePeersFile((fs::path(state_dir_) / "peers").string(), peers);
}

absl::Status LocalNetwork::WaitReady(const std::vector<Daemon*>& which, absl::Time deadline) {
  // Phase 1: every daemon has bound its port; then the peers file can be
  // written. Phase 2: every daemon answers SERVING.
  for (int phase = 1; phase <= 2; ++phase) {
    std::vector<Daemon*> waiting = which;
    while (!waiting.empty()) {
      for (Daemon* d : waiting) {
        if (auto exit = Reap(*d); exit.has_value()) {
          return absl::FailedPreconditionError(absl::StrCat("qnetd for node ", d->node, " ", exit->Describe(),
                                                            " before it was ready; the end of ",
                                                            Path(d->node, ".log"), ":\n", LogTail(d->node)));
        }
      }
      std::vector<bool> ready(waiting.size(), false);
      if (phase == 1) {
        for (size_t i = 0; i < waiting.size(); ++i) {
          Daemon& d = *waiting[i];
          // Written atomically: HOST:PORT, then "metrics_port P", "kme_port P".
          const std::vector<std::string> lines =
              absl::StrSplit(ReadFile(Path(d.node, ".address")), '\n', absl::SkipWhitespace());
          const std::string address = lines.empty() ? "" : std::string(absl::StripAsciiWhitespace(lines[0]));
          auto colon = address.rfind(':');
          if (colon != std::string::npos && absl::SimpleAtoi(address.substr(colon + 1), &d.port)) {
            for (size_t l = 1; l < lines.size(); ++l) {
              const std::vector<std::string> kv = absl::StrSplit(lines[l], ' ', absl::SkipWhitespace());
              if (kv.size() != 2) continue;
              if (kv[0] == "metrics_port") (void)absl::SimpleAtoi(kv[1], &d.metrics_port);
              if (kv[0] == "kme_port") (void)absl::SimpleAtoi(kv[1], &d.kme_port);
            }
            d.address = address;
            security::RegisterEndpoint(address, {.node = d.node, .tls = operator_tls_});
            ready[i] = true;
          }
        }
      } else {
        std::vector<std::string> addresses;
        for (Daemon* d : waiting) addresses.push_back(d->address);
        std::vector<absl::StatusOr<bool>> serving = CheckServingAll(addresses, absl::Seconds(1));
        for (size_t i = 0; i < waiting.size(); ++i) ready[i] = serving[i].ok() && *serving[i];
      }
      std::vector<Daemon*> still;
      for (size_t i = 0; i < waiting.size(); ++i) {
        if (!ready[i]) still.push_back(waiting[i]);
      }
      waiting = std::move(still);
      if (waiting.empty()) break;
      if (absl::Now() > deadline) {
        std::string names;
        for (Daemon* d : waiting) absl::StrAppend(&names, names.empty() ? "" : ", ", d->node);
        return absl::DeadlineExceededError(absl::StrCat(
            "qnetd for ", names, phase == 1 ? " did not bind its port" : " did not report SERVING",
            " within ", absl::FormatDuration(options_.ready_timeout), "; the end of ",
            Path(waiting.front()->node, ".log"), ":\n", LogTail(waiting.front()->node)));
      }
      absl::SleepFor(kPollInterval);
    }
    if (phase == 1) QNET_RETURN_IF_ERROR(WritePeers());
  }
  return absl::OkStatus();
}

absl::StatusOr<ProcessExit> LocalNetwork::StopNode(const std::string& node, int signal) {
  auto it = daemons_.find(node);
  if (it == daemons_.end()) return absl::NotFoundError(absl::StrCat("no node '", node, "' in ", network_name_));
  Daemon& d = it->second;
  if (d.pid < 0) return absl::FailedPreconditionError(absl::StrCat("node '", node, "' is not running"));
  if (auto exit = Reap(d)) return *exit;  // it had already ended
  kill(d.pid, signal);
  const absl::Time give_up = absl::Now() + options_.stop_grace;
  while (absl::Now() < give_up) {
    if (auto exit = Reap(d)) return *exit;
    absl::SleepFor(absl::Milliseconds(5));
  }
  kill(d.pid, SIGKILL);
  int status = 0;
  waitpid(d.pid, &status, 0);
  ProcessExit exit = FromWaitStatus(status);
  exit.killed_after_grace = true;
  d.pid = -1;
  std::error_code ec;
  fs::remove(Path(d.node, ".pid"), ec);
  return exit;
}

void LocalNetwork::AppendToLog(const std::string& node, const std::string& line) const {
  std::ofstream(Path(node, ".log"), std::ios::app) << line << "\n";
}

absl::Status LocalNetwork::StartNode(const std::string& node) {
  auto it = daemons_.find(node);
  if (it == daemons_.end()) return absl::NotFoundError(absl::StrCat("no node '", node, "' in ", network_name_));
  Daemon& d = it->second;
  if (IsRunning(node)) return absl::FailedPreconditionError(absl::StrCat("node '", node, "' is running"));
  const std::string old_address = d.address;
  const int old_metrics_port = d.metrics_port;
  const int old_kme_port = d.kme_port;
  const absl::Time deadline = absl::Now() + options_.ready_timeout;
  QNET_RETURN_IF_ERROR(Spawn(d, d.port));
  absl::Status ready = WaitReady({&d}, deadline);
  if (!ready.ok() && d.pid < 0) {
    // Most likely one of the old ports was taken meanwhile (while the node
    // was down, any process's connect() may draw it as its ephemeral port).
    // Fresh ports for all three: the neighbours find the new address in the
    // peers file, Prometheus in prometheus.yml; the log says so.
    AppendToLog(node, absl::StrCat("launcher: node ", node, " could not restart on its old ports; restarting it on fresh ports"));
    d.metrics_port = 0;
    d.kme_port = 0;
    QNET_RETURN_IF_ERROR(Spawn(d, 0));
    ready = WaitReady({&d}, deadline);
  }
  if (!ready.ok()) {
    if (d.pid >= 0) (void)StopNode(node, SIGKILL);
    return ready;
  }
  if (d.metrics_port != old_metrics_port) QNET_RETURN_IF_ERROR(WritePrometheusConfig());
  if (d.metrics_port != old_metrics_port || d.kme_port != old_kme_port) {
    AppendToLog(node, absl::StrCat("launcher: node ", node, " restarted with metrics port ", d.metrics_port,
                                   d.kme ? absl::StrCat(" and KME port ", d.kme_port) : "", " (before: ",
                                   old_metrics_port, d.kme ? absl::StrCat(", ", old_kme_port) : "", ")"));
  }
  if (d.address != old_address) return WritePeers();
  return absl::OkStatus();
}

absl::Status LocalNetwork::StopAll() {
  for (auto& [name, d] : daemons_) {
    if (d.pid >= 0 && !Reap(d).has_value()) kill(d.pid, SIGTERM);
  }
  std::vector<std::string> problems;
  const absl::Time give_up = absl::Now() + options_.stop_grace;
  for (auto& [name, d] : daemons_) {
    if (d.pid < 0) continue;
    std::optional<ProcessExit> exit;
    while (!(exit = Reap(d)).has_value() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
    if (!exit.has_value()) {
      kill(d.pid, SIGKILL);
      int status = 0;
      waitpid(d.pid, &status, 0);
      exit = FromWaitStatus(status);
      exit->killed_after_grace = true;
      d.pid = -1;
      std::error_code ec;
      fs::remove(Path(name, ".pid"), ec);
    }
    if (!exit->clean()) problems.push_back(absl::StrCat(name, " ", exit->Describe()));
  }
  if (!problems.empty()) {
    return absl::InternalError(absl::StrCat("daemons did not stop cleanly: ", absl::StrJoin(problems, "; ")));
  }
  return absl::OkStatus();
}

absl::Status StopStateDir(const std::string& state_dir, absl::Duration grace) {
  std::error_code ec;
  if (!fs::is_directory(state_dir, ec)) {
    return absl::NotFoundError(absl::StrCat("no state directory ", state_dir, " (is the network running?)"));
  }
  std::vector<std::pair<fs::path, pid_t>> running;
  for (const auto& entry : fs::directory_iterator(state_dir, ec)) {
    if (entry.path().extension() != ".pid") continue;
    auto pid = ReadPid(entry.path().string());
    if (pid && IsLiveQnetd(*pid)) {
      kill(*pid, SIGTERM);
      running.emplace_back(entry.path(), *pid);
    } else {
      fs::remove(entry.path(), ec);
    }
  }
  const absl::Time give_up = absl::Now() + grace;
  std::vector<std::string> killed;
  for (const auto& [path, pid] : running) {
    while (IsLiveQnetd(pid) && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(10));
    if (IsLiveQnetd(pid)) {
      kill(pid, SIGKILL);
      killed.push_back(path.stem().string());
    }
    fs::remove(path, ec);
  }
  if (!killed.empty()) {
    return absl::DeadlineExceededError(absl::StrCat("killed ", absl::StrJoin(killed, ", "), " with SIGKILL after ",
                                                    absl::FormatDuration(grace), " (it ignored SIGTERM)"));
  }
  return absl::OkStatus();
}

std::vector<std::string> RunningNodes(const std::string& state_dir) {
  std::vector<std::string> nodes;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(state_dir, ec)) {
    if (entry.path().extension() != ".pid") continue;
    if (auto pid = ReadPid(entry.path().string()); pid && IsLiveQnetd(*pid)) nodes.push_back(entry.path().stem());
  }
  std::sort(nodes.begin(), nodes.end());
  return nodes;
}

}  // namespace qnet::cli
