// BB84 prepare-and-measure physics (physical/prepare_measure.h): detection
// rate and QBER sampled from source -> fibre -> detector, checked against the
// closed forms of the single-photon model, with a 5-sigma binomial tolerance.
#include "physical/prepare_measure.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/physical/prepare_measure_reference.h"

namespace qnet::physical {
namespace {

using ::testing::HasSubstr;

// Closed forms: tests/physical/prepare_measure_reference.h.
using reference::BinomialSigma;
using reference::ClickProbability;
using reference::ClosedFormQber;
using reference::PhotonErrorWithEavesdropper;
using reference::Transmittance;

// ---- Running the three components ----

struct RunResult {
  uint64_t gates = 0;
  uint64_t detections = 0;
  uint64_t sifted = 0;         // detections in Alice's basis
  uint64_t sifted_errors = 0;  // of those, Bob's bit != Alice's
  uint64_t double_clicks = 0;
  FibreChannelStats channel;
  uint64_t eve_same_basis = 0;         // interceptions in Alice's basis
  uint64_t eve_same_basis_errors = 0;  // of those, Eve's bit != Alice's
};

// Alice -> fibre -> Bob for `pulses` pulses in batches, then sifting: keep
// Bob's records whose basis equals Alice's and count the disagreements.
RunResult RunBb84(const FibreChannelParams& fibre, const PhotonDetectorParams& detector, uint64_t pulses,
                  uint64_t seed) {
  const Rng root(seed);
  auto source = PhotonSource::Create(1e9, root.Fork("source"));
  auto channel = FibreChannel::Create(fibre, root.Fork("fibre"));
  auto bob = PhotonDetector::Create(detector, root.Fork("detector"));
  EXPECT_TRUE(source.ok() && channel.ok() && bob.ok());
  RunResult result;
  if (!source.ok() || !channel.ok() || !bob.ok()) return result;

  constexpr uint64_t kBatch = 100000;
  for (uint64_t done = 0; done < pulses; done += kBatch) {
    const std::vector<PreparedPulse> alice = source->EmitBatch(std::min(kBatch, pulses - done));
    auto sent = channel->Transmit(alice);
    EXPECT_TRUE(sent.ok()) << sent.status();
    if (!sent.ok()) return result;
    auto records = bob->Detect(sent->to_receiver);
    EXPECT_TRUE(records.ok()) << records.status();
    if (!records.ok()) return result;

    const uint64_t first = alice.front().pulse_id;
    for (const MeasuredPulse& r : *records) {
      const PreparedPulse& a = alice[r.pulse_id - first];
      if (r.basis != a.basis) continue;
      ++result.sifted;
      if (r.bit != a.bit) ++result.sifted_errors;
    }
    for (const MeasuredPulse& eve : sent->intercepted) {
      const PreparedPulse& a = alice[eve.pulse_id - first];
      if (eve.basis != a.basis) continue;
      ++result.eve_same_basis;
      if (eve.bit != a.bit) ++result.eve_same_basis_errors;
    }
  }
  result.gates = bob->stats().gates;
  result.detections = bob->stats().detections;
  result.double_clicks = bob->stats().double_clicks;
  result.channel = channel->stats();
  return result;
}

void ExpectQberNear(const RunResult& run, double expected_qber, const std::string& what) {
  ASSERT_GT(run.sifted, 1000u) << what << ": too few sifted bits for a meaningful estimate";
  const double measured = static_cast<double>(run.sifted_errors) / static_cast<double>(run.sifted);
  const double sigma = BinomialSigma(expected_qber, static_cast<double>(run.sifted));
  EXPECT_NEAR(measured, expected_qber, 5.0 * sigma)
      << what << ": QBER over " << run.sifted << " sifted bits (sigma " << sigma << ")";
}

// ---- Detection rate ----

TEST(PrepareMeasureTest, DetectionRateFollowsFibreLossAndDarkCounts) {
  constexpr double kAttenuation = 0.2;
  constexpr double kEtaD = 0.25;
  constexpr double kDark = 1e-4;
  constexpr uint64_t kPulses = 1000000;
  for (double length_km : {0.0, 25.0, 50.0, 100.0}) {
    FibreChannelParams fibre;
    fibre.length_km = length_km;
    fibre.attenuation_db_per_km = kAttenuation;
    fibre.misalignment_error = 0.01;
    const RunResult run = RunBb84(fibre, {kEtaD, kDark}, kPulses, 11 + static_cast<uint64_t>(length_km));
    ASSERT_EQ(run.gates, kPulses);
    const double eta = Transmittance(kAttenuation, length_km) * kEtaD;
    const double p_click = ClickProbability(eta, kDark);
    const double measured = static_cast<double>(run.detections) / static_cast<double>(run.gates);
    EXPECT_NEAR(measured, p_click, 5.0 * BinomialSigma(p_click, static_cast<double>(run.gates)))
        << length_km << " km: " << run.detections << " detections in " << run.gates << " gates";
    // Photons delivered: Binomial(N, T).
    const double t = Transmittance(kAttenuation, length_km);
    EXPECT_NEAR(static_cast<double>(run.channel.photons_out) / kPulses, t, 5.0 * BinomialSigma(t, kPulses) + 1e-12)
        << length_km << " km";
  }
}

// ---- QBER: misalignment and dark counts ----

TEST(PrepareMeasureTest, QberOnShortLinkIsMostlyMisalignment) {
  FibreChannelParams fibre;
  fibre.length_km = 25.0;
  fibre.misalignment_error = 0.03;
  const PhotonDetectorParams detector{0.25, 1e-4};
  const RunResult run = RunBb84(fibre, detector, 400000, 21);
  const double eta = Transmittance(0.2, 25.0) * 0.25;
  ExpectQberNear(run, ClosedFormQber(eta, 1e-4, 0.03), "25 km, e_d = 0.03");
}

TEST(PrepareMeasureTest, QberOnLongLinkIsDominatedByDarkCounts) {
  // 150 km: eta = 1e-3 * 0.25 = 2.5e-4 < 2 p_d = 1e-3, so most clicks are dark
  // counts and the QBER (~0.41) is far from e_d = 0.03.
  FibreChannelParams fibre;
  fibre.length_km = 150.0;
  fibre.misalignment_error = 0.03;
  const PhotonDetectorParams detector{0.25, 5e-4};
  const RunResult run = RunBb84(fibre, detector, 4000000, 22);
  const double eta = Transmittance(0.2, 150.0) * 0.25;
  const double qber = ClosedFormQber(eta, 5e-4, 0.03);
  ASSERT_GT(qber, 0.35);
  ExpectQberNear(run, qber, "150 km, p_d = 5e-4");
  EXPECT_NEAR(static_cast<double>(run.detections) / run.gates, ClickProbability(eta, 5e-4),
              5.0 * BinomialSigma(ClickProbability(eta, 5e-4), run.gates));
}

TEST(PrepareMeasureTest, DoubleClicksAreSquashedToRandomBits) {
  // Frequent dark counts: P(double) = eta p_d + (1-eta) p_d^2 = 0.12. Keeping
  // double clicks as random bits gives QBER 0.14 / 0.68 = 0.206; discarding
  // them would give 0.143.
  FibreChannelParams fibre;
  fibre.length_km = 0.0;
  const PhotonDetectorParams detector{0.5, 0.2};
  const RunResult run = RunBb84(fibre, detector, 100000, 23);
  const double eta = 0.5;
  ExpectQberNear(run, ClosedFormQber(eta, 0.2, 0.0), "squashing");
  const double p_double = eta * 0.2 + (1.0 - eta) * 0.2 * 0.2;
  EXPECT_NEAR(static_cast<double>(run.double_clicks) / run.gates, p_double,
              5.0 * BinomialSigma(p_double, run.gates));
}

// ---- Intercept-resend eavesdropper ----

TEST(PrepareMeasureTest, FullInterceptResendGivesQuarterQber) {
  FibreChannelParams fibre;
  fibre.length_km = 10.0;
  fibre.eavesdropper_fraction = 1.0;
  const RunResult run = RunBb84(fibre, {1.0, 0.0}, 100000, 31);
  ExpectQberNear(run, 0.25, "x = 1");
  EXPECT_EQ(run.channel.pulses_intercepted, run.channel.pulses_reaching_eavesdropper);
  // Eve measured Alice's pure state: in Alice's basis she always learns the bit.
  EXPECT_GT(run.eve_same_basis, 0u);
  EXPECT_EQ(run.eve_same_basis_errors, 0u);
}

TEST(PrepareMeasureTest, PartialInterceptResendAddsToMisalignment) {
  // x = 0.2, e_d = 0.02: by hand e = 0.8 * 0.02 + 0.2 * (0.01 + 0.25)
  // = 0.016 + 0.052 = 0.068 (Eve's 0.05 plus e_d (1 - x/2) = 0.018).
  // No dark counts, so the QBER is e. Eve halfway down a 50 km fibre.
  FibreChannelParams fibre;
  fibre.length_km = 50.0;
  fibre.misalignment_error = 0.02;
  fibre.eavesdropper_fraction = 0.2;
  fibre.eavesdropper_position = 0.5;
  ASSERT_NEAR(PhotonErrorWithEavesdropper(0.02, 0.2), 0.068, 1e-12);
  const uint64_t pulses = 300000;
  const RunResult run = RunBb84(fibre, {0.5, 0.0}, pulses, 32);
  ExpectQberNear(run, 0.068, "x = 0.2, e_d = 0.02");

  // Eve reaches the pulses that survive 25 km, and takes a fraction x of them.
  const double t_half = Transmittance(0.2, 25.0);
  EXPECT_NEAR(static_cast<double>(run.channel.pulses_reaching_eavesdropper) / pulses, t_half,
              5.0 * BinomialSigma(t_half, pulses));
  const double reached = static_cast<double>(run.channel.pulses_reaching_eavesdropper);
  EXPECT_NEAR(run.channel.pulses_intercepted / reached, 0.2, 5.0 * BinomialSigma(0.2, reached));
  // Her resent photon crosses the rest of the fibre: detections still follow T.
  const double eta = Transmittance(0.2, 50.0) * 0.5;
  EXPECT_NEAR(static_cast<double>(run.detections) / pulses, eta, 5.0 * BinomialSigma(eta, pulses));
}

TEST(PrepareMeasureTest, NoEavesdropperNoNoiseGivesZeroQber) {
  FibreChannelParams fibre;
  fibre.length_km = 20.0;
  const RunResult run = RunBb84(fibre, {0.8, 0.0}, 50000, 33);
  ASSERT_GT(run.sifted, 1000u);
  EXPECT_EQ(run.sifted_errors, 0u);
  EXPECT_EQ(run.channel.pulses_intercepted, 0u);
}

// ---- Born rule on an arbitrary polarisation ----

TEST(PrepareMeasureTest, DetectorSamplesBornRuleOfArbitraryState) {
  // Mixed state r = 0.9 (sin t cos p, sin t sin p, cos t), t = pi/3, p = pi/4:
  // P(bit 0 | Z) = (1 + r_z) / 2 = 0.725, P(bit 0 | X) = (1 + r_x) / 2 = 0.77557.
  const double theta = M_PI / 3.0;
  const double phi = M_PI / 4.0;
  const BlochVector r{0.9 * std::sin(theta) * std::cos(phi), 0.9 * std::sin(theta) * std::sin(phi),
                      0.9 * std::cos(theta)};
  constexpr uint64_t kPhotons = 40000;
  PhotonBatch batch;
  batch.first_pulse_id = 1000;
  batch.num_pulses = kPhotons;
  for (uint64_t i = 0; i < kPhotons; ++i) batch.photons.push_back({1000 + i, r});

  auto bob = PhotonDetector::Create({1.0, 0.0}, Rng(41));
  ASSERT_TRUE(bob.ok()) << bob.status();
  auto records = bob->Detect(batch);
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), kPhotons);

