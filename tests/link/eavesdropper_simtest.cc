// An intercept-resend eavesdropper on a heralded link (physical/
// heralding_station.h), seen the way QKD and Bell tests see her: through
// MEASURE pairs of the link layer in the simulator, on a noise-free link so
// that every error is hers. References, by hand:
//  - BB84: on a fraction x of the pairs she measures alice's qubit in Z or X.
//    In the ends' common basis she either agrees (no effect) or dephases it
//    (the parity becomes a fair coin): QBER = x * 1/2 * 1/2 = x/4 in each
//    basis.
//  - CHSH with x = 1: see ChshValueHalvesWhenEveryPairIsIntercepted.
#include <cmath>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "physical/physical_layer.h"
#include "quantum/bell.h"
#include "tests/link/sim_stack_network.h"

namespace qnet::link {
namespace {

using qnet::testing::EventLog;
using qnet::testing::SimStackNetwork;
using std::chrono::seconds;

// Noise-free nodes and link, spelled out over the `ideal` preset so that a
// change of the preset cannot add errors behind the test's back.
std::string IdealLink(double eavesdropper_fraction) {
  std::string node_overrides = R"(
    readout_error_0: 0
    readout_error_1: 0
    single_qubit_gate_error: 0
    two_qubit_gate_error: 0
    t1_s: .inf
    t2_s: .inf)";
  return absl::StrCat(R"(
network: eve
nodes:
  - name: alice
    hardware: ideal)", node_overrides, R"(
  - name: bob
    hardware: ideal)", node_overrides, R"(
links:
  - between: [alice, bob]
    length_km: 1
    visibility: 1
    dark_count_rate_hz: 0
    detector_efficiency: 1
    eavesdropper_fraction: )", eavesdropper_fraction, "\n");
}

// 5 sigma of a binomial proportion with success probability p over n trials.
double FiveSigma(double p, double n) { return 5.0 * std::sqrt(p * (1 - p) / n); }

struct Matched {
  const PairDelivered* a = nullptr;
  const PairDelivered* b = nullptr;
};

class EavesdropperTest : public ::testing::Test {
 protected:
  void Build(double eavesdropper_fraction, uint64_t seed) {
    net_ = std::make_unique<SimStackNetwork>(IdealLink(eavesdropper_fraction), seed);
    ASSERT_TRUE(net_->link("bob").RegisterReceiver(kPurpose, bob_.Handler()).ok());
  }

  // Runs one MEASURE request of `pairs` pairs from alice and returns both
  // ends' deliveries matched by entanglement id (valid until the next call).
  std::map<uint64_t, Matched> Measure(uint32_t pairs, BasisChoice basis) {
    alice_ = EventLog{};
    bob_.pairs.clear();
    bob_.completed.clear();
    auto id = net_->link("alice").Create({.remote_node = "bob",
                                          .number = pairs,
                                          .type = RequestType::kMeasure,
                                          .basis = basis,
                                          .min_fidelity = 0.9,
                                          .purpose_id = kPurpose},
                                         alice_.Handler());
    EXPECT_TRUE(id.ok()) << id.status();
    if (!id.ok()) return {};
    EXPECT_TRUE(net_->RunUntil([&] { return alice_.Ended(*id) && !bob_.completed.empty(); }, seconds(100)));
    EXPECT_EQ(alice_.completed.size(), 1u);
    EXPECT_EQ(alice_.pairs.size(), pairs);
    EXPECT_EQ(bob_.pairs.size(), pairs);
    std::map<uint64_t, Matched> m;
    for (const auto& p : alice_.pairs) m[p.entanglement_id.sequence].a = &p;
    for (const auto& p : bob_.pairs) m[p.entanglement_id.sequence].b = &p;
    for (const auto& [seq, o] : m) {
      EXPECT_TRUE(o.a != nullptr && o.b != nullptr) << "pair " << seq << " delivered at one end only";
    }
    return m;
  }

  struct Qber {
    double n[2] = {0, 0};       // pairs measured in the same basis: [Z, X]
    double errors[2] = {0, 0};  // of those, parities off the heralded Bell state's
    double rate(int basis) const { return errors[basis] / n[basis]; }
  };
  Qber MeasureQber(uint32_t pairs) {
    Qber q;
    for (const auto& [seq, o] : Measure(pairs, BasisChoice::kBb84)) {
      if (o.a == nullptr || o.b == nullptr || o.a->basis != o.b->basis) continue;
      const bool z = o.a->basis == MeasurementBasis::kZ;
      EXPECT_EQ(o.a->bell_state, o.b->bell_state);
      // Z x Z reveals the Bell state's X bit, X x X its Z bit.
      const int expected = z ? quantum::XBit(o.a->bell_state) : quantum::ZBit(o.a->bell_state);
      q.n[z ? 0 : 1] += 1;
      q.errors[z ? 0 : 1] += (o.a->outcome ^ o.b->outcome) != expected ? 1 : 0;
    }
    return q;
  }

