// Checks the photonic heralding model against hand-derived closed forms for
// threshold detectors (exact, to 1e-9), against the published approximate
// expressions (Humphreys et al. 2018, Rozpedek et al. 2019 for single-click;
// Barrett & Kok 2005, Bernien et al. 2013 for double-click), and that the
// tolerances reject plausible wrong models.
#include "physical/heralding_model.h"

#include <chrono>
#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Eigenvalues>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "quantum/bell.h"

namespace qnet::physical {
namespace {

using quantum::BellState;
using ::testing::HasSubstr;

constexpr double kExact = 1e-9;  // model vs. exact reference for the same physics

struct Scenario {
  NodeHardware a;
  NodeHardware b;
  LinkPhysics link;
  double alpha = 0.1;
};

Scenario MakeScenario(HeraldingScheme scheme, double length_km) {
  Scenario s;
  s.link.name = "alice-bob";
  s.link.node_a = "alice";
  s.link.node_b = "bob";
  s.link.length_km = length_km;
  s.link.scheme = scheme;
  s.a.emission_cycle_time = std::chrono::microseconds(2);
  s.b.emission_cycle_time = std::chrono::microseconds(3);
  return s;
}

absl::StatusOr<AttemptModel> Compute(const Scenario& s) { return ComputeAttemptModel(s.a, s.b, s.link, s.alpha); }

double Eta(const NodeHardware& node, const LinkPhysics& link, double length_km) {
  return node.emission_efficiency * std::pow(10.0, -link.attenuation_db_per_km * length_km / 10.0) *
         link.detector_efficiency;
}

// ---------------------------------------------------------------------------
// Exact reference, derived by hand for one round with threshold detectors.
// a, b: transmissivities of A's and B's photon up to a click; V: visibility;
// p: dark-count probability per detector. "D+ only" (D- is the same with the
// coherence's sign flipped). A photon reaching the beam splitter exits at
// either port with probability 1/2; two photons leave by the same port with
// probability (1+V)/2 (Hong-Ou-Mandel), and a threshold detector then clicks
// once. The only memory coherence that survives is between "A emitted" and
// "B emitted": amplitude sqrt(a b) <chi_B|chi_A> / 2 = sqrt(a b V) / 2 into
// D+, times (1-p) for D- staying dark.
// ---------------------------------------------------------------------------
struct RoundReference {
  double p00;        // P(D+ only | no photon)
  double p10;        // P(D+ only | photon from A only)
  double p01;        // P(D+ only | photon from B only)
  double p11;        // P(D+ only | photons from both)
  double coherence;  // M_{D+}[|10>][|01>]
};

RoundReference Round(double a, double b, double v, double p) {
  RoundReference r;
  r.p00 = p * (1 - p);
  r.p10 = (1 - p) * (a / 2 + (1 - a) * p);
  r.p01 = (1 - p) * (b / 2 + (1 - b) * p);
  r.p11 = (1 - p) * (a * b * (1 + v) / 4 + (a * (1 - b) + b * (1 - a)) / 2 + (1 - a) * (1 - b) * p);
  r.coherence = std::sqrt(a * b * v) * (1 - p) / 2;
  return r;
}

// Unnormalised memory state (index 2*m_A + m_B) after a single-click herald
// on D+ (sign +1) or D- (sign -1).
Eigen::Matrix4cd SingleClickReference(const RoundReference& r, double alpha, int sign) {
  Eigen::Matrix4cd rho = Eigen::Matrix4cd::Zero();
  const double mixed = alpha * (1 - alpha);
  rho(0, 0) = (1 - alpha) * (1 - alpha) * r.p00;
  rho(1, 1) = mixed * r.p01;
  rho(2, 2) = mixed * r.p10;
  rho(3, 3) = alpha * alpha * r.p11;
  rho(1, 2) = rho(2, 1) = sign * mixed * r.coherence;
  return rho;
}

// Unnormalised memory state after Barrett-Kok with click signs s1, s2: round
// 1 on |+>|+>, X on both, round 2; the memory configuration m in round 2
// was 3-m in round 1.
Eigen::Matrix4cd DoubleClickReference(const RoundReference& r, int s1, int s2) {
  Eigen::Matrix4cd rho = Eigen::Matrix4cd::Zero();
  rho(0, 0) = r.p11 * r.p00 / 4;
  rho(3, 3) = r.p00 * r.p11 / 4;
  rho(1, 1) = r.p10 * r.p01 / 4;
  rho(2, 2) = r.p01 * r.p10 / 4;
  rho(1, 2) = rho(2, 1) = s1 * s2 * r.coherence * r.coherence / 4;
  return rho;
}

double Fidelity(const Eigen::Matrix4cd& rho, BellState b) {
  const Eigen::Vector4cd v = quantum::BellVector(b);
  return (v.adjoint() * rho * v)(0, 0).real();
}

double MaxAbs(const Eigen::Matrix4cd& m) { return m.cwiseAbs().maxCoeff(); }

// Expected outcome order: single-click D+, D-; double-click (+,+), (+,-), (-,+), (-,-).
std::vector<Eigen::Matrix4cd> References(const Scenario& s, double p_dc) {
  const double a = Eta(s.a, s.link, s.link.length_a_km());
  const double b = Eta(s.b, s.link, s.link.length_b_km());
  const RoundReference r = Round(a, b, s.link.visibility, p_dc);
  if (s.link.scheme == HeraldingScheme::kSingleClick) {
    return {SingleClickReference(r, s.alpha, +1), SingleClickReference(r, s.alpha, -1)};
  }
  return {DoubleClickReference(r, +1, +1), DoubleClickReference(r, +1, -1), DoubleClickReference(r, -1, +1),
          DoubleClickReference(r, -1, -1)};
}

void ExpectMatchesReference(const Scenario& s) {
  SCOPED_TRACE(testing::Message() << SchemeName(s.link.scheme) << " L=" << s.link.length_km
                                  << " f=" << s.link.station_fraction << " effA=" << s.a.emission_efficiency
                                  << " effB=" << s.b.emission_efficiency << " V=" << s.link.visibility
                                  << " dc=" << s.link.dark_count_rate_hz);
  absl::StatusOr<AttemptModel> model = Compute(s);
  ASSERT_TRUE(model.ok()) << model.status();
  const std::vector<Eigen::Matrix4cd> refs = References(s, DarkCountProbability(s.link));
  ASSERT_EQ(model->outcomes.size(), refs.size());
  double total = 0;
  for (size_t i = 0; i < refs.size(); ++i) {
    const double p = refs[i].trace().real();
    total += p;
    EXPECT_NEAR(model->outcomes[i].probability, p, kExact * p) << "outcome " << i;
    EXPECT_LT(MaxAbs(model->outcomes[i].state - refs[i] / p), kExact) << "outcome " << i;
  }
  EXPECT_NEAR(model->success_probability, total, kExact * total);
  EXPECT_NEAR(model->transmissivity_a, Eta(s.a, s.link, s.link.length_a_km()), 1e-15);
  EXPECT_NEAR(model->transmissivity_b, Eta(s.b, s.link, s.link.length_b_km()), 1e-15);
}

// Lengths 0-100 km, symmetric and asymmetric station position and node
// efficiencies, perfect and imperfect visibility, with and without dark counts.
void SweepAgainstReference(HeraldingScheme scheme) {
  for (double length = 0; length <= 100; length += 10) {
    for (double fraction : {0.5, 0.2}) {
      for (auto [eff_a, eff_b] : {std::pair{1.0, 1.0}, std::pair{0.6, 0.15}}) {
        for (double visibility : {1.0, 0.85}) {
          for (double dark_rate : {0.0, 2e4}) {
            Scenario s = MakeScenario(scheme, length);
            s.alpha = 0.2;
            s.link.station_fraction = fraction;
            s.a.emission_efficiency = eff_a;
            s.b.emission_efficiency = eff_b;
            s.link.detector_efficiency = 0.9;
            s.link.visibility = visibility;
            s.link.dark_count_rate_hz = dark_rate;
            s.link.detection_window = std::chrono::nanoseconds(50);  // p_dc ~ 1e-3
            ExpectMatchesReference(s);
          }
        }
      }
    }
  }
}

TEST(HeraldingModelTest, SingleClickMatchesExactReferenceOverLengths) {
  SweepAgainstReference(HeraldingScheme::kSingleClick);
}

TEST(HeraldingModelTest, DoubleClickMatchesExactReferenceOverLengths) {
  SweepAgainstReference(HeraldingScheme::kDoubleClick);
}

TEST(HeraldingModelTest, DarkCountProbabilityIsPoissonian) {
  LinkPhysics link;
  link.dark_count_rate_hz = 100.0;
  link.detection_window = std::chrono::microseconds(1);
  EXPECT_NEAR(DarkCountProbability(link), 1.0 - std::exp(-1e-4), 1e-12 * 1e-4);
  link.dark_count_rate_hz = 0.0;
  EXPECT_EQ(DarkCountProbability(link), 0.0);
}

// Threshold detectors, no dark counts, symmetric: the exact closed form
// p = 2 alpha eta (1-alpha) + alpha^2 (2 eta - eta^2 (3 - V)/2)
// (two photons bunch with probability (1+V)/2 and then give one click).
TEST(HeraldingModelTest, SingleClickSuccessProbabilityClosedForm) {
  for (double length = 0; length <= 100; length += 10) {
    for (double visibility : {1.0, 0.7}) {
      Scenario s = MakeScenario(HeraldingScheme::kSingleClick, length);
      s.alpha = 0.3;
      s.link.visibility = visibility;
      s.a.emission_efficiency = s.b.emission_efficiency = 0.5;
      const double eta = Eta(s.a, s.link, length / 2);
      const double alpha = s.alpha;
      const double expected =
          2 * alpha * eta * (1 - alpha) + alpha * alpha * (2 * eta - eta * eta * (3 - visibility) / 2);
      absl::StatusOr<AttemptModel> model = Compute(s);
      ASSERT_TRUE(model.ok()) << model.status();
      EXPECT_NEAR(model->success_probability, expected, 1e-12 * expected) << "L=" << length;
    }
  }
}

// Small eta (Humphreys et al. 2018; Rozpedek et al. 2019): p ~ 2 alpha eta,
// F ~ (1-alpha)(1+sqrt(V))/2. The exact corrections are relative
// O(alpha eta) <= 1e-3 here, far below the sqrt(V)-vs-V difference (~2.5%).
TEST(HeraldingModelTest, SingleClickSmallEtaMatchesPublishedApproximation) {
  for (double length = 0; length <= 100; length += 10) {
    for (double alpha : {0.05, 0.2}) {
      Scenario s = MakeScenario(HeraldingScheme::kSingleClick, length);
      s.alpha = alpha;
      s.link.visibility = 0.8;
      s.a.emission_efficiency = s.b.emission_efficiency = 1e-3;
      const double eta = Eta(s.a, s.link, length / 2);
      absl::StatusOr<AttemptModel> model = Compute(s);
      ASSERT_TRUE(model.ok()) << model.status();
      EXPECT_NEAR(model->success_probability / (2 * alpha * eta), 1.0, 1e-3);
      const double expected_f = (1 - alpha) * (1 + std::sqrt(0.8)) / 2;
      EXPECT_NEAR(Fidelity(model->outcomes[0].state, BellState::kPsiPlus) / expected_f, 1.0, 1e-3);
      EXPECT_NEAR(Fidelity(model->outcomes[1].state, BellState::kPsiMinus) / expected_f, 1.0, 1e-3);
    }
  }
}

// Asymmetric arms, small eta: the interfering amplitudes are unequal, so
// F ~ (1-alpha) (1/2 + sqrt(V eta_A eta_B)/(eta_A + eta_B)).
TEST(HeraldingModelTest, SingleClickAsymmetricArmsLowerFidelity) {
  for (double fraction : {0.5, 0.3, 0.1}) {
    Scenario s = MakeScenario(HeraldingScheme::kSingleClick, 50);
    s.alpha = 0.1;
    s.link.station_fraction = fraction;
    s.link.visibility = 0.9;
    s.a.emission_efficiency = 1e-3;
    s.b.emission_efficiency = 4e-4;
    const double a = Eta(s.a, s.link, s.link.length_a_km());
    const double b = Eta(s.b, s.link, s.link.length_b_km());
    absl::StatusOr<AttemptModel> model = Compute(s);
    ASSERT_TRUE(model.ok()) << model.status();
    const double expected = (1 - s.alpha) * (0.5 + std::sqrt(0.9 * a * b) / (a + b));
    EXPECT_NEAR(Fidelity(model->outcomes[0].state, BellState::kPsiPlus) / expected, 1.0, 1e-3)
        << "fraction " << fraction;
    EXPECT_NEAR(model->success_probability / (s.alpha * (a + b)), 1.0, 1e-3);
  }
}

// Barrett & Kok 2005, Bernien et al. 2013: without dark counts
// p = eta_A eta_B / 2 and F = (1+V)/2, exactly, whatever the asymmetry.
TEST(HeraldingModelTest, DoubleClickMatchesBarrettKok) {
  for (double length = 0; length <= 100; length += 10) {
    for (double fraction : {0.5, 0.15}) {
      for (double visibility : {1.0, 0.9, 0.6}) {
        Scenario s = MakeScenario(HeraldingScheme::kDoubleClick, length);
        s.link.station_fraction = fraction;
        s.link.visibility = visibility;
        s.link.detector_efficiency = 0.8;
        s.a.emission_efficiency = 0.4;
        s.b.emission_efficiency = 0.1;
        const double a = Eta(s.a, s.link, s.link.length_a_km());
        const double b = Eta(s.b, s.link, s.link.length_b_km());
        absl::StatusOr<AttemptModel> model = Compute(s);
        ASSERT_TRUE(model.ok()) << model.status();
        EXPECT_NEAR(model->success_probability, a * b / 2, 1e-12 * a * b);
        for (const HeraldedOutcome& o : model->outcomes) {
          EXPECT_NEAR(o.probability, a * b / 8, 1e-12 * a * b);
          EXPECT_NEAR(Fidelity(o.state, o.label), (1 + visibility) / 2, 1e-12);
        }
      }
    }
  }
}

TEST(HeraldingModelTest, LabelsMatchTheHeraldedState) {
  for (HeraldingScheme scheme : {HeraldingScheme::kSingleClick, HeraldingScheme::kDoubleClick}) {
    Scenario s = MakeScenario(scheme, 20);
    s.alpha = 0.1;
    s.link.visibility = 0.9;
    s.link.dark_count_rate_hz = 10;
    s.link.detection_window = std::chrono::nanoseconds(25);
    absl::StatusOr<AttemptModel> model = Compute(s);
    ASSERT_TRUE(model.ok()) << model.status();
    const std::vector<BellState> expected =
        scheme == HeraldingScheme::kSingleClick
            ? std::vector<BellState>{BellState::kPsiPlus, BellState::kPsiMinus}
            : std::vector<BellState>{BellState::kPsiPlus, BellState::kPsiMinus, BellState::kPsiMinus,
                                     BellState::kPsiPlus};
    ASSERT_EQ(model->outcomes.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      const HeraldedOutcome& o = model->outcomes[i];
      EXPECT_EQ(o.label, expected[i]) << SchemeName(scheme) << " outcome " << i;
      const double f = Fidelity(o.state, o.label);
      EXPECT_GT(f, 0.8);
      for (int other = 0; other < 4; ++other) {
        if (static_cast<BellState>(other) == o.label) continue;
        EXPECT_LT(Fidelity(o.state, static_cast<BellState>(other)), f);
      }
    }
  }
}

// Dark counts only add false heralds: fidelity falls as the rate grows.
TEST(HeraldingModelTest, DarkCountsLowerFidelity) {
  for (HeraldingScheme scheme : {HeraldingScheme::kSingleClick, HeraldingScheme::kDoubleClick}) {
    for (double length : {1.0, 25.0, 50.0, 100.0}) {
      double previous = 2.0;
      for (double rate : {0.0, 10.0, 1e2, 1e3, 1e4, 1e5}) {
        Scenario s = MakeScenario(scheme, length);
        s.link.visibility = 0.9;
        s.a.emission_efficiency = s.b.emission_efficiency = 0.05;
        s.link.dark_count_rate_hz = rate;
        s.link.detection_window = std::chrono::nanoseconds(100);
        absl::StatusOr<AttemptModel> model = Compute(s);
        ASSERT_TRUE(model.ok()) << model.status();
        const double f = Fidelity(model->outcomes[0].state, model->outcomes[0].label);
        EXPECT_LT(f, previous) << SchemeName(scheme) << " L=" << length << " rate=" << rate;
        previous = f;
      }
    }
  }
}

// Single-click at long distance: to first order in eta and p_dc a herald is a
// photon herald (probability alpha eta, fidelity F0 = (1-alpha)(1+sqrt V)/2)
// or a dark-count herald (probability p_dc, memory left in the diagonal of
// the input state, fidelity alpha (1-alpha)):
// F ~ (F0 alpha eta + alpha (1-alpha) p_dc) / (alpha eta + p_dc).
TEST(HeraldingModelTest, SingleClickDarkCountFirstOrder) {
  for (double ratio : {0.3, 1.0, 3.0}) {  // p_dc / (alpha eta)
    Scenario s = MakeScenario(HeraldingScheme::kSingleClick, 100);
    s.alpha = 0.1;
    s.link.visibility = 0.9;
    s.a.emission_efficiency = s.b.emission_efficiency = 0.01;  // eta = 1e-3 at 100 km
    const double eta = Eta(s.a, s.link, 50);
    const double p = ratio * s.alpha * eta;
    s.link.detection_window = std::chrono::nanoseconds(100);
    s.link.dark_count_rate_hz = -std::log1p(-p) / 100e-9;
    ASSERT_NEAR(DarkCountProbability(s.link), p, 1e-12);
    absl::StatusOr<AttemptModel> model = Compute(s);
    ASSERT_TRUE(model.ok()) << model.status();
    const double alpha = s.alpha;
    const double f0 = (1 - alpha) * (1 + std::sqrt(0.9)) / 2;
    const double expected = (f0 * alpha * eta + alpha * (1 - alpha) * p) / (alpha * eta + p);
    const double f = Fidelity(model->outcomes[0].state, BellState::kPsiPlus);
    // Neglected terms are relative O(eta, p) ~ 1e-3; the dark-count shift is >= 0.15.
    EXPECT_NEAR(f, expected, 2e-3) << "ratio " << ratio;
    EXPECT_NEAR(model->success_probability, 2 * (alpha * eta + p), 2e-3 * model->success_probability);
  }
}

// Double-click, p_dc << eta: F ~ (1+V)/2 - (2 + 4V) p_dc/eta (a false herald
// needs one dark count and one photon, ~8 p_dc/eta of all heralds, and is
// PSI-like with fidelity ~1/4).
TEST(HeraldingModelTest, DoubleClickDarkCountFirstOrder) {
  for (double visibility : {1.0, 0.8}) {
    Scenario s = MakeScenario(HeraldingScheme::kDoubleClick, 40);
    s.link.visibility = visibility;
    s.a.emission_efficiency = s.b.emission_efficiency = 0.01;  // eta = 4e-3 at 40 km
    const double eta = Eta(s.a, s.link, 20);
    const double p = 1e-4 * eta;
    s.link.detection_window = std::chrono::nanoseconds(100);
    s.link.dark_count_rate_hz = -std::log1p(-p) / 100e-9;
    absl::StatusOr<AttemptModel> model = Compute(s);
    ASSERT_TRUE(model.ok()) << model.status();
    for (const HeraldedOutcome& o : model->outcomes) {
      const double slope = ((1 + visibility) / 2 - Fidelity(o.state, o.label)) / (p / eta);
      EXPECT_NEAR(slope, 2 + 4 * visibility, 0.01 * (2 + 4 * visibility)) << "V=" << visibility;
    }
  }
}

// Where dark counts dominate, the herald carries no information about the
// photons: single-click leaves the memories in the diagonal (classical
// mixture) of the input state, F -> alpha (1-alpha); double-click leaves
// them fully mixed, F -> 1/4.
TEST(HeraldingModelTest, DarkCountDominatedLimitIsClassicalMixture) {
  for (HeraldingScheme scheme : {HeraldingScheme::kSingleClick, HeraldingScheme::kDoubleClick}) {
    Scenario s = MakeScenario(scheme, 100);
    s.alpha = 0.25;
    s.link.attenuation_db_per_km = 2.0;  // 100 dB per arm: eta = 1e-10
    s.link.dark_count_rate_hz = 1e4;
    s.link.detection_window = std::chrono::nanoseconds(100);  // p_dc ~ 1e-3
    absl::StatusOr<AttemptModel> model = Compute(s);
    ASSERT_TRUE(model.ok()) << model.status();
    Eigen::Matrix4cd expected = Eigen::Matrix4cd::Identity() / 4.0;
    if (scheme == HeraldingScheme::kSingleClick) {
      const double a = s.alpha;
      expected.diagonal() << (1 - a) * (1 - a), a * (1 - a), a * (1 - a), a * a;
    }
    const double p = DarkCountProbability(s.link);
    for (const HeraldedOutcome& o : model->outcomes) {
      EXPECT_LT(MaxAbs(o.state - expected), 1e-6) << SchemeName(scheme);
    }
    const double expected_p =
        scheme == HeraldingScheme::kSingleClick ? 2 * p * (1 - p) : 4 * p * p * (1 - p) * (1 - p);
    EXPECT_NEAR(model->success_probability / expected_p, 1.0, 1e-6);
  }
}

TEST(HeraldingModelTest, OutputsAreDensityMatrices) {
  for (HeraldingScheme scheme : {HeraldingScheme::kSingleClick, HeraldingScheme::kDoubleClick}) {
    for (double length : {0.0, 7.0, 60.0, 100.0}) {
      for (double visibility : {0.0, 0.5, 1.0}) {
        for (double rate : {0.0, 1e3, 1e6}) {
          Scenario s = MakeScenario(scheme, length);
          s.alpha = 0.4;
          s.link.station_fraction = 0.35;
          s.link.visibility = visibility;
          s.link.dark_count_rate_hz = rate;
          s.link.detection_window = std::chrono::nanoseconds(30);
          s.a.emission_efficiency = 0.7;
          absl::StatusOr<AttemptModel> model = Compute(s);
          ASSERT_TRUE(model.ok()) << model.status();
          EXPECT_GT(model->success_probability, 0.0);
          EXPECT_LE(model->success_probability, 1.0);
          for (const HeraldedOutcome& o : model->outcomes) {
            EXPECT_LT(MaxAbs(o.state - o.state.adjoint()), 1e-14);
            EXPECT_NEAR(o.state.trace().real(), 1.0, 1e-12);
            EXPECT_NEAR(o.state.trace().imag(), 0.0, 1e-12);
            Eigen::SelfAdjointEigenSolver<Eigen::Matrix4cd> eig(o.state);
            EXPECT_GE(eig.eigenvalues().minCoeff(), -1e-12);
          }
        }
      }
    }
  }
}

// The tolerances above separate the model from plausible wrong ones by
// orders of magnitude: at these settings each alternative misses the exact
// reference by more than 1e-2 while the model meets it to 1e-9.
TEST(HeraldingModelTest, ToleranceRejectsWrongModels) {
  const double alpha = 0.3, eta = 0.5, v = 0.8;
  Scenario s = MakeScenario(HeraldingScheme::kSingleClick, 0);
  s.alpha = alpha;
  s.link.visibility = v;
  s.a.emission_efficiency = s.b.emission_efficiency = eta;
  absl::StatusOr<AttemptModel> single = Compute(s);
  ASSERT_TRUE(single.ok()) << single.status();
  const double f = Fidelity(single->outcomes[0].state, BellState::kPsiPlus);
  const double p = single->success_probability;

  auto fidelity_of = [](const Eigen::Matrix4cd& rho) {
    return Fidelity(rho / rho.trace().real(), BellState::kPsiPlus);
  };
  const RoundReference right = Round(eta, eta, v, 0);
  const Eigen::Matrix4cd ref = SingleClickReference(right, alpha, +1);
  EXPECT_NEAR(f, fidelity_of(ref), kExact);
  EXPECT_NEAR(p, 2 * ref.trace().real(), kExact * p);

  // V instead of sqrt(V) in the single-photon interference term.
  RoundReference wrong_visibility = right;
  wrong_visibility.coherence = eta * v / 2;
  EXPECT_GT(std::abs(f - fidelity_of(SingleClickReference(wrong_visibility, alpha, +1))), 1e-2);
  // Two-photon (both memories bright) term left out.
  RoundReference no_two_photon = right;
  no_two_photon.p11 = 0;
  EXPECT_GT(std::abs(f - fidelity_of(SingleClickReference(no_two_photon, alpha, +1))), 1e-2);
  EXPECT_GT(std::abs(p - 2 * SingleClickReference(no_two_photon, alpha, +1).trace().real()), 1e-2);
  // Photon-number-resolving detectors (a bunched pair is not "one click").
  RoundReference resolving = right;
  resolving.p11 -= eta * eta * (1 + v) / 4;
  EXPECT_GT(std::abs(p - 2 * SingleClickReference(resolving, alpha, +1).trace().real()), 1e-2);

  // Double-click: sqrt(V) instead of V.
  s.link.scheme = HeraldingScheme::kDoubleClick;
  absl::StatusOr<AttemptModel> dbl = Compute(s);
  ASSERT_TRUE(dbl.ok()) << dbl.status();
  const double fd = Fidelity(dbl->outcomes[0].state, BellState::kPsiPlus);
  EXPECT_NEAR(fd, (1 + v) / 2, kExact);
  EXPECT_GT(std::abs(fd - (1 + std::sqrt(v)) / 2), 1e-2);
}

TEST(HeraldingModelTest, AlphaIsIgnoredForDoubleClick) {
  Scenario s = MakeScenario(HeraldingScheme::kDoubleClick, 30);
  s.link.visibility = 0.9;
  s.alpha = 0.1;
  absl::StatusOr<AttemptModel> first = Compute(s);
  s.alpha = 7.0;  // would be invalid for single-click
  absl::StatusOr<AttemptModel> second = Compute(s);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(first->success_probability, second->success_probability);
}

TEST(HeraldingModelTest, AttemptDuration) {
  // Emission cycles 2 us and 3 us; 100 km with the station at 30%: the far arm
  // is 70 km, round trip 140 km at 2e5 km/s = 700 us.
  Scenario s = MakeScenario(HeraldingScheme::kSingleClick, 100);
  s.link.station_fraction = 0.3;
  absl::StatusOr<AttemptModel> model = Compute(s);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->attempt_duration, std::chrono::microseconds(700));
  s.link.length_km = 0;
  model = Compute(s);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->attempt_duration, std::chrono::microseconds(3));

