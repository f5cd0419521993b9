// The link layer's calibration table against closed forms: single-click
// fidelity (1-alpha)/(1-alpha*eta/2) with perfect detectors and visibility,
// Bell-pair decay under T1/T2, the delivery waits of the protocol's timing,
// and the parameter choice (largest alpha that meets min_fidelity).
#include "link/fidelity_table.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "physical/calibration.h"
#include "physical/presets.h"

namespace qnet::link {
namespace {

using ::testing::HasSubstr;

physical::NodeHardware Ideal() { return physical::FindPreset("ideal")->node; }

physical::LinkPhysics IdealLink(double length_km, physical::HeraldingScheme scheme) {
  physical::LinkPhysics link = physical::FindPreset("ideal")->link;
  link.name = "a-b";
  link.node_a = "a";
  link.node_b = "b";
  link.length_km = length_km;
  link.scheme = scheme;
  return link;
}

// Single-click, perfect detectors and visibility, no dark counts, each arm
// transmitting eta: a click heralds |Psi> with weight alpha(1-alpha)eta and
// |11> with alpha^2 (1-(1-eta)^2)/2 (the two photons bunch), so
// F = (1-alpha) / (1 - alpha eta / 2).
TEST(CalibrationTest, SingleClickFidelityMatchesClosedForm) {
  const physical::LinkPhysics link = IdealLink(2.0, physical::HeraldingScheme::kSingleClick);
  const double eta = std::pow(10.0, -0.2 * 1.0 / 10.0);  // 1 km to the station at 0.2 dB/km
  for (double alpha : {0.01, 0.1, 0.3}) {
    auto c = physical::Calibrate(Ideal(), Ideal(), link, alpha);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_NEAR(c->fidelity, (1 - alpha) / (1 - alpha * eta / 2), 1e-9) << alpha;
    EXPECT_NEAR(c->success_probability, 2 * alpha * (1 - alpha) * eta + alpha * alpha * (2 * eta - eta * eta), 1e-9);
    EXPECT_NEAR(c->MeanGenerationSeconds(), ToSeconds(c->attempt_duration) / c->success_probability, 1e-15);
  }
}

// A Psi+ pair after amplitude damping gamma and total coherence c on each
// qubit: F = (2 - gamma_a - gamma_b)/4 + c_a c_b / 2.
TEST(CalibrationTest, MemoryDecayMatchesClosedForm) {
  const physical::LinkPhysics link = IdealLink(0.0, physical::HeraldingScheme::kDoubleClick);
  physical::NodeHardware a = Ideal();
  physical::NodeHardware b = Ideal();
  a.t1_s = 1.0;
  a.t2_s = 0.5;
  b.t1_s = 2.0;
  b.t2_s = 0.25;
  auto c = physical::Calibrate(a, b, link, 0.0);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_NEAR(c->fidelity, 1.0, 1e-12);
  const double ta = 0.1;
  const double tb = 0.3;
  const double ga = 1 - std::exp(-ta / a.t1_s);
  const double gb = 1 - std::exp(-tb / b.t1_s);
  const double ca = std::exp(-ta / a.t2_s);
  const double cb = std::exp(-tb / b.t2_s);
  EXPECT_NEAR(physical::FidelityAfterWait(*c, a, b, FromSeconds(ta), FromSeconds(tb)),
              (2 - ga - gb) / 4 + ca * cb / 2, 1e-12);
}

// Depolarising memories on a Werner link: each qubit's waiting t multiplies
// the Werner parameter w = (4F - 1)/3 by exp(-t/tau), so after waits ta and
// tb F = (3 w exp(-ta/tau_a) exp(-tb/tau_b) + 1) / 4. With T1/T2 as well,
// relaxation and depolarising act together (physical/memory_noise.h): on
// each qubit |1>'s population goes p -> a p + b (a = exp(-G t), G = 1/T1 +
// 1/tau, b = p_inf (1 - a), p_inf = (1/(2 tau)) / G) and coherence by c =
// exp(-t/T2 - t/tau); a PHI+ pair then has, by hand,
// F = [(1-bA)(1-bB) + (1-aA-bA)(1-aB-bB) + bA bB + (aA+bA)(aB+bB)] / 4 + cA cB / 2.
TEST(CalibrationTest, DepolarisingMemoryOnAWernerLinkMatchesClosedForm) {
  physical::LinkPhysics link = IdealLink(0.0, physical::HeraldingScheme::kWerner);
  link.werner_fidelity = 0.9;
  link.success_probability = 0.5;
  physical::NodeHardware a = Ideal();
  physical::NodeHardware b = Ideal();
  a.depolarising_time_s = 0.2;
  b.depolarising_time_s = 0.5;
  auto c = physical::Calibrate(a, b, link, 0.0);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_NEAR(c->fidelity, 0.9, 1e-12);
  EXPECT_NEAR(c->success_probability, 0.5, 1e-15);
  const double ta = 0.1, tb = 0.3;
  const double w = (4 * 0.9 - 1) / 3;
  const double shrink = std::exp(-ta / a.depolarising_time_s) * std::exp(-tb / b.depolarising_time_s);
  EXPECT_NEAR(physical::FidelityAfterWait(*c, a, b, FromSeconds(ta), FromSeconds(tb)), (3 * w * shrink + 1) / 4,
              1e-12);

  link.werner_fidelity = 1.0;
  a.t1_s = 1.0;
  a.t2_s = 0.5;
  b.t1_s = 2.0;
  b.t2_s = 0.25;
  c = physical::Calibrate(a, b, link, 0.0);
  ASSERT_TRUE(c.ok()) << c.status();
  struct Map {
    double a, b, c;
  };
  const auto map = [](const physical::NodeHardware& hw, double t) {
    const double rate = 1 / hw.t1_s + 1 / hw.depolarising_time_s;
    const double keep = std::exp(-rate * t);
    return Map{keep, (0.5 / hw.depolarising_time_s) / rate * (1 - keep),
               std::exp(-t / hw.t2_s - t / hw.depolarising_time_s)};
  };
  const Map A = map(a, ta), B = map(b, tb);
  const double expected = ((1 - A.b) * (1 - B.b) + (1 - A.a - A.b) * (1 - B.a - B.b) + A.b * B.b +
                           (A.a + A.b) * (B.a + B.b)) / 4 +
                          A.c * B.c / 2;
  EXPECT_NEAR(physical::FidelityAfterWait(*c, a, b, FromSeconds(ta), FromSeconds(tb)), expected, 1e-12);
}

// Station in the middle of L: each end hears at click + L/2c, the far end's
// report takes L/c more, so a KEEP pair is handed up at click + 3L/2c, with
// the local qubit emitted at click - L/2c: waits of 2L/c for both qubits.
TEST(FidelityTableTest, DeliveryWaitsFollowTheProtocolTiming) {
  physical::NodeHardware a = Ideal();
  a.measurement_time = std::chrono::microseconds(3);
  const physical::LinkPhysics link = IdealLink(10.0, physical::HeraldingScheme::kDoubleClick);
  auto table = FidelityTable::Build(a, Ideal(), link, DefaultAlphaGrid());
  ASSERT_TRUE(table.ok()) << table.status();
  const Duration l = FibreDelay(10.0);  // 50 us
  EXPECT_EQ(table->KeepWaitsAtA().a, 2 * l);
  EXPECT_EQ(table->KeepWaitsAtA().b, 2 * l);
  EXPECT_EQ(table->KeepWaitsAtB().a, 2 * l);
  EXPECT_EQ(table->MeasureWaits().a, l + std::chrono::microseconds(3));
  EXPECT_EQ(table->MeasureWaits().b, l);
}

TEST(FidelityTableTest, ChoosesTheLargestAlphaThatMeetsMinFidelity) {
  const physical::LinkPhysics link = IdealLink(2.0, physical::HeraldingScheme::kSingleClick);
  const double eta = std::pow(10.0, -0.2 * 1.0 / 10.0);
  const auto fidelity = [eta](double alpha) { return (1 - alpha) / (1 - alpha * eta / 2); };
  const std::vector<double> grid = DefaultAlphaGrid();
  auto table = FidelityTable::Build(Ideal(), Ideal(), link, grid);
  ASSERT_TRUE(table.ok()) << table.status();
  for (double min_f : {0.5, 0.8, 0.9, 0.95, 0.99}) {
    auto choice = table->Choose(RequestType::kKeep, min_f);
    ASSERT_TRUE(choice.ok()) << choice.status();
    EXPECT_GE(fidelity(choice->alpha), min_f);
    EXPECT_NEAR(choice->expected_fidelity, fidelity(choice->alpha), 1e-9);
    // The next grid value would miss it (no memory decay here).
    auto next = std::upper_bound(grid.begin(), grid.end(), choice->alpha);
    if (next != grid.end()) {
      EXPECT_LT(fidelity(*next), min_f) << min_f;
    }
  }
  // Even the smallest alpha, 0.001, gives only 0.99948.
  auto refused = table->Choose(RequestType::kKeep, 0.9995);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("UNSUPPORTED"));
}

TEST(FidelityTableTest, DoubleClickIsAcceptOrRefuse) {
  physical::NodeHardware a = Ideal();
  a.t2_s = 1e-4;  // 100 us
  const physical::LinkPhysics link = IdealLink(10.0, physical::HeraldingScheme::kDoubleClick);
  auto table = FidelityTable::Build(a, Ideal(), link, DefaultAlphaGrid());
  ASSERT_TRUE(table.ok()) << table.status();
  // KEEP: A's qubit waits 2L/c = 100 us: F = (1 + e^-1)/2.
  const double keep = (1 + std::exp(-1.0)) / 2;
  auto ok = table->Choose(RequestType::kKeep, keep - 1e-6);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_NEAR(ok->expected_fidelity, keep, 1e-9);
  EXPECT_FALSE(table->Choose(RequestType::kKeep, keep + 1e-6).ok());
  // MEASURE: it waits L/c = 50 us only.
  auto measure = table->Choose(RequestType::kMeasure, 0.0);
  ASSERT_TRUE(measure.ok());
  EXPECT_NEAR(measure->expected_fidelity, (1 + std::exp(-0.5)) / 2, 1e-9);
}

TEST(LinkServiceTest, ErrorsMapToStatusCodesBothWays) {
  for (LinkError e : {LinkError::kUnsupported, LinkError::kTimeout, LinkError::kNoResources, LinkError::kRejected,
                      LinkError::kExpired, LinkError::kPeerDown, LinkError::kCancelled, LinkError::kDeviceError}) {
    EXPECT_EQ(LinkErrorFromStatusCode(ToStatusCode(e)), e) << LinkErrorName(e);
    EXPECT_THAT(ToStatus(e, "why").message(), HasSubstr(std::string(LinkErrorName(e))));
  }
  EXPECT_FALSE(LinkErrorFromStatusCode(absl::StatusCode::kOk).has_value());
}

}  // namespace
}  // namespace qnet::link