  physical::EavesdropperStats Stats() {
    absl::StatusOr<physical::LinkEavesdropper> eve = net_->node("alice").physical().Eavesdropper("bob");
    EXPECT_TRUE(eve.ok()) << eve.status();
    EXPECT_TRUE(eve.ok() && eve->station_here);  // alice is node_a: she hosts the station
    return eve.ok() ? eve->stats : physical::EavesdropperStats{};
  }

  // As a daemon would: at both ends; only the station host's call takes effect.
  void SwitchEve(double fraction) {
    absl::StatusOr<bool> at_alice = net_->node("alice").physical().SetEavesdropperFraction("bob", fraction);
    absl::StatusOr<bool> at_bob = net_->node("bob").physical().SetEavesdropperFraction("alice", fraction);
    ASSERT_TRUE(at_alice.ok()) << at_alice.status();
    ASSERT_TRUE(at_bob.ok()) << at_bob.status();
    EXPECT_TRUE(*at_alice);
    EXPECT_FALSE(*at_bob);
  }

  static constexpr uint32_t kPurpose = 3;
  std::unique_ptr<SimStackNetwork> net_;
  EventLog alice_;
  EventLog bob_;
};

// One network, Eve switched between requests: 0 -> 1 -> 0.2 -> 0.
TEST_F(EavesdropperTest, Bb84QberIsAQuarterOfTheInterceptedFractionAndFollowsTheSwitch) {
  Build(0.0, 21);
  ASSERT_NE(net_, nullptr);

  // Off: a noise-free link has no errors at all.
  Qber off = MeasureQber(1000);
  ASSERT_GT(off.n[0], 150);
  ASSERT_GT(off.n[1], 150);
  EXPECT_EQ(off.errors[0], 0);
  EXPECT_EQ(off.errors[1], 0);
  physical::EavesdropperStats before = Stats();
  EXPECT_GE(before.pairs_seen, 1000u);
  EXPECT_EQ(before.pairs_intercepted, 0u);

  // x = 1: every pair, QBER 1/4 in each basis.
  SwitchEve(1.0);
  Qber full = MeasureQber(3000);
  ASSERT_GT(full.n[0], 600);
  ASSERT_GT(full.n[1], 600);
  RecordProperty("qber_x1", absl::StrCat("Z ", full.rate(0), ", X ", full.rate(1), " (model 0.25)"));
  EXPECT_NEAR(full.rate(0), 0.25, FiveSigma(0.25, full.n[0]));
  EXPECT_NEAR(full.rate(1), 0.25, FiveSigma(0.25, full.n[1]));
  physical::EavesdropperStats after = Stats();
  const uint64_t seen_full = after.pairs_seen - before.pairs_seen;
  EXPECT_GE(seen_full, 3000u);
  EXPECT_EQ(after.pairs_intercepted - before.pairs_intercepted, seen_full);
  before = after;

  // x = 0.2: QBER 0.05; she intercepts ~ x of the pairs, picking her basis
  // by a fair coin.
  SwitchEve(0.2);
  Qber partial = MeasureQber(6000);
  ASSERT_GT(partial.n[0], 1300);
  ASSERT_GT(partial.n[1], 1300);
  RecordProperty("qber_x02", absl::StrCat("Z ", partial.rate(0), ", X ", partial.rate(1), " (model 0.05)"));
  EXPECT_NEAR(partial.rate(0), 0.05, FiveSigma(0.05, partial.n[0]));
  EXPECT_NEAR(partial.rate(1), 0.05, FiveSigma(0.05, partial.n[1]));
  after = Stats();
  const double seen = static_cast<double>(after.pairs_seen - before.pairs_seen);
  const double intercepted = static_cast<double>(after.pairs_intercepted - before.pairs_intercepted);
  EXPECT_GE(seen, 6000);
  EXPECT_NEAR(intercepted / seen, 0.2, FiveSigma(0.2, seen));
  const double in_z = static_cast<double>(after.recorded[0][0] + after.recorded[0][1] -
                                          before.recorded[0][0] - before.recorded[0][1]);
  const double in_x = static_cast<double>(after.recorded[1][0] + after.recorded[1][1] -
                                          before.recorded[1][0] - before.recorded[1][1]);
  EXPECT_EQ(in_z + in_x, intercepted);
  EXPECT_NEAR(in_z / intercepted, 0.5, FiveSigma(0.5, intercepted));
  before = after;

  // Off again: the errors stop.
  SwitchEve(0.0);
  Qber again = MeasureQber(1000);
  EXPECT_EQ(again.errors[0], 0);
  EXPECT_EQ(again.errors[1], 0);
  EXPECT_EQ(Stats().pairs_intercepted, before.pairs_intercepted);
  net_->ExpectClean();
}

// x = 1 from the network file. Eve's channel on alice's qubit is
//   rho -> 1/2 rho + 1/4 Z rho Z + 1/4 X rho X      (= 1/2 (deph_Z + deph_X)).
// In the Heisenberg picture it maps alice's observable
// sigma(a) = cos(a) Z + sin(a) X to
//   1/2 (cZ + sX) + 1/4 (cZ - sX) + 1/4 (-cZ + sX) = 1/2 sigma(a),
// so every X-Z plane correlation is halved: E'(a, b) = E(a, b) / 2.
// The ideal double-click link heralds PSI+ and PSI-, with
//   PSI-: E(a, b) = -cos(a - b),   PSI+: E(a, b) = -cos(a + b)
// (<ZZ> = -1 for both; <XX> = -1 for PSI-, +1 for PSI+; <ZX> = <XZ> = 0).
// The link's settings are a in {A0 = 0, A1 = pi/2}, b in {B0 = pi/4, B1 = -pi/4}:
//          E(A0,B0)  E(A0,B1)  E(A1,B0)  E(A1,B1)
//   PSI-:  -1/r2     -1/r2     -1/r2     +1/r2
//   PSI+:  -1/r2     -1/r2     +1/r2     -1/r2
// With each term signed like its noiseless value, S = sum |E| = 2 sqrt 2
// without Eve and S = 4 * 1/(2 sqrt 2) = sqrt 2 with her: no violation.
TEST_F(EavesdropperTest, ChshValueHalvesWhenEveryPairIsIntercepted) {
  Build(1.0, 22);
  ASSERT_NE(net_, nullptr);
  absl::StatusOr<physical::LinkEavesdropper> eve = net_->node("alice").physical().Eavesdropper("bob");
  ASSERT_TRUE(eve.ok()) << eve.status();
  EXPECT_EQ(eve->fraction, 1.0);  // from the network file

  constexpr uint32_t kPairs = 4000;
  // [setting pair] -> (sum of signed products, count); index a * 2 + b.
  double sum[4] = {0, 0, 0, 0};
  double count[4] = {0, 0, 0, 0};
  for (const auto& [seq, o] : Measure(kPairs, BasisChoice::kChsh)) {
    if (o.a == nullptr || o.b == nullptr) continue;
    ASSERT_TRUE(o.a->basis == MeasurementBasis::kChshA0 || o.a->basis == MeasurementBasis::kChshA1);
    ASSERT_TRUE(o.b->basis == MeasurementBasis::kChshB0 || o.b->basis == MeasurementBasis::kChshB1);
    const int a = o.a->basis == MeasurementBasis::kChshA0 ? 0 : 1;
    const int b = o.b->basis == MeasurementBasis::kChshB0 ? 0 : 1;
    // The signs of the table above.
    double sign = 0;
    if (o.a->bell_state == quantum::BellState::kPsiMinus) {
      sign = (a == 1 && b == 1) ? 1 : -1;
    } else if (o.a->bell_state == quantum::BellState::kPsiPlus) {
      sign = (a == 1 && b == 0) ? 1 : -1;
    } else {
      ADD_FAILURE() << "double-click heralded " << quantum::BellName(o.a->bell_state);
      continue;
    }
    const double product = (1 - 2 * o.a->outcome) * (1 - 2 * o.b->outcome);
    sum[a * 2 + b] += sign * product;
    count[a * 2 + b] += 1;
  }
  double s = 0;
  double variance = 0;
  for (int k = 0; k < 4; ++k) {
    ASSERT_GT(count[k], kPairs / 8);
    const double e = sum[k] / count[k];
    s += e;
    // A +-1 product with mean E has variance 1 - E^2; take the model's E.
    variance += (1 - 1.0 / 8) / count[k];
  }
  RecordProperty("chsh_s", absl::StrCat(s, " (model sqrt 2 = ", std::sqrt(2.0), ")"));
  EXPECT_NEAR(s, std::sqrt(2.0), 5 * std::sqrt(variance));
  EXPECT_EQ(Stats().pairs_intercepted, Stats().pairs_seen);
  net_->ExpectClean();
}

}  // namespace
}  // namespace qnet::link
