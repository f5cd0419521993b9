// A two-dimensional figure (measured points with error bars, model curves and
// bounds, on one or two y axes) rendered to SVG or PNG. The sweeps qnetsim
// and qnetctl run (rate and fidelity against length, key rate against the
// PLOB bound, fidelity against hops) are read faster as a picture than as a
// table. Rendering goes through gnuplot (Debian gnuplot-nox): a well-kept
// plotting program with SVG and PNG terminals, run as a child process on a
// script this component writes, so no plotting code lives in qnet.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace qnet::plot {

struct Point {
  double x = 0.0;
  double y = 0.0;
  std::optional<double> error;  // one standard error, drawn as an error bar
};

enum class Axis { kLeft, kRight };

// Measured points are drawn as markers joined by a line (with error bars
// where the points carry them); a curve (a model or a bound) as a dashed
// line without markers.
enum class SeriesStyle { kMeasured, kCurve };

struct Series {
  std::string title;
  std::vector<Point> points;
  Axis axis = Axis::kLeft;
  SeriesStyle style = SeriesStyle::kMeasured;
};

struct Figure {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::string y2_label;  // the right axis, used only if a series is on it
  bool log_y = false;
  bool log_y2 = false;
  std::optional<double> y2_min, y2_max;  // the right axis's range; unset: fitted to the data
  bool x_whole_numbers = false;          // x is a count (hops): tics at whole numbers only
  std::vector<Series> series;
};

// One point of a sweep of entangled pairs: what qnetsim (in the simulator)
// and qnetctl (through the daemons) both measure, so both draw one figure.
struct PairSweepPoint {
  double x = 0.0;
  double pairs_per_second = 0.0;
  std::optional<double> fidelity;         // from both ends' outcomes
  double fidelity_standard_error = 0.0;
  double fidelity_estimate = 0.0;         // the layers' own estimate
};

// Pair rate on a log left axis; measured fidelity (with error bars) and the
// layers' estimate (dashed) on the right.
Figure PairSweepFigure(std::string title, std::string x_label, const std::vector<PairSweepPoint>& points,
                       bool x_whole_numbers);

// The gnuplot script that draws `figure` into `output_path`; the terminal
// follows the extension (.svg or .png). Points a log axis cannot show (y <= 0
// or not finite) are left out. InvalidArgument for another extension, a path
// gnuplot cannot quote (a newline), or a figure with nothing left to draw.
absl::StatusOr<std::string> GnuplotScript(const Figure& figure, const std::string& output_path);

// Writes `figure` to `output_path` by running gnuplot on GnuplotScript's
// script. FailedPrecondition if gnuplot is not installed (the message says
// which package), Internal with gnuplot's own message if it fails.
absl::Status RenderFigure(const Figure& figure, const std::string& output_path);

}  // namespace qnet::plot
