// SimulatedDevice: operation timing on the event loop, slot bookkeeping, and
// the noise it samples (readout error, memory decay, noisy Bell-state
// measurement) against hand computations with 5-sigma binomial tolerances.
#include "physical/quantum_device.h"

#include <cmath>
#include <optional>

#include <gtest/gtest.h>

#include "physical/state_backend.h"
#include "quantum/bell.h"
#include "quantum/quantum_system.h"
#include "tests/physical/fake_runtime.h"

namespace qnet::physical {
namespace {

using quantum::BellState;
using std::chrono::microseconds;
using std::chrono::nanoseconds;
using testing::FakeNodeContext;
using testing::VirtualClock;

// 5 sigma of the mean of n Bernoulli(p) draws.
double FiveSigma(double p, int n) { return 5.0 * std::sqrt(p * (1.0 - p) / n); }

struct Bench {
  explicit Bench(NodeHardware hw, uint64_t seed = 1)
      : context(clock, "alice", seed), backend(system), device(context, backend, std::move(hw), 0) {}
  VirtualClock clock;
  FakeNodeContext context;
  quantum::QuantumSystem system;
  SharedStateBackend backend;
  SimulatedDevice device;

  // Runs the loop until `done` is set, returning it.
  template <typename T>
  T Await(std::optional<T>& done) {
    while (!done.has_value() && clock.Step()) {
    }
    EXPECT_TRUE(done.has_value());
    return *done;
  }
  absl::Status Gate(int slot, const Gate& g) {
    std::optional<absl::Status> done;
    device.ApplyGate(slot, g, [&](absl::Status s) { done = s; });
    return Await(done);
  }
  absl::StatusOr<int> Measure(int slot, const quantum::Basis& b) {
    std::optional<absl::StatusOr<int>> done;
    device.Measure(slot, b, [&](absl::StatusOr<int> r) { done = r; });
    return Await(done);
  }
  absl::StatusOr<BellState> Bsm(int a, int b) {
    std::optional<absl::StatusOr<BellState>> done;
    device.BellMeasure(a, b, [&](absl::StatusOr<BellState> r) { done = r; });
    return Await(done);
  }
  quantum::Matrix TrueState(std::vector<int> slots) {
    std::vector<std::pair<SimulatedDevice*, int>> which;
    for (int s : slots) which.emplace_back(&device, s);
    std::optional<absl::StatusOr<quantum::Matrix>> out;
    SimulatedDevice::SimulationOnlyTrueState(which, [&](absl::StatusOr<quantum::Matrix> m) { out = m; });
    EXPECT_TRUE(out.has_value() && out->ok());
    return **out;
  }
};

NodeHardware Timed() {
  NodeHardware hw;
  hw.num_qubits = 2;
  hw.single_qubit_gate_time = microseconds(3);
  hw.two_qubit_gate_time = microseconds(50);
  hw.measurement_time = microseconds(7);
  return hw;
}

TEST(QuantumDeviceTest, OperationsCompleteOnTheLoopAfterTheirDuration) {
  Bench b(Timed());
  absl::StatusOr<int> s0 = b.device.Allocate();
  absl::StatusOr<int> s1 = b.device.Allocate();
  ASSERT_TRUE(s0.ok() && s1.ok());
  EXPECT_NE(*s0, *s1);
  EXPECT_TRUE(absl::IsResourceExhausted(b.device.Allocate().status()));

  std::optional<TimePoint> gate_done, measure_done, bsm_done;
  std::optional<int> outcome;
  b.device.ApplyGate(*s0, Gate::X(), [&](absl::Status s) {
    EXPECT_TRUE(s.ok()) << s;
    gate_done = b.clock.Now();
    b.device.Measure(*s0, quantum::Basis::Z(), [&](absl::StatusOr<int> r) {
      ASSERT_TRUE(r.ok()) << r.status();
      outcome = *r;
      measure_done = b.clock.Now();
      b.device.BellMeasure(*s0, *s1, [&](absl::StatusOr<BellState> r2) {
        EXPECT_TRUE(r2.ok()) << r2.status();
        bsm_done = b.clock.Now();
      });
    });
  });
  EXPECT_FALSE(gate_done.has_value());  // never inside the call
  // A second operation on a busy slot is refused, asynchronously.
  std::optional<absl::Status> refused;
  b.device.ApplyGate(*s0, Gate::H(), [&](absl::Status s) { refused = s; });
  EXPECT_FALSE(refused.has_value());
  b.clock.RunUntilIdle();
  ASSERT_TRUE(refused.has_value());
  EXPECT_TRUE(absl::IsFailedPrecondition(*refused)) << *refused;

  const TimePoint t0{};
  EXPECT_EQ(*gate_done, t0 + microseconds(3));
  EXPECT_EQ(*outcome, 1);
  EXPECT_EQ(*measure_done, t0 + microseconds(10));
  EXPECT_EQ(*bsm_done, t0 + microseconds(10 + 50 + 3 + 7));
}

TEST(QuantumDeviceTest, FreeingASlotCancelsItsOperationAndDiscardsItsQubit) {
  Bench b(Timed());
  const int slot = *b.device.Allocate();
  ASSERT_TRUE(b.Gate(slot, Gate::H()).ok());
  EXPECT_EQ(b.system.qubit_count(), 1u);
  std::optional<absl::StatusOr<int>> result;
  b.device.Measure(slot, quantum::Basis::Z(), [&](absl::StatusOr<int> r) { result = r; });
  ASSERT_TRUE(b.device.Free(slot).ok());
  EXPECT_EQ(b.system.qubit_count(), 0u);
  b.clock.RunUntilIdle();
  ASSERT_TRUE(result.has_value());
  EXPECT_TRUE(absl::IsCancelled(result->status())) << result->status();
  EXPECT_EQ(b.system.qubit_count(), 0u);
  EXPECT_TRUE(absl::IsFailedPrecondition(b.device.Free(slot)));

  std::optional<absl::Status> bad;
  b.device.ApplyGate(7, Gate::X(), [&](absl::Status s) { bad = s; });
  b.clock.RunUntilIdle();
  EXPECT_TRUE(absl::IsInvalidArgument(*bad)) << *bad;
}

TEST(QuantumDeviceTest, IdealGatesActExactly) {
  Bench b(Timed());
  const int a = *b.device.Allocate();
  const int c = *b.device.Allocate();
  ASSERT_TRUE(b.Gate(a, Gate::H()).ok());
  std::optional<absl::Status> cnot;
  b.device.ApplyTwoQubitGate(a, c, TwoQubitGate::kCnot, [&](absl::Status s) { cnot = s; });
  ASSERT_TRUE(b.Await(cnot).ok());
  const quantum::Matrix rho = b.TrueState({a, c});
  EXPECT_NEAR((quantum::BellVector(BellState::kPhiPlus).adjoint() * rho * quantum::BellVector(BellState::kPhiPlus))(0, 0).real(),
              1.0, 1e-12);
  // Pauli correction X Z takes PHI+ to PSI-, up to phase.
  std::optional<absl::Status> pauli;
  b.device.ApplyPauli(a, 1, 1, [&](absl::Status s) { pauli = s; });
  ASSERT_TRUE(b.Await(pauli).ok());
  const quantum::Matrix after = b.TrueState({a, c});
  EXPECT_NEAR((quantum::BellVector(BellState::kPsiMinus).adjoint() * after * quantum::BellVector(BellState::kPsiMinus))(0, 0).real(),
              1.0, 1e-12);
}

TEST(QuantumDeviceTest, IdealBellMeasurementNamesEveryBellState) {
  Bench b(Timed());
  const int a = *b.device.Allocate();
  const int c = *b.device.Allocate();
  for (BellState bell : {BellState::kPhiPlus, BellState::kPsiPlus, BellState::kPhiMinus, BellState::kPsiMinus}) {
    const quantum::QubitId ids[2] = {*b.device.SimulationOnlyQubitId(a), *b.device.SimulationOnlyQubitId(c)};
    ASSERT_TRUE(b.system.Prepare(ids, quantum::BellDensity(bell)).ok());
    absl::StatusOr<BellState> got = b.Bsm(a, c);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, bell) << quantum::BellName(bell);
  }
}

TEST(QuantumDeviceTest, ReadoutErrorRatesMatchTheHardware) {
  NodeHardware hw = Timed();
  hw.readout_error_0 = 0.05;
  hw.readout_error_1 = 0.12;
  Bench b(hw);
  const int slot = *b.device.Allocate();
  constexpr int kN = 10000;
  // The qubit stays |0> (then |1>): readout error never changes the state.
  int ones = 0;
  for (int i = 0; i < kN; ++i) ones += *b.Measure(slot, quantum::Basis::Z());
  EXPECT_NEAR(static_cast<double>(ones) / kN, 0.05, FiveSigma(0.05, kN));
  ASSERT_TRUE(b.Gate(slot, Gate::X()).ok());
  int zeros = 0;
  for (int i = 0; i < kN; ++i) zeros += 1 - *b.Measure(slot, quantum::Basis::Z());
  EXPECT_NEAR(static_cast<double>(zeros) / kN, 0.12, FiveSigma(0.12, kN));
}

TEST(QuantumDeviceTest, StoredQubitDecaysWithT1AndT2) {
  NodeHardware hw = Timed();
  hw.single_qubit_gate_time = nanoseconds(0);
  hw.measurement_time = nanoseconds(0);
  hw.t1_s = 4e-3;
  hw.t2_s = 1e-3;
  Bench b(hw);
  const int plus = *b.device.Allocate();
  const int one = *b.device.Allocate();
  ASSERT_TRUE(b.Gate(plus, Gate::H()).ok());
  ASSERT_TRUE(b.Gate(one, Gate::X()).ok());
  const Duration wait = microseconds(700);
  b.clock.RunFor(wait);
  const double t = ToSeconds(wait);
  // Coherence of |+> decays as exp(-t/T2); population of |1> as exp(-t/T1).
  const quantum::Matrix rho_plus = b.TrueState({plus});
  EXPECT_NEAR(std::abs(rho_plus(0, 1)), 0.5 * std::exp(-t / hw.t2_s), 1e-12);
  EXPECT_NEAR(rho_plus(1, 1).real(), 0.5 * std::exp(-t / hw.t1_s), 1e-12);
  const quantum::Matrix rho_one = b.TrueState({one});
  EXPECT_NEAR(rho_one(1, 1).real(), std::exp(-t / hw.t1_s), 1e-12);
  // Reading twice does not decay twice.
  EXPECT_NEAR(std::abs(b.TrueState({plus})(0, 1)), 0.5 * std::exp(-t / hw.t2_s), 1e-12);

  // Sampled: an X measurement after waiting t reads 0 with (1 + exp(-t/T2))/2.
  constexpr int kN = 4000;
  int zeros = 0;
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(b.device.Free(plus).ok());
    ASSERT_EQ(*b.device.Allocate(), plus);
    ASSERT_TRUE(b.Gate(plus, Gate::H()).ok());
    b.clock.RunFor(wait);
    zeros += 1 - *b.Measure(plus, quantum::Basis::X());
  }
  const double p0 = 0.5 * (1.0 + std::exp(-t / hw.t2_s));
  EXPECT_NEAR(static_cast<double>(zeros) / kN, p0, FiveSigma(p0, kN));
}

