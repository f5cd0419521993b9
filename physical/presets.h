// Named hardware presets taken from published experiments, so a network file
// can say `hardware: nv` instead of thirty numbers. A preset fixes a node's
// device and the optics of links it terminates (detectors, visibility,
// attenuation at its wavelength, default scheme); the network file may
// override any single value.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "physical/params.h"

namespace qnet::physical {

struct HardwarePreset {
  std::string name;
  std::string description;  // one line, with the source
  NodeHardware node;
  // Defaults for links whose ends use this preset: detector_efficiency,
  // dark_count_rate_hz, detection_window, visibility, attenuation_db_per_km,
  // scheme. (name, node_a, node_b, length_km, station_fraction are unset.)
  LinkPhysics link;
};

// NotFound listing the known names if `name` is unknown.
absl::StatusOr<HardwarePreset> FindPreset(std::string_view name);
std::vector<std::string> PresetNames();

}  // namespace qnet::physical