  s.link.scheme = HeraldingScheme::kDoubleClick;
  model = Compute(s);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->attempt_duration, std::chrono::microseconds(6));
  s.link.length_km = 100;
  model = Compute(s);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->attempt_duration, std::chrono::microseconds(703));
}

struct InvalidCase {
  std::string name;
  std::function<void(Scenario&)> spoil;
  std::string mentions;
};

TEST(HeraldingModelTest, RejectsParametersOutsideTheirRange) {
  const double nan = std::nan("");
  const std::vector<InvalidCase> cases = {
      {"emission above 1", [](Scenario& s) { s.a.emission_efficiency = 1.2; }, "node_a (alice): emission_efficiency"},
      {"emission negative", [](Scenario& s) { s.b.emission_efficiency = -0.1; }, "node_b (bob): emission_efficiency"},
      {"emission nan", [nan](Scenario& s) { s.a.emission_efficiency = nan; }, "emission_efficiency"},
      {"detector", [](Scenario& s) { s.link.detector_efficiency = 1.01; }, "detector_efficiency"},
      {"visibility", [](Scenario& s) { s.link.visibility = 1.5; }, "visibility"},
      {"visibility negative", [](Scenario& s) { s.link.visibility = -0.5; }, "visibility"},
      {"length", [](Scenario& s) { s.link.length_km = -1; }, "length_km"},
      {"length infinite", [](Scenario& s) { s.link.length_km = kInfinity; }, "length_km"},
      {"station", [](Scenario& s) { s.link.station_fraction = 1.1; }, "station_fraction"},
      {"attenuation", [](Scenario& s) { s.link.attenuation_db_per_km = -0.2; }, "attenuation_db_per_km"},
      {"dark counts", [](Scenario& s) { s.link.dark_count_rate_hz = -5; }, "dark_count_rate_hz"},
      {"window", [](Scenario& s) { s.link.detection_window = std::chrono::nanoseconds(-1); }, "detection_window"},
      {"cycle", [](Scenario& s) { s.b.emission_cycle_time = std::chrono::nanoseconds(-1); }, "emission_cycle_time"},
      {"alpha zero", [](Scenario& s) { s.alpha = 0; }, "bright_state_alpha"},
      {"alpha one", [](Scenario& s) { s.alpha = 1; }, "bright_state_alpha"},
      {"alpha nan", [nan](Scenario& s) { s.alpha = nan; }, "bright_state_alpha"},
      {"t2 > 2 t1", [](Scenario& s) { s.a.t1_s = 1; s.a.t2_s = 3; }, "t2_s"},
      {"t1 zero", [](Scenario& s) { s.a.t1_s = 0; }, "t1_s"},
      {"gate error", [](Scenario& s) { s.a.two_qubit_gate_error = 2; }, "two_qubit_gate_error"},
      {"readout", [](Scenario& s) { s.b.readout_error_1 = -1; }, "readout_error_1"},
      {"qubits", [](Scenario& s) { s.b.num_qubits = 0; }, "num_qubits"},
  };
  for (const InvalidCase& c : cases) {
    Scenario s = MakeScenario(HeraldingScheme::kSingleClick, 10);
    c.spoil(s);
    absl::StatusOr<AttemptModel> model = Compute(s);
    EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(std::string(model.status().message()), HasSubstr(c.mentions)) << c.name;
  }
}

