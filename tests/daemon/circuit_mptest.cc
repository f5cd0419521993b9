// Circuits across nodes through real daemons, as a user runs them:
// `qnetctl circuit FILE` against qnetd, and `qnetsim --circuit FILE` on the
// same network file. Two programs - a distributed Bell state and a 3-node
// GHZ state by remote CNOTs - give exactly the ideal circuit's outcomes in
// both runtimes on ideal hardware; on Werner links (examples/ghz-star.yaml)
// both agree with each other and with the closed form within statistics.
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "cli/launcher.h"
#include "gtest/gtest.h"
#include "tests/common/multiprocess_test.h"
#include "tests/common/run_command.h"
#include "tests/common/wait_until.h"
#include "tests/daemon/node_queries.h"

namespace qnet::daemon {
namespace {

using qnet::testing::RunCommand;
namespace fs = std::filesystem;

constexpr char kBell[] = "# a Bell state across two nodes\nh hub.q\ncnot hub.q a.q\nmeasure hub.q\nmeasure a.q\n";
constexpr char kGhz[] =
    "# a GHZ state across three nodes by two remote CNOTs\nh a.q\ncnot a.q hub.q\ncnot hub.q b.q\n"
    "measure a.q\nmeasure hub.q\nmeasure b.q x\n";
constexpr char kGhzZ[] = "h a.q\ncnot a.q hub.q\ncnot hub.q b.q\nmeasure a.q\nmeasure hub.q\nmeasure b.q\n";

struct Counts {
  std::map<std::string, uint64_t> n;
  uint64_t shots = 0;
  uint64_t pairs = 0;
  double Share(const std::set<std::string>& outcomes) const {
    uint64_t k = 0;
    for (const std::string& o : outcomes) k += n.count(o) ? n.at(o) : 0;
    return static_cast<double>(k) / static_cast<double>(shots);
  }
};

class CircuitMpTest : public qnet::testing::MultiProcessTest {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    const fs::path path = state_dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }
  Counts Daemons(const std::string& state_dir, const std::string& program, int shots) {
    // At time scale 1 the request's simulated deadline is wall time too: the
    // default 60 s was too short once under the sanitizers (573 of 600 shots,
    // the daemons lagging 46% of the request). The counts do not depend on it;
    // 240 s stays inside ctest's timeout, as in ghz_mptest.
    int exit_code = -1;
    const std::string out =
        RunCommand(absl::StrCat(QNETCTL_PATH, " --state-dir ", state_dir, " --output json circuit ", program,
                                " --shots ", shots, " --timeout 240s 2>&1"),
                   &exit_code);
    EXPECT_EQ(exit_code, 0) << out;
    Counts c;
    if (exit_code != 0) return c;
    const nlohmann::json j = nlohmann::json::parse(out);
    for (const auto& e : j.at("counts")) c.n[e.at("outcome").get<std::string>()] = e.at("shots").get<uint64_t>();
    c.shots = j.at("shots").get<uint64_t>();
    c.pairs = j.at("pairs_used").get<uint64_t>();
    return c;
  }
  Counts Simulator(const std::string& file, const std::string& program, int shots) {
    int exit_code = -1;
    const std::string out = RunCommand(absl::StrCat(QNETSIM_PATH, " --network ", file, " --circuit ", program,
                                                    " --shots ", shots, " --output json --quiet 2>&1"),
                                       &exit_code);
    EXPECT_EQ(exit_code, 0) << out;
    Counts c;
    if (exit_code != 0) return c;
    const nlohmann::json j = nlohmann::json::parse(out);
    for (const auto& [o, n] : j.at("counts").items()) c.n[o] = n.get<uint64_t>();
    c.shots = j.at("shots").get<uint64_t>();
    c.pairs = j.at("pairs_used").get<uint64_t>();
    return c;
  }
};

TEST_F(CircuitMpTest, BellAndGhzProgramsGiveTheSameResultsThroughDaemonsAndQnetsim) {
  const std::string bell = Write("bell.qc", kBell), ghz = Write("ghz.qc", kGhz), ghz_z = Write("ghz-z.qc", kGhzZ);
  // Ideal nodes and links: exact pairs in random Bell frames.
  const std::string ideal = Write("ideal-star.yaml",
                                  "network: ideal-star\nseed: 4\nnodes:\n  - {name: hub, hardware: ideal, qubits: 4}\n"
                                  "  - {name: a, hardware: ideal, qubits: 4}\n  - {name: b, hardware: ideal, qubits: 4}\n"
                                  "links:\n  - {between: [hub, a], length_km: 1}\n  - {between: [hub, b], length_km: 1}\n");
  {
    cli::LaunchOptions options = LaunchOptionsFor(ideal, 1.0);
    options.state_dir = (state_dir_ / "ideal").string();
    auto net = StartNetwork(options);
    ASSERT_NE(net, nullptr);
    ASSERT_TRUE(testing::WaitRoute(*net->Address("a"), "b", 2).ok());
    for (const Counts& c : {Daemons(options.state_dir, bell, 200), Simulator(ideal, bell, 200)}) {
      EXPECT_EQ(c.shots, 200u);
      EXPECT_DOUBLE_EQ(c.Share({"00", "11"}), 1.0);
      EXPECT_GT(c.Share({"00"}), 0.3);  // both, near half each
      EXPECT_GT(c.Share({"11"}), 0.3);
      EXPECT_EQ(c.pairs, 200u);
    }
    // Z on a and hub, X on b: a and hub agree; b is uniform.
    for (const Counts& c : {Daemons(options.state_dir, ghz, 200), Simulator(ideal, ghz, 200)}) {
      EXPECT_DOUBLE_EQ(c.Share({"000", "001", "110", "111"}), 1.0);
      EXPECT_EQ(c.pairs, 400u);
    }
    for (const Counts& c : {Daemons(options.state_dir, ghz_z, 200), Simulator(ideal, ghz_z, 200)}) {
      EXPECT_DOUBLE_EQ(c.Share({"000", "111"}), 1.0);
    }
  }
  // Werner links, F = 0.95: P(000 or 111) = (F + e)^2 with e = (1 - F)/3
  // (tests/transport/distributed_circuit_simtest.cc), 0.934; a runtime that
  // lost the pairs' errors (1.0) or doubled them (0.87) fails.
  const std::string werner = Example("ghz-star.yaml");
  cli::LaunchOptions options = LaunchOptionsFor(werner, 1.0);
  options.state_dir = (state_dir_ / "werner").string();
  auto net = StartNetwork(options);
  ASSERT_NE(net, nullptr);
  ASSERT_TRUE(testing::WaitRoute(*net->Address("a"), "b", 2).ok());
  const int shots = 600;
  const Counts d = Daemons(options.state_dir, ghz_z, shots);
  const Counts s = Simulator(werner, ghz_z, shots);
  const double e = 0.05 / 3, expected = (0.95 + e) * (0.95 + e);
  const double se = std::sqrt(expected * (1 - expected) / shots);
  EXPECT_NEAR(d.Share({"000", "111"}), expected, 5 * se);
  EXPECT_NEAR(s.Share({"000", "111"}), expected, 5 * se);
  EXPECT_NEAR(d.Share({"000", "111"}), s.Share({"000", "111"}), 5 * std::sqrt(2.0) * se);

  // Errors a user can act on, before and from the daemons.
  int exit_code = -1;
  const std::string qnetctl = absl::StrCat(QNETCTL_PATH, " --state-dir ", options.state_dir, " ");
  std::string err =
      RunCommand(absl::StrCat(qnetctl, "circuit ", Write("bad.qc", "h a.q\ncnot a.q a.q\n"), " 2>&1"), &exit_code);
  EXPECT_EQ(exit_code, 1);
  EXPECT_NE(err.find("line 2: a CNOT needs two different qubits"), std::string::npos) << err;
  err = RunCommand(absl::StrCat(qnetctl, "circuit ", Write("far.qc", "h a.q\ncnot a.q mars.q\nmeasure a.q\n"), " 2>&1"),
                   &exit_code);
  EXPECT_EQ(exit_code, 1);
  EXPECT_NE(err.find("NO_ROUTE"), std::string::npos) << err;
  for (const char* n : {"hub", "a", "b", "c"}) {
    EXPECT_TRUE(qnet::testing::WaitUntil(absl::StrCat(n, "'s memory free"),
                                         [&] { return testing::MemoryFree(*net->Address(n)); }, std::chrono::seconds(10),
                                         std::chrono::milliseconds(100)))
        << n;
  }
}

}  // namespace
}  // namespace qnet::daemon
