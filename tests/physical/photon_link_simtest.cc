// Prepare-and-measure photons carried by the physical layer between two nodes
// wired through the fake runtime (message delay = the link's fibre delay):
// the detection count and the sifted QBER (Alice's returned pulses against
// Bob's detections in the same basis) against the single-photon closed forms
// of tests/physical/prepare_measure_reference.h within 5 binomial sigma; the
// sender's eavesdropper setting; arrival times; malformed batches; seeding.
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "physical/physical_layer.h"
#include "physical/quantum_device.h"
#include "physical/state_backend.h"
#include "quantum/quantum_system.h"
#include "tests/physical/fake_runtime.h"
#include "tests/physical/prepare_measure_reference.h"

namespace qnet::physical {
namespace {

using ::testing::HasSubstr;
using reference::BinomialSigma;
using reference::ClickProbability;
using reference::ClosedFormQber;
using reference::PhotonErrorWithEavesdropper;
using reference::Transmittance;
using testing::FakeNodeContext;
using testing::VirtualClock;

constexpr char kLink[] = "alice-bob";

NodeHardware IdealNode() {
  NodeHardware hw;
  hw.num_qubits = 1;
  hw.emission_cycle_time = std::chrono::microseconds(1);
  return hw;
}

// A BB84 link: 0.2 dB/km, eta_d = 0.25, visibility V (e_d = (1 - V) / 2),
// dark counts at `dark_rate_hz` in a 10 ns window.
LinkPhysics Bb84Link(double length_km, double visibility, double dark_rate_hz) {
  LinkPhysics link;
  link.name = kLink;
  link.node_a = "alice";
  link.node_b = "bob";
  link.length_km = length_km;
  link.attenuation_db_per_km = 0.2;
  link.detector_efficiency = 0.25;
  link.dark_count_rate_hz = dark_rate_hz;
  link.detection_window = std::chrono::nanoseconds(10);
  link.visibility = visibility;
  link.scheme = HeraldingScheme::kDoubleClick;
  return link;
}

// Dark-count probability per gate and detector: Poisson counts at rate R in
// a window w fire at least once with probability 1 - exp(-R w).
double DarkProbability(const LinkPhysics& link) {
  return 1.0 - std::exp(-link.dark_count_rate_hz * ToSeconds(link.detection_window));
}

// What one node's photon receiver heard.
struct Received {
  std::string from;
  uint64_t session = 0;
  std::vector<MeasuredPulse> detections;
  uint64_t gates = 0;
  TimePoint at;
};

struct TwoNodes {
  TwoNodes(LinkPhysics link_physics, uint64_t seed, PhysicalLayerOptions options = {})
      : link(std::move(link_physics)), alice(clock, "alice", seed), bob(clock, "bob", seed), backend(system),
        device_a(alice, backend, IdealNode(), 0), device_b(bob, backend, IdealNode(), 1) {
    FakeNodeContext::Connect(alice, bob, FibreDelay(link.length_km));
    auto a = PhysicalLayer::Create(alice, device_a, backend, IdealNode(), {{link, IdealNode()}}, options);
    auto b = PhysicalLayer::Create(bob, device_b, backend, IdealNode(), {{link, IdealNode()}}, options);
    EXPECT_TRUE(a.ok()) << a.status();
    EXPECT_TRUE(b.ok()) << b.status();
    layer_a = *std::move(a);
    layer_b = *std::move(b);
    alice.receive = [this](const std::string& from, const v1::PeerMessage& m) {
      if (m.has_physical()) layer_a->OnPhysicalMessage(from, m.physical());
    };
    bob.receive = [this](const std::string& from, const v1::PeerMessage& m) {
      if (m.has_physical()) layer_b->OnPhysicalMessage(from, m.physical());
    };
    for (auto [layer, received] : {std::tuple{layer_a.get(), &at_a}, std::tuple{layer_b.get(), &at_b}}) {
      // A named copy: C++20 lets a lambda capture a structured binding, clang 14 does not.
      auto* out = received;
      EXPECT_TRUE(layer
                      ->RegisterPhotonReceiver([this, out](const std::string& from, uint64_t session,
                                                           std::vector<MeasuredPulse> detections, uint64_t gates) {
                        out->push_back({from, session, std::move(detections), gates, clock.Now()});
                      })
                      .ok());
    }
  }

