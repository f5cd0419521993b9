// qnetctl end to end: up, status, links, entangle (text and json), measure
// of held KEEP pairs, a bad request's one-line error and non-zero exit, down
// - in a private state dir; and the help texts and usage errors.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/launcher.h"
#include "gtest/gtest.h"
#include "tests/common/multiprocess_test.h"

namespace qnet::cli {
namespace {

namespace fs = std::filesystem;

struct CommandRun {
  int exit_code = -1;
  std::string out;  // stdout and stderr
};

// `prefix` goes before the command (a cd, environment variables).
CommandRun Qnetctl(const std::string& args, const std::string& prefix = "") {
  CommandRun run;
  std::string command = absl::StrCat(prefix, QNETCTL_PATH, " ", args, " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) run.out.append(buffer, n);
  int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

class QnetctlMpTest : public qnet::testing::MultiProcessTest {
 protected:
  // A copy of an example with the run's seed in place of its own (`qnetctl
  // up` takes the seed from the network file).
  std::string SeededExample(const std::string& name) const {
    std::ifstream in(Example(name));
    std::string yaml;
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("seed:", 0) != 0) absl::StrAppend(&yaml, line, "\n");
    }
    absl::StrAppend(&yaml, "seed: ", qnet::testing::TestSeed(), "\n");
    const std::string path = (state_dir_ / name).string();
    std::ofstream(path) << yaml;
    return path;
  }
};

TEST_F(QnetctlMpTest, UpEntangleStatusDown) {
  const std::string sd = absl::StrCat(" --state-dir ", state_dir_.string());
  CommandRun up =
      Qnetctl(absl::StrCat("up ", SeededExample("ideal-pair.yaml"), " --time-scale 10 --keep-hold 1000", sd));
  ASSERT_EQ(up.exit_code, 0) << up.out;
  EXPECT_NE(up.out.find("alice"), std::string::npos) << up.out;

  CommandRun links = Qnetctl(absl::StrCat("links", sd));
  EXPECT_EQ(links.exit_code, 0) << links.out;
  EXPECT_NE(links.out.find("alice-bob"), std::string::npos) << links.out;

  CommandRun entangle = Qnetctl(absl::StrCat("--node alice entangle --with bob --pairs 100 --type measure --basis bb84", sd));
  EXPECT_EQ(entangle.exit_code, 0) << entangle.out;
  EXPECT_NE(entangle.out.find("100 pairs in"), std::string::npos) << entangle.out;
  EXPECT_NE(entangle.out.find("100 pairs matched"), std::string::npos) << entangle.out;

  // Ideal pairs in CHSH settings: S near 2*sqrt(2), a clear violation. With
  // 1000 pairs S's standard error is ~0.1, so the 3-sigma criterion (S > ~2.3)
  // is 5 sigma below the expected 2.83; 400 pairs (sigma 0.156) missed it in
  // about one run in a hundred (S = 2.46 seen in CI).
  CommandRun bell = Qnetctl(absl::StrCat("--node alice bell-test --with bob --pairs 1000", sd));
  EXPECT_EQ(bell.exit_code, 0) << bell.out;
  EXPECT_NE(bell.out.find("violates the classical bound"), std::string::npos) << bell.out;
  // An intercept-resend eavesdropper measuring every pair halves the X-Z
  // correlations (S = sqrt(2)): the violation is gone while she listens.
  CommandRun eve = Qnetctl(absl::StrCat("eavesdrop --link alice-bob --fraction 1", sd));
  EXPECT_EQ(eve.exit_code, 0) << eve.out;
  EXPECT_NE(eve.out.find("in force at alice"), std::string::npos) << eve.out;
  CommandRun tapped = Qnetctl(absl::StrCat("--node alice bell-test --with bob --pairs 400", sd));
  EXPECT_EQ(tapped.exit_code, 0) << tapped.out;
  EXPECT_NE(tapped.out.find("no significant violation"), std::string::npos) << tapped.out;
  CommandRun report = Qnetctl(absl::StrCat("eavesdrop --link alice-bob --output json", sd));
  EXPECT_NE(report.out.find("\"pairs_intercepted\":400"), std::string::npos) << report.out;
  CommandRun eve_off = Qnetctl(absl::StrCat("eavesdrop --link alice-bob --fraction 0", sd));
  EXPECT_EQ(eve_off.exit_code, 0) << eve_off.out;
  CommandRun eve_bad = Qnetctl(absl::StrCat("eavesdrop --link alice-bob --fraction 1.5", sd));
  EXPECT_NE(eve_bad.exit_code, 0);
  EXPECT_NE(eve_bad.out.find("INVALID_ARGUMENT"), std::string::npos) << eve_bad.out;

  // Ideal pairs teleport |+> perfectly: the estimate from bob's outcomes
  // says so, and the simulation-only truth is labelled as such.
  CommandRun teleport = Qnetctl(absl::StrCat("--node alice teleport --to bob --state + --shots 60", sd));
  EXPECT_EQ(teleport.exit_code, 0) << teleport.out;
  EXPECT_NE(teleport.out.find("teleported + from alice to bob, 60 shots"), std::string::npos) << teleport.out;
  EXPECT_NE(teleport.out.find("<X> = +1.0000"), std::string::npos) << teleport.out;
  EXPECT_NE(teleport.out.find("simulation only: true fidelity of the received qubits mean 1.0000"),
            std::string::npos)
      << teleport.out;
  CommandRun teleport_json =
      Qnetctl(absl::StrCat("--node alice teleport --to bob --state 1.5708,0 --shots 3 --output json", sd));
  EXPECT_EQ(teleport_json.exit_code, 0) << teleport_json.out;
  EXPECT_EQ(teleport_json.out.rfind("{\"shots\":3,\"destination\":\"bob\"", 0), 0u) << teleport_json.out;
  // QKD usage errors and unknown key ids (keys themselves: tests/daemon/qkd_*_mptest.cc).
  CommandRun no_bits = Qnetctl(absl::StrCat("--node alice qkd --with bob", sd));
  EXPECT_NE(no_bits.exit_code, 0);
  EXPECT_EQ(no_bits.out, "qnetctl: error: qkd needs --bits N (final key bits wanted, a positive number)\n");
  CommandRun bad_protocol = Qnetctl(absl::StrCat("--node alice qkd --with bob --bits 8 --protocol b92", sd));
  EXPECT_EQ(bad_protocol.out,
            "qnetctl: error: --protocol must be bbm92, e91, bb84, decoy-bb84, bb84-wcp or relay, got 'b92'\n");
  // Laser flags only where there is a laser.
  CommandRun mu_on_pairs = Qnetctl(absl::StrCat("--node alice qkd --with bob --bits 8 --mu 0.5", sd));
  EXPECT_EQ(mu_on_pairs.out,
            "qnetctl: error: --mu is for --protocol decoy-bb84 or bb84-wcp (laser pulses)\n");
  CommandRun nu_without_decoys =
      Qnetctl(absl::StrCat("--node alice qkd --with bob --bits 8 --protocol bb84-wcp --nu 0.1", sd));
  EXPECT_EQ(nu_without_decoys.out, "qnetctl: error: --nu is for --protocol decoy-bb84 (laser pulses)\n");
  CommandRun two_probabilities = Qnetctl(
      absl::StrCat("--node alice qkd --with bob --bits 8 --protocol decoy-bb84 --intensity-probabilities 0.5,0.5", sd));
  EXPECT_EQ(two_probabilities.out,
            "qnetctl: error: --intensity-probabilities takes three numbers signal,decoy,vacuum, got '0.5,0.5'\n");
  // The daemon checks the intensities themselves (mu > nu > vacuum).
  CommandRun nu_above_mu = Qnetctl(
      absl::StrCat("--node alice qkd --with bob --bits 8 --protocol decoy-bb84 --mu 0.1 --nu 0.5", sd));
  EXPECT_NE(nu_above_mu.exit_code, 0);
  EXPECT_EQ(nu_above_mu.out.rfind("qnetctl: error: INVALID_ARGUMENT: mu, nu, intensity_probabilities: ", 0), 0u)
      << nu_above_mu.out;
  CommandRun pns_with_fraction = Qnetctl(absl::StrCat("eavesdrop --link alice-bob --mode pns --fraction 0.5", sd));
  EXPECT_EQ(pns_with_fraction.out,
            "qnetctl: error: --fraction is for --mode intercept-resend; --mode pns takes none\n");
  CommandRun bad_mode = Qnetctl(absl::StrCat("eavesdrop --link alice-bob --mode tap", sd));
  EXPECT_EQ(bad_mode.out, "qnetctl: error: --mode must be intercept-resend, pns or off, got 'tap'\n");
  CommandRun no_key = Qnetctl(absl::StrCat("--node bob key --id qk-0000", sd));
  EXPECT_NE(no_key.exit_code, 0);
  EXPECT_EQ(no_key.out.rfind("qnetctl: error: NOT_FOUND: no key 'qk-0000' here", 0), 0u) << no_key.out;
  CommandRun routes = Qnetctl(absl::StrCat("--node alice routes", sd));
  EXPECT_EQ(routes.exit_code, 0) << routes.out;
  EXPECT_NE(routes.out.find("bob"), std::string::npos) << routes.out;

  // KEEP (the default type): both pairs stay held at both daemons (for
  // 1000 s simulated) until measured.
  CommandRun json = Qnetctl(absl::StrCat("--node alice entangle --with bob --pairs 2 --output json", sd));
  EXPECT_EQ(json.exit_code, 0) << json.out;
  EXPECT_NE(json.out.find("{\"summary\":{\"pairs\":2"), std::string::npos) << json.out;
  std::vector<std::string> ids;
  for (size_t at = json.out.find("\"entanglement_id\":\""); at != std::string::npos;
       at = json.out.find("\"entanglement_id\":\"", at + 1)) {
    const size_t begin = at + std::strlen("\"entanglement_id\":\"");
    ids.push_back(json.out.substr(begin, json.out.find('"', begin) - begin));
  }
  ASSERT_EQ(ids.size(), 2u) << json.out;
  for (const std::string& id : ids) {
    CommandRun at_alice = Qnetctl(absl::StrCat("--node alice measure --id ", id, " --basis z", sd));
    EXPECT_EQ(at_alice.exit_code, 0) << at_alice.out;
    EXPECT_NE(at_alice.out.find(absl::StrCat(id, " at alice: outcome ")), std::string::npos) << at_alice.out;
    CommandRun at_bob = Qnetctl(absl::StrCat("measure --node bob --id ", id, " --basis -0.785398 --output json", sd));
    EXPECT_EQ(at_bob.exit_code, 0) << at_bob.out;
    EXPECT_NE(at_bob.out.find("\"node\":\"bob\""), std::string::npos) << at_bob.out;
    EXPECT_NE(at_bob.out.find("\"basis\":\"XZ(-0.785398)\""), std::string::npos) << at_bob.out;
  }
  CommandRun twice = Qnetctl(absl::StrCat("--node alice measure --id ", ids[0], " --basis x", sd));
  EXPECT_NE(twice.exit_code, 0);
  EXPECT_EQ(twice.out.rfind("qnetctl: error: NOT_FOUND: node alice no longer holds pair ", 0), 0u) << twice.out;
  EXPECT_EQ(std::count(twice.out.begin(), twice.out.end(), '\n'), 1) << twice.out;

  CommandRun bad = Qnetctl(absl::StrCat("--node alice entangle --with bob --pairs 3 --min-fidelity 2", sd));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_EQ(bad.out, "qnetctl: error: INVALID_ARGUMENT: min_fidelity must be in [0, 1], got 2\n");

  // Measured pairs are freed at once at both ends.
  CommandRun status = Qnetctl(absl::StrCat("status --output json", sd));
  EXPECT_EQ(status.exit_code, 0) << status.out;
  size_t free_nodes = 0;
  for (size_t at = status.out.find("\"memory_qubits_in_use\":0"); at != std::string::npos;
       at = status.out.find("\"memory_qubits_in_use\":0", at + 1)) {
    ++free_nodes;
  }
  EXPECT_EQ(free_nodes, 2u) << status.out;
  // 64-bit integers are JSON numbers, not protobuf's strings.
  const size_t pid = status.out.find("\"pid\":");
  ASSERT_NE(pid, std::string::npos) << status.out;
  EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(status.out[pid + 6]))) << status.out;