// Depolarising memory: an idle qubit keeps its state with exp(-t/tau) and is
// I/2 otherwise; with T2 as well, |+>'s coherence falls by both factors.
TEST(QuantumDeviceTest, StoredQubitDepolarisesWithItsDepolarisingTime) {
  NodeHardware hw = Timed();
  hw.single_qubit_gate_time = nanoseconds(0);
  hw.depolarising_time_s = 2e-3;
  Bench b(hw);
  const int plus = *b.device.Allocate();
  const int one = *b.device.Allocate();
  ASSERT_TRUE(b.Gate(plus, Gate::H()).ok());
  ASSERT_TRUE(b.Gate(one, Gate::X()).ok());
  const Duration wait = microseconds(900);
  b.clock.RunFor(wait);
  const double keep = std::exp(-ToSeconds(wait) / hw.depolarising_time_s);
  EXPECT_NEAR(std::abs(b.TrueState({plus})(0, 1)), 0.5 * keep, 1e-12);
  EXPECT_NEAR(b.TrueState({plus})(1, 1).real(), 0.5, 1e-12);
  EXPECT_NEAR(b.TrueState({one})(1, 1).real(), keep + (1 - keep) / 2, 1e-12);

  NodeHardware both = hw;
  both.t2_s = 1e-3;
  Bench c(both);
  const int q = *c.device.Allocate();
  ASSERT_TRUE(c.Gate(q, Gate::H()).ok());
  c.clock.RunFor(wait);
  EXPECT_NEAR(std::abs(c.TrueState({q})(0, 1)), 0.5 * keep * std::exp(-ToSeconds(wait) / both.t2_s), 1e-12);
}

