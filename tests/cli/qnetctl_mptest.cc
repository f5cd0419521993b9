// qnetctl end to end: up, status, links, entangle (text and json), a bad
// request's one-line error and non-zero exit, down - in a private state dir.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/launcher.h"
#include "gtest/gtest.h"

namespace qnet::cli {
namespace {

struct CommandRun {
  int exit_code = -1;
  std::string out;  // stdout and stderr
};

CommandRun Qnetctl(const std::string& args) {
  CommandRun run;
  std::string command = absl::StrCat(QNETCTL_PATH, " ", args, " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) run.out.append(buffer, n);
  int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

TEST(QnetctlMpTest, UpEntangleStatusDown) {
  const std::string dir =
      (std::filesystem::path(::testing::TempDir()) / absl::StrCat("qnetctl-", getpid())).string();
  const std::string sd = absl::StrCat(" --state-dir ", dir);
  CommandRun up = Qnetctl(absl::StrCat("up ", QNET_SOURCE_DIR, "/examples/ideal-pair.yaml --time-scale 10", sd));
  ASSERT_EQ(up.exit_code, 0) << up.out;
  EXPECT_NE(up.out.find("alice"), std::string::npos) << up.out;

  CommandRun links = Qnetctl(absl::StrCat("links", sd));
  EXPECT_EQ(links.exit_code, 0) << links.out;
  EXPECT_NE(links.out.find("alice-bob"), std::string::npos) << links.out;

  CommandRun entangle = Qnetctl(absl::StrCat("--node alice entangle --with bob --pairs 100 --type measure --basis bb84", sd));
  EXPECT_EQ(entangle.exit_code, 0) << entangle.out;
  EXPECT_NE(entangle.out.find("100 pairs in"), std::string::npos) << entangle.out;
  EXPECT_NE(entangle.out.find("100 pairs matched"), std::string::npos) << entangle.out;

  CommandRun json = Qnetctl(absl::StrCat("--node alice entangle --with bob --pairs 2 --output json", sd));
  EXPECT_EQ(json.exit_code, 0) << json.out;
  EXPECT_NE(json.out.find("{\"summary\":{\"pairs\":2"), std::string::npos) << json.out;

  CommandRun bad = Qnetctl(absl::StrCat("--node alice entangle --with bob --pairs 3 --min-fidelity 2", sd));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_EQ(bad.out, "qnetctl: INVALID_ARGUMENT: min_fidelity must be in [0, 1], got 2\n");

  CommandRun status = Qnetctl(absl::StrCat("status --output json", sd));
  EXPECT_EQ(status.exit_code, 0) << status.out;
  EXPECT_NE(status.out.find("\"memory_qubits_in_use\":0"), std::string::npos) << status.out;

  CommandRun down = Qnetctl(absl::StrCat("down", sd));
  EXPECT_EQ(down.exit_code, 0) << down.out;
  // Nothing left to stop.
  EXPECT_NE(Qnetctl(absl::StrCat("status", sd)).exit_code, 0);
  if (!HasFailure()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace qnet::cli
