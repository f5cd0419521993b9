// A link's calibration over the bright-state parameters the link layer may
// use, with the expected fidelity each gives *at delivery* under this link
// layer's protocol (a pair is delivered once both ends have heard their
// herald and told each other, so the memories wait for that). The link layer
// chooses the largest alpha (highest rate) that still meets a request's
// min_fidelity, refuses at once what no alpha reaches, and estimates each
// delivered pair's fidelity from its memories' actual waiting times.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "core/time.h"
#include "link/link_service.h"
#include "physical/calibration.h"
#include "physical/params.h"

namespace qnet::link {

// Single-click alphas considered: 0.001 .. 0.01 in steps of 0.001, then up
// to 0.5 in steps of 0.005.
std::vector<double> DefaultAlphaGrid();

class FidelityTable {
 public:
  struct Choice {
    double alpha = 0.0;  // what to pass to the physical layer
    double expected_fidelity = 0.0;  // at delivery, the worse of the two ends
    const physical::LinkCalibration* calibration = nullptr;
  };

  // Calibrates every alpha of the grid (single-click) or the one setting
  // (double-click, alpha 0). InvalidArgument for impossible parameters.
  static absl::StatusOr<FidelityTable> Build(const physical::NodeHardware& a, const physical::NodeHardware& b,
                                             const physical::LinkPhysics& link,
                                             const std::vector<double>& alpha_grid);

  // The largest alpha whose expected fidelity at delivery for `type` is at
  // least `min_fidelity`; FailedPrecondition (UNSUPPORTED) naming the best
  // reachable fidelity otherwise.
  absl::StatusOr<Choice> Choose(RequestType type, double min_fidelity) const;
  // The setting with the highest expected fidelity for `type` (the network
  // layer advertises it); FailedPrecondition if the link never succeeds.
  absl::StatusOr<Choice> Best(RequestType type) const;

  // The calibration for `alpha` (one of the table's), or nullptr.
  const physical::LinkCalibration* Find(double alpha) const;
  // Expected fidelity of a pair generated with `alpha` after node_a's qubit
  // waited `wait_a` and node_b's `wait_b` since emission.
  double Estimate(double alpha, Duration wait_a, Duration wait_b) const;

  // Memory waits (since emission) the table assumes at delivery, from the
  // link's geometry: a KEEP pair is handed up at each end once the far end's
  // success report has crossed the fibre; a MEASURE pair is measured as soon
  // as each end hears its herald.
  struct Waits {
    Duration a;
    Duration b;
  };
  Waits KeepWaitsAtA() const { return keep_at_a_; }
  Waits KeepWaitsAtB() const { return keep_at_b_; }
  Waits MeasureWaits() const { return measure_; }

 private:
  struct Entry {
    physical::LinkCalibration calibration;
    double keep = 0.0;     // expected fidelity at KEEP delivery (worse end)
    double measure = 0.0;  // expected fidelity as measured
  };

  physical::NodeHardware a_;
  physical::NodeHardware b_;
  std::vector<Entry> entries_;  // ascending alpha
  Waits keep_at_a_;
  Waits keep_at_b_;
  Waits measure_;
};

}  // namespace qnet::link
