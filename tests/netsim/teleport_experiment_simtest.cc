// qnetsim --teleport's experiment (netsim/teleport_experiment.h): states
// teleported across a chain through the whole stack, estimated from the
// destination's X/Y/Z outcomes. Ideal hardware delivers every state exactly;
// over Werner links and ideal repeaters the end-to-end pair is Werner with
// parameter w^hops (w = (4F - 1)/3), and teleporting through a Werner pair of
// parameter v leaves v |psi><psi| + (1 - v) I/2: fidelity (1 + v)/2 for every
// input state. A dropped Pauli correction (fidelity (1 - v)/2 on the states it
// moves) or a missing hop's noise misses these by many standard errors.
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "config/network_config.h"
#include "gtest/gtest.h"
#include "netsim/simulated_network.h"
#include "netsim/teleport_experiment.h"
#include "physical/quantum_device.h"

namespace qnet::netsim {
namespace {

std::string Chain(int hops, const std::string& link) {
  std::string yaml = "network: teleport-chain\nnodes:\n";
  for (int i = 0; i <= hops; ++i) absl::StrAppend(&yaml, "  - {name: n", i, ", hardware: ideal, qubits: 4}\n");
  absl::StrAppend(&yaml, "links:\n");
  for (int i = 0; i < hops; ++i) absl::StrAppend(&yaml, "  - between: [n", i, ", n", i + 1, "]\n", link);
  return yaml;
}

constexpr const char* kIdealLink = "    length_km: 1\n";
constexpr const char* kWernerLink =
    "    length_km: 1\n    scheme: werner\n    werner_fidelity: 0.85\n    success_probability: 0.3\n";

absl::StatusOr<TeleportExperimentResult> Teleport(const std::string& yaml, uint64_t seed, transport::NamedState state,
                                                  const std::string& to, uint32_t shots) {
  auto config = config::ParseNetworkConfig(yaml, "teleport-chain.yaml");
  if (!config.ok()) return config.status();
  auto network = SimulatedNetwork::Create(*config, seed);
  if (!network.ok()) return network.status();
  TeleportExperiment experiment;
  experiment.from = "n0";
  experiment.to = to;
  experiment.state = transport::ToAngles(state);
  experiment.shots = shots;
  return RunTeleportExperiment(**network, experiment, FromSeconds(600));
}

TEST(TeleportExperimentSimTest, IdealHardwareDeliversEveryStateExactly) {
  for (transport::NamedState state : {transport::NamedState::kOne, transport::NamedState::kMinus,
                                      transport::NamedState::kPlusI}) {
    SCOPED_TRACE(std::string(transport::NamedStateName(state)));
    auto result = Teleport(Chain(2, kIdealLink), 7, state, "n2", 300);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->shots, 300u);
    EXPECT_NEAR(result->true_fidelity, 1.0, 1e-9);
    // The axis the state lies on gives one outcome every time.
    const std::array<double, 3> n = transport::BlochVector(transport::ToAngles(state));
    for (int a = 0; a < 3; ++a) {
      EXPECT_EQ(result->counts[a].shots, 100u);
      if (std::abs(n[a]) > 0.5) {
        EXPECT_EQ(result->counts[a].plus, n[a] > 0 ? 100u : 0u) << "axis " << a;
      }
    }
    EXPECT_GT(result->estimate.fidelity, 0.9);
    EXPECT_GT(result->simulated_seconds, 0.0);
  }
}

TEST(TeleportExperimentSimTest, WernerChainGivesOnePlusVOverTwo) {
  const double w = (4 * 0.85 - 1) / 3;
  for (int hops : {1, 2}) {
    const double v = std::pow(w, hops);
    const double expected = (1 + v) / 2;
    SCOPED_TRACE(absl::StrCat(hops, " hops: expected fidelity ", expected));
    auto result = Teleport(Chain(hops, kWernerLink), 11 + hops, transport::NamedState::kPlusI,
                           absl::StrCat("n", hops), 3000);
    ASSERT_TRUE(result.ok()) << result.status();
    // The simulated qubits: exactly the Werner composition.
    EXPECT_NEAR(result->true_fidelity, expected, 1e-6);
    // From outcomes alone: within five standard errors.
    EXPECT_NEAR(result->estimate.fidelity, expected, 5 * result->estimate.fidelity_standard_error);
    // The axes the state is not on are unbiased.
    EXPECT_NEAR(result->estimate.r[0], 0.0, 5 * result->estimate.standard_error[0]);
    EXPECT_NEAR(result->estimate.r[2], 0.0, 5 * result->estimate.standard_error[2]);
  }
}

// A run that fails leaves the destination's receiver free and no qubit
// allocated, so the next run on the same network works; fewer shots than
// axes cannot be estimated.
TEST(TeleportExperimentSimTest, AFailedRunLeavesTheNetworkUsable) {
  auto config = config::ParseNetworkConfig(Chain(2, kWernerLink), "teleport-chain.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  auto network = SimulatedNetwork::Create(*config, 5);
  ASSERT_TRUE(network.ok()) << network.status();
  TeleportExperiment experiment;
  experiment.from = "n0";
  experiment.to = "n2";
  experiment.state = transport::ToAngles(transport::NamedState::kPlus);
  experiment.shots = 30;
  experiment.min_fidelity = 0.99;  // two links of F = 0.85 never give it
  auto refused = RunTeleportExperiment(**network, experiment, FromSeconds(5));
  EXPECT_FALSE(refused.ok());
  experiment.min_fidelity = 0.0;
  experiment.shots = 2;
  auto too_few = RunTeleportExperiment(**network, experiment, FromSeconds(60));
  EXPECT_EQ(too_few.status().code(), absl::StatusCode::kFailedPrecondition) << too_few.status();
  experiment.shots = 30;
  auto again = RunTeleportExperiment(**network, experiment, FromSeconds(60));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->shots, 30u);
  (*network)->RunFor(std::chrono::milliseconds(10));
  for (const char* n : {"n0", "n1", "n2"}) {
    EXPECT_EQ(physical::AllocatedSlots((*network)->node(n)->device()), 0) << n;
  }
}

TEST(TeleportExperimentSimTest, BadRequestsAreRefused) {
  EXPECT_EQ(Teleport(Chain(1, kIdealLink), 1, transport::NamedState::kZero, "n0", 30).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Teleport(Chain(1, kIdealLink), 1, transport::NamedState::kZero, "nowhere", 30).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Teleport(Chain(1, kIdealLink), 1, transport::NamedState::kZero, "n1", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qnet::netsim