TEST(HeraldingModelTest, SchemeNames) {
  EXPECT_EQ(SchemeName(HeraldingScheme::kSingleClick), "single-click");
  EXPECT_EQ(SchemeName(HeraldingScheme::kDoubleClick), "double-click");
  EXPECT_EQ(SchemeName(HeraldingScheme::kWerner), "werner");
}

// The abstract link: one outcome, PHI+, with exactly the stated probability,
// and the Werner state F |PHI+><PHI+| + (1-F)/3 (PHI- + PSI+ + PSI-) whatever
// the optics (lossy fibre, poor detectors and emitters do not enter).
TEST(HeraldingModelTest, WernerLinkHeraldsTheStatedWernerPairWithTheStatedProbability) {
  Scenario s = MakeScenario(HeraldingScheme::kWerner, 100);
  s.link.station_fraction = 0.3;
  s.link.werner_fidelity = 0.85;
  s.link.success_probability = 0.07;
  s.link.detector_efficiency = 0.1;
  s.a.emission_efficiency = 0.2;
  s.alpha = 0;  // no bright-state parameter: ignored, as for double-click
  absl::StatusOr<AttemptModel> model = Compute(s);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_DOUBLE_EQ(model->success_probability, 0.07);
  ASSERT_EQ(model->outcomes.size(), 1u);
  const HeraldedOutcome& o = model->outcomes[0];
  EXPECT_EQ(o.label, BellState::kPhiPlus);
  EXPECT_DOUBLE_EQ(o.probability, 0.07);
  EXPECT_NEAR(o.state.trace().real(), 1.0, 1e-12);
  for (BellState b : {BellState::kPhiPlus, BellState::kPhiMinus, BellState::kPsiPlus, BellState::kPsiMinus}) {
    const Eigen::Vector4cd v = quantum::BellVector(b);
    const double weight = std::real(v.dot(o.state * v));
    EXPECT_NEAR(weight, b == BellState::kPhiPlus ? 0.85 : 0.05, 1e-12) << static_cast<int>(b);
  }
  // Bell-diagonal: no coherence between different Bell states.
  const Eigen::Vector4cd phi = quantum::BellVector(BellState::kPhiPlus);
  const Eigen::Vector4cd psi = quantum::BellVector(BellState::kPsiPlus);
  EXPECT_NEAR(std::abs(phi.dot(o.state * psi)), 0.0, 1e-12);
  // Attempt duration: the round trip to the far end (70 km: 700 us, more
  // than the 3 us emission cycle) unless the file states one.
  EXPECT_EQ(model->attempt_duration, std::chrono::microseconds(700));
  s.link.attempt_duration = std::chrono::microseconds(13);
  model = Compute(s);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->attempt_duration, std::chrono::microseconds(13));

  s.link.werner_fidelity = 1.5;
  EXPECT_THAT(std::string(Compute(s).status().message()), HasSubstr("werner_fidelity = 1.5 is outside [0, 1]"));
  s.link.werner_fidelity = 0.9;
  s.link.success_probability = -0.1;
  EXPECT_THAT(std::string(Compute(s).status().message()), HasSubstr("success_probability"));
}

}  // namespace
}  // namespace qnet::physical