  double count[2] = {0, 0};
  double zeros[2] = {0, 0};
  for (const MeasuredPulse& m : *records) {
    count[m.basis] += 1;
    if (m.bit == 0) zeros[m.basis] += 1;
  }
  EXPECT_NEAR(count[kPolarisationBasisX] / kPhotons, 0.5, 5.0 * BinomialSigma(0.5, kPhotons));
  const double p_z = 0.5 * (1.0 + r.z);
  const double p_x = 0.5 * (1.0 + r.x);
  EXPECT_NEAR(zeros[0] / count[0], p_z, 5.0 * BinomialSigma(p_z, count[0]));
  EXPECT_NEAR(zeros[1] / count[1], p_x, 5.0 * BinomialSigma(p_x, count[1]));
}

// ---- Reproducibility ----

TEST(PrepareMeasureTest, SameSeedGivesIdenticalOutput) {
  FibreChannelParams fibre;
  fibre.length_km = 30.0;
  fibre.misalignment_error = 0.02;
  fibre.eavesdropper_fraction = 0.3;
  const PhotonDetectorParams detector{0.3, 1e-3};

  auto run = [&](uint64_t seed) {
    const Rng root(seed);
    auto source = PhotonSource::Create(1e8, root.Fork("source"));
    auto channel = FibreChannel::Create(fibre, root.Fork("fibre"));
    auto bob = PhotonDetector::Create(detector, root.Fork("detector"));
    EXPECT_TRUE(source.ok() && channel.ok() && bob.ok());
    std::vector<uint64_t> trace;  // every field of every output, flattened
    for (int batch = 0; batch < 3; ++batch) {
      const std::vector<PreparedPulse> alice = source->EmitBatch(20000);
      for (const PreparedPulse& p : alice) trace.insert(trace.end(), {p.pulse_id, p.basis, p.bit});
      auto sent = channel->Transmit(alice);
      EXPECT_TRUE(sent.ok());
      for (const MeasuredPulse& e : sent->intercepted) trace.insert(trace.end(), {e.pulse_id, e.basis, e.bit});
      auto records = bob->Detect(sent->to_receiver);
      EXPECT_TRUE(records.ok());
      for (const MeasuredPulse& m : *records) trace.insert(trace.end(), {m.pulse_id, m.basis, m.bit});
    }
    return trace;
  };
  const std::vector<uint64_t> a = run(7);
  EXPECT_EQ(a, run(7));
  EXPECT_NE(a, run(8));
  EXPECT_GT(a.size(), 3u * 60000u);
}

