#include "plot/figure.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

extern char** environ;

namespace qnet::plot {
namespace {

// gnuplot's single-quoted strings take everything literally except a quote,
// written twice.
std::string Quoted(const std::string& s) { return absl::StrCat("'", absl::StrReplaceAll(s, {{"'", "''"}}), "'"); }

bool Drawable(const Point& p, bool log) {
  if (!std::isfinite(p.x) || !std::isfinite(p.y)) return false;
  return !log || p.y > 0;
}

// Reads a small file whole (gnuplot's error output); empty if unreadable.
std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

Figure PairSweepFigure(std::string title, std::string x_label, const std::vector<PairSweepPoint>& points,
                       bool x_whole_numbers) {
  Figure figure;
  figure.title = std::move(title);
  figure.x_label = std::move(x_label);
  figure.x_whole_numbers = x_whole_numbers;
  figure.y_label = "pairs per simulated second";
  figure.y2_label = "fidelity";
  figure.log_y = true;
  figure.y2_max = 1.0;  // a fidelity; an error bar above it is only the estimate's spread
  Series rate{"pair rate"}, measured{"fidelity (measured, +-1 s.e.)"}, estimate{"fidelity (the layer's estimate)"};
  measured.axis = estimate.axis = Axis::kRight;
  estimate.style = SeriesStyle::kCurve;
  for (const PairSweepPoint& p : points) {
    rate.points.push_back({p.x, p.pairs_per_second, std::nullopt});
    if (p.fidelity) measured.points.push_back({p.x, *p.fidelity, p.fidelity_standard_error});
    estimate.points.push_back({p.x, p.fidelity_estimate, std::nullopt});
  }
  figure.series = {rate, measured, estimate};
  return figure;
}

absl::StatusOr<std::string> GnuplotScript(const Figure& figure, const std::string& output_path) {
  std::string terminal;
  if (absl::EndsWithIgnoreCase(output_path, ".svg")) {
    terminal = "svg size 900,560 dynamic noenhanced font 'sans,13' background rgb 'white'";
  } else if (absl::EndsWithIgnoreCase(output_path, ".png")) {
    terminal = "pngcairo size 1200,750 noenhanced font 'sans,11' background rgb 'white'";
  } else {
    return absl::InvalidArgumentError(
        absl::StrFormat("plot file '%s' must end in .svg or .png (the format follows the extension)", output_path));
  }
  for (const std::string* s : {&output_path, &figure.title, &figure.x_label, &figure.y_label, &figure.y2_label}) {
    if (s->find_first_of("\n\r") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrFormat("plot text '%s' has a line break", *s));
    }
  }
  bool right_used = false;
  std::string data, plot;
  int index = 0;
  for (const Series& series : figure.series) {
    const bool right = series.axis == Axis::kRight;
    const bool log = right ? figure.log_y2 : figure.log_y;
    std::vector<const Point*> points;
    bool errors = false;
    for (const Point& p : series.points) {
      if (!Drawable(p, log)) continue;
      points.push_back(&p);
      errors = errors || p.error.has_value();
    }
    if (points.empty()) continue;
    if (series.title.find_first_of("\n\r") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrFormat("series title '%s' has a line break", series.title));
    }
    right_used = right_used || right;
    absl::StrAppend(&data, "$series", index, " << EOD\n");
    for (const Point* p : points) {
      double error = p->error.value_or(0.0);
      // On a log axis an error bar reaching 0 or below has no end to draw.
      if (log && p->y - error <= 0) error = p->y * 0.999;
      absl::StrAppend(&data, absl::StrFormat("%.10g %.10g %.10g\n", p->x, p->y, error));
    }
    absl::StrAppend(&data, "EOD\n");
    const std::string axes = right ? "x1y2" : "x1y1";
    std::string how;
    if (series.style == SeriesStyle::kCurve) {
      how = "using 1:2 with lines dashtype 2 linewidth 2";
    } else if (errors) {
      how = "using 1:2:3 with yerrorlines linewidth 2 pointtype 7 pointsize 0.8";
    } else {
      how = "using 1:2 with linespoints linewidth 2 pointtype 7 pointsize 0.8";
    }
    if (!plot.empty()) plot += ", \\\n     ";
    absl::StrAppend(&plot, "$series", index, " ", how, " axes ", axes, " title ", Quoted(series.title));
    ++index;
  }
  if (plot.empty()) {
    return absl::InvalidArgumentError(
        "nothing to plot: no series has a point the axes can show (a log axis cannot show 0)");
  }
  std::string script;
  absl::StrAppend(&script, "set terminal ", terminal, "\n", "set output ", Quoted(output_path), "\n");
  if (!figure.title.empty()) absl::StrAppend(&script, "set title ", Quoted(figure.title), "\n");
  absl::StrAppend(&script, "set xlabel ", Quoted(figure.x_label), "\n", "set ylabel ", Quoted(figure.y_label), "\n");
  // Offsets keep the first and last points' error bars off the frame.
  absl::StrAppend(&script, "set grid\nset key outside bottom center horizontal\nset offsets graph 0.03, graph 0.03\n");
  absl::StrAppend(&script, figure.x_whole_numbers ? "set xtics 1\n" : "set mxtics\n");
  if (figure.log_y) absl::StrAppend(&script, "set logscale y\nset format y '%g'\n");
  if (right_used) {
    absl::StrAppend(&script, "set ytics nomirror\nset y2tics\nset y2label ", Quoted(figure.y2_label), "\n");
    if (figure.log_y2) absl::StrAppend(&script, "set logscale y2\nset format y2 '%g'\n");
    if (figure.y2_min || figure.y2_max) {
      auto bound = [](const std::optional<double>& v) { return v ? absl::StrFormat("%.10g", *v) : std::string("*"); };
      absl::StrAppend(&script, "set y2range [", bound(figure.y2_min), ":", bound(figure.y2_max), "]\n");
    }
  }
  absl::StrAppend(&script, data, "plot ", plot, "\n");
  return script;
}

