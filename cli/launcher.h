// Starts and stops a whole network of qnetd processes on this machine: one
// daemon per node of a network file, on 127.0.0.1 with free ports, sharing
// one simulated time line (zero at the launch, also across restarts). Shared
// by `qnetctl up`/`down` and the multi-process tests.
//
// State directory (default DefaultStateRoot()/<network name>/):
//   network          "name <network>", "file <absolute path of the network file>",
//                    "epoch_unix_ns <simulated time zero>", "seed <the daemons' --seed>"
//   peers            the peers file every daemon reads (--peers): "<node> <host:port>"
//   <node>.address   the daemon's bound HOST:PORT, then "metrics_port P" and
//                    "kme_port P" (its --ready-file)
//   <node>.pid       its process id
//   <node>.log       its stdout and stderr (appended across restarts)
//   prometheus.yml   a Prometheus scrape configuration for every daemon's
//                    metrics endpoint (with TLS: the monitor certificate
//                    pki/monitor-prometheus.crt/.key and the network's CA)
//
// LocalNetwork is RAII: unless Detach()ed, destroying it stops every daemon
// it started (SIGTERM, then SIGKILL after a grace period), so a failing test
// leaves no process behind. Daemons of a non-detached network also get
// SIGTERM if the launching thread dies.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "security/pki.h"

namespace qnet::cli {

struct LaunchOptions {
  std::string qnetd_path;    // the qnetd binary (required)
  std::string network_file;  // required
  std::string state_dir;     // empty: DefaultStateRoot()/<network name>
  double time_scale = 1.0;
  std::optional<uint64_t> seed;  // empty: the network file's
  std::string log_level = "info";
  std::vector<std::string> extra_args;  // appended to every qnetd command line
  absl::Duration ready_timeout = absl::Seconds(30);
  absl::Duration stop_grace = absl::Seconds(5);  // SIGTERM -> SIGKILL
  // Daemons keep running after this process exits (qnetctl up).
  bool detached = false;
  // No TLS: every daemon gets --insecure-local-only. By default the network
  // gets a PKI in <state_dir>/pki (made once, kept across restarts) and
  // every daemon its node certificate (--pki).
  bool insecure = false;
};

// How a daemon process ended.
struct ProcessExit {
  int exit_code = -1;  // when it exited
  int signal = 0;      // when a signal killed it
  bool killed_after_grace = false;
  bool clean() const { return exit_code == 0 && signal == 0; }
  std::string Describe() const;
};

// Whether the gRPC server at `address` reports SERVING on the standard
// health service. Unavailable if it cannot be reached within `timeout`.
// Channels come from security::ClientChannel (TLS for registered addresses).
absl::StatusOr<bool> CheckServing(const std::string& address, absl::Duration timeout = absl::Seconds(1));

class LocalNetwork {
 public:
  // Starts every daemon, writes the peers file once all have bound their
  // ports, and waits until every daemon reports SERVING. If a daemon dies or
  // the timeout passes, the others are stopped and the error carries the
  // failing daemon's log tail.
  static absl::StatusOr<std::unique_ptr<LocalNetwork>> Start(LaunchOptions options);
  ~LocalNetwork();
  LocalNetwork(const LocalNetwork&) = delete;
  LocalNetwork& operator=(const LocalNetwork&) = delete;

  const std::string& network_name() const { return network_name_; }
  const std::string& state_dir() const { return state_dir_; }
  // The run seed every daemon got (--seed): the options' or the file's.
  uint64_t seed() const { return seed_; }
  // <state_dir>/pki ("" for an insecure network).
  std::string pki_dir() const;
  // The operator's credentials for this network (null when insecure). Every
  // daemon's address is registered with them (security/client_endpoints.h),
  // so this process's clients reach the daemons over mutual TLS.
  std::shared_ptr<const security::TlsMaterial> operator_tls() const { return operator_tls_; }
  std::vector<std::string> nodes() const;
  // The node's KME (ETSI GS QKD 014 API), "" if it runs none: nodes named
  // by the network file's key_management get one (and a key store,
  // <state_dir>/<node>.keys.sqlite) unless the network is insecure.
  std::string KmeUrl(const std::string& node) const;
  // The node's Prometheus endpoint (https://127.0.0.1:PORT/metrics, http://
  // for an insecure network; the port is kept across restarts).
  std::string MetricsUrl(const std::string& node) const;
  // <state_dir>/prometheus.yml: scrapes every daemon of the network.
  std::string PrometheusConfigPath() const;
  // NotFound for an unknown node; FailedPrecondition if it is not running.
  absl::StatusOr<std::string> Address(const std::string& node) const;
  absl::StatusOr<pid_t> Pid(const std::string& node) const;
  bool IsRunning(const std::string& node);