// ---- Parameters, timing and input checks ----

TEST(PrepareMeasureTest, ParamsFromLink) {
  LinkPhysics link;
  link.name = "alice-bob";
  link.length_km = 40.0;
  link.attenuation_db_per_km = 0.18;
  link.detector_efficiency = 0.6;
  link.dark_count_rate_hz = 100.0;
  link.detection_window = Duration(10000);  // 10 us
  link.visibility = 0.96;
  auto fibre = FibreChannelParamsFromLink(link, 0.1);
  ASSERT_TRUE(fibre.ok()) << fibre.status();
  EXPECT_DOUBLE_EQ(fibre->length_km, 40.0);
  EXPECT_DOUBLE_EQ(fibre->attenuation_db_per_km, 0.18);
  EXPECT_NEAR(fibre->misalignment_error, 0.02, 1e-15);  // (1 - V) / 2
  EXPECT_DOUBLE_EQ(fibre->eavesdropper_fraction, 0.1);
  auto detector = PhotonDetectorParamsFromLink(link);
  ASSERT_TRUE(detector.ok()) << detector.status();
  EXPECT_DOUBLE_EQ(detector->efficiency, 0.6);
  EXPECT_NEAR(detector->dark_count_probability, 1e-3, 1e-6);  // 1 - exp(-100 Hz * 10 us)

  const auto bad_x = FibreChannelParamsFromLink(link, 1.5);
  EXPECT_THAT(bad_x.status().message(), HasSubstr("eavesdropper_fraction = 1.5"));
  EXPECT_THAT(bad_x.status().message(), HasSubstr("alice-bob"));
  link.detector_efficiency = 1.2;
  EXPECT_THAT(PhotonDetectorParamsFromLink(link).status().message(), HasSubstr("detector_efficiency"));
}

