// qnetd: runs one node's daemon until SIGTERM/SIGINT. See --help.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "config/network_config.h"
#include "config/peers_file.h"
#include "daemon/daemon.h"
#include "daemon/qnetd_flags.h"

namespace {

int Run(int argc, char** argv) {
  using namespace qnet::daemon;
  // Signals are taken synchronously by this thread (sigwait); blocking them
  // before any thread starts keeps them away from gRPC's and the loop's.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // Debian's Abseil checks every absl::Mutex (gRPC's locks) for lock-order
  // cycles, which costs several percent of the daemon's CPU on the message path.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  auto flags = ParseQnetdFlags(std::vector<std::string>(argv + 1, argv + argc));
  if (!flags.ok()) {
    std::fprintf(stderr, "qnetd: error: %s\n", std::string(flags.status().message()).c_str());
    return 2;
  }
  if (flags->help) {
    std::fputs(QnetdUsage().c_str(), stdout);
    return 0;
  }
  auto network = qnet::config::LoadNetworkFile(flags->network_file);
  if (!network.ok()) {
    std::fprintf(stderr, "qnetd: error: %s\n", std::string(network.status().message()).c_str());
    return 1;
  }
  auto topology = TopologyFromConfig(*network, flags->node);
  if (!topology.ok()) {
    std::fprintf(stderr, "qnetd: error: %s\n", std::string(topology.status().message()).c_str());
    return 1;
  }
  DaemonOptions options;
  options.topology = *std::move(topology);
  options.seed = flags->seed.value_or(network->seed.value_or(1));
  options.network = std::make_shared<const qnet::config::NetworkConfig>(*std::move(network));
  options.listen_address = flags->listen;
  options.peers_file = flags->peers_file;
  options.peer_addresses = flags->peers;
  options.time_scale = flags->time_scale;
  options.keep_hold = qnet::FromSeconds(flags->keep_hold_s);
  options.max_requests_per_client = flags->max_requests_per_client;
  options.peer_timing.silence_limit = std::chrono::duration_cast<qnet::daemon::WallClock::duration>(
      std::chrono::duration<double>(flags->peer_timeout_s));
  options.peer_timing.max_frames_per_second = flags->max_peer_frames_per_second;
  options.epoch_unix_ns = flags->epoch_unix_ns;
  options.log_level = flags->log_level;
  options.log_format = flags->log_format;
  options.key_store = flags->key_store;
  options.kme_listen = flags->kme_listen;
  options.metrics_listen = flags->metrics_listen;
  if (!flags->insecure_local_only) {
    const qnet::security::Identity self{.network = options.topology.network, .role = qnet::security::Role::kNode,
                                        .node = options.topology.self, .name = options.topology.self};
    auto tls = flags->pki_dir.empty()
                   ? qnet::security::LoadTlsFiles(flags->tls_ca, flags->tls_cert, flags->tls_key)
                   : qnet::security::LoadTls(flags->pki_dir, self);
    if (!tls.ok()) {
      std::fprintf(stderr, "qnetd: error: %s\n", std::string(tls.status().message()).c_str());
      return 1;
    }
    options.tls = *std::move(tls);
  }

  auto daemon = Daemon::Start(std::move(options));
  if (!daemon.ok()) {
    std::fprintf(stderr, "qnetd: error: %s\n", std::string(daemon.status().message()).c_str());
    return 1;
  }
  // For a person at a terminal; JSON logs stay one object per line (the log
  // already has the address).
  const bool text = flags->log_format == LogFormat::kText;
  if (text) {
    std::printf("qnetd %s listening on %s\n", (*daemon)->node().c_str(), (*daemon)->listen_address().c_str());
    if (auto* kme = (*daemon)->key_manager(); kme != nullptr && !kme->url().empty()) {
      std::printf("qnetd %s KME (ETSI GS QKD 014) at %s\n", (*daemon)->node().c_str(), kme->url().c_str());
    }
    std::fflush(stdout);
  }
  if (!flags->ready_file.empty()) {
    // The first line is the gRPC address; the ports the daemon picked for
    // its other endpoints follow (the launcher asks for port 0 and learns
    // them here: a port chosen for it beforehand can be taken meanwhile).
    std::string ready = absl::StrCat((*daemon)->listen_address(), "\n");
    if (const int port = (*daemon)->metrics_port(); port != 0) absl::StrAppend(&ready, "metrics_port ", port, "\n");
    if (auto* kme = (*daemon)->key_manager(); kme != nullptr && kme->port() != 0) {
      absl::StrAppend(&ready, "kme_port ", kme->port(), "\n");
    }
    absl::Status written = qnet::config::WriteFileAtomically(flags->ready_file, ready);
    if (!written.ok()) {
      std::fprintf(stderr, "qnetd: error: %s\n", std::string(written.message()).c_str());
      return 1;
    }
  }

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  QNET_LOG((*daemon)->log(), kInfo, "got %s, shutting down", signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  (*daemon)->Shutdown();
  daemon->reset();
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
