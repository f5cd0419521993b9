// Where the other daemons of the network listen. Addresses come from the
// peers file (written by the launcher; format in config/peers_file.h) and
// from fixed entries (--peer flags, tests). The file is re-read whenever it
// changes, so a launcher can write it after the daemons have bound their
// ports, and a restarted neighbour's new address is picked up.
// Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <grpcpp/channel.h>

#include "absl/status/statusor.h"
#include "config/peers_file.h"
#include "security/pki.h"

namespace qnet::daemon {

using PeerAddresses = config::PeerAddresses;

class PeerDirectory {
 public:
  // peers_file may be empty (fixed entries only). Fixed entries win. With
  // `tls`, channels are mutual TLS as this node, and each must reach a
  // daemon whose certificate names the node asked for; without, plaintext
  // (--insecure-local-only).
  PeerDirectory(std::string peers_file, PeerAddresses fixed, std::optional<security::TlsMaterial> tls = std::nullopt);

  // The node's address, or NotFound naming the sources consulted.
  absl::StatusOr<std::string> Lookup(const std::string& node);
  void SetFixed(const std::string& node, const std::string& address);

  // A gRPC channel to the node, shared by all users; re-created when the
  // node's address changes or the channel is failing, so a restarted node is
  // reached again as soon as the caller retries.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> Channel(const std::string& node);

 private:
  void RefreshLocked();

  std::mutex mu_;
  const std::string peers_file_;
  PeerAddresses fixed_;
  PeerAddresses from_file_;
  int64_t file_mtime_ns_ = -1;
  int64_t file_size_ = -1;
  std::string file_error_;
  struct CachedChannel {
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
  };
  std::map<std::string, CachedChannel> channels_;
  const std::optional<security::TlsMaterial> tls_;
};

// How long a channel to another daemon waits for one connection attempt
// (TCP and HTTP/2 handshake) before it fails.
inline constexpr int kPeerConnectTimeoutMs = 5000;

// The largest gRPC message a daemon accepts, on its server (Node requests,
// peer frames from dialing neighbours, HardwarePlane calls) and on its
// channels to other daemons (frames from accepting neighbours, MoveGroup
// answers); larger ones fail with RESOURCE_EXHAUSTED before they are parsed.
// gRPC's default, made explicit: Node requests are under a KB, a peer frame
// holds at most FrameQueue::kMaxMessagesPerFrame messages, the largest being
// a QKD basis announcement (~1-2 bytes per pair: ~2 MB at the largest
// block, 10^6 pairs), and moved group states are a few KB.
inline constexpr int kMaxGrpcMessageBytes = 4 * 1024 * 1024;

// A channel of its own to another daemon: reconnects after 100 ms, backing
// off to 1 s; each attempt waits kPeerConnectTimeoutMs. Receives at most
// kMaxGrpcMessageBytes per message.
// `node` is the daemon's node name (the TLS target when `tls` is given).
std::shared_ptr<grpc::Channel> MakePeerChannel(const std::string& address, const std::string& node = "",
                                               const security::TlsMaterial* tls = nullptr);

}  // namespace qnet::daemon