TEST(PrepareMeasureTest, SourceTiming) {
  auto source = PhotonSource::Create(2.5e9, Rng(1));
  ASSERT_TRUE(source.ok());
  EXPECT_EQ(source->EmissionOffset(5), Duration(2));
  EXPECT_EQ(source->EmissionOffset(2500000000ULL), Duration(1000000000));
  const auto slow = PhotonSource::Create(1e6, Rng(1));
  ASSERT_TRUE(slow.ok());
  EXPECT_EQ(slow->pulse_period(), Duration(1000));
  EXPECT_THAT(PhotonSource::Create(0.0, Rng(1)).status().message(), HasSubstr("repetition_rate_hz"));
  auto batch = source->EmitBatch(3);
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(batch[2].pulse_id, 2u);
  EXPECT_EQ(source->EmitBatch(1)[0].pulse_id, 3u);
}

TEST(PrepareMeasureTest, RejectsOutOfRangeParametersNamingThem) {
  FibreChannelParams fibre;
  fibre.misalignment_error = 0.6;
  EXPECT_THAT(FibreChannel::Create(fibre, Rng(1)).status().message(), HasSubstr("misalignment_error = 0.6"));
  fibre = {};
  fibre.eavesdropper_fraction = -0.1;
  EXPECT_THAT(FibreChannel::Create(fibre, Rng(1)).status().message(), HasSubstr("eavesdropper_fraction"));
  fibre = {};
  fibre.length_km = NAN;
  EXPECT_THAT(FibreChannel::Create(fibre, Rng(1)).status().message(), HasSubstr("length_km"));
  auto channel = FibreChannel::Create({}, Rng(1));
  ASSERT_TRUE(channel.ok());
  EXPECT_THAT(channel->SetEavesdropperFraction(1.5).message(), HasSubstr("eavesdropper_fraction = 1.5"));
  EXPECT_EQ(channel->params().eavesdropper_fraction, 0.0);  // unchanged by the rejected value
  ASSERT_TRUE(channel->SetEavesdropperFraction(0.4).ok());
  EXPECT_EQ(channel->params().eavesdropper_fraction, 0.4);
  EXPECT_THAT(PhotonDetector::Create({1.1, 0.0}, Rng(1)).status().message(), HasSubstr("efficiency = 1.1"));
  EXPECT_THAT(PhotonDetector::Create({1.0, -1.0}, Rng(1)).status().message(),
              HasSubstr("dark_count_probability"));
}