  CommandRun down = Qnetctl(absl::StrCat("down", sd));
  EXPECT_EQ(down.exit_code, 0) << down.out;
  // Nothing left to stop.
  EXPECT_NE(Qnetctl(absl::StrCat("status", sd)).exit_code, 0);
}

// entangle --sweep hops through the daemons: the far end of each point is
// the node that many hops away, both ends' outcomes give the fidelity, and
// --plot draws the figure (gnuplot, which ./qnet test installs).
// More KEEP pairs than memory qubits: the request waits for held pairs'
// hold to pass, and says so about once a second instead of going silent
// (stderr is a pipe here: plain lines). --quiet leaves only the results.
TEST_F(QnetctlMpTest, AKeepRequestWaitingForMemorySaysWhatItWaitsFor) {
  const std::string sd = absl::StrCat(" --state-dir ", state_dir_.string());
  // A hold of 8 s: the waits below last seconds even on a loaded machine.
  CommandRun up = Qnetctl(absl::StrCat("up ", SeededExample("ideal-pair.yaml"), " --keep-hold 8", sd));
  ASSERT_EQ(up.exit_code, 0) << up.out;
  CommandRun status = Qnetctl(absl::StrCat("--node alice --output json status", sd));
  ASSERT_EQ(status.exit_code, 0) << status.out;
  const int qubits = nlohmann::json::parse(status.out)[0]["memory_qubits"].get<int>();
  ASSERT_GE(qubits, 1);

  const int pairs = qubits + 1;  // the last one waits ~8 s for a slot
  CommandRun entangle = Qnetctl(absl::StrCat("--node alice entangle --with bob --pairs ", pairs, sd));
  ASSERT_EQ(entangle.exit_code, 0) << entangle.out;
  const std::string waiting =
      absl::StrCat(qubits, "/", pairs, " pairs after ");
  const size_t first = entangle.out.find(waiting);
  ASSERT_NE(first, std::string::npos) << entangle.out;
  const std::string line = entangle.out.substr(first, entangle.out.find('\n', first) - first);
  EXPECT_NE(line.find(absl::StrCat(" s for free memory: all ", qubits, " memory qubits at alice are in use, ",
                                   qubits, " by KEEP pairs held for clients")),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("qnetctl measure"), std::string::npos) << line;
  EXPECT_NE(line.find("; the first is freed in ~"), std::string::npos) << line;
  // About a line a second over the ~8 s wait (at least 3: the machine may be slow).
  size_t lines = 0;
  for (size_t at = first; (at = entangle.out.find(waiting, at)) != std::string::npos; at += waiting.size()) ++lines;
  EXPECT_GE(lines, 3u) << entangle.out;
  EXPECT_LE(lines, 12u) << entangle.out;

  // Teleport waits likewise. The request's last pair is held now (the
  // others' holds passed to let it in); held pairs fill all but one qubit,
  // the state to teleport takes that one, and the pair it needs waits.
  if (qubits >= 2) {
    if (qubits > 2) {
      ASSERT_EQ(Qnetctl(absl::StrCat("-q --node alice entangle --with bob --pairs ", qubits - 2, sd)).exit_code, 0);
    }
    CommandRun teleport = Qnetctl(absl::StrCat("--node alice teleport --to bob --state + --shots 2", sd));
    ASSERT_EQ(teleport.exit_code, 0) << teleport.out;
    EXPECT_NE(teleport.out.find("0/2 shots after "), std::string::npos) << teleport.out;
    EXPECT_NE(teleport.out.find(absl::StrCat(" s for free memory: all ", qubits, " memory qubits at alice are in use")),
              std::string::npos)
        << teleport.out;
  }

  CommandRun quiet = Qnetctl(absl::StrCat("--quiet --node alice entangle --with bob --pairs ", pairs, sd));
  ASSERT_EQ(quiet.exit_code, 0) << quiet.out;
  EXPECT_EQ(quiet.out.find("waiting"), std::string::npos) << quiet.out;
  EXPECT_NE(quiet.out.find(absl::StrCat(pairs, " pairs")), std::string::npos) << quiet.out;

  // A misspelt node is named as such, with the names there are.
  CommandRun typo = Qnetctl(absl::StrCat("--node alise entangle --with bob --pairs 1", sd));
  EXPECT_EQ(typo.exit_code, 1);
  EXPECT_NE(typo.out.find("no node 'alise' in network ideal-pair (nodes: alice, bob)"), std::string::npos) << typo.out;
  CommandRun status_typo = Qnetctl(absl::StrCat("--node carol status", sd));
  EXPECT_EQ(status_typo.exit_code, 1);
  EXPECT_NE(status_typo.out.find("unknown node 'carol' (nodes of ideal-pair: alice, bob)"), std::string::npos)
      << status_typo.out;
  EXPECT_EQ(Qnetctl(absl::StrCat("down", sd)).exit_code, 0);
}

