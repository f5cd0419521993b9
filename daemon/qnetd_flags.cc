#include "daemon/qnetd_flags.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace qnet::daemon {

std::string QnetdUsage() {
  return R"(qnetd: the qnet daemon for one node of a quantum network.

Usage: qnetd --network FILE --node NAME [options]

  --network FILE      network file (YAML) describing the nodes and links (required)
  --node NAME         which node of the network this daemon runs (required)
  --listen HOST:PORT  gRPC address to serve on (default 127.0.0.1:0). Port 0 picks a
                      free port; the bound address is printed on stdout and written
                      to --ready-file.
  --peers FILE        peers file: one "<node> <host:port>" line per node ('#' starts a
                      comment), written by the launcher (qnetctl up). Re-read whenever
                      it changes, so it may appear after the daemon starts.
  --peer NAME=HOST:PORT
                      a fixed address for one node (repeatable; wins over --peers)
  --time-scale S      simulated seconds per wall-clock second (default 1). The stack's
                      clock is wall time since start x S; a simulated delay d takes
                      d/S wall time. S < 1 is slow motion (0.001: 1 simulated second
                      lasts 1000 s), S > 1 runs faster than real time.
  --keep-hold SECONDS simulated seconds each KEEP pair stays in memory after delivery
                      (at both ends) for a client to measure it with Node.MeasureQubit
                      (qnetctl measure); default 10. Measuring a pair frees it at once;
                      a pair not measured by then is freed, and a request for more
                      pairs than memory slots waits for that memory.
  --max-requests-per-client N
                      Entangle, Teleport and Qkd requests one client (one certificate;
                      without TLS, one connection) may have running at this daemon at
                      once (default 64); one more ends at once with RESOURCE_EXHAUSTED.
  --max-peer-frames-per-second N
                      frames one neighbour may send per wall-clock second, a second's
                      worth at once (default 20000; two daemons at full speed send
                      about 1,500 a second, BENCHMARKS.md; 0: no limit). A neighbour
                      that sends faster has its stream closed with RESOURCE_EXHAUSTED
                      and the reason in the log; it may reconnect.
  --peer-timeout SECONDS
                      wall-clock seconds without a frame from a neighbour (heartbeats
                      go every 600 ms, or a fifth of this if shorter) before its link
                      is declared down (default 3).
                      A neighbour that exits is noticed at once; this catches a hung
                      or unreachable one.
  --epoch-unix-ns T   the simulated clock's zero as a Unix time in nanoseconds (default:
                      when the daemon starts; one in this host's future is replaced
                      by the start, with a warning). Daemons given the
                      same epoch share one simulated time line; the launcher does this.
                      Neighbours must share it and --time-scale: a neighbour whose
                      epoch differs by more than a tenth of the link's classical
                      delay (simulated) is refused, and the link stays down.
  --seed N            run seed (default: the network file's seed, else 1); the
                      node's randomness is this seed forked by the node name
  --pki DIR           the network's PKI directory (qnetctl up makes one in its state
                      directory; qnetctl pki init makes one by hand): DIR/ca.crt and
                      this node's DIR/node-NAME.crt and DIR/node-NAME.key
  --tls-cert FILE --tls-key FILE --tls-ca FILE
                      the same three files named one by one (instead of --pki)
  --insecure-local-only
                      no TLS: plaintext, no authentication, listening on the loopback
                      interface only (any local process can then use the daemon).
                      Without a certificate the daemon refuses to start unless given this.
  --key-store FILE    the key manager's durable store (SQLite, made 0600; key material
                      in the clear: disk access is key access). With it the node keeps
                      the key pools the network file's key_management section names
                      (QKD sessions in the background, blocks committed at both ends).
                      Needs TLS.
  --kme-listen HOST:PORT
                      serve the ETSI GS QKD 014 key delivery API (HTTPS, mutual TLS:
                      SAEs present app certificates of the network's CA bound to this
                      node) on this address; port 0 picks a free one. Needs --key-store.
  --metrics-listen HOST:PORT
                      serve Prometheus metrics (text format, GET /metrics) on this address
                      (default 127.0.0.1:0: a free port on the loopback interface; the URL
                      is in the log and in Node.GetStatus). With TLS it is HTTPS, and only
                      monitor or operator certificates of the network's CA may scrape
                      (qnetctl pki issue --role monitor); an insecure-local-only daemon
                      serves plain HTTP on the loopback interface. "off": no endpoint.
  --log-level L       error, warn, info (default) or debug; logs go to stderr
  --log-format F      text (default: one readable line per event) or json (one JSON object
                      per line: time (UTC), t_sim_s, level, node, msg, and layer, circuit
                      where they apply; qnetctl logs merges a network's logs)
  --ready-file PATH   once serving, write the bound HOST:PORT to PATH (first line), then
                      "metrics_port P" and "kme_port P" for the endpoints that are on
  --help              print this help and exit

The daemon serves the qnet.v1 Peer, HardwarePlane and Node services, gRPC health
checking (grpc.health.v1) and server reflection (v1 and v1alpha), all on one port,
all mutual TLS with the network's CA: peer streams only from neighbours whose certificate names
them, the hardware plane only from nodes of the network acting as themselves, the
Node service by role (operator: everything; app: its own node's entanglement,
teleportation, keys and status). Refused calls get PERMISSION_DENIED and are logged. Neighbours are linked by one
Peer stream each; the node whose name sorts lower dials. SIGTERM or SIGINT shuts
down cleanly (neighbours are told, streams closed) and exits 0.
)";
}

