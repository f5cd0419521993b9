// BB84 prepare-and-measure between neighbours in the simulator: Alice's
// physical layer sends single-photon pulses over a 25 km link (0.2 dB/km,
// detector efficiency eta_d = 0.25, dark counts 10^4 /s in a 1 ns gate,
// visibility V so misalignment e_d = (1 - V) / 2), Bob's detects them, and
// both ends run the usual post-processing. Checked against the single-photon
// closed forms of tests/physical/prepare_measure_reference.h (Lo, Ma & Chen
// 2005; intercept-resend after Bennett et al. 1992), within 5 binomial sigma:
// Bob's detections per pulse vs p_click = 1 - (1 - eta)(1 - p_d)^2, sifted
// bits per pulse vs p_click / 2 (Bob's basis is Alice's with probability
// 1/2), the sampled QBER vs p_error / p_click, the errors Cascade corrected
// in the rest of the key; the key is bit-identical at both ends and exactly
// the privacy-amplification bound recomputed from the report. An
// eavesdropper on every pulse (x = 1, set at Alice, the sender) drives the
// QBER to ~1/4 and both ends abort naming it; on a fifth of the pulses the
// QBER is (1 - x) e_d + x (e_d / 2 + 1/4) plus the dark-count part.
// Concurrent sessions over one link keep their photons apart; refusals (no
// link to the peer, no physical layer), cancel and timeout end both ends
// cleanly.
#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/keydist/keydist_harness.h"
#include "tests/physical/prepare_measure_reference.h"

