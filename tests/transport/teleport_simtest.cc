// Teleportation across repeater chains in the simulator: exact on ideal
// pairs, the closed-form average fidelity on noisy pairs, several transfers
// in flight, failures at both ends with every qubit freed, and the
// outcome-only estimate of a teleported state against the truth.
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/transport/transport_harness.h"

namespace qnet::transport {
namespace {

using qnet::testing::ChainYaml;
using qnet::testing::ExpectTransportClean;
using qnet::testing::SimStackNetwork;
using qnet::testing::TeleportLog;
using std::chrono::milliseconds;
using std::chrono::seconds;

// A uniformly random pure state (uniform on the Bloch sphere).
BlochAngles RandomState(Rng& rng) { return {std::acos(1 - 2 * rng.Uniform()), 2 * M_PI * rng.Uniform()}; }

// Queues one transfer per state from n0 to `destination` and runs until all have ended at the source.
void TeleportAll(SimStackNetwork& net, const std::string& destination, const std::vector<BlochAngles>& states,
                 TeleportLog& log, const TeleportOptions& options, Duration limit) {
  ASSERT_TRUE(net.node(destination).transport().RegisterReceiver(log.DestinationHandler(&net.device(destination))).ok());
  net.RunFor(milliseconds(1));  // routing adverts spread
  for (const BlochAngles& s : states) {
    absl::StatusOr<TransferId> id = net.node("n0").transport().Teleport(destination, s, options, log.SourceHandler());
    ASSERT_TRUE(id.ok()) << id.status();
    log.intended[*id] = s;
  }
  ASSERT_TRUE(net.RunUntil([&] { return log.sent.size() == states.size() && log.measuring == 0; }, limit))
      << log.sent.size() << " of " << states.size() << " transfers ended";
}

// Ideal hardware and links: every Bell-state outcome and pair frame is
// corrected exactly, so the destination holds the input state (fidelity 1
// to 1e-9), for the six named states and 50 random ones, over 1 and 3 hops.
TEST(TeleportSimTest, IdealChainsDeliverEveryStateExactly) {
  for (int hops : {1, 3}) {
    SCOPED_TRACE(absl::StrCat(hops, " hops"));
    SimStackNetwork net(ChainYaml(hops), 500 + hops);
    Rng rng(900 + hops);
    std::vector<BlochAngles> states;
    for (NamedState n : {NamedState::kZero, NamedState::kOne, NamedState::kPlus, NamedState::kMinus,
                         NamedState::kPlusI, NamedState::kMinusI}) {
      states.push_back(ToAngles(n));
    }
    for (int i = 0; i < 50; ++i) states.push_back(RandomState(rng));
    TeleportLog log;
    TeleportOptions options;
    options.timeout = seconds(60);
    TeleportAll(net, absl::StrCat("n", hops), states, log, options, seconds(120));
    ASSERT_EQ(log.received.size(), states.size());
    std::set<int> frames, outcomes;
    for (const auto& s : log.sent) {
      ASSERT_TRUE(s.result.ok()) << s.result.status();
      frames.insert(static_cast<int>(s.result->pair_frame));
      outcomes.insert(static_cast<int>(s.result->measured));
      EXPECT_EQ(s.result->pair.head, "n0");
    }
    for (const auto& r : log.received) {
      EXPECT_EQ(r.qubit.source, "n0");
      EXPECT_NEAR(log.TrueFidelity(r), 1.0, 1e-9) << "transfer " << r.qubit.id;
    }
    // Every Bell-state outcome occurred (and, across swaps, every frame).
    EXPECT_EQ(outcomes.size(), 4u);
    if (hops > 1) {
      EXPECT_EQ(frames.size(), 4u);
    }
    ExpectTransportClean(net);
  }
}

// Double-click links of visibility V herald Bell-diagonal pairs whose only
// error is Z-type with probability (1-V)/2; over k links the Z errors
// compose to (1 - V^k)/2, so the pair fidelity is F = (1 + V^k)/2. The
// average fidelity of teleportation over a Bell-diagonal pair of fidelity F,
// over uniformly random input states, is (2F + 1)/3 (Horodecki et al., PRA
// 60, 1888 (1999): f = (2F + 1)/3 for any channel whose pair has fully
// entangled fraction F; exact for Bell-diagonal pairs). Here V = 0.9 over 2
// links: F = 0.905, average 0.93667. Each state's true fidelity is
// 1 - (1 - V^k)/2 (1 - n_z^2), whose spread over random states sets the
// sampling error (~0.002 for 200 states); we check within 5 sigma.
TEST(TeleportSimTest, AverageFidelityOverNoisyPairsIsTwoFPlusOneOverThree) {
  const double v = 0.9;
  const int hops = 2;
  SimStackNetwork net(ChainYaml(hops, "ideal", 1.0, "", "    visibility: 0.9\n"), 77);
  Rng rng(78);
  std::vector<BlochAngles> states;
  for (int i = 0; i < 200; ++i) states.push_back(RandomState(rng));
  TeleportLog log;
  TeleportOptions options;
  options.timeout = seconds(60);
  TeleportAll(net, "n2", states, log, options, seconds(120));
  ASSERT_EQ(log.received.size(), states.size());
  double sum = 0, sum2 = 0;
  for (const auto& r : log.received) {
    const double f = log.TrueFidelity(r);
    sum += f;
    sum2 += f * f;
  }
  const double n = static_cast<double>(log.received.size());
  const double mean = sum / n;
  const double sigma = std::sqrt(std::max(0.0, sum2 / n - mean * mean) / n);
  const double pair_fidelity = (1 + std::pow(v, hops)) / 2;
  const double expected = (2 * pair_fidelity + 1) / 3;
  EXPECT_NEAR(mean, expected, 5 * sigma) << "sigma " << sigma;
  // A wrong model is far off: no correction for the frame gives ~1/2, no noise 1.
  EXPECT_GT(sigma, 0.0);
  EXPECT_LT(5 * sigma, (1 - expected) / 3);
  for (const auto& s : log.sent) {
    ASSERT_TRUE(s.result.ok()) << s.result.status();
    EXPECT_GT(s.result->pair_fidelity_estimate, 0.5);
  }
  ExpectTransportClean(net);
}

// A transfer's min_fidelity goes to the network layer: links of visibility
// 0.8 give at best 0.82 over 2 hops by swapping, so for 0.85 it purifies
// each link once (DEJMPS). By hand (as in the network tests): each purified
// link pair has A' = 0.81/0.82 (no error) and C' = 0.01/0.82 (X-type);
// swapping two gives F = A'^2 + C'^2 = 0.99078, so teleportation averages
// (2F + 1)/3 = 0.99385 over random states; every pair used is reported at
// or above the minimum. A minimum no path can reach fails the transfer with
// UNSUPPORTED.
TEST(TeleportSimTest, MinFidelityIsHonouredAndAnUnreachableOneFails) {
  SimStackNetwork net(ChainYaml(2, "ideal", 1.0, "    qubits: 4\n", "    visibility: 0.8\n"), 61);
  Rng rng(62);
  std::vector<BlochAngles> states;
  for (int i = 0; i < 200; ++i) states.push_back(RandomState(rng));
  TeleportLog log;
  TeleportOptions options;
  options.min_fidelity = 0.85;
  options.timeout = seconds(60);
  TeleportAll(net, "n2", states, log, options, seconds(120));
  ASSERT_EQ(log.received.size(), states.size());
  for (const auto& s : log.sent) {
    ASSERT_TRUE(s.result.ok()) << s.result.status();
    EXPECT_GE(s.result->pair_fidelity_estimate, 0.85);
  }
  double sum = 0, sum2 = 0;
  for (const auto& r : log.received) {
    const double f = log.TrueFidelity(r);
    sum += f;
    sum2 += f * f;
    EXPECT_GE(r.qubit.pair_fidelity_estimate, 0.85);
  }
  const double n = static_cast<double>(log.received.size());
  const double mean = sum / n;
  const double sigma = std::sqrt(std::max(0.0, sum2 / n - mean * mean) / n);
  const double a = 0.81 / 0.82, c = 0.01 / 0.82;
  const double expected = (2 * (a * a + c * c) + 1) / 3;
  EXPECT_NEAR(mean, expected, 5 * sigma + 1e-9) << "sigma " << sigma;
  // Without purification the average would be at most (2 * 0.82 + 1)/3 = 0.88.
  EXPECT_GT(net.node("n2").network().stats().purifications, 0u);
  ExpectTransportClean(net);

  options.min_fidelity = 0.999;
  TeleportLog refused;
  ASSERT_TRUE(net.node("n0").transport().Teleport("n2", NamedState::kZero, options, refused.SourceHandler()).ok());
  ASSERT_TRUE(net.RunUntil([&] { return !refused.sent.empty(); }, seconds(1)));
  const absl::Status error = refused.sent[0].result.status();
  EXPECT_EQ(error.code(), absl::StatusCode::kFailedPrecondition) << error;
  EXPECT_NE(error.message().find("UNSUPPORTED"), std::string::npos) << error;
  ExpectTransportClean(net);
}

// Twelve transfers queued at once, three running at a time (memory for
// them: 8 qubits per node), over 2 ideal hops: each arrives with its own
// state, matched by transfer id.
TEST(TeleportSimTest, SeveralTransfersInFlightEachArriveWithTheRightState) {
  stack::NodeStackOptions options;
  options.transport.max_active_transfers = 3;
  SimStackNetwork net(ChainYaml(2, "ideal", 1.0, "    qubits: 8\n"), 31, {}, options);
  Rng rng(32);
  std::vector<BlochAngles> states;
  for (int i = 0; i < 12; ++i) states.push_back(RandomState(rng));
  TeleportLog log;
  ASSERT_TRUE(net.node("n2").transport().RegisterReceiver(log.DestinationHandler(&net.device("n2"))).ok());
  net.RunFor(milliseconds(1));
  for (const BlochAngles& s : states) {
    absl::StatusOr<TransferId> id = net.node("n0").transport().Teleport("n2", s, {}, log.SourceHandler());
    ASSERT_TRUE(id.ok()) << id.status();
    log.intended[*id] = s;
  }
  size_t most_in_flight = 0;
  ASSERT_TRUE(net.RunUntil(
      [&] {
        most_in_flight = std::max(most_in_flight, net.node("n2").transport().active_incoming());
        return log.sent.size() == states.size();
      },
      seconds(30)));
  EXPECT_GE(most_in_flight, 3u);
  ASSERT_EQ(log.received.size(), states.size());
  std::set<TransferId> ids;
  for (const auto& s : log.sent) ASSERT_TRUE(s.result.ok()) << s.result.status();
  for (const auto& r : log.received) {
    ids.insert(r.qubit.id);
    // Random states are far apart: the wrong state would have fidelity well below 1.
    EXPECT_NEAR(log.TrueFidelity(r), 1.0, 1e-9) << "transfer " << r.qubit.id;
  }
  EXPECT_EQ(ids.size(), states.size());
  ExpectTransportClean(net);
}

// Slow links (~25 ms per link pair) so that transfers are still waiting for
// their pair when something happens.
std::string SlowChain(int hops) { return ChainYaml(hops, "ideal", 1.0, "", "    detector_efficiency: 0.02\n"); }

TEST(TeleportSimTest, ImmediateErrors) {
  SimStackNetwork net(ChainYaml(1), 1);
  net.RunFor(milliseconds(1));
  TransportLayer& source = net.node("n0").transport();
  TeleportLog log;
  absl::StatusOr<TransferId> id = source.Teleport("mallory", NamedState::kPlus, {}, log.SourceHandler());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kNotFound) << id.status();
  EXPECT_NE(id.status().message().find("NO_ROUTE"), std::string::npos) << id.status();
  EXPECT_NE(id.status().message().find("mallory"), std::string::npos) << id.status();
  EXPECT_EQ(source.Teleport("n0", NamedState::kPlus, {}, log.SourceHandler()).status().code(),
            absl::StatusCode::kInvalidArgument);
  TeleportOptions bad;
  bad.min_fidelity = 1.5;
  EXPECT_EQ(source.Teleport("n1", NamedState::kPlus, bad, log.SourceHandler()).status().code(),
            absl::StatusCode::kInvalidArgument);
  bad = {};
  bad.timeout = Duration(0);
  EXPECT_EQ(source.Teleport("n1", NamedState::kPlus, bad, log.SourceHandler()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(source.Teleport("n1", BlochAngles{NAN, 0}, {}, log.SourceHandler()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(source.Teleport("n1", NamedState::kPlus, {}, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  // No receiver at the destination: refused there, failed at the source.
  id = source.Teleport("n1", NamedState::kPlus, {}, log.SourceHandler());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_TRUE(log.sent.empty());  // outcomes never come inside a call
  ASSERT_TRUE(net.RunUntil([&] { return !log.sent.empty(); }, seconds(1)));
  EXPECT_EQ(log.sent[0].result.status().code(), absl::StatusCode::kNotFound) << log.sent[0].result.status();
  EXPECT_NE(log.sent[0].result.status().message().find("NO_RECEIVER"), std::string::npos)
      << log.sent[0].result.status();
  ExpectTransportClean(net);
}

TEST(TeleportSimTest, TimeoutFailsBothEndsAndFreesEverything) {
  SimStackNetwork net(SlowChain(2), 2);
  TeleportLog log;
  ASSERT_TRUE(net.node("n2").transport().RegisterReceiver(log.DestinationHandler(&net.device("n2"))).ok());
  net.RunFor(milliseconds(1));
  TeleportOptions options;
  options.timeout = milliseconds(3);
  ASSERT_TRUE(net.node("n0").transport().Teleport("n2", NamedState::kOne, options, log.SourceHandler()).ok());
  ASSERT_TRUE(net.RunUntil([&] { return !log.sent.empty() && !log.receive_failed.empty(); }, seconds(1)));
  EXPECT_EQ(log.sent[0].result.status().code(), absl::StatusCode::kDeadlineExceeded) << log.sent[0].result.status();
  EXPECT_NE(log.sent[0].result.status().message().find("TIMEOUT"), std::string::npos) << log.sent[0].result.status();
  EXPECT_NE(log.receive_failed[0].error.message().find("TIMEOUT"), std::string::npos) << log.receive_failed[0].error;
  EXPECT_EQ(log.receive_failed[0].source, "n0");
  EXPECT_TRUE(log.received.empty());
  ExpectTransportClean(net);
}

// The destination crashes while the transfer waits for its pair: the
// circuit breaks, the source fails the transfer with PEER_DOWN and frees
// its data qubit.
TEST(TeleportSimTest, ADestinationThatCrashesFailsTheTransferAndFreesTheSourcesQubits) {
  SimStackNetwork net(SlowChain(2), 3);
  TeleportLog log;
  ASSERT_TRUE(net.node("n2").transport().RegisterReceiver(log.DestinationHandler(&net.device("n2"))).ok());
  net.RunFor(milliseconds(1));
  ASSERT_TRUE(net.node("n0").transport().Teleport("n2", NamedState::kPlusI, {}, log.SourceHandler()).ok());
  net.RunFor(milliseconds(10));
  EXPECT_EQ(net.node("n0").transport().held_slots(), 1);  // the data qubit, waiting
  EXPECT_EQ(net.node("n2").transport().active_incoming(), 1u);
  net.Crash("n2");
  ASSERT_TRUE(net.RunUntil([&] { return !log.sent.empty(); }, seconds(1)));
  const absl::Status error = log.sent[0].result.status();
  EXPECT_EQ(error.code(), absl::StatusCode::kUnavailable) << error;
  EXPECT_NE(error.message().find("PEER_DOWN"), std::string::npos) << error;
  net.RunFor(milliseconds(50));
  for (const char* name : {"n0", "n1"}) {
    EXPECT_EQ(net.node(name).transport().held_slots(), 0) << name;
    EXPECT_EQ(net.node(name).transport().active_outgoing(), 0u) << name;
    EXPECT_EQ(net.node(name).network().active_circuits(), 0u) << name;
    EXPECT_EQ(net.FreeSlots(name), net.device(name).num_slots()) << name;
  }
}

// The source crashes mid-transfer: the destination hears nothing more and
// fails the transfer at its deadline, freeing whatever it held.
TEST(TeleportSimTest, ASourceThatCrashesFailsTheTransferAtTheDestinationByItsDeadline) {
  // Slower still (~0.4 s per pair), so the pair is not there within 5 ms.
  SimStackNetwork net(ChainYaml(1, "ideal", 1.0, "", "    detector_efficiency: 0.005\n"), 41);
  TeleportLog log;
  ASSERT_TRUE(net.node("n1").transport().RegisterReceiver(log.DestinationHandler(&net.device("n1"))).ok());
  net.RunFor(milliseconds(1));
  TeleportOptions options;
  options.timeout = milliseconds(100);
  ASSERT_TRUE(net.node("n0").transport().Teleport("n1", NamedState::kMinus, options, log.SourceHandler()).ok());
  net.RunFor(milliseconds(5));
  ASSERT_EQ(net.node("n1").transport().active_incoming(), 1u) << log.sent.size() << " " << log.received.size() << " " << (log.sent.empty() ? "" : log.sent[0].result.status().ToString());
  net.Crash("n0");
  ASSERT_TRUE(net.RunUntil([&] { return !log.receive_failed.empty(); }, seconds(1)));
  EXPECT_EQ(log.receive_failed[0].error.code(), absl::StatusCode::kDeadlineExceeded) << log.receive_failed[0].error;
  EXPECT_TRUE(log.received.empty());
  net.RunFor(milliseconds(50));
  EXPECT_EQ(net.node("n1").transport().held_slots(), 0);
  EXPECT_EQ(net.node("n1").transport().active_incoming(), 0u);
  EXPECT_EQ(net.FreeSlots("n1"), net.device("n1").num_slots());
}

// The destination's side of DISCARD and ABORT, driven by a hand-made
// source at n0 speaking the transport's datagrams (no real source ever
// sees a pair below min_fidelity: the network layer filters them first).
TEST(TeleportSimTest, ADiscardedPairIsFreedAtTheDestinationAndAnAbortEndsTheTransferThere) {
  SimStackNetwork net(ChainYaml(1), 5);
  TeleportLog log;
  ASSERT_TRUE(net.node("n1").transport().RegisterReceiver(log.DestinationHandler(&net.device("n1"))).ok());
  net.RunFor(milliseconds(1));
  network::NetworkLayer& n0 = net.node("n0").network();
  ASSERT_TRUE(n0.SendDatagram("n1", kTransportPurposeId, "BEGIN 7 1000000000").ok());
  network::EndToEndRequest r;
  r.remote_node = "n1";
  r.purpose_id = kTransportPurposeId;
  qnet::testing::NetLog raw;
  ASSERT_TRUE(n0.Create(r, raw.Handler(&net.device("n0"))).ok());
  ASSERT_TRUE(net.RunUntil([&] { return raw.Ended(); }, seconds(1)));
  ASSERT_EQ(raw.pairs.size(), 1u);
  // The destination holds its half, waiting for bits.
  EXPECT_EQ(net.node("n1").transport().held_slots(), 1);
  EXPECT_EQ(net.node("n1").transport().active_incoming(), 1u);
  const network::EndToEndId& id = raw.pairs[0].id;
  ASSERT_TRUE(n0.SendDatagram("n1", kTransportPurposeId,
                              absl::StrCat("DISCARD 7 ", id.head, " ", id.tail, " ", id.circuit, " ", id.sequence))
                  .ok());
  net.RunFor(milliseconds(1));
  EXPECT_EQ(net.node("n1").transport().held_slots(), 0);
  EXPECT_EQ(net.node("n1").transport().active_incoming(), 1u);  // the transfer goes on
  EXPECT_TRUE(log.receive_failed.empty());
  ASSERT_TRUE(n0.SendDatagram("n1", kTransportPurposeId, "ABORT 7 4 TIMEOUT: gave up").ok());
  ASSERT_TRUE(net.RunUntil([&] { return !log.receive_failed.empty(); }, seconds(1)));
  EXPECT_EQ(log.receive_failed[0].id, 7u);
  EXPECT_EQ(log.receive_failed[0].error.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(log.receive_failed[0].error.message().find("TIMEOUT: gave up (reported by n0)"), std::string::npos)
      << log.receive_failed[0].error;
  EXPECT_TRUE(log.received.empty());
  ExpectTransportClean(net);
}

// Verification from outcomes only: 6000 copies of one state over noisy
// pairs (visibility 0.9, 2 hops), the destination measuring 2000 each in X,
// Y and Z. The estimated fidelity is within 5 standard errors of the true mean
// fidelity of the delivered qubits (from the simulated state).
TEST(TeleportSimTest, OutcomeEstimateOfATeleportedStateMatchesTheTruth) {
  SimStackNetwork net(ChainYaml(2, "ideal", 1.0, "", "    visibility: 0.9\n"), 55);
  const BlochAngles state{1.1, 0.6};
  std::vector<BlochAngles> states(6000, state);
  TeleportLog log;
  const std::array<quantum::Basis, 3> bases = {quantum::Basis::X(), quantum::Basis::Y(), quantum::Basis::Z()};
  std::map<TransferId, size_t> axis_of;
  log.basis_for = [&](TransferId id) -> std::optional<quantum::Basis> {
    const size_t axis = axis_of.size() % 3;
    axis_of[id] = axis;
    return bases[axis];
  };
  TeleportOptions options;
  options.timeout = seconds(60);
  TeleportAll(net, "n2", states, log, options, seconds(120));
  ASSERT_EQ(log.received.size(), states.size());
  std::array<AxisCounts, 3> counts;
  double truth = 0;
  for (const auto& r : log.received) {
    ASSERT_GE(r.outcome, 0);
    AxisCounts& c = counts[axis_of.at(r.qubit.id)];
    ++c.shots;
    c.plus += r.outcome == 0 ? 1 : 0;
    truth += log.TrueFidelity(r);
  }
  truth /= static_cast<double>(log.received.size());
  absl::StatusOr<BlochEstimate> e = EstimateFromOutcomes(counts[0], counts[1], counts[2], state);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_NEAR(e->fidelity, truth, 5 * e->fidelity_standard_error) << "standard error " << e->fidelity_standard_error;
  // The noise is visible: the truth is 1 - 0.095 (1 - cos^2 1.1) = 0.925.
  EXPECT_NEAR(truth, 1 - 0.095 * (1 - std::cos(1.1) * std::cos(1.1)), 1e-6);
  // ~0.011: 5 sigma is less than the 0.075 the noise costs, so an estimate
  // that missed the noise (or the truth) would fail.
  EXPECT_LT(e->fidelity_standard_error, 0.012);
  ExpectTransportClean(net);
}

}  // namespace
}  // namespace qnet::transport