absl::StatusOr<QnetdFlags> ParseQnetdFlags(const std::vector<std::string>& args) {
  QnetdFlags flags;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg == "--help" || arg == "-h") {
      flags.help = true;
      continue;
    }
    if (arg == "--insecure-local-only") {
      flags.insecure_local_only = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", arg, "' (see --help)"));
    }
    std::string name = arg;
    std::string value;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else {
      if (i + 1 >= args.size()) return absl::InvalidArgumentError(absl::StrCat(name, " needs a value"));
      value = args[++i];
    }
    if (name == "--network") {
      flags.network_file = value;
    } else if (name == "--node") {
      flags.node = value;
    } else if (name == "--listen") {
      if (value.rfind(':') == std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat("--listen wants HOST:PORT, got '", value, "'"));
      }
      flags.listen = value;
    } else if (name == "--peers") {
      flags.peers_file = value;
    } else if (name == "--peer") {
      std::vector<std::string> kv = absl::StrSplit(value, absl::MaxSplits('=', 1));
      if (kv.size() != 2 || kv[0].empty() || kv[1].find(':') == std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat("--peer wants NAME=HOST:PORT, got '", value, "'"));
      }
      flags.peers[kv[0]] = kv[1];
    } else if (name == "--time-scale") {
      double s = 0;
      if (!absl::SimpleAtod(value, &s) || !(s > 0) || !std::isfinite(s)) {
        return absl::InvalidArgumentError(absl::StrCat("--time-scale wants a positive number, got '", value, "'"));
      }
      flags.time_scale = s;
    } else if (name == "--keep-hold") {
      double s = 0;
      if (!absl::SimpleAtod(value, &s) || !(s >= 0) || !std::isfinite(s)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--keep-hold wants a non-negative number of simulated seconds, got '", value, "'"));
      }
      flags.keep_hold_s = s;
    } else if (name == "--max-requests-per-client") {
      uint32_t n = 0;
      if (!absl::SimpleAtoi(value, &n) || n < 1 || n > 100000) {
        return absl::InvalidArgumentError(
            absl::StrCat("--max-requests-per-client wants a whole number from 1 to 100000, got '", value, "'"));
      }
      flags.max_requests_per_client = n;
    } else if (name == "--max-peer-frames-per-second") {
      double n = 0;
      // Below 1 the bucket could never hold a whole frame: every stream would be cut.
      if (!absl::SimpleAtod(value, &n) || !(n == 0 || (n >= 1 && n <= 1e7))) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--max-peer-frames-per-second wants 0 (no limit) or a number from 1 to 10000000, got '", value, "'"));
      }
      flags.max_peer_frames_per_second = n;
    } else if (name == "--peer-timeout") {
      double s = 0;
      if (!absl::SimpleAtod(value, &s) || !(s >= 0.05) || !(s <= 3600)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--peer-timeout wants wall-clock seconds between 0.05 and 3600, got '", value, "'"));
      }
      flags.peer_timeout_s = s;
    } else if (name == "--epoch-unix-ns") {
      int64_t epoch = 0;
      if (!absl::SimpleAtoi(value, &epoch) || epoch < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("--epoch-unix-ns wants a Unix time in nanoseconds, got '", value, "'"));
      }
      flags.epoch_unix_ns = epoch;
    } else if (name == "--seed") {
      uint64_t seed = 0;
      if (!absl::SimpleAtoi(value, &seed)) {
        return absl::InvalidArgumentError(absl::StrCat("--seed wants a non-negative integer, got '", value, "'"));
      }
      flags.seed = seed;
    } else if (name == "--log-level") {
      auto level = ParseLogLevel(value);
      if (!level.ok()) return level.status();
      flags.log_level = *level;
    } else if (name == "--log-format") {
      auto format = ParseLogFormat(value);
      if (!format.ok()) return format.status();
      flags.log_format = *format;
    } else if (name == "--pki") {
      flags.pki_dir = value;
    } else if (name == "--tls-cert") {
      flags.tls_cert = value;
    } else if (name == "--tls-key") {
      flags.tls_key = value;
    } else if (name == "--tls-ca") {
      flags.tls_ca = value;
    } else if (name == "--key-store") {
      flags.key_store = value;
    } else if (name == "--kme-listen") {
      if (value.rfind(':') == std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat("--kme-listen wants HOST:PORT, got '", value, "'"));
      }
      flags.kme_listen = value;
    } else if (name == "--metrics-listen") {
      if (value == "off") {
        flags.metrics_listen.clear();
      } else if (value.rfind(':') == std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("--metrics-listen wants HOST:PORT or off, got '", value, "'"));
      } else {
        flags.metrics_listen = value;
      }
    } else if (name == "--ready-file") {
      flags.ready_file = value;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag '", name, "' (see --help)"));
    }
  }
  if (!flags.help) {
    if (flags.network_file.empty()) return absl::InvalidArgumentError("--network FILE is required (see --help)");
    if (flags.node.empty()) return absl::InvalidArgumentError("--node NAME is required (see --help)");
    const int files = !flags.tls_cert.empty() + !flags.tls_key.empty() + !flags.tls_ca.empty();
    if (files != 0 && files != 3) {
      return absl::InvalidArgumentError("--tls-cert, --tls-key and --tls-ca go together (or use --pki DIR)");
    }
    const bool tls = files == 3 || !flags.pki_dir.empty();
    if (tls && !flags.pki_dir.empty() && files == 3) {
      return absl::InvalidArgumentError("give either --pki DIR or --tls-cert/--tls-key/--tls-ca, not both");
    }
    if (tls && flags.insecure_local_only) {
      return absl::InvalidArgumentError("--insecure-local-only contradicts the TLS flags: give one or the other");
    }
    if (!flags.kme_listen.empty() && flags.key_store.empty()) {
      return absl::InvalidArgumentError("--kme-listen needs --key-store FILE (where the keys are kept)");
    }
    if (!tls && !flags.key_store.empty()) {
      return absl::InvalidArgumentError(
          "--key-store and --kme-listen need TLS (--pki DIR or --tls-cert/--tls-key/--tls-ca): SAEs and peer KMEs "
          "are authenticated by the network's certificates");
    }
    if (!tls && !flags.insecure_local_only) {
      return absl::InvalidArgumentError(
          "no certificate: give --pki DIR (qnetctl up makes one; qnetctl pki init makes one by hand) or "
          "--tls-cert/--tls-key/--tls-ca; --insecure-local-only runs without TLS on the loopback interface only");
    }
  }
  return flags;
}

}  // namespace qnet::daemon
