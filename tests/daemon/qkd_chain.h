// A 3-daemon chain n0 - n1 - n2 of real qnetd processes for the QKD
// multi-process tests (tests/daemon/qkd_*_mptest.cc): ideal nodes, 1 km
// double-click links of two-photon visibility kVisibility, routes converged
// before a test starts, and helpers that build requests and check that both
// ends hold the same key. Split into two binaries so each stays well inside
// the ctest timeout under the sanitizers (daemons run ~8x slower there).
#pragma once

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "cli/entangle_client.h"
#include "cli/launcher.h"
#include "gtest/gtest.h"
#include "qnet/v1/node_service.grpc.pb.h"
#include "tests/common/multiprocess_test.h"
#include "tests/daemon/node_queries.h"

namespace qnet::daemon {

namespace fs = std::filesystem;

constexpr double kVisibility = 0.99;
// Daemons run on the wall clock at time scale 10. The sessions' own deadline
// (simulated seconds per block) is set far above the normal build's needs
// (~30 s wall for 6500 end-to-end pairs) so that the sanitizer build, several
// times slower and sharing 2 cores with other tests (245 s for 6500 pairs
// seen in CI), finishes too.
constexpr double kTimeScale = 10.0;
constexpr double kBlockTimeoutS = 4000.0;
// Two blocks' worth: a block whose verification fails (rare since Cascade's
// extra passes for short keys) is rerun. ctest allows 900 s (CMakeLists.txt).
// Not stretched by the timeout factor: it follows the sessions' own
// (simulated) deadline, which ends a stuck call first.
inline absl::Duration ClientDeadline() { return absl::Seconds(2 * kBlockTimeoutS / kTimeScale + 20); }

class QkdMpTest : public qnet::testing::MultiProcessTest {
 protected:
  void SetUp() override {
    // Ideal nodes, 1 km double-click links of visibility V: each link's
    // pairs carry a Z error with probability (1-V)/2, so end-to-end pairs
    // over k links show X-basis errors (1 - V^k)/2 and no Z-basis errors.
    const fs::path file = state_dir_ / "chain.yaml";
    std::ofstream(file) << "network: qkdchain\nseed: 11\nnodes:\n"
                           "  - {name: n0, hardware: ideal}\n  - {name: n1, hardware: ideal}\n"
                           "  - {name: n2, hardware: ideal}\nlinks:\n"
                        << "  - {between: [n0, n1], length_km: 1, visibility: " << kVisibility << "}\n"
                        << "  - {between: [n1, n2], length_km: 1, visibility: " << kVisibility << "}\n";
    auto net = cli::LocalNetwork::Start(LaunchOptionsFor(file.string(), kTimeScale));
    ASSERT_TRUE(net.ok()) << net.status();
    net_ = *std::move(net);
    n0_ = *net_->Address("n0");
    n2_ = *net_->Address("n2");
    auto route = testing::WaitRoute(n0_, "n2", 2);
    ASSERT_TRUE(route.ok()) << route.status();
  }
  void TearDown() override {
    net_.reset();  // the daemons stop before the state directory is judged
    MultiProcessTest::TearDown();
  }
  // Short blocks need a large sample for the finite-size bounds to leave a key.
  static v1::QkdRequest Request(v1::QkdRequest::Protocol protocol, uint32_t pairs) {
    v1::QkdRequest r;
    r.set_peer("n2");
    r.set_protocol(protocol);
    r.set_bits(1);
    r.set_pairs_per_block(pairs);
    r.set_sample_fraction(0.5);
    // A block whose verification finds a residual Cascade error is
    // discarded and rerun (a few per cent of short blocks).
    r.set_max_blocks(3);
    r.set_timeout_s(kBlockTimeoutS);
    r.set_show_key(true);
    return r;
  }
  // Both ends' copies of every block's key, fetched by id, are the same and
  // the initiator's summary shows the same bits.
  void ExpectSameKeyAtBothEnds(const v1::QkdSummary& summary) {
    std::string concatenated_bits;
    for (const v1::QkdBlock& block : summary.blocks()) {
      auto at_n0 = cli::FetchKey(n0_, block.key_id(), absl::Seconds(10));
      auto at_n2 = cli::FetchKey(n2_, block.key_id(), absl::Seconds(10));
      ASSERT_TRUE(at_n0.ok()) << at_n0.status();
      ASSERT_TRUE(at_n2.ok()) << at_n2.status();
      EXPECT_EQ(at_n0->key_hex(), at_n2->key_hex());
      EXPECT_EQ(at_n0->bits(), block.final_key_bits());
      EXPECT_EQ(at_n2->bits(), block.final_key_bits());
      EXPECT_EQ(at_n0->peer(), "n2");
      EXPECT_EQ(at_n2->peer(), "n0");
    }
    if (summary.blocks_size() == 1) {
      EXPECT_EQ(summary.key_hex(), cli::FetchKey(n2_, summary.key_id(), absl::Seconds(10))->key_hex());
    }
    std::cout << summary.protocol() << ": " << summary.final_key_bits() << " key bits from " << summary.raw_pairs()
              << " pairs, QBER Z " << summary.qber_z() << " X " << summary.qber_x() << "\n";
  }

  std::unique_ptr<cli::LocalNetwork> net_;
  std::string n0_, n2_;
};

}  // namespace qnet::daemon