// Occupancy is the integral of the allocated slots over time: two slots for
// 1 ms, then one for 2 ms, is 4 qubit-ms; the peak is 2.
TEST(QuantumDeviceTest, OccupancyIntegratesAllocatedSlotsOverTime) {
  Bench b(Timed());
  EXPECT_EQ(b.device.occupancy().allocated_qubit_seconds, 0.0);
  const int first = *b.device.Allocate();
  (void)*b.device.Allocate();
  b.clock.RunFor(microseconds(1000));
  ASSERT_TRUE(b.device.Free(first).ok());
  b.clock.RunFor(microseconds(2000));
  const SimulatedDevice::Occupancy o = b.device.occupancy();
  EXPECT_NEAR(o.allocated_qubit_seconds, 4e-3, 1e-12);
  EXPECT_EQ(o.in_use, 1);
  EXPECT_EQ(o.peak_in_use, 2);
  EXPECT_EQ(AllocatedSlots(b.device), 1);
}

TEST(QuantumDeviceTest, NoisyBellMeasurementMislabelsAtTheHandComputedRate) {
  NodeHardware hw = Timed();
  // Errors large enough that leaving out any one of them moves the rate by
  // more than 5 sigma of kN samples.
  hw.two_qubit_gate_error = 0.1;
  hw.single_qubit_gate_error = 0.2;
  hw.readout_error_0 = 0.05;
  hw.readout_error_1 = 0.08;
  Bench b(hw, 7);
  // PHI+ through CNOT (a->b) is |+>|0>; the two-qubit depolariser leaves it
  // with 1-p2 and makes it I/4 with p2; H gives |00>; the single-qubit
  // depolariser on a flips it with p1/2. Reading |00> then needs both
  // readouts right.
  const double p2 = hw.two_qubit_gate_error, p1 = hw.single_qubit_gate_error;
  const double e0 = hw.readout_error_0, e1 = hw.readout_error_1;
  const double read0_of_uniform = 0.5 * ((1 - e0) + e1);
  const double correct = (1 - p2) * ((1 - p1 / 2) * (1 - e0) + (p1 / 2) * e1) * (1 - e0) +
                         p2 * read0_of_uniform * read0_of_uniform;
  const double mislabel = 1.0 - correct;

  const int a = *b.device.Allocate();
  const int c = *b.device.Allocate();
  constexpr int kN = 5000;
  int wrong = 0;
  for (int i = 0; i < kN; ++i) {
    const quantum::QubitId ids[2] = {*b.device.SimulationOnlyQubitId(a), *b.device.SimulationOnlyQubitId(c)};
    ASSERT_TRUE(b.system.Prepare(ids, quantum::BellDensity(BellState::kPhiPlus)).ok());
    absl::StatusOr<BellState> got = b.Bsm(a, c);
    ASSERT_TRUE(got.ok()) << got.status();
    wrong += *got != BellState::kPhiPlus;
  }
  EXPECT_NEAR(static_cast<double>(wrong) / kN, mislabel, FiveSigma(mislabel, kN));
}

TEST(QuantumDeviceTest, SameSeedSameOutcomes) {
  auto run = [](uint64_t seed) {
    Bench b(Timed(), seed);
    const int slot = *b.device.Allocate();
    std::vector<int> out;
    for (int i = 0; i < 64; ++i) {
      EXPECT_TRUE(b.Gate(slot, Gate::H()).ok());
      out.push_back(*b.Measure(slot, quantum::Basis::Z()));
    }
    return out;
  };
  EXPECT_EQ(run(11), run(11));
  EXPECT_NE(run(11), run(12));
}

}  // namespace
}  // namespace qnet::physical