namespace qnet::keydist {
namespace {

using physical::reference::BinomialSigma;
using physical::reference::ClickProbability;
using physical::reference::ClosedFormQber;
using physical::reference::PhotonErrorWithEavesdropper;
using physical::reference::Transmittance;
using qnet::testing::ChainYaml;
using qnet::testing::KeyNetwork;
using qnet::testing::SessionRecord;
using ::testing::HasSubstr;

constexpr double kLengthKm = 25.0;
constexpr double kAttenuation = 0.2;  // dB/km, the LinkPhysics default
constexpr double kDetectorEfficiency = 0.25;
constexpr double kDarkCountRateHz = 1e4;
constexpr double kWindowNs = 1.0;
constexpr double kVisibility = 0.98;
constexpr double kSourceRateHz = 1e9;  // PhysicalLayerOptions' default

std::string Bb84Chain(int hops) {
  return ChainYaml(hops, "ideal", kLengthKm, "",
                   absl::StrCat("    scheme: double-click\n    visibility: ", kVisibility,
                                "\n    detector_efficiency: ", kDetectorEfficiency,
                                "\n    dark_count_rate_hz: ", kDarkCountRateHz,
                                "\n    detection_window_ns: ", kWindowNs, "\n"));
}

// By hand: eta = T eta_d; Poisson dark counts at rate R in a window w fire
// with probability 1 - exp(-R w) per gate and detector.
double Eta() { return Transmittance(kAttenuation, kLengthKm) * kDetectorEfficiency; }
double DarkProbability() { return 1.0 - std::exp(-kDarkCountRateHz * kWindowNs * 1e-9); }
double Misalignment() { return (1.0 - kVisibility) / 2.0; }

QkdSessionOptions Bb84Options(uint32_t pulses) {
  return qnet::testing::TestOptions(pulses, QkdProtocol::kBb84);
}

void ExpectNearBinomial(double measured, double p, double n, const std::string& what) {
  EXPECT_NEAR(measured, p, 5 * BinomialSigma(p, n)) << what << " over " << n;
}

// Runs a session n0 -> n1 that must give a key; checks what any BB84 key
// must satisfy and returns Alice's result. `photon_error` is the error of a
// registered photon (misalignment, eavesdropper).
QkdResult RunAndCheckKey(KeyNetwork& kn, uint32_t pulses, double photon_error) {
  SessionRecord run;
  kn.Run("n0", "n1", Bb84Options(pulses), run);
  EXPECT_TRUE(run.result->ok()) << run.result->status();
  if (!run.result->ok()) return {};
  EXPECT_EQ(kn.responded("n1").size(), 1u);
  const qnet::testing::ResponderRecord& b = kn.responded("n1").back();
  EXPECT_TRUE(b.result.ok()) << b.result.status();
  if (!b.result.ok()) return {};
  const QkdResult& alice = **run.result;
  const QkdResult& bob = *b.result;
  EXPECT_EQ(b.initiator, "n0");
  EXPECT_EQ(b.id, run.id);
  EXPECT_EQ(alice.protocol, QkdProtocol::kBb84);
  EXPECT_EQ(QkdProtocolName(alice.protocol), "BB84");
  EXPECT_EQ(alice.peer, "n1");
  EXPECT_EQ(bob.peer, "n0");
  EXPECT_EQ(alice.path, (std::vector<std::string>{"n0", "n1"}));
  EXPECT_EQ(bob.path, alice.path);

  // Identical keys with the same id.
  EXPECT_GT(alice.key.size(), 0u);
  EXPECT_EQ(alice.key, bob.key);
  EXPECT_EQ(alice.key_id, bob.key_id);

  const double n = pulses;
  const double eta = Eta(), p_d = DarkProbability();
  const double p_click = ClickProbability(eta, p_d);
  const double qber = ClosedFormQber(eta, p_d, photon_error);
  // Bob's records are the gates that clicked; Alice announces her records
  // of exactly those pulses (the others cannot sift).
  const qkd::PostProcessingReport& r = alice.report;
  EXPECT_EQ(r.raw_detections, bob.report.raw_detections);
  ExpectNearBinomial(static_cast<double>(bob.report.raw_detections) / n, p_click, n, "detections per pulse");
  EXPECT_EQ(bob.report.sifted_bits, r.sifted_bits);
  ExpectNearBinomial(static_cast<double>(r.sifted_bits) / n, p_click / 2, n, "sifted bits per pulse");
  // The QBER overall and in each basis (misalignment acts alike on both).
  ExpectNearBinomial(r.qber.overall.rate(), qber, static_cast<double>(r.qber.overall.sampled), "sampled QBER");
  ExpectNearBinomial(r.qber.z.rate(), qber, static_cast<double>(r.qber.z.sampled), "Z-basis QBER");
  ExpectNearBinomial(r.qber.x.rate(), qber, static_cast<double>(r.qber.x.sampled), "X-basis QBER");
  // The rest of the key carries errors at the same rate; Cascade corrected
  // exactly those (verification passed).
  const double key_bits = static_cast<double>(r.reconciled_bits);
  ExpectNearBinomial(static_cast<double>(r.corrected_bits) / key_bits, qber, key_bits, "corrected bits");
  // The final length is the bound recomputed from the report.
  const double bound = qnet::testing::ReferenceKeyBound(r);
  EXPECT_NEAR(r.key_length.bound, bound, 1e-6 * std::abs(bound));
  EXPECT_EQ(static_cast<double>(alice.key.size() + alice.auth_bits_consumed), std::floor(bound));  // the rest refilled the authentication pool
  EXPECT_EQ(bob.report.key_length.bits, r.key_length.bits);

  // The run takes at least the emission of every pulse (simulated time).
  EXPECT_GT(alice.simulated_duration, std::chrono::nanoseconds(static_cast<int64_t>(n / kSourceRateHz * 1e9)));
  // Stages as for BBM92; "measured" at Alice: all pulses prepared.
  std::vector<std::string> stages;
  for (const QkdProgress& p : run.progress) stages.push_back(p.stage);
  EXPECT_THAT(stages, ::testing::ElementsAre("offered", "measuring", "measured", "sifted", "estimated", "reconciled",
                                             "done"));
  EXPECT_EQ(run.progress.back().raw_pairs, pulses);
  EXPECT_EQ(run.progress.back().final_key_bits, alice.key.size() + alice.auth_bits_consumed);

  // The physical layers saw the same pulses.
  auto sent = kn.net().node("n0").physical().PhotonStats("n1");
  auto received = kn.net().node("n1").physical().PhotonStats("n0");
  EXPECT_TRUE(sent.ok() && received.ok());
  if (sent.ok() && received.ok()) {
    EXPECT_EQ(sent->pulses_sent, pulses);
    EXPECT_EQ(received->gates, pulses);
    EXPECT_EQ(received->detections, bob.report.raw_detections);
    EXPECT_EQ(received->photons_dropped, 0u);
  }
  EXPECT_EQ(kn.kd("n0").stats().sessions_succeeded, 1u);
  EXPECT_EQ(kn.kd("n1").stats().sessions_succeeded, 1u);
  EXPECT_EQ(kn.kd("n1").stats().stray_photon_batches, 0u);
  return alice;
}

TEST(Bb84SimTest, KeysAgreeAndMatchTheSinglePhotonClosedForms) {
  KeyNetwork kn(Bb84Chain(1), 1);
  const QkdResult alice = RunAndCheckKey(kn, 500000, Misalignment());
  ::testing::Test::RecordProperty("key_bits", absl::StrCat(alice.key.size()));
  ::testing::Test::RecordProperty("qber", absl::StrCat(alice.report.qber.overall.rate()));
  kn.ExpectClean();
}

// Eve intercepts a fifth of the pulses (x = 0.2) at Alice's output: per
// registered photon e = (1 - x) e_d + x (e_d / 2 + 1/4) ~ 5.9%, still a key.
// More pulses than one SendPhotons call takes, so Alice sends two batches.
TEST(Bb84SimTest, EavesdropperOnAFifthOfThePulsesRaisesTheQberAsInterceptResendPredicts) {
  KeyNetwork kn(Bb84Chain(1), 2);
  constexpr double kFraction = 0.2;
  constexpr uint32_t kPulses = 1200000;
  static_assert(kPulses > physical::PhysicalLayer::kMaxPulsesPerSend);
  ASSERT_TRUE(kn.net().node("n0").physical().SetEavesdropperFraction("n1", kFraction).ok());
  RunAndCheckKey(kn, kPulses, PhotonErrorWithEavesdropper(Misalignment(), kFraction));
  // She sits at Alice's output, so every pulse reaches her.
  auto sent = kn.net().node("n0").physical().PhotonStats("n1");
  ASSERT_TRUE(sent.ok());
  ExpectNearBinomial(static_cast<double>(sent->pulses_intercepted) / kPulses, kFraction, kPulses,
                     "intercepted per pulse");
  kn.ExpectClean();
}

// Eve on every pulse: QBER (e_d / 2 + 1/4) plus dark counts, ~25.5%; both
// ends abort naming it.
TEST(Bb84SimTest, FullEavesdropperMakesBothEndsAbortNamingTheQber) {
  KeyNetwork kn(Bb84Chain(1), 3);
  ASSERT_TRUE(kn.net().node("n0").physical().SetEavesdropperFraction("n1", 1.0).ok());
  const QkdSessionOptions options = Bb84Options(200000);
  SessionRecord run;
  kn.Run("n0", "n1", options, run);
  ASSERT_FALSE(run.result->ok());
  EXPECT_EQ(run.result->status().code(), absl::StatusCode::kAborted) << run.result->status();
  EXPECT_THAT(run.result->status().message(), HasSubstr("QBER"));
  ASSERT_EQ(kn.responded("n1").size(), 1u);
  const absl::Status& bob = kn.responded("n1")[0].result.status();
  EXPECT_EQ(bob.code(), absl::StatusCode::kAborted) << bob;
  EXPECT_THAT(bob.message(), HasSubstr("QBER"));
  // The estimate it aborted on, against the closed form; the sample is the
  // configured fraction of the sifted bits.
  const QkdProgress* estimated = nullptr;
  for (const QkdProgress& p : run.progress) {
    if (p.stage == "estimated") estimated = &p;
  }
  ASSERT_NE(estimated, nullptr);
  const double sample =
      options.post_processing.estimation.sample_fraction * static_cast<double>(estimated->sifted_bits);
  const double expected = ClosedFormQber(Eta(), DarkProbability(), PhotonErrorWithEavesdropper(Misalignment(), 1.0));
  EXPECT_NEAR(expected, 0.255, 0.001);  // by hand: 0.01 / 2 + 1/4, dark counts ~1e-4
  ExpectNearBinomial(estimated->qber, expected, sample, "QBER under full intercept-resend");
  EXPECT_EQ(kn.kd("n0").stats().sessions_failed, 1u);
  EXPECT_EQ(kn.kd("n1").stats().sessions_failed, 1u);
  kn.ExpectClean();
}

// Sessions in both directions at once over the same link: the photons name
// their session, so each responder keeps its own, and every key pair agrees.
TEST(Bb84SimTest, ConcurrentSessionsInBothDirectionsKeepTheirPhotonsApart) {
  KeyNetwork kn(Bb84Chain(1), 8);
  const QkdSessionOptions options = Bb84Options(300000);
  SessionRecord a, b, c;
  kn.Begin("n0", "n1", options, a);
  kn.Begin("n1", "n0", options, b);
  kn.Begin("n0", "n1", options, c);
  ASSERT_TRUE(kn.net().RunUntil(
      [&] {
        return a.result.has_value() && b.result.has_value() && c.result.has_value() &&
               kn.responded("n0").size() == 1 && kn.responded("n1").size() == 2;
      },
      std::chrono::seconds(10)));
  const double p_half = ClickProbability(Eta(), DarkProbability()) / 2;
  for (SessionRecord* run : {&a, &b, &c}) {
    ASSERT_TRUE(run->result->ok()) << run->result->status();
    const qkd::PostProcessingReport& r = (*run->result)->report;
    // Alice's records of the pulses her own Bob detected, no more.
    ExpectNearBinomial(static_cast<double>(r.raw_detections) / options.pairs, 2 * p_half, options.pairs,
                       "detections per pulse");
    // Another session's detections would show as extra sifted bits at ~1/2 error.
    ExpectNearBinomial(static_cast<double>(r.sifted_bits) / options.pairs, p_half, options.pairs, "sifted per pulse");
    const double qber = ClosedFormQber(Eta(), DarkProbability(), Misalignment());
    ExpectNearBinomial(r.qber.overall.rate(), qber, static_cast<double>(r.qber.overall.sampled), "QBER");
  }
  auto responder_key = [&](const std::string& node, SessionId id) {
    for (const auto& r : kn.responded(node)) {
      if (r.id == id && r.result.ok()) return r.result->key;
    }
    return qkd::BitString();
  };
  EXPECT_EQ((*a.result)->key, responder_key("n1", a.id));
  EXPECT_EQ((*b.result)->key, responder_key("n0", b.id));
  EXPECT_EQ((*c.result)->key, responder_key("n1", c.id));
  EXPECT_NE((*a.result)->key_id, (*c.result)->key_id);
  EXPECT_EQ(kn.kd("n0").stats().stray_photon_batches + kn.kd("n1").stats().stray_photon_batches, 0u);
  kn.ExpectClean();
}

// A block whose announcement would not fit a message between nodes ends
// with an error that says so (a lossless link with millions of pulses: Bob
// detects nearly all, ~1.1 bytes each), instead of a dropped link and a
// session that waits for its deadline.
TEST(Bb84SimTest, ABlockTooLargeForOneMessageEndsSayingSo) {
  KeyNetwork kn(ChainYaml(1, "ideal", 0.001, "", "    detector_efficiency: 1.0\n"), 5);
  SessionRecord run;
  kn.Run("n0", "n1", Bb84Options(3'200'000), run);
  ASSERT_FALSE(run.result->ok());
  EXPECT_EQ(run.result->status().code(), absl::StatusCode::kResourceExhausted) << run.result->status();
  EXPECT_THAT(std::string(run.result->status().message()),
              HasSubstr("-byte limit of a message between nodes; use smaller blocks"));
  kn.ExpectClean();
}

TEST(Bb84SimTest, APeerThatIsNotANeighbourIsRefused) {
  KeyNetwork kn(Bb84Chain(2), 4);
  auto id = kn.kd("n0").StartSession("n2", Bb84Options(1000), nullptr, [](SessionId, absl::StatusOr<QkdResult>) {});
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(id.status().message(), "BB84 runs over one link: n2 is not a neighbour of n0; use bbm92 or relay");
  EXPECT_EQ(kn.kd("n0").stats().sessions_started, 0u);
  kn.ExpectClean();
}

TEST(Bb84SimTest, WithoutAPhysicalLayerBb84IsRefusedAtEitherEnd) {
  KeyNetwork kn(Bb84Chain(1), 5);
  // The initiator: at once.
  kn.Stop("n0");
  kn.Start("n0", /*with_physical=*/false);
  auto id = kn.kd("n0").StartSession("n1", Bb84Options(1000), nullptr, [](SessionId, absl::StatusOr<QkdResult>) {});
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(id.status().message(), HasSubstr("physical layer"));
  // BBM92 still runs there (the network layer is all it needs).
  SessionRecord bbm92;
  QkdSessionOptions bbm92_options = qnet::testing::TestOptions(6000);  // enough for a key past its 256 authentication bits
  bbm92_options.timeout = std::chrono::seconds(120);
  kn.Run("n0", "n1", bbm92_options, bbm92);
  EXPECT_TRUE(bbm92.result->ok()) << bbm92.result->status();

  // The responder: it answers the offer with why not.
  kn.Stop("n0");
  kn.Start("n0");
  kn.Stop("n1");
  kn.Start("n1", /*with_physical=*/false);
  SessionRecord run;
  kn.Begin("n0", "n1", Bb84Options(1000), run);
  ASSERT_TRUE(kn.net().RunUntil([&] { return run.result.has_value(); }, std::chrono::seconds(1)));
  ASSERT_FALSE(run.result->ok());
  EXPECT_EQ(run.result->status().code(), absl::StatusCode::kFailedPrecondition) << run.result->status();
  EXPECT_THAT(run.result->status().message(), HasSubstr("physical layer"));
  EXPECT_THAT(run.result->status().message(), HasSubstr("reported by n1"));
  kn.ExpectClean();
}

// Cancelled while the photons are in the fibre: both ends end, the photons
// that still arrive are ignored.
TEST(Bb84SimTest, CancelWhileThePhotonsFlyEndsBothEnds) {
  KeyNetwork kn(Bb84Chain(1), 6);
  SessionRecord run;
  kn.Begin("n0", "n1", Bb84Options(1000000), run);  // 1 ms of emission
  ASSERT_TRUE(kn.net().RunUntil([&] { return run.progress.size() >= 3; }, std::chrono::seconds(1)));
  EXPECT_EQ(run.progress.back().stage, "measured");
  ASSERT_TRUE(kn.kd("n0").Cancel(run.id).ok());
  ASSERT_TRUE(kn.net().RunUntil([&] { return run.result.has_value() && !kn.responded("n1").empty(); },
                                std::chrono::seconds(1)));
  EXPECT_EQ(run.result->status().code(), absl::StatusCode::kCancelled) << run.result->status();
  EXPECT_EQ(kn.responded("n1")[0].result.status().code(), absl::StatusCode::kCancelled);
  kn.net().RunFor(std::chrono::milliseconds(5));  // the rest of the photons arrive
  EXPECT_GT(kn.kd("n1").stats().stray_photon_batches, 0u);
  kn.ExpectClean();
}

// A timeout shorter than the emission: both ends fail, saying where it stood.
TEST(Bb84SimTest, TimeoutBeforeAllPulsesArriveEndsBothEnds) {
  KeyNetwork kn(Bb84Chain(1), 7);
  QkdSessionOptions options = Bb84Options(1000000);  // 1 ms of emission
  options.timeout = std::chrono::microseconds(600);
  SessionRecord run;
  kn.Run("n0", "n1", options, run);
  EXPECT_EQ(run.result->status().code(), absl::StatusCode::kDeadlineExceeded) << run.result->status();
  EXPECT_THAT(run.result->status().message(), HasSubstr("1000000 of 1000000 pulses sent, waiting for n1"));
  EXPECT_EQ(kn.responded("n1")[0].result.status().code(), absl::StatusCode::kDeadlineExceeded);
  kn.net().RunFor(std::chrono::milliseconds(5));
  kn.ExpectClean();
}

}  // namespace
}  // namespace qnet::keydist
