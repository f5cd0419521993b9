#include "config/peers_file.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace qnet::config {
namespace {

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() / absl::StrCat("qnet_peers_file_test_", getpid(), "_", name))
      .string();
}

TEST(PeersFileTest, RoundTrip) {
  const std::string path = TempPath("peers");
  PeerAddresses peers = {{"alice", "127.0.0.1:5001"}, {"bob", "127.0.0.1:5002"}};
  ASSERT_TRUE(WritePeersFile(path, peers).ok());
  auto read = ReadPeersFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, peers);
  EXPECT_FALSE(std::filesystem::exists(absl::StrCat(path, ".tmp.", getpid())));
  std::filesystem::remove(path);
}

TEST(PeersFileTest, CommentsAndBlankLinesAreSkipped) {
  const std::string path = TempPath("comments");
  ASSERT_TRUE(WriteFileAtomically(path, "# header\n\nalice 127.0.0.1:1  # trailing\n\tbob\t127.0.0.1:2\r\n").ok());
  auto read = ReadPeersFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, (PeerAddresses{{"alice", "127.0.0.1:1"}, {"bob", "127.0.0.1:2"}}));
  std::filesystem::remove(path);
}

TEST(PeersFileTest, MalformedLineNamesFileAndLine) {
  const std::string path = TempPath("bad");
  ASSERT_TRUE(WriteFileAtomically(path, "alice 127.0.0.1:1\nbob\n").ok());
  auto read = ReadPeersFile(path);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(read.status().message().find(absl::StrCat(path, ":2")), absl::string_view::npos) << read.status();
  std::filesystem::remove(path);
}

TEST(PeersFileTest, MissingFileIsNotFound) {
  auto read = ReadPeersFile(TempPath("missing"));
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
}

TEST(PeersFileTest, WriteIntoMissingDirectoryFails) {
  EXPECT_FALSE(WriteFileAtomically(TempPath("no-such-dir") + "/file", "x").ok());
}

}  // namespace
}  // namespace qnet::config
