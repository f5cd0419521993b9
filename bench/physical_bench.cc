// Cost of the heralding model: one ComputeAttemptModel (the photonic Fock-space
// calculation for one link) per scheme, with the "nv" and "ion" presets' optics.
// A link computes it once per parameter change, not per attempt.
#include <benchmark/benchmark.h>

#include <string>

#include "physical/heralding_model.h"
#include "physical/presets.h"

namespace qnet::physical {
namespace {

void ComputeAttemptModelFor(benchmark::State& state, const char* preset_name, HeraldingScheme scheme) {
  absl::StatusOr<HardwarePreset> preset = FindPreset(preset_name);
  if (!preset.ok()) {
    state.SkipWithError(std::string(preset.status().message()).c_str());
    return;
  }
  LinkPhysics link = preset->link;
  link.length_km = 25;
  link.station_fraction = 0.4;
  link.scheme = scheme;
  for (auto _ : state) {
    absl::StatusOr<AttemptModel> model = ComputeAttemptModel(preset->node, preset->node, link, 0.1);
    benchmark::DoNotOptimize(model);
  }
}

void BM_AttemptModelSingleClick(benchmark::State& state) {
  ComputeAttemptModelFor(state, "nv", HeraldingScheme::kSingleClick);
}
BENCHMARK(BM_AttemptModelSingleClick);

void BM_AttemptModelDoubleClick(benchmark::State& state) {
  ComputeAttemptModelFor(state, "ion", HeraldingScheme::kDoubleClick);
}
BENCHMARK(BM_AttemptModelDoubleClick);

}  // namespace
}  // namespace qnet::physical
