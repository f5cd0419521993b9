// The gnuplot script a figure becomes, and (where gnuplot is installed, as
// ./qnet test makes sure) the SVG and PNG files it renders.
#include "plot/figure.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace qnet::plot {
namespace {

Figure TwoAxisFigure() {
  Figure f;
  f.title = "rate and fidelity";
  f.x_label = "length (km)";
  f.y_label = "pairs per second";
  f.y2_label = "fidelity";
  f.log_y = true;
  Series rate{"pair rate"};
  rate.points = {{0, 100, std::nullopt}, {10, 0, std::nullopt}, {20, 10, std::nullopt}};
  Series fidelity{"fidelity", {{0, 0.99, 0.01}, {10, 0.95, 0.02}, {20, 0.9, 0.03}}, Axis::kRight};
  Series bound{"bound", {{0, 1000, std::nullopt}, {20, 100, std::nullopt}}, Axis::kLeft, SeriesStyle::kCurve};
  f.series = {rate, fidelity, bound};
  return f;
}

bool HasGnuplot() { return std::system("gnuplot --version > /dev/null 2>&1") == 0; }

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(GnuplotScriptTest, TerminalFollowsTheExtension) {
  auto svg = GnuplotScript(TwoAxisFigure(), "out.svg");
  ASSERT_TRUE(svg.ok()) << svg.status();
  EXPECT_NE(svg->find("set terminal svg"), std::string::npos);
  EXPECT_NE(svg->find("set output 'out.svg'"), std::string::npos);
  auto png = GnuplotScript(TwoAxisFigure(), "OUT.PNG");
  ASSERT_TRUE(png.ok()) << png.status();
  EXPECT_NE(png->find("set terminal pngcairo"), std::string::npos);
  auto pdf = GnuplotScript(TwoAxisFigure(), "out.pdf");
  EXPECT_EQ(pdf.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(pdf.status().message().find(".svg or .png"), std::string::npos);
}

TEST(GnuplotScriptTest, DataBlocksHoldTheDrawablePointsOnTheirAxes) {
  auto script = GnuplotScript(TwoAxisFigure(), "out.svg");
  ASSERT_TRUE(script.ok()) << script.status();
  // The 0 of the log-scale rate is left out; the other two points stay.
  EXPECT_NE(script->find("$series0 << EOD\n0 100 0\n20 10 0\nEOD\n"), std::string::npos) << *script;
  EXPECT_NE(script->find("$series1 << EOD\n0 0.99 0.01\n10 0.95 0.02\n20 0.9 0.03\nEOD\n"), std::string::npos)
      << *script;
  EXPECT_NE(script->find("$series1 using 1:2:3 with yerrorlines"), std::string::npos);
  EXPECT_NE(script->find("axes x1y2 title 'fidelity'"), std::string::npos);
  EXPECT_NE(script->find("$series2 using 1:2 with lines dashtype 2"), std::string::npos);
  EXPECT_NE(script->find("set logscale y\n"), std::string::npos);
  EXPECT_EQ(script->find("set logscale y2"), std::string::npos);
  EXPECT_NE(script->find("set y2tics"), std::string::npos);
}

TEST(GnuplotScriptTest, QuotesAreDoubledAndLineBreaksRefused) {
  Figure f = TwoAxisFigure();
  f.title = "Bob's link";
  auto script = GnuplotScript(f, "it's.svg");
  ASSERT_TRUE(script.ok()) << script.status();
  EXPECT_NE(script->find("set title 'Bob''s link'"), std::string::npos);
  EXPECT_NE(script->find("set output 'it''s.svg'"), std::string::npos);
  f.series[0].title = "two\nlines";
  EXPECT_EQ(GnuplotScript(f, "out.svg").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GnuplotScript(TwoAxisFigure(), "out\n.svg").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(GnuplotScriptTest, NothingDrawableIsAnError) {
  Figure f;
  f.log_y = true;
  f.series = {Series{"zeros", {{1, 0, std::nullopt}, {2, -1, std::nullopt}}}};
  auto script = GnuplotScript(f, "out.svg");
  EXPECT_EQ(script.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(script.status().message().find("nothing to plot"), std::string::npos);
}

TEST(RenderFigureTest, WritesSvgAndPng) {
  if (!HasGnuplot()) GTEST_SKIP() << "gnuplot is not installed (Debian gnuplot-nox; ./qnet test installs it)";
  const std::string base = absl::StrCat(::testing::TempDir(), "/figure_test_", getpid());
  ASSERT_TRUE(RenderFigure(TwoAxisFigure(), base + ".svg").ok());
  const std::string svg = ReadAll(base + ".svg");
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  for (const char* text : {"rate and fidelity", "pair rate", "fidelity", "bound", "length (km)"}) {
    EXPECT_NE(svg.find(text), std::string::npos) << text;
  }
  ASSERT_TRUE(RenderFigure(TwoAxisFigure(), base + ".png").ok());
  const std::string png = ReadAll(base + ".png");
  ASSERT_GT(png.size(), 1000u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  std::remove((base + ".svg").c_str());
  std::remove((base + ".png").c_str());
}

TEST(RenderFigureTest, GnuplotsOwnErrorReachesTheCaller) {
  if (!HasGnuplot()) GTEST_SKIP() << "gnuplot is not installed";
  absl::Status status = RenderFigure(TwoAxisFigure(), "/nonexistent-directory/out.svg");
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_NE(status.message().find("gnuplot could not write /nonexistent-directory/out.svg"), std::string::npos)
      << status;
}

}  // namespace
}  // namespace qnet::plot