  LinkPhysics link;
  VirtualClock clock;
  FakeNodeContext alice;
  FakeNodeContext bob;
  quantum::QuantumSystem system;
  SharedStateBackend backend;
  SimulatedDevice device_a;
  SimulatedDevice device_b;
  std::unique_ptr<PhysicalLayer> layer_a;
  std::unique_ptr<PhysicalLayer> layer_b;
  std::vector<Received> at_a;  // what alice's receiver heard
  std::vector<Received> at_b;
};

struct Sifted {
  uint64_t gates = 0;
  uint64_t detections = 0;
  uint64_t sifted = 0;
  uint64_t errors = 0;
};

// Sends `total` pulses from `sender` to `neighbour` in calls of at most
// kMaxPulsesPerSend, runs the clock, and sifts what `heard` collected
// against the returned pulses.
Sifted RunBb84(TwoNodes& net, PhysicalLayer& sender, const std::string& neighbour, std::vector<Received>& heard,
               uint64_t total) {
  std::vector<PreparedPulse> prepared;
  prepared.reserve(total);
  for (uint64_t sent = 0; sent < total;) {
    const auto count = static_cast<uint32_t>(std::min<uint64_t>(PhysicalLayer::kMaxPulsesPerSend, total - sent));
    auto batch = sender.SendPhotons(neighbour, 1, sent, count);
    EXPECT_TRUE(batch.ok()) << batch.status();
    if (!batch.ok()) return {};
    prepared.insert(prepared.end(), batch->begin(), batch->end());
    sent += count;
  }
  net.clock.RunUntilIdle();
  Sifted out;
  for (const Received& r : heard) {
    out.gates += r.gates;
    out.detections += r.detections.size();
    for (const MeasuredPulse& m : r.detections) {
      const PreparedPulse& a = prepared.at(m.pulse_id);
      EXPECT_EQ(a.pulse_id, m.pulse_id);
      if (m.basis != a.basis) continue;
      ++out.sifted;
      out.errors += m.bit != a.bit;
    }
  }
  heard.clear();
  return out;
}

void ExpectQberNear(const Sifted& run, double expected, const std::string& what) {
  ASSERT_GT(run.sifted, 1000u) << what << ": too few sifted bits";
  const double n = static_cast<double>(run.sifted);
  EXPECT_NEAR(static_cast<double>(run.errors) / n, expected, 5.0 * BinomialSigma(expected, n))
      << what << ": " << run.errors << " errors in " << run.sifted << " sifted bits";
}

void ExpectDetectionRateNear(const Sifted& run, double p_click, const std::string& what) {
  const double n = static_cast<double>(run.gates);
  EXPECT_NEAR(static_cast<double>(run.detections) / n, p_click, 5.0 * BinomialSigma(p_click, n))
      << what << ": " << run.detections << " detections in " << run.gates << " gates";
}

// ---- Detection rate and QBER against the closed forms ----

TEST(PhotonLinkTest, DetectionsAndSiftedQberFollowTheClosedFormsAt25And100Km) {
  // V = 0.94 -> e_d = 0.03; p_d ~ 1e-4 per gate and detector. At 100 km eta
  // = 0.01 * 0.25 = 2.5e-3 is ~12 p_d, so dark counts double the QBER there
  // (~0.065 vs 0.03): a model without them would fail by > 7 sigma.
  struct Case {
    double length_km;
    uint64_t pulses;
  };
  for (const Case c : {Case{25.0, 400'000}, Case{100.0, 4'000'000}}) {
    TwoNodes net(Bb84Link(c.length_km, 0.94, 1e4), 5 + static_cast<uint64_t>(c.length_km));
    const Sifted run = RunBb84(net, *net.layer_a, "bob", net.at_b, c.pulses);
    const std::string what = std::to_string(c.length_km) + " km";
    ASSERT_EQ(run.gates, c.pulses) << what;
    const double p_d = DarkProbability(net.link);
    const double t = Transmittance(0.2, c.length_km);
    const double eta = t * 0.25;
    ExpectDetectionRateNear(run, ClickProbability(eta, p_d), what);
    ExpectQberNear(run, ClosedFormQber(eta, p_d, 0.03), what);

    // Both ends' counts agree with what crossed, and the fibre passed ~T.
    const PhotonLinkStats sent = *net.layer_a->PhotonStats("bob");
    const PhotonLinkStats got = *net.layer_b->PhotonStats("alice");
    EXPECT_EQ(sent.link, kLink);
    EXPECT_EQ(sent.pulses_sent, c.pulses);
    EXPECT_EQ(sent.pulses_intercepted, 0u);
    EXPECT_EQ(got.gates, c.pulses);
    EXPECT_EQ(got.photons_received, sent.photons_delivered);
    EXPECT_EQ(got.detections, run.detections);
    EXPECT_EQ(got.malformed_batches + got.photons_dropped, 0u);
    const double n = static_cast<double>(c.pulses);
    EXPECT_NEAR(static_cast<double>(sent.photons_delivered) / n, t, 5.0 * BinomialSigma(t, n)) << what;
  }
}

// ---- Eavesdropper: the sender's setting is in force ----

TEST(PhotonLinkTest, EavesdropperAtTheSenderGivesAQuarterPlusMisalignment) {
  // x = 1, e_d = 0.02 (V = 0.96), no dark counts: by hand
  // e = e_d / 2 + 1/4 = 0.26 (Eve's basis matches Alice's half the time:
  // error e_d; otherwise Bob's bit is random: 1/2).
  TwoNodes net(Bb84Link(10.0, 0.96, 0.0), 21);
  ASSERT_NEAR(PhotonErrorWithEavesdropper(0.02, 1.0), 0.26, 1e-12);
  // alice hosts the station (node_a), bob does not: for photons, each
  // sender's own value counts.
  ASSERT_TRUE(net.layer_a->SetEavesdropperFraction("bob", 1.0).ok());
  constexpr uint64_t kPulses = 100'000;
  const Sifted eavesdropped = RunBb84(net, *net.layer_a, "bob", net.at_b, kPulses);
  ExpectQberNear(eavesdropped, 0.26, "alice -> bob, x = 1 at alice");
  // Eve sits at the sender's output, so she reaches every pulse.
  EXPECT_EQ(net.layer_a->PhotonStats("bob")->pulses_intercepted, kPulses);

  // bob's recorded value is still 0: his photons to alice are untouched.
  const Sifted clean = RunBb84(net, *net.layer_b, "alice", net.at_a, kPulses);
  ExpectQberNear(clean, 0.02, "bob -> alice, x = 0 at bob");
  EXPECT_EQ(net.layer_b->PhotonStats("alice")->pulses_intercepted, 0u);

  // Switching at run time takes effect from the next batch: x = 0.2 at bob,
  // e = 0.8 * 0.02 + 0.2 * (0.01 + 0.25) = 0.068.
  absl::StatusOr<bool> here = net.layer_b->SetEavesdropperFraction("alice", 0.2);
  ASSERT_TRUE(here.ok()) << here.status();
  EXPECT_FALSE(*here);  // not the station host: for heralded pairs it is only recorded
  const Sifted partial = RunBb84(net, *net.layer_b, "alice", net.at_a, 300'000);
  ExpectQberNear(partial, PhotonErrorWithEavesdropper(0.02, 0.2), "bob -> alice, x = 0.2 at bob");
  const double intercepted = static_cast<double>(net.layer_b->PhotonStats("alice")->pulses_intercepted);
  EXPECT_NEAR(intercepted / 300'000, 0.2, 5.0 * BinomialSigma(0.2, 300'000));
}

// ---- Timing ----

TEST(PhotonLinkTest, BatchArrivesAfterEmissionTimeAndFibreDelay) {
  // 50 km: 250 us of fibre. A 100 MHz source takes 10 ns a pulse.
  TwoNodes net(Bb84Link(50.0, 1.0, 0.0), 31, {.photon_source_rate_hz = 1e8});
  const Duration delay = FibreDelay(50.0);
  const TimePoint t0 = net.clock.Now();
  ASSERT_TRUE(net.layer_a->SendPhotons("bob", 42, 1000, 10'000).ok());
  // The source is busy until the first batch is out: the second follows it.
  ASSERT_TRUE(net.layer_a->SendPhotons("bob", 43, 11'000, 5'000).ok());
  net.clock.RunUntilIdle();
  // T(50 km) = 0.1: ~1000 and ~500 photons, one message each.
  ASSERT_EQ(net.at_b.size(), 2u);
  EXPECT_EQ(net.at_b[0].from, "alice");
  EXPECT_EQ(net.at_b[0].session, 42u);
  EXPECT_EQ(net.at_b[0].gates, 10'000u);
  EXPECT_EQ(net.at_b[0].at, t0 + std::chrono::microseconds(100) + delay);
  EXPECT_EQ(net.at_b[1].session, 43u);
  EXPECT_EQ(net.at_b[1].gates, 5'000u);
  EXPECT_EQ(net.at_b[1].at, t0 + std::chrono::microseconds(150) + delay);
  for (const Received& r : net.at_b) {
    for (const MeasuredPulse& m : r.detections) {
      EXPECT_GE(m.pulse_id, r.session == 42 ? 1000u : 11'000u);
      EXPECT_LT(m.pulse_id, r.session == 42 ? 11'000u : 16'000u);
    }
  }
}

TEST(PhotonLinkTest, LargeBatchIsSplitIntoMessagesThatTileItsGates) {
  // No loss, perfect detectors: every pulse arrives and clicks, so 10000
  // photons take three messages; each leaves when its last pulse is out.
  LinkPhysics link = Bb84Link(2.0, 1.0, 0.0);
  link.attenuation_db_per_km = 0.0;
  link.detector_efficiency = 1.0;
  TwoNodes net(link, 32);
  const TimePoint t0 = net.clock.Now();
  auto prepared = net.layer_a->SendPhotons("bob", 7, 0, 10'000);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  ASSERT_EQ(prepared->size(), 10'000u);
  net.clock.RunUntilIdle();
  ASSERT_EQ(net.at_b.size(), 3u);
  uint64_t next_gate = 0;
  for (const Received& r : net.at_b) {
    EXPECT_LE(r.detections.size(), PhysicalLayer::kMaxPhotonsPerMessage);
    EXPECT_EQ(r.detections.size(), r.gates);  // every gate had a photon that clicked
    EXPECT_EQ(r.detections.front().pulse_id, next_gate);
    next_gate += r.gates;
    // Emitted at 1 GHz: the message's last pulse leaves at next_gate ns.
    EXPECT_EQ(r.at, t0 + Duration(static_cast<int64_t>(next_gate)) + FibreDelay(2.0));
  }
  EXPECT_EQ(next_gate, 10'000u);
  // Ideal link: Bob's bit is Alice's wherever the bases agree.
  uint64_t sifted = 0;
  for (const Received& r : net.at_b) {
    for (const MeasuredPulse& m : r.detections) {
      if (m.basis != (*prepared)[m.pulse_id].basis) continue;
      ++sifted;
      EXPECT_EQ(m.bit, (*prepared)[m.pulse_id].bit);
    }
  }
  EXPECT_GT(sifted, 4000u);
}

// ---- Malformed input and argument errors ----

v1::PhysicalMessage Pulses(uint64_t first, uint64_t n, std::vector<std::tuple<uint64_t, double, double, double>> ps) {
  v1::PhysicalMessage message;
  message.set_link(kLink);
  v1::PhotonPulses* body = message.mutable_photon_pulses();
  body->set_session_id(9);
  body->set_first_pulse_id(first);
  body->set_num_pulses(n);
  for (auto [id, x, y, z] : ps) {
    v1::PhotonPulses::Photon* p = body->add_photons();
    p->set_pulse_id(id);
    p->set_x(x);
    p->set_y(y);
    p->set_z(z);
  }
  return message;
}

TEST(PhotonLinkTest, MalformedPhotonPulsesAreIgnoredAndCounted) {
  LinkPhysics link = Bb84Link(1.0, 1.0, 0.0);
  link.detector_efficiency = 1.0;
  TwoNodes net(link, 41);
  const std::vector<v1::PhysicalMessage> malformed = {
      Pulses(100, 10, {{110, 0, 0, 1}}),                    // id past the gates
      Pulses(100, 10, {{99, 0, 0, 1}}),                     // id before the gates
      Pulses(100, 10, {{103, 0, 0, 1}, {102, 0, 0, 1}}),    // not increasing
      Pulses(100, 10, {{101, 0.8, 0, 0.8}}),                // |r| > 1: not a state
      Pulses(100, 10, {{101, NAN, 0, 0}}),                  // not a number
      Pulses(100, 0, {}),                                   // no gates
      Pulses(100, uint64_t{1} << 40, {}),                   // more gates than any batch
      Pulses(~uint64_t{0} - 2, 10, {}),                     // gate ids overflow
  };
  for (const v1::PhysicalMessage& m : malformed) net.layer_b->OnPhysicalMessage("alice", m);
  EXPECT_TRUE(net.at_b.empty());
  PhotonLinkStats stats = *net.layer_b->PhotonStats("alice");
  EXPECT_EQ(stats.malformed_batches, malformed.size());
  EXPECT_EQ(stats.gates, 0u);
  EXPECT_EQ(net.layer_b->ignored_messages(), malformed.size());
  // From a node that is not the link's far end: ignored too.
  net.layer_b->OnPhysicalMessage("carol", Pulses(100, 10, {{101, 0, 0, 1}}));
  EXPECT_EQ(net.layer_b->ignored_messages(), malformed.size() + 1);
  EXPECT_TRUE(net.at_b.empty());

  // A well-formed batch still goes through: a Z photon in a 10-gate window.
  net.layer_b->OnPhysicalMessage("alice", Pulses(100, 10, {{101, 0, 0, 1}}));
  ASSERT_EQ(net.at_b.size(), 1u);
  EXPECT_EQ(net.at_b[0].session, 9u);
  EXPECT_EQ(net.at_b[0].gates, 10u);
  ASSERT_EQ(net.at_b[0].detections.size(), 1u);
  EXPECT_EQ(net.at_b[0].detections[0].pulse_id, 101u);

  // Without a receiver, photons are dropped and counted.
  ASSERT_TRUE(net.layer_b->RegisterPhotonReceiver(nullptr).ok());
  net.layer_b->OnPhysicalMessage("alice", Pulses(200, 10, {{201, 0, 0, 1}, {205, 1, 0, 0}}));
  stats = *net.layer_b->PhotonStats("alice");
  EXPECT_EQ(stats.photons_dropped, 2u);
  EXPECT_EQ(stats.gates, 10u);
  EXPECT_EQ(net.at_b.size(), 1u);
}

TEST(PhotonLinkTest, RejectsBadArgumentsWithActionableErrors) {
  TwoNodes net(Bb84Link(1.0, 1.0, 0.0), 51);
  auto zero = net.layer_a->SendPhotons("bob", 1, 0, 0);
  EXPECT_TRUE(absl::IsInvalidArgument(zero.status())) << zero.status();
  auto too_many = net.layer_a->SendPhotons("bob", 1, 0, PhysicalLayer::kMaxPulsesPerSend + 1);
  EXPECT_TRUE(absl::IsInvalidArgument(too_many.status()));
  EXPECT_THAT(too_many.status().message(), HasSubstr(std::to_string(PhysicalLayer::kMaxPulsesPerSend)));
  auto overflow = net.layer_a->SendPhotons("bob", 1, ~uint64_t{0}, 2);
  EXPECT_TRUE(absl::IsInvalidArgument(overflow.status())) << overflow.status();
  auto unknown = net.layer_a->SendPhotons("carol", 1, 0, 10);
  EXPECT_TRUE(absl::IsNotFound(unknown.status()));
  EXPECT_THAT(unknown.status().message(), HasSubstr("bob"));
  EXPECT_TRUE(absl::IsNotFound(net.layer_a->PhotonStats("carol").status()));
  // The fixture registered a receiver already.
  EXPECT_TRUE(absl::IsAlreadyExists(net.layer_a->RegisterPhotonReceiver([](auto&&...) {})));
  net.clock.RunUntilIdle();
  EXPECT_TRUE(net.at_b.empty());  // nothing was sent by the failed calls
  EXPECT_EQ(net.layer_a->PhotonStats("bob")->pulses_sent, 0u);

  VirtualClock clock;
  FakeNodeContext lone(clock, "alice", 1);
  quantum::QuantumSystem system;
  SharedStateBackend backend(system);
  SimulatedDevice device(lone, backend, IdealNode(), 0);
  auto bad_rate = PhysicalLayer::Create(lone, device, backend, IdealNode(), {{Bb84Link(1.0, 1.0, 0.0), IdealNode()}},
                                        {.photon_source_rate_hz = 0.0});
  EXPECT_TRUE(absl::IsInvalidArgument(bad_rate.status()));
  EXPECT_THAT(bad_rate.status().message(), HasSubstr("photon_source_rate_hz"));
  // A link whose physics cannot make a channel fails at the first send, naming the field.
  LinkPhysics bad_link = Bb84Link(1.0, 1.0, 0.0);
  bad_link.detector_efficiency = 1.5;
  auto layer = PhysicalLayer::Create(lone, device, backend, IdealNode(), {{bad_link, IdealNode()}});
  ASSERT_TRUE(layer.ok()) << layer.status();
  auto send = (*layer)->SendPhotons("bob", 1, 0, 10);
  EXPECT_TRUE(absl::IsInvalidArgument(send.status()));
  EXPECT_THAT(send.status().message(), HasSubstr("detector_efficiency"));
}

// ---- Reproducibility ----

TEST(PhotonLinkTest, SameSeedGivesIdenticalDetections) {
  auto run = [](uint64_t seed) {
    TwoNodes net(Bb84Link(30.0, 0.96, 1e5), seed);
    EXPECT_TRUE(net.layer_a->SetEavesdropperFraction("bob", 0.3).ok());
    std::vector<uint64_t> trace;
    for (uint64_t batch = 0; batch < 3; ++batch) {
      auto prepared = net.layer_a->SendPhotons("bob", batch, batch * 20'000, 20'000);
      EXPECT_TRUE(prepared.ok());
      for (const PreparedPulse& p : *prepared) trace.insert(trace.end(), {p.pulse_id, p.basis, p.bit});
    }
    net.clock.RunUntilIdle();
    for (const Received& r : net.at_b) {
      trace.insert(trace.end(), {r.session, r.gates});
      for (const MeasuredPulse& m : r.detections) trace.insert(trace.end(), {m.pulse_id, m.basis, m.bit});
    }
    return trace;
  };
  const std::vector<uint64_t> a = run(7);
  EXPECT_EQ(a, run(7));
  EXPECT_NE(a, run(8));
  EXPECT_GT(a.size(), 3u * 3u * 20'000u);
}

}  // namespace
}  // namespace qnet::physical