absl::Status RenderFigure(const Figure& figure, const std::string& output_path) {
  absl::StatusOr<std::string> script = GnuplotScript(figure, output_path);
  if (!script.ok()) return script.status();
  const char* tmp = std::getenv("TMPDIR");
  const std::string dir = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  std::string script_path = dir + "/qnet-plot-XXXXXX";
  const int fd = mkostemp(script_path.data(), O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrFormat("cannot create a temporary file in %s: %s", dir, std::strerror(errno)));
  bool written = ::write(fd, script->data(), script->size()) == static_cast<ssize_t>(script->size());
  written = (::close(fd) == 0) && written;
  // gnuplot's messages go to a second private file (mkstemp: O_EXCL, 0600),
  // handed to it as stderr, so no name in a shared directory is opened twice.
  std::string errors_path = dir + "/qnet-plot-errors-XXXXXX";
  const int errors_fd = mkostemp(errors_path.data(), O_CLOEXEC);
  auto cleanup = [&] {
    std::remove(script_path.c_str());
    if (errors_fd >= 0) {
      ::close(errors_fd);
      std::remove(errors_path.c_str());
    }
  };
  if (!written || errors_fd < 0) {
    cleanup();
    return absl::InternalError(absl::StrFormat("cannot write the plot script in %s", dir));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, errors_fd, STDERR_FILENO);
  std::string program = "gnuplot";
  char* argv[] = {program.data(), script_path.data(), nullptr};
  pid_t pid = 0;
  const int spawn_error = posix_spawnp(&pid, program.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawn_error != 0) {
    cleanup();
    if (spawn_error == ENOENT) {
      return absl::FailedPreconditionError(
          "cannot plot: gnuplot is not installed (Debian: apt-get install gnuplot-nox); "
          "--output json gives the same figures without a plot");
    }
    return absl::InternalError(absl::StrFormat("cannot run gnuplot: %s", std::strerror(spawn_error)));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      cleanup();
      return absl::InternalError(absl::StrFormat("waiting for gnuplot: %s", std::strerror(errno)));
    }
  }
  const std::string errors(absl::StripAsciiWhitespace(ReadFile(errors_path)));
  cleanup();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrFormat("gnuplot could not write %s: %s", output_path,
                                               errors.empty() ? "no message" : errors));
  }
  return absl::OkStatus();
}

}  // namespace qnet::plot