TEST(PrepareMeasureTest, RejectsMalformedBatches) {
  auto channel = FibreChannel::Create({}, Rng(1));
  ASSERT_TRUE(channel.ok());
  const std::vector<PreparedPulse> gap = {{0, 0, 0}, {2, 0, 0}};
  EXPECT_THAT(channel->Transmit(gap).status().message(), HasSubstr("consecutive"));
  const std::vector<PreparedPulse> bad_bit = {{0, 0, 2}};
  EXPECT_THAT(channel->Transmit(bad_bit).status().message(), HasSubstr("0 or 1"));
  auto empty = channel->Transmit({});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->to_receiver.num_pulses, 0u);

  auto bob = PhotonDetector::Create({1.0, 0.0}, Rng(1));
  ASSERT_TRUE(bob.ok());
  PhotonBatch batch{10, 5, {{15, {0, 0, 1}}}};
  EXPECT_THAT(bob->Detect(batch).status().message(), HasSubstr("outside the batch"));
  batch.photons = {{12, {0, 0, 1}}, {11, {0, 0, 1}}};
  EXPECT_THAT(bob->Detect(batch).status().message(), HasSubstr("must increase"));
  batch.photons = {{12, {1, 0, 1}}};
  EXPECT_THAT(bob->Detect(batch).status().message(), HasSubstr("not a state"));
}

}  // namespace
}  // namespace qnet::physical
