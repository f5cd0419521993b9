// Checks that every named hardware preset is physically valid and usable by
// the heralding model at metropolitan distances.
#include "physical/presets.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "physical/heralding_model.h"

namespace qnet::physical {
namespace {

using ::testing::HasSubstr;

TEST(PresetsTest, KnowsIdealNvAndIon) {
  EXPECT_THAT(PresetNames(), ::testing::UnorderedElementsAre("ideal", "nv", "ion"));
}

TEST(PresetsTest, EveryPresetIsPhysicallyValid) {
  for (const std::string& name : PresetNames()) {
    SCOPED_TRACE(name);
    absl::StatusOr<HardwarePreset> preset = FindPreset(name);
    ASSERT_TRUE(preset.ok()) << preset.status();
    EXPECT_EQ(preset->name, name);
    EXPECT_EQ(preset->node.preset, name);
    EXPECT_FALSE(preset->description.empty());
    EXPECT_TRUE(ValidateNodeHardware(preset->node, name).ok()) << ValidateNodeHardware(preset->node, name);
    EXPECT_TRUE(ValidateLinkPhysics(preset->link).ok()) << ValidateLinkPhysics(preset->link);
    // Beyond the range checks: a preset must be able to emit and detect, and
    // an attempt must take time.
    EXPECT_GT(preset->node.emission_efficiency, 0.0);
    EXPECT_GT(preset->link.detector_efficiency, 0.0);
    EXPECT_GT(preset->link.visibility, 0.0);
    EXPECT_GT(preset->link.attenuation_db_per_km, 0.0);
    EXPECT_GT(preset->node.emission_cycle_time.count(), 0);
    EXPECT_GE(preset->node.num_qubits, 2);  // one to entangle, one to store
    EXPECT_LE(preset->node.t2_s, 2 * preset->node.t1_s);
    // Link identity is the network file's business.
    EXPECT_TRUE(preset->link.name.empty());
    EXPECT_EQ(preset->link.length_km, 0.0);
  }
}

TEST(PresetsTest, AttemptModelWorksAtMetropolitanDistances) {
  for (const std::string& name : PresetNames()) {
    absl::StatusOr<HardwarePreset> preset = FindPreset(name);
    ASSERT_TRUE(preset.ok()) << preset.status();
    for (double length : {1.0, 10.0, 50.0}) {
      LinkPhysics link = preset->link;
      link.name = "a-b";
      link.node_a = "a";
      link.node_b = "b";
      link.length_km = length;
      absl::StatusOr<AttemptModel> model = ComputeAttemptModel(preset->node, preset->node, link, 0.1);
      ASSERT_TRUE(model.ok()) << name << " at " << length << " km: " << model.status();
      EXPECT_GT(model->success_probability, 0.0) << name << " " << length;
      EXPECT_LT(model->success_probability, 1.0) << name << " " << length;
      EXPECT_GT(model->attempt_duration.count(), 0) << name << " " << length;
      EXPECT_FALSE(model->outcomes.empty());
    }
  }
}

// The ideal preset heralds exact Bell pairs; the realistic ones do not.
TEST(PresetsTest, IdealIsNoiseFreeAndRealisticPresetsAreNot) {
  for (const std::string& name : PresetNames()) {
    absl::StatusOr<HardwarePreset> preset = FindPreset(name);
    ASSERT_TRUE(preset.ok()) << preset.status();
    LinkPhysics link = preset->link;
    link.length_km = 1;
    absl::StatusOr<AttemptModel> model = ComputeAttemptModel(preset->node, preset->node, link, 0.1);
    ASSERT_TRUE(model.ok()) << model.status();
    for (const HeraldedOutcome& o : model->outcomes) {
      const Eigen::Vector4cd v = quantum::BellVector(o.label);
      const double f = (v.adjoint() * o.state * v)(0, 0).real();
      if (name == "ideal") {
        EXPECT_NEAR(f, 1.0, 1e-12);
      } else {
        EXPECT_LT(f, 0.99) << name;
        EXPECT_GT(f, 0.5) << name;  // entangled at 1 km
      }
    }
  }
}

TEST(PresetsTest, UnknownNameListsTheKnownOnes) {
  absl::StatusOr<HardwarePreset> preset = FindPreset("quantum-dot");
  EXPECT_EQ(preset.status().code(), absl::StatusCode::kNotFound);
  const std::string message(preset.status().message());
  EXPECT_THAT(message, HasSubstr("quantum-dot"));
  for (const std::string& name : PresetNames()) EXPECT_THAT(message, HasSubstr(name));
}

}  // namespace
}  // namespace qnet::physical