TEST_F(QnetctlMpTest, EntangleSweepOverHopsMeasuresEachHopAndDrawsIt) {
  if (std::system("gnuplot --version > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "gnuplot is absent (Debian gnuplot-nox; ./qnet test installs it)";
  }
  const std::string sd = absl::StrCat(" --state-dir ", state_dir_.string());
  CommandRun up = Qnetctl(absl::StrCat("up ", WriteIdealChain3("sweepchain"), " --time-scale 0.01", sd));
  ASSERT_EQ(up.exit_code, 0) << up.out;
  const std::string svg = (state_dir_ / "hops.svg").string();
  CommandRun sweep = Qnetctl(
      absl::StrCat("--node n0 entangle --sweep hops=1:2 --pairs 300 --output json --plot ", svg, sd));
  EXPECT_EQ(sweep.exit_code, 0) << sweep.out;
  EXPECT_NE(sweep.out.find("\"sweep\":{\"parameter\":\"hops\",\"start\":1,\"stop\":2"), std::string::npos)
      << sweep.out;
  EXPECT_NE(sweep.out.find("{\"hops\":1,\"to\":\"n1\",\"path\":[\"n0\",\"n1\"],\"pairs\":300"), std::string::npos)
      << sweep.out;
  EXPECT_NE(sweep.out.find("{\"hops\":2,\"to\":\"n2\",\"path\":[\"n0\",\"n1\",\"n2\"],\"pairs\":300"),
            std::string::npos)
      << sweep.out;
  // Ideal hardware: fidelity 1 within its standard error (~0.03 for 300
  // six-state pairs); a swap with the wrong Pauli correction would give ~0.5.
  const std::string key = "\"fidelity\":{\"value\":";
  size_t at = 0;
  int fidelities = 0;
  while ((at = sweep.out.find(key, at)) != std::string::npos) {
    at += key.size();
    EXPECT_GT(std::stod(sweep.out.substr(at)), 0.85) << sweep.out;
    ++fidelities;
  }
  EXPECT_EQ(fidelities, 2) << sweep.out;
  std::ifstream drawn(svg);
  const std::string picture((std::istreambuf_iterator<char>(drawn)), std::istreambuf_iterator<char>());
  EXPECT_NE(picture.find("<svg"), std::string::npos);
  EXPECT_NE(picture.find("hops from n0"), std::string::npos);
  EXPECT_NE(picture.find("fidelity (measured, +-1 s.e.)"), std::string::npos);

  CommandRun lengths = Qnetctl(absl::StrCat("--node n0 entangle --sweep length_km=1:5", sd));
  EXPECT_EQ(lengths.exit_code, 1);
  EXPECT_NE(lengths.out.find("qnetsim --network FILE --sweep length_km"), std::string::npos) << lengths.out;
  CommandRun with = Qnetctl(absl::StrCat("--node n0 entangle --with n2 --sweep hops=1:2", sd));
  EXPECT_EQ(with.exit_code, 1);
  EXPECT_NE(with.out.find("drop --with"), std::string::npos) << with.out;
  CommandRun far = Qnetctl(absl::StrCat("--node n0 entangle --sweep hops=3:3 --pairs 5", sd));
  EXPECT_EQ(far.exit_code, 1);
  EXPECT_NE(far.out.find("no node is 3 hops from n0 (the farthest is 2 hops away)"), std::string::npos) << far.out;
  EXPECT_EQ(Qnetctl(absl::StrCat("down", sd)).exit_code, 0);
}

// Help and usage errors need no network.
TEST_F(QnetctlMpTest, HelpPerCommandAndOneLineUsageErrors) {
  CommandRun general = Qnetctl("--help");
  EXPECT_EQ(general.exit_code, 0);
  for (const char* command : {"up", "ls", "down", "status", "links", "routes", "entangle", "measure", "bell-test",
                              "teleport", "eavesdrop", "qkd", "key", "gen", "bundle"}) {
    EXPECT_NE(general.out.find(absl::StrCat("\n  ", command, " ")), std::string::npos) << command << "\n" << general.out;
    for (const std::string& form : {absl::StrCat(command, " --help"), absl::StrCat("help ", command),
                                    absl::StrCat("--node alice ", command, " -h")}) {
      CommandRun help = Qnetctl(form);
      EXPECT_EQ(help.exit_code, 0) << form;
      EXPECT_EQ(help.out.rfind("Usage: qnetctl ", 0), 0u) << form << "\n" << help.out;
      EXPECT_NE(help.out.find(command), std::string::npos) << form;
    }
  }
  // Each command's help names its flags.
  const std::map<std::string, std::vector<std::string>> flags = {
      {"up", {"--time-scale", "--keep-hold", "--qnetd"}},
      {"entangle", {"--with", "--pairs", "--type", "--basis", "--min-fidelity", "--timeout"}},
      {"measure", {"--id", "--basis"}},
      {"bell-test", {"--with", "--pairs", "--min-fidelity", "--timeout"}},
      {"teleport", {"--to", "--state", "--shots", "--min-fidelity", "--timeout"}},
      {"eavesdrop", {"--link", "--fraction"}},
      {"qkd", {"--with", "--bits", "--protocol", "--pairs-per-block", "--sample-fraction", "--abort-qber", "--min-chsh",
               "--show-key"}},
      {"key", {"--id"}},
      {"gen", {"--nodes", "--rows", "--cols", "--length-km", "--area-km", "--radius-km", "--alpha", "--beta",
               "--hardware", "--seed", "--name", "--out"}},
      {"bundle", {"--peers", "--dir", "--time-scale", "--qnetd", "--install-dir"}}};
  for (const auto& [command, names] : flags) {
    const std::string help = Qnetctl(absl::StrCat(command, " --help")).out;
    for (const std::string& flag : names) EXPECT_NE(help.find(flag), std::string::npos) << command << " " << flag;
  }

  const auto expect_one_line_error = [](const std::string& args, const std::string& says) {
    CommandRun run = Qnetctl(args);
    EXPECT_NE(run.exit_code, 0) << args;
    EXPECT_EQ(run.out.rfind("qnetctl: error: ", 0), 0u) << args << "\n" << run.out;
    EXPECT_EQ(std::count(run.out.begin(), run.out.end(), '\n'), 1) << args << "\n" << run.out;
    EXPECT_NE(run.out.find(says), std::string::npos) << args << "\n" << run.out;
  };
  expect_one_line_error("frobnicate", "unknown command 'frobnicate'");
  expect_one_line_error("--colour blue status", "unknown option --colour");
  expect_one_line_error("status --pairs 3", "unknown option --pairs for 'status'");
  expect_one_line_error("--node alice entangle --pair 5", "unknown option --pair (did you mean --pairs?)");
  expect_one_line_error("--node alice entangle --with bob --pairs 1 --basic z",
                        "unknown option --basic (did you mean --basis?)");
  expect_one_line_error("--node alice measure --id a-b#1", "measure needs --basis");
  expect_one_line_error("--node alice measure --id a-b#1 --basis w", "the basis must be z, x, y or an angle");
  expect_one_line_error("up", "up needs exactly one NETWORK_FILE");
  expect_one_line_error("entangle --with", "--with needs a value");
  expect_one_line_error("gen", "gen needs one KIND");
  expect_one_line_error("gen hypercube --nodes 8", "unknown topology 'hypercube'");
  expect_one_line_error("gen chain --nodes 8 --radius-km 3", "--radius-km does not apply to a chain");
  expect_one_line_error("gen grid --rows 3 --cols x", "--cols wants a whole number, got 'x'");
  expect_one_line_error("gen torus --rows 2 --cols 4", "wrap onto the same neighbour");
  expect_one_line_error("gen ring --nodes 4 --output json", "give --out FILE");
}

// qnetctl bundle: a directory per host with only that node's key, the
// addresses as given, one epoch for all; addresses another host cannot dial
// and incomplete peers files are refused. (tests/daemon/netns_hosts_mptest.py
// runs a bundle's daemons on four network namespaces as hosts.)
TEST_F(QnetctlMpTest, BundleWritesADirectoryPerHostAndRefusesWhatAHostCannotUse) {
  const std::string file = Example("ideal-pair.yaml");
  const fs::path peers = state_dir_ / "peers";
  std::ofstream(peers) << "# two hosts\nalice 10.1.0.1:7400\nbob qnet-bob.example:7401\n";
  const fs::path out = state_dir_ / "bundle";
  CommandRun bundle =
      Qnetctl(absl::StrCat("bundle ", file, " --peers ", peers.string(), " --dir ", out.string(), " --time-scale 0.5"));
  ASSERT_EQ(bundle.exit_code, 0) << bundle.out;
  const auto read = [](const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  std::string epochs[2];
  int i = 0;
  for (const char* node : {"alice", "bob"}) {
    const fs::path host = out / "hosts" / node;
    const std::string other = std::string(node) == "alice" ? "bob" : "alice";
    EXPECT_TRUE(fs::exists(host / "pki" / absl::StrCat("node-", node, ".key"))) << node;
    EXPECT_EQ(fs::status(host / "pki" / absl::StrCat("node-", node, ".key")).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);
    EXPECT_FALSE(fs::exists(host / "pki" / absl::StrCat("node-", other, ".key"))) << node;
    EXPECT_FALSE(fs::exists(host / "pki" / "ca.key")) << node;
    EXPECT_EQ(read(host / "network.yaml"), read(file));
    const std::string peers_copy = read(host / "peers");
    EXPECT_NE(peers_copy.find("alice 10.1.0.1:7400\n"), std::string::npos) << peers_copy;
    EXPECT_NE(peers_copy.find("bob qnet-bob.example:7401\n"), std::string::npos) << peers_copy;
    const std::string script = read(host / "run.sh");
    EXPECT_NE(script.find(absl::StrCat("--node ", node, " --listen ",
                                       std::string(node) == "alice" ? "10.1.0.1:7400" : "qnet-bob.example:7401",
                                       " --time-scale 0.5 --epoch-unix-ns ")),
              std::string::npos)
        << script;
    const std::string unit = read(host / absl::StrCat("qnetd-", node, ".service"));
    EXPECT_NE(unit.find(absl::StrCat("ExecStart=/usr/bin/qnetd --network /etc/qnet/", node, "/network.yaml --peers")),
              std::string::npos)
        << unit;
    const size_t at = script.find("--epoch-unix-ns ") + 16;
    epochs[i++] = script.substr(at, script.find(' ', at) - at);
  }
  EXPECT_EQ(epochs[0], epochs[1]);  // one time line
  EXPECT_TRUE(fs::exists(out / "operator" / "operator.key"));
  EXPECT_TRUE(fs::exists(out / "pki" / "ca.key"));

  const auto refused = [&](const std::string& text, const std::string& says) {
    std::ofstream(peers) << text;
    CommandRun run = Qnetctl(absl::StrCat("bundle ", file, " --peers ", peers.string(), " --dir ", out.string()));
    EXPECT_NE(run.exit_code, 0) << text;
    EXPECT_EQ(run.out.rfind("qnetctl: error: ", 0), 0u) << run.out;
    EXPECT_NE(run.out.find(says), std::string::npos) << text << "\n" << run.out;
  };
  refused("alice 10.1.0.1:7400\n", "no address for 1 node(s) of network ideal-pair: bob");
  refused("alice 127.0.0.1:7400\nbob 10.1.0.2:7400\n", "node alice: address '127.0.0.1:7400' cannot be dialled");
  refused("alice 0.0.0.0:7400\nbob 10.1.0.2:7400\n", "cannot be dialled from another host");
  refused("alice 10.1.0.1:99999\nbob 10.1.0.2:7400\n", "is not HOST:PORT with a port in [1, 65535]");
  refused("alice 10.1.0.1:7400\nbob 10.1.0.2:7400\ncarol 10.1.0.3:7400\n", "'carol' is not a node of network");
  // The address goes into run.sh and the unit: nothing a shell or systemd would interpret.
  refused("alice $(touch${IFS}/tmp/qnet-pwned):7400\nbob 10.1.0.2:7400\n", "is not a host name, an IPv4 address");
  refused("alice x;reboot;:7400\nbob 10.1.0.2:7400\n", "is not a host name, an IPv4 address");
  refused("alice [fe80::1%eth0]:7400\nbob 10.1.0.2:7400\n", "is not a host name, an IPv4 address");
  std::ofstream(peers) << "alice [fd00::1]:7400\nbob 10.1.0.2:7400\n";  // bracketed IPv6 is fine
  EXPECT_EQ(Qnetctl(absl::StrCat("bundle ", file, " --peers ", peers.string(), " --dir ", out.string())).exit_code, 0);
  CommandRun bad_path = Qnetctl(
      absl::StrCat("bundle ", file, " --peers ", peers.string(), " --dir ", out.string(), " --qnetd 'qnetd ; id'"));
  EXPECT_NE(bad_path.out.find("--qnetd must be an absolute path without spaces"), std::string::npos) << bad_path.out;
  EXPECT_FALSE(fs::exists("/tmp/qnet-pwned"));
  CommandRun no_peers = Qnetctl(absl::StrCat("bundle ", file, " --dir ", out.string()));
  EXPECT_NE(no_peers.out.find("bundle needs --peers FILE"), std::string::npos) << no_peers.out;
}

// Networks by name: `up` without --state-dir keeps state under the state
// root ($QNET_STATE_DIR here), `ls` lists what is up, and every command
// finds a network from any directory: the only one, or --network NAME.
TEST_F(QnetctlMpTest, NetworksByNameFromAnyDirectory) {
  const fs::path root = state_dir_ / "root";
  const fs::path elsewhere = state_dir_ / "elsewhere";
  fs::create_directories(elsewhere);
  const std::string env = absl::StrCat("cd ", elsewhere.string(), " && QNET_STATE_DIR=", root.string(), " ");
  // Whatever happens below, no daemon outlives the test.
  struct StopAll {
    fs::path root;
    ~StopAll() {
      for (const char* name : {"first", "second"}) (void)cli::StopStateDir((root / name).string());
    }
  } stop_all{root};
  for (const char* name : {"first", "second"}) {
    const std::string file = (state_dir_ / absl::StrCat(name, ".yaml")).string();
    ASSERT_EQ(Qnetctl(absl::StrCat("gen chain --nodes 2 --length-km 1 --name ", name, " --seed ",
                                   qnet::testing::TestSeed(), " --out ", file))
                  .exit_code,
              0);
    CommandRun only = Qnetctl("status", env);
    if (std::string(name) == "first") {
      EXPECT_NE(only.exit_code, 0);
      EXPECT_NE(only.out.find(absl::StrCat("no network under ", root.string())), std::string::npos) << only.out;
    }
    CommandRun up = Qnetctl(absl::StrCat("up ", file, " --time-scale 10"), env);
    ASSERT_EQ(up.exit_code, 0) << up.out;
    EXPECT_NE(up.out.find((root / name).string()), std::string::npos) << up.out;
    if (std::string(name) == "first") {
      CommandRun one = Qnetctl("status", env);  // the only network: no name needed
      EXPECT_EQ(one.exit_code, 0) << one.out;
      EXPECT_NE(one.out.find("n1"), std::string::npos) << one.out;
    }
  }
  CommandRun ls = Qnetctl("ls", env);
  ASSERT_EQ(ls.exit_code, 0) << ls.out;
  for (const char* name : {"first", "second"}) {
    // The table's row: name, state, daemons running of the file's nodes, the state dir.
    EXPECT_NE(ls.out.find(absl::StrFormat("\n%-16s %-10s %-8s %s", name, "up", "2/2", (root / name).string())),
              std::string::npos)
        << ls.out;
  }
  CommandRun ls_json = Qnetctl("--output json ls", env);
  ASSERT_EQ(ls_json.exit_code, 0) << ls_json.out;
  const nlohmann::json listed = nlohmann::json::parse(ls_json.out);
  ASSERT_EQ(listed["networks"].size(), 2u) << ls_json.out;
  EXPECT_EQ(listed["state_root"], root.string());
  for (const nlohmann::json& n : listed["networks"]) {
    EXPECT_EQ(n["state"], "up") << n;
    EXPECT_EQ(n["running"], 2) << n;
    EXPECT_EQ(n["nodes"], 2) << n;
  }
  CommandRun ambiguous = Qnetctl("status", env);
  EXPECT_NE(ambiguous.exit_code, 0);
  EXPECT_NE(ambiguous.out.find("several networks under"), std::string::npos) << ambiguous.out;
  EXPECT_NE(ambiguous.out.find("(first, second): choose one with --network NAME"), std::string::npos)
      << ambiguous.out;
  CommandRun both = Qnetctl("--network first --state-dir /tmp status", env);
  EXPECT_NE(both.exit_code, 0);
  EXPECT_NE(both.out.find("give one of --address, --network and --state-dir"), std::string::npos) << both.out;
  CommandRun ls_named = Qnetctl("--network first ls", env);
  EXPECT_NE(ls_named.out.find("--network does not apply to 'ls'"), std::string::npos) << ls_named.out;
  CommandRun unknown = Qnetctl("--network third status", env);
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.out.find("no network 'third' under"), std::string::npos) << unknown.out;
  CommandRun entangle =
      Qnetctl("--network second --node n0 entangle --with n1 --pairs 20 --type measure --basis z", env);
  EXPECT_EQ(entangle.exit_code, 0) << entangle.out;
  EXPECT_NE(entangle.out.find("20 pairs in"), std::string::npos) << entangle.out;
  // One daemon by address, with no state root at all: the operator's
  // certificate from the environment, and the node the daemon must be.
  const fs::path pki = root / "second" / "pki";
  std::ifstream ready(root / "second" / "n0.address");
  std::string address;
  std::getline(ready, address);
  const std::string tls = absl::StrCat("cd ", elsewhere.string(), " && QNET_CA_CERT=", (pki / "ca.crt").string(),
                                       " QNET_CLIENT_CERT=", (pki / "operator-operator.crt").string(),
                                       " QNET_CLIENT_KEY=", (pki / "operator-operator.key").string(), " ");
  CommandRun by_address = Qnetctl(absl::StrCat("--address ", address, " --node n0 status"), tls);
  EXPECT_EQ(by_address.exit_code, 0) << by_address.out;
  EXPECT_NE(by_address.out.find("mutual TLS (CA of network second)"), std::string::npos) << by_address.out;
  CommandRun by_address_entangle =
      Qnetctl(absl::StrCat("--address ", address, " --node n0 entangle --with n1 --pairs 5 --type keep"), tls);
  EXPECT_EQ(by_address_entangle.exit_code, 0) << by_address_entangle.out;
  EXPECT_NE(by_address_entangle.out.find("5 pairs in"), std::string::npos) << by_address_entangle.out;
  CommandRun impostor = Qnetctl(absl::StrCat("--address ", address, " --node n1 status"), tls);
  EXPECT_NE(impostor.exit_code, 0) << impostor.out;  // n0's certificate does not name n1
  EXPECT_NE(impostor.out.find("n1 is not in peer certificate"), std::string::npos) << impostor.out;
  CommandRun plaintext = Qnetctl(absl::StrCat("--address ", address, " --node n0 status"), env);
  EXPECT_NE(plaintext.exit_code, 0) << plaintext.out;
  EXPECT_NE(plaintext.out.find("needs QNET_CA_CERT"), std::string::npos) << plaintext.out;
  CommandRun links = Qnetctl(absl::StrCat("--address ", address, " links"), tls);
  EXPECT_NE(links.exit_code, 0);
  EXPECT_NE(links.out.find("links needs a network's state directory"), std::string::npos) << links.out;
  CommandRun nameless = Qnetctl(absl::StrCat("--address ", address, " status"), tls);
  EXPECT_NE(nameless.exit_code, 0);
  EXPECT_NE(nameless.out.find("--address needs --node NODE"), std::string::npos) << nameless.out;
  for (const char* name : {"first", "second"}) {
    EXPECT_EQ(Qnetctl(absl::StrCat("--network ", name, " down"), env).exit_code, 0) << name;
  }
  CommandRun none = Qnetctl("ls", env);
  EXPECT_NE(none.out.find("no networks under"), std::string::npos) << none.out;
}

// A generated file is a network file like any other: the daemons run it.
// The ring's n0 and n2 are two hops apart either way round.
TEST_F(QnetctlMpTest, GenWritesARingTheDaemonsServeAcrossTwoHops) {
  const std::string sd = absl::StrCat(" --state-dir ", state_dir_.string());
  const std::string file = (state_dir_ / "ring4.yaml").string();
  CommandRun gen = Qnetctl(absl::StrCat("gen ring --nodes 4 --length-km 2 --seed ", qnet::testing::TestSeed(),
                                        " --out ", file));
  ASSERT_EQ(gen.exit_code, 0) << gen.out;
  EXPECT_NE(gen.out.find("network ring-4, 4 nodes, 4 links"), std::string::npos) << gen.out;
  CommandRun up = Qnetctl(absl::StrCat("up ", file, " --time-scale 10", sd));
  ASSERT_EQ(up.exit_code, 0) << up.out;
  CommandRun links = Qnetctl(absl::StrCat("links", sd));
  EXPECT_NE(links.out.find("n0-n3"), std::string::npos) << links.out;
  CommandRun entangle = Qnetctl(absl::StrCat("--node n0 entangle --with n2 --pairs 50 --type measure --basis bb84", sd));
  EXPECT_EQ(entangle.exit_code, 0) << entangle.out;
  EXPECT_NE(entangle.out.find("50 pairs in"), std::string::npos) << entangle.out;
  EXPECT_EQ(Qnetctl(absl::StrCat("down", sd)).exit_code, 0);
}

TEST_F(QnetctlMpTest, UpWithAutoTimeScalePicksOneTheMachineKeepsUpWith) {
  // An ideal 1 km link's pair is 15 us of physics, a few round trips of 5 us:
  // no daemon pair follows that in real time (a message between processes
  // alone takes ~100 us), so the probe at 1 falls behind and auto goes down.
  const std::string sd = absl::StrCat(" --state-dir ", state_dir_.string());
  CommandRun up = Qnetctl(absl::StrCat("--output json up ", SeededExample("ideal-pair.yaml"), " --time-scale auto", sd));
  ASSERT_EQ(up.exit_code, 0) << up.out;
  EXPECT_NE(up.out.find("time scale 1      falls behind"), std::string::npos) << up.out;
  const size_t at = up.out.find("\"time_scale\":");
  ASSERT_NE(at, std::string::npos) << up.out;
  const double chosen = std::stod(up.out.substr(at + 13));
  EXPECT_LT(chosen, 1.0) << up.out;
  EXPECT_GE(chosen, 1e-4) << up.out;
  // The network runs at the chosen scale.
  CommandRun status = Qnetctl(absl::StrCat("--output json status --node alice", sd));
  EXPECT_EQ(status.exit_code, 0) << status.out;
  EXPECT_NE(status.out.find(absl::StrCat("\"time_scale\":", chosen)), std::string::npos) << status.out;
  CommandRun down = Qnetctl(absl::StrCat("down", sd));
  EXPECT_EQ(down.exit_code, 0) << down.out;

  CommandRun bad = Qnetctl(absl::StrCat("up ", Example("ideal-pair.yaml"), " --time-scale fast", sd));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find("--time-scale must be a positive number or 'auto', got 'fast'"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace qnet::cli
