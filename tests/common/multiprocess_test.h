// Base fixture for tests that start real qnetd processes through the
// launcher (cli/launcher.h): a private state directory per test, kept and
// printed when the test fails (always with QNET_TEST_NOCLEANUP=1); one seed
// per test binary run, printed so the run can be repeated (QNET_TEST_SEED);
// launch options whose wall-clock timeouts follow the timeout factor
// (wait_until.h). See tests/README.md.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cli/launcher.h"
#include "gtest/gtest.h"
#include "tests/common/wait_until.h"

namespace qnet::testing {

// QNET_TEST_SEED if set, else a fresh one; chosen once per process and
// printed then, so that the daemons of every test in this binary get it.
inline uint64_t TestSeed() {
  static const uint64_t seed = [] {
    uint64_t value = 0;
    if (const char* text = std::getenv("QNET_TEST_SEED"); text != nullptr && *text != '\0') {
      if (!absl::SimpleAtoi(text, &value)) {
        std::fprintf(stderr, "QNET_TEST_SEED must be a non-negative integer, got '%s'\n", text);
        std::exit(2);
      }
    } else {
      value = std::random_device()() | 1u;  // 32 bits are plenty to tell runs apart, and easy to copy
    }
    std::cout << "seed: " << value << " (rerun with QNET_TEST_SEED=" << value << ")" << std::endl;
    return value;
  }();
  return seed;
}

// QNET_TEST_NOCLEANUP set to anything but "" or "0".
inline bool KeepStateDirectories() {
  const char* text = std::getenv("QNET_TEST_NOCLEANUP");
  return text != nullptr && *text != '\0' && std::string(text) != "0";
}

class MultiProcessTest : public ::testing::Test {
 protected:
  MultiProcessTest() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    state_dir_ = std::filesystem::path(::testing::TempDir()) /
                 absl::StrCat("qnet-", getpid(), "-", info->test_suite_name(), ".", info->name());
    std::filesystem::create_directories(state_dir_);
  }

  // A derived TearDown stops its daemons first, then calls this one.
  void TearDown() override {
    const bool failed = HasFailure();
    if (!failed && !KeepStateDirectories()) {
      std::error_code ec;
      std::filesystem::remove_all(state_dir_, ec);
      return;
    }
    std::cout << (failed ? "test failed; " : "QNET_TEST_NOCLEANUP: ") << "state directory kept: " << state_dir_.string()
              << "\nseed: " << TestSeed() << " (rerun with QNET_TEST_SEED=" << TestSeed() << ")" << std::endl;
    if (!failed) return;
    // The daemons' last words, for runs whose directories are gone (CI).
    std::vector<std::filesystem::path> logs;
    std::error_code ec;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(state_dir_, ec)) {
      if (entry.path().extension() == ".log") logs.push_back(entry.path());
    }
    std::sort(logs.begin(), logs.end());
    for (const auto& log : logs) {
      std::cout << "--- the end of " << log.string() << "\n" << cli::FileTail(log.string(), 15) << std::endl;
    }
  }

  // Launch options for `network_file` with this test's state directory,
  // seed and (stretched) timeouts.
  cli::LaunchOptions LaunchOptionsFor(const std::string& network_file, double time_scale = 1.0) const {
    cli::LaunchOptions o;
    o.qnetd_path = QNETD_PATH;
    o.network_file = network_file;
    o.state_dir = state_dir_.string();
    o.time_scale = time_scale;
    o.seed = TestSeed();
    o.ready_timeout = Scaled(absl::Seconds(20));
    o.stop_grace = Scaled(absl::Seconds(5));
    return o;
  }

  // Starts the network; nullptr (and a test failure naming why) if it does
  // not come up.
  static std::unique_ptr<cli::LocalNetwork> StartNetwork(const cli::LaunchOptions& options) {
    auto net = cli::LocalNetwork::Start(options);
    EXPECT_TRUE(net.ok()) << net.status();
    return net.ok() ? *std::move(net) : nullptr;
  }

  // Writes a chain of ideal nodes n0 - n1 - n2 on 1 km links (2 memory
  // qubits at the ends, 4 at the repeater) into the state directory as
  // network `name`; returns the file's path.
  std::string WriteIdealChain3(const std::string& name) const {
    const std::filesystem::path file = state_dir_ / (name + ".yaml");
    std::ofstream(file) << "network: " << name << "\nnodes:\n  - {name: n0, hardware: ideal}\n"
                        << "  - {name: n1, hardware: ideal, qubits: 4}\n  - {name: n2, hardware: ideal}\n"
                        << "links:\n  - {between: [n0, n1], length_km: 1}\n  - {between: [n1, n2], length_km: 1}\n";
    return file.string();
  }

  // An example network file of the source tree (examples/).
  static std::string Example(const std::string& name) { return absl::StrCat(QNET_SOURCE_DIR, "/examples/", name); }

  std::filesystem::path state_dir_;
};

}  // namespace qnet::testing
