// The files a local network's state directory shares between the launcher
// (cli/launcher.h, which writes them) and each qnetd (which reads the peers
// file and writes its ready file): the peers file, one "<node> <host:port>"
// per line with '#' comments, and the atomic write every such file uses so
// that a reader never sees half a file. Plain file I/O: no gRPC, no Asio.
#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace qnet::config {

using PeerAddresses = std::map<std::string, std::string>;  // node name -> host:port

absl::StatusOr<PeerAddresses> ReadPeersFile(const std::string& path);
// Writes atomically (temporary file + rename), so readers never see half a file.
absl::Status WritePeersFile(const std::string& path, const PeerAddresses& peers);
// Writes `content` to `path` atomically.
absl::Status WriteFileAtomically(const std::string& path, const std::string& content);

}  // namespace qnet::config
