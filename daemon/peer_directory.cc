#include "daemon/peer_directory.h"

#include <sys/stat.h>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/str_cat.h"
#include "security/grpc_tls.h"

namespace qnet::daemon {

std::shared_ptr<grpc::Channel> MakePeerChannel(const std::string& address, const std::string& node,
                                               const security::TlsMaterial* tls) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // Not a backoff: gRPC gives each connection attempt (TCP connect and the
  // server's HTTP/2 SETTINGS) at least this long. At 100 ms, daemons on a
  // loaded machine (64 starting at once) failed to connect and their
  // MoveGroup calls failed with "connection attempt timed out before
  // receiving SETTINGS frame". A dead peer still fails at once (connection
  // refused); a hung one is caught by the callers' own deadlines.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, kPeerConnectTimeoutMs);
  // Channels to different daemons must not share a TCP connection, nor
  // channels created for one daemon across its restarts.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(kMaxGrpcMessageBytes);
  return security::OpenChannel(address, node, tls, args);
}

PeerDirectory::PeerDirectory(std::string peers_file, PeerAddresses fixed, std::optional<security::TlsMaterial> tls)
    : peers_file_(std::move(peers_file)), fixed_(std::move(fixed)), tls_(std::move(tls)) {}

void PeerDirectory::RefreshLocked() {
  if (peers_file_.empty()) return;
  struct stat st;
  if (::stat(peers_file_.c_str(), &st) != 0) {
    file_error_ = absl::StrCat("peers file ", peers_file_, " does not exist (yet)");
    return;
  }
  int64_t mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (mtime_ns == file_mtime_ns_ && st.st_size == file_size_) return;
  auto peers = config::ReadPeersFile(peers_file_);
  if (!peers.ok()) {
    file_error_ = std::string(peers.status().message());
    return;
  }
  from_file_ = *std::move(peers);
  file_mtime_ns_ = mtime_ns;
  file_size_ = st.st_size;
  file_error_.clear();
}

absl::StatusOr<std::string> PeerDirectory::Lookup(const std::string& node) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = fixed_.find(node); it != fixed_.end()) return it->second;
  RefreshLocked();
  if (auto it = from_file_.find(node); it != from_file_.end()) return it->second;
  std::string where = peers_file_.empty() ? std::string("no peers file given")
                                          : absl::StrCat("not in peers file ", peers_file_);
  if (!file_error_.empty()) where = file_error_;
  return absl::NotFoundError(absl::StrCat("no address known for node '", node, "' (", where,
                                          "; pass --peers FILE or --peer ", node, "=HOST:PORT)"));
}

void PeerDirectory::SetFixed(const std::string& node, const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  fixed_[node] = address;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> PeerDirectory::Channel(const std::string& node) {
  auto address = Lookup(node);
  if (!address.ok()) return address.status();
  std::lock_guard<std::mutex> lock(mu_);
  CachedChannel& cached = channels_[node];
  // A channel in TRANSIENT_FAILURE fails calls at once until its own
  // reconnect backoff expires; a fresh one tries to connect right away, which
  // is what a caller retrying on its own schedule (redial, a restarted
  // holder) wants.
  if (cached.channel == nullptr || cached.address != *address ||
      cached.channel->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_TRANSIENT_FAILURE) {
    cached.address = *address;
    cached.channel = MakePeerChannel(*address, node, tls_ ? &*tls_ : nullptr);
  }
  return cached.channel;
}

}  // namespace qnet::daemon
