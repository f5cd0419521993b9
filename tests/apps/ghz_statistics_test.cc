// GHZ fidelity and Mermin value from outcome tallies, on hand-countable
// cases: the ideal state, the maximally mixed state, a dephased state, and
// the closed forms of fusion with Werner pairs at their edges.
#include "apps/ghz_statistics.h"

#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace qnet::apps {
namespace {

// The all-Z setting and every X/Y setting with an even number of Y.
std::vector<std::string> Settings(int n) {
  std::vector<std::string> s{std::string(static_cast<size_t>(n), 'Z')};
  for (uint32_t mask = 0; mask < (1u << n); ++mask) {
    if (__builtin_popcount(mask) % 2) continue;
    std::string b(static_cast<size_t>(n), 'X');
    for (int i = 0; i < n; ++i) {
      if ((mask >> i) & 1u) b[static_cast<size_t>(i)] = 'Y';
    }
    s.push_back(b);
  }
  return s;
}

int Ys(const std::string& b) {
  int y = 0;
  for (char c : b) y += c == 'Y';
  return y;
}

// Tallies of `shots` per setting: the Z setting puts `equal` of its shots
// on 0...0 / 1...1 (half each) and the rest on 0...01; each X/Y setting has
// parity expectation `parity` times the GHZ state's sign (-1)^(#Y/2).
std::vector<GhzSettingTally> Tallies(int n, uint64_t shots, uint64_t equal, double parity) {
  std::vector<GhzSettingTally> t;
  for (const std::string& b : Settings(n)) {
    GhzSettingTally s{b, std::vector<uint64_t>(size_t{1} << n, 0)};
    if (b[0] == 'Z') {
      s.counts[0] = equal / 2;
      s.counts[(size_t{1} << n) - 1] = equal - equal / 2;
      s.counts[1] = shots - equal;
    } else {
      const double sign = (Ys(b) / 2) % 2 == 0 ? 1.0 : -1.0;
      const auto even = static_cast<uint64_t>(std::llround(static_cast<double>(shots) * (1 + sign * parity) / 2));
      s.counts[0] = even;   // parity +1
      s.counts[1] = shots - even;  // parity -1
    }
    t.push_back(s);
  }
  return t;
}

TEST(GhzStatisticsTest, IdealOutcomesGiveFidelityOneAndTheQuantumMermin) {
  for (int n : {3, 4, 5}) {
    absl::StatusOr<GhzEstimate> e = EstimateGhz(Tallies(n, 100, 100, 1.0));
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_DOUBLE_EQ(e->fidelity, 1.0);
    EXPECT_DOUBLE_EQ(e->fidelity_se, 0.0);
    EXPECT_DOUBLE_EQ(e->mermin, std::ldexp(1.0, n - 1));
    EXPECT_DOUBLE_EQ(e->mermin_quantum_max, std::ldexp(1.0, n - 1));
    EXPECT_EQ(e->shots, 100u * (1 + (1u << (n - 1))));
  }
  // Mermin's local bounds: 2 for 3 qubits, 4 for 4, 4 for 5.
  EXPECT_DOUBLE_EQ(EstimateGhz(Tallies(3, 10, 10, 1.0))->mermin_local_bound, 2.0);
  EXPECT_DOUBLE_EQ(EstimateGhz(Tallies(4, 10, 10, 1.0))->mermin_local_bound, 4.0);
  EXPECT_DOUBLE_EQ(EstimateGhz(Tallies(5, 10, 10, 1.0))->mermin_local_bound, 4.0);
}

// The maximally mixed state of 3 qubits: P(000) + P(111) = 2/8, every
// parity 0, so F = 1/8 and M = 0. Counted by hand: 800 Z shots with 100 on
// each pattern, 800 per X/Y setting split evenly.
TEST(GhzStatisticsTest, MixedStateCountedByHand) {
  std::vector<GhzSettingTally> t;
  for (const std::string& b : Settings(3)) t.push_back({b, std::vector<uint64_t>(8, 100)});
  absl::StatusOr<GhzEstimate> e = EstimateGhz(t);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_DOUBLE_EQ(e->populations, 0.25);
  EXPECT_DOUBLE_EQ(e->mermin, 0.0);
  EXPECT_DOUBLE_EQ(e->fidelity, 0.125);
  // se of P = sqrt(0.25 * 0.75 / 800); of each parity sqrt(1/800), four in quadrature.
  EXPECT_NEAR(e->populations_se, std::sqrt(0.25 * 0.75 / 800), 1e-12);
  EXPECT_NEAR(e->mermin_se, std::sqrt(4.0 / 800), 1e-12);
  EXPECT_NEAR(e->fidelity_se, std::hypot(std::sqrt(0.25 * 0.75 / 800), std::sqrt(4.0 / 800) / 4) / 2, 1e-12);
  EXPECT_LT(e->mermin_violation_sigmas, 0.0);
}

// A dephased GHZ state (populations 1, coherence 0.6): F = 0.8, M = 4 x 0.6.
TEST(GhzStatisticsTest, DephasedState) {
  absl::StatusOr<GhzEstimate> e = EstimateGhz(Tallies(3, 1000, 1000, 0.6));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_NEAR(e->coherence, 0.6, 1e-12);
  EXPECT_NEAR(e->fidelity, 0.8, 1e-12);
  EXPECT_NEAR(e->mermin, 2.4, 1e-12);
  EXPECT_NEAR(e->mermin_violation_sigmas, 0.4 / e->mermin_se, 1e-9);
}

TEST(GhzStatisticsTest, RefusesIncompleteOrWrongSettings) {
  std::vector<GhzSettingTally> t = Tallies(3, 10, 10, 1.0);
  std::vector<GhzSettingTally> missing(t.begin(), t.end() - 1);
  EXPECT_EQ(EstimateGhz(missing).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<GhzSettingTally> odd = t;
  odd.back().bases = "XXY";
  EXPECT_EQ(EstimateGhz(odd).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<GhzSettingTally> mixed = t;
  mixed.back().bases = "XZX";
  EXPECT_EQ(EstimateGhz(mixed).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<GhzSettingTally> empty = t;
  empty[1].counts.assign(8, 0);
  EXPECT_EQ(EstimateGhz(empty).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<GhzSettingTally> twice = t;
  twice.push_back(t[1]);
  EXPECT_EQ(EstimateGhz(twice).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<GhzSettingTally> z_twice = t;
  z_twice.push_back(t[0]);
  EXPECT_EQ(EstimateGhz(z_twice).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EstimateGhz({}).status().code(), absl::StatusCode::kInvalidArgument);
}

// Fusion of N-1 Werner pairs: with 2 qubits it is the pair itself, F =
// (1 + 3p)/4; p = 1 gives the ideal state; p = 0 gives populations 2^-(N-1)
// and no coherence.
TEST(GhzStatisticsTest, FusionClosedFormsAtTheirEdges) {
  for (double p : {0.0, 0.3, 0.9}) EXPECT_NEAR(GhzFusionFidelity(2, p), (1 + 3 * p) / 4, 1e-12);
  EXPECT_DOUBLE_EQ(GhzFusionFidelity(4, 1.0), 1.0);
  EXPECT_DOUBLE_EQ(GhzFusionMermin(4, 1.0), 8.0);
  EXPECT_DOUBLE_EQ(GhzFusionFidelity(3, 0.0), 0.125);
  EXPECT_DOUBLE_EQ(GhzFusionMermin(3, 0.5), 1.0);
}

}  // namespace
}  // namespace qnet::apps
