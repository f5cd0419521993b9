#include "daemon/peer_directory.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace qnet::daemon {

absl::StatusOr<PeerAddresses> ReadPeersFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open peers file ", path, ": ", std::strerror(errno)));
  PeerAddresses peers;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::string text = line.substr(0, line.find('#'));
    std::vector<std::string> fields = absl::StrSplit(text, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    if (fields.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no,
                                                     ": expected '<node> <host:port>', got '", line, "'"));
    }
    peers[fields[0]] = fields[1];
  }
  return peers;
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& content) {
  std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
    out << content;
    out.flush();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

absl::Status WritePeersFile(const std::string& path, const PeerAddresses& peers) {
  std::ostringstream out;
  out << "# qnet peers file: <node> <host:port> per line (written by the launcher)\n";
  for (const auto& [node, address] : peers) out << node << ' ' << address << '\n';
  return WriteFileAtomically(path, out.str());
}

std::shared_ptr<grpc::Channel> MakePeerChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // Channels to different daemons must not share a TCP connection, nor
  // channels created for one daemon across its restarts.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

PeerDirectory::PeerDirectory(std::string peers_file, PeerAddresses fixed)
    : peers_file_(std::move(peers_file)), fixed_(std::move(fixed)) {}

void PeerDirectory::RefreshLocked() {
  if (peers_file_.empty()) return;
  struct stat st;
  if (::stat(peers_file_.c_str(), &st) != 0) {
    file_error_ = absl::StrCat("peers file ", peers_file_, " does not exist (yet)");
    return;
  }
  int64_t mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (mtime_ns == file_mtime_ns_ && st.st_size == file_size_) return;
  auto peers = ReadPeersFile(peers_file_);
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
    cached.channel = MakePeerChannel(*address);
  }
  return cached.channel;
}

}  // namespace qnet::daemon
