// qnetd's command line: parsing and the --help text (kept next to each other
// so the help tells the truth).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/log.h"
#include "daemon/peer_directory.h"
#include "daemon/peer_links.h"

namespace qnet::daemon {

struct QnetdFlags {
  std::string network_file;
  std::string node;
  std::string listen = "127.0.0.1:0";
  std::string peers_file;
  PeerAddresses peers;  // --peer NAME=HOST:PORT
  double time_scale = 1.0;
  double keep_hold_s = 10.0;  // simulated seconds a KEEP pair is held for MeasureQubit
  uint32_t max_requests_per_client = 64;  // daemon/client_request_limit.h
  double peer_timeout_s = 3.0;  // wall seconds of silence after which a neighbour is down
  double max_peer_frames_per_second = kDefaultMaxPeerFramesPerSecond;  // daemon/peer_links.h; 0: no limit
  std::optional<int64_t> epoch_unix_ns;
  std::optional<uint64_t> seed;  // default: the network file's seed, else 1
  LogLevel log_level = LogLevel::kInfo;
  LogFormat log_format = LogFormat::kText;
  std::string ready_file;
  std::string pki_dir;  // --pki
  std::string tls_cert, tls_key, tls_ca;
  bool insecure_local_only = false;
  std::string key_store;   // --key-store: the key manager's SQLite file
  std::string kme_listen;  // --kme-listen: the ETSI GS QKD 014 API's HOST:PORT
  std::string metrics_listen = "127.0.0.1:0";  // --metrics-listen ("" after "off")
  bool help = false;
};

// Accepts "--flag value" and "--flag=value". InvalidArgument names the
// offending flag; --network and --node are required unless --help, and so
// is a certificate (--pki or the three --tls-* files) unless
// --insecure-local-only.
absl::StatusOr<QnetdFlags> ParseQnetdFlags(const std::vector<std::string>& args);
std::string QnetdUsage();

}  // namespace qnet::daemon