  // Sends `signal` (SIGTERM by default; SIGKILL to crash it) and waits for
  // the process to end, escalating to SIGKILL after the grace period.
  absl::StatusOr<ProcessExit> StopNode(const std::string& node, int signal = 15);
  // Starts a stopped node again on its previous ports (fresh ones if one is
  // taken: the peers file and prometheus.yml are updated, the node's log
  // says so) and waits until it is SERVING.
  absl::Status StartNode(const std::string& node);
  // Stops every running daemon; the error lists any that did not exit 0.
  absl::Status StopAll();
  // Leaves the daemons running when this object is destroyed.
  void Detach() { detached_ = true; }

  // The last `lines` lines of the node's log.
  std::string LogTail(const std::string& node, int lines = 30) const;

 private:
  struct Daemon {
    std::string node;
    pid_t pid = -1;
    std::string address;
    int port = 0;
    bool kme = false;  // runs a key manager and its KME API
    int kme_port = 0;  // kept across restarts unless taken meanwhile
    int metrics_port = 0;  // kept likewise (Prometheus's targets)
  };
  explicit LocalNetwork(LaunchOptions options) : options_(std::move(options)) {}
  absl::Status Spawn(Daemon& daemon, int port);
  // Adds a launcher's line to the node's log, where its user looks.
  void AppendToLog(const std::string& node, const std::string& line) const;
  // Polls until every daemon in `which` wrote its address (when
  // `need_address`) and answers SERVING.
  absl::Status WaitReady(const std::vector<Daemon*>& which, absl::Time deadline);
  absl::Status WritePeers();
  absl::Status WritePrometheusConfig() const;
  // Reaps the daemon if it has exited; returns how.
  std::optional<ProcessExit> Reap(Daemon& daemon);
  std::string Path(const std::string& node, const std::string& suffix) const;

  LaunchOptions options_;
  std::string network_name_;
  std::string network_file_;  // absolute
  std::string state_dir_;
  uint64_t seed_ = 1;
  int64_t epoch_unix_ns_ = 0;  // every daemon's simulated time zero: the launch
  std::map<std::string, Daemon> daemons_;
  std::vector<std::string> order_;  // file order
  bool detached_ = false;
  std::shared_ptr<const security::TlsMaterial> operator_tls_;
};

// A port on 127.0.0.1 that was free a moment ago (bound and released).
absl::StatusOr<int> FreeLoopbackPort();

// Where networks started by `qnetctl up` keep their state, one directory per
// network name: $QNET_STATE_DIR, else $XDG_STATE_HOME/qnet, else
// ~/.local/state/qnet (durable: the PKI and the KMEs' key stores live there,
// so not under $XDG_RUNTIME_DIR, which is emptied at logout), else .qnet
// without a home directory.
std::string DefaultStateRoot();

// The last `lines` lines of a text file ("" if it cannot be read).
std::string FileTail(const std::string& path, int lines = 30);

// For `qnetctl down`: stops the daemons recorded in a state directory (not
// children of this process): SIGTERM, then SIGKILL after `grace`.
absl::Status StopStateDir(const std::string& state_dir, absl::Duration grace = absl::Seconds(5));

// For `qnetctl ls`: the nodes whose daemon recorded in a state directory
// runs now (a live qnetd with that pid), in name order.
std::vector<std::string> RunningNodes(const std::string& state_dir);

}  // namespace qnet::cli
