#include "config/peers_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace qnet::config {

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

}  // namespace qnet::config
