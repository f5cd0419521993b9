// qnetsim: runs a network file in the in-process simulator (no daemons).
// For each link it asks the link layer for MEASURE pairs - or, with --from
// and --to, the network layer for end-to-end pairs across repeaters - and
// reports what an experimenter would see: pair rate in simulated time, error
// rate per basis and the fidelity estimated from the two ends' outcomes alone.
// With --qkd it runs key distribution from --from to --to through the node
// stacks (the daemon's Node.Qkd path) and reports the key.
#include <algorithm>
#include <cmath>
#include <sstream>
#include <fstream>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "apps/estimate_bounds.h"
#include "config/network_config.h"
#include "keydist/key_store.h"
#include "netsim/circuit_experiment.h"
#include "netsim/decoy_experiment.h"
#include "netsim/ghz_experiment.h"
#include "netsim/key_experiment.h"
#include "netsim/link_experiment.h"
#include "netsim/path_experiment.h"
#include "netsim/qnetsim_sweep.h"
#include "netsim/run_progress.h"
#include "netsim/traffic_experiment.h"
#include "netsim/simulated_network.h"
#include "netsim/teleport_experiment.h"

ABSL_FLAG(std::string, network, "", "network file (YAML), e.g. examples/chain3.yaml (required)");
ABSL_FLAG(int64_t, seed, -1, "random seed (default: the file's seed, else 1); a seed reproduces a run exactly");
ABSL_FLAG(int32_t, pairs, 1000, "MEASURE pairs to request on each link");
ABSL_FLAG(std::string, basis, "six-state", "basis choice per pair: z, x, y, bb84, six-state or chsh");
ABSL_FLAG(std::string, link, "all", "which link: a link name such as alice-bob, or 'all'");
ABSL_FLAG(std::string, from, "",
          "with --to: end-to-end pairs from this node (network layer: routing and swapping; a neighbour is served by "
          "the link layer directly, as qnetd does)");
ABSL_FLAG(std::string, to, "", "with --from: the far end, any node of the network");
ABSL_FLAG(double, min_fidelity, 0.0, "minimum fidelity asked of the link (or network) layer, in [0, 1]");
ABSL_FLAG(double, time_limit_s, 3600.0,
          "give up on a link (with --qkd: on the whole key request) after this much simulated time (seconds)");
ABSL_FLAG(std::string, output, "text", "text or json");
ABSL_FLAG(std::string, qkd, "",
          "with --from/--to: run QKD instead of measuring pairs: bbm92, e91, bb84 (neighbours) or relay; or, between "
          "neighbours, decoy-bb84 (weak coherent pulses, signal/decoy/vacuum) or bb84-wcp (the same laser without "
          "decoys), which simulate the photons and report the key the decoy-state estimate allows (no post-processing)");
ABSL_FLAG(double, mu, 0.5, "with --qkd decoy-bb84|bb84-wcp: mean photon number of the signal pulses");
ABSL_FLAG(double, nu, 0.1, "with --qkd decoy-bb84: mean photon number of the decoy pulses (the third intensity is vacuum)");
ABSL_FLAG(std::string, intensity_probabilities, "0.8,0.1,0.1",
          "with --qkd decoy-bb84: how often Alice picks signal, decoy and vacuum (they sum to 1)");
ABSL_FLAG(int64_t, pulses, 0,
          "with --qkd decoy-bb84|bb84-wcp over a fibre link: laser pulses Alice sends from a 1 GHz source (default: "
          "10^8; over satellite links the pass and the source rate set them)");
ABSL_FLAG(double, pass_segment_s, 1.0,
          "with --qkd decoy-bb84 over satellite links: the pass is simulated in segments this long (seconds)");
ABSL_FLAG(std::string, eavesdrop, "",
          "with --qkd decoy-bb84|bb84-wcp: pns puts a photon-number-splitting eavesdropper at Alice's output");
ABSL_FLAG(int64_t, bits, 1000, "with --qkd: final key bits wanted (blocks run until they are shared)");
ABSL_FLAG(int32_t, pairs_per_block, 20000, "with --qkd: raw pairs (bb84: pulses) per block");
ABSL_FLAG(int32_t, max_blocks, 100, "with --qkd: give up after this many blocks");
ABSL_FLAG(double, block_timeout_s, 600.0, "with --qkd: simulated seconds one block (QKD session) may take");
ABSL_FLAG(double, abort_qber, 0.11, "with --qkd: abort a block whose QBER bound exceeds this");
ABSL_FLAG(double, sample_fraction, 0.1, "with --qkd: share of sifted bits disclosed to estimate the QBER, in (0, 1)");
ABSL_FLAG(bool, show_key, false, "with --qkd: print the key (hex)");
ABSL_FLAG(std::string, sweep, "",
          "rerun the experiment over a range, PARAM=START:STOP[:STEP]: length_km (of --link NAME, or of every link "
          "with --link all) or hops (with --from and no --to: the far end is the first node that many hops away)");
ABSL_FLAG(int32_t, jobs, 0,
          "with --sweep: points run at once, each an independent seeded run on a thread (0: one per core); "
          "the figures do not depend on it");
ABSL_FLAG(std::string, plot, "", "with --sweep: draw the figure into FILE.svg or FILE.png (needs gnuplot)");
ABSL_FLAG(int32_t, traffic, 0,
          "run N end-to-end requests at once (Poisson arrivals, random node pairs or --from/--to) and print "
          "network-wide statistics: per-request latency, rate and fidelity, memory per node, pairs per link");
ABSL_FLAG(double, arrival_rate, 1000.0, "with --traffic: requests per simulated second (Poisson)");
ABSL_FLAG(int32_t, pairs_per_request, 10, "with --traffic: MEASURE pairs each request asks for");
ABSL_FLAG(double, request_timeout_s, 10.0,
          "with --traffic: simulated seconds a request may wait for memory and run before it fails");
ABSL_FLAG(std::string, ghz, "",
          "build GHZ states across these nodes (comma-separated, 3 to 8; the first fuses the others' pairs) and "
          "measure each in turn in the all-Z setting and every X/Y setting with an even number of Y: fidelity and "
          "Mermin value from outcomes");
ABSL_FLAG(std::string, circuit, "",
          "run the circuit in FILE across nodes (qnetctl circuit's format: h/x/y/z/s/sdg/t/rx/ry/rz, cnot - remote "
          "between nodes, by one entangled pair -, measure) and print the distribution of outcomes");
ABSL_FLAG(std::string, coordinator, "", "with --circuit: the node that coordinates (default: the first the program names)");
ABSL_FLAG(std::string, teleport, "",
          "with --from/--to: teleport this state (0, 1, +, -, +i, -i, or THETA,PHI in radians) --shots times and "
          "estimate what arrived from the destination's X, Y and Z outcomes, as qnetctl teleport does (a state with a "
          "leading dash is written --teleport=-i)");
ABSL_FLAG(int32_t, shots, 1000,
          "with --ghz: GHZ states to build and measure; with --circuit: runs of the circuit; with --teleport: "
          "qubits to teleport");
ABSL_FLAG(bool, quiet, false, "no progress lines on stderr (a run over a second says what it is doing, once a second)");

namespace {
// The flags on the command line (underscore spelling), to refuse those that
// do not apply to the run asked for.
std::set<std::string> given_flags;
// The run's progress reporter (run_progress.h), from flag parsing until the
// results are printed.
std::optional<qnet::netsim::RunProgress> progress;
void SetPhase(std::string phase) {
  if (progress) progress->SetPhase(std::move(phase));
}
void Watch(qnet::netsim::SimulatedNetwork& network) {
  if (progress) progress->Watch(network.simulator());
}
// Before results go to stdout: the reporter's line must not split them.
void EndProgress() { progress.reset(); }
// While results of a run that goes on are printed; stdout is flushed before
// the reporter may write again (piped, it is fully buffered, and a progress
// line could land inside a result line).
struct PausedProgress {
  std::unique_lock<std::mutex> lock;
  PausedProgress() = default;
  explicit PausedProgress(std::unique_lock<std::mutex> l) : lock(std::move(l)) {}
  PausedProgress(PausedProgress&&) = default;
  ~PausedProgress() { std::fflush(stdout); }
};
PausedProgress PauseProgress() { return progress ? PausedProgress(progress->Pause()) : PausedProgress(); }
// Declared right after the simulated network, so destroyed just before it:
// the results go out at once (stdout is buffered when piped), and freeing
// the simulation (seconds for 10^5 nodes with events still queued) is
// reported like any phase instead of passing in silence.
// The experiment's events, and (when more) all the run's: start-up (links
// coming up, routes converging) can be most of the events and the wall time.
std::string SimulatorLine(uint64_t experiment_events, qnet::netsim::SimulatedNetwork& network, double wall) {
  const uint64_t all = network.simulator().events_run();
  return all > experiment_events
             ? absl::StrFormat("%d events for the request (%d in all, with links coming up and routes converging "
                               "first), %.3f s wall",
                               experiment_events, all, wall)
             : absl::StrFormat("%d events, %.3f s wall", experiment_events, wall);
}

struct TeardownReport {
  TeardownReport() = default;
  TeardownReport(const TeardownReport&) = delete;
  TeardownReport& operator=(const TeardownReport&) = delete;
  ~TeardownReport() {
    std::fflush(stdout);
    if (!progress) progress.emplace(!absl::GetFlag(FLAGS_quiet));
    SetPhase("done; freeing the simulation");
  }
};
}  // namespace

namespace {

using qnet::link::BasisChoice;


bool ParseBasis(const std::string& s, BasisChoice* out) {
  if (s == "z") *out = BasisChoice::kZ;
  else if (s == "x") *out = BasisChoice::kX;
  else if (s == "y") *out = BasisChoice::kY;
  else if (s == "bb84") *out = BasisChoice::kBb84;
  else if (s == "six-state") *out = BasisChoice::kSixState;
  else if (s == "chsh") *out = BasisChoice::kChsh;
  else return false;
  return true;
}

int Fail(const std::string& message) {
  EndProgress();  // its terminal line is cleared first
  std::fprintf(stderr, "qnetsim: error: %s\n", message.c_str());
  return 1;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

bool ParseProtocol(const std::string& s, qnet::keydist::QkdProtocol* out) {
  using qnet::keydist::QkdProtocol;
  if (s == "bbm92") *out = QkdProtocol::kBbm92;
  else if (s == "e91") *out = QkdProtocol::kE91;
  else if (s == "bb84") *out = QkdProtocol::kBb84;
  else if (s == "relay") *out = QkdProtocol::kRelay;
  else return false;
  return true;
}

// The key request the --qkd flags describe (its peer is set by the caller),
// or InvalidArgument naming the flag that is out of range.
absl::StatusOr<qnet::keydist::KeyRequest> KeyRequestFromFlags() {
  qnet::keydist::QkdProtocol protocol;
  if (!ParseProtocol(absl::GetFlag(FLAGS_qkd), &protocol)) {
    return absl::InvalidArgumentError("--qkd must be one of bbm92, e91, bb84, relay, decoy-bb84, bb84-wcp");
  }
  const int64_t bits = absl::GetFlag(FLAGS_bits);
  if (bits < 1 || bits > static_cast<int64_t>(qnet::keydist::kMaxKeyRequestBits)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--bits must be between 1 and %d", qnet::keydist::kMaxKeyRequestBits));
  }
  const int pairs = absl::GetFlag(FLAGS_pairs_per_block);
  if (pairs < 1 || pairs > 1'000'000) return absl::InvalidArgumentError("--pairs-per-block must be between 1 and 1000000");
  if (absl::GetFlag(FLAGS_max_blocks) < 1) return absl::InvalidArgumentError("--max-blocks must be at least 1");
  const double abort_qber = absl::GetFlag(FLAGS_abort_qber);
  if (!(abort_qber > 0 && abort_qber < 0.5)) return absl::InvalidArgumentError("--abort-qber must be in (0, 0.5)");
  const double sample = absl::GetFlag(FLAGS_sample_fraction);
  if (!(sample > 0 && sample < 1)) return absl::InvalidArgumentError("--sample-fraction must be in (0, 1)");
  const double block_timeout = absl::GetFlag(FLAGS_block_timeout_s);
  if (!(block_timeout > 0)) return absl::InvalidArgumentError("--block-timeout-s must be positive");
  qnet::keydist::KeyRequest request;
  request.bits = static_cast<uint64_t>(bits);
  request.max_blocks = static_cast<uint32_t>(absl::GetFlag(FLAGS_max_blocks));
  request.block.protocol = protocol;
  request.block.pairs = static_cast<uint32_t>(pairs);
  request.block.min_fidelity = absl::GetFlag(FLAGS_min_fidelity);
  request.block.timeout = qnet::FromSeconds(block_timeout);
  request.block.post_processing.estimation.abort_threshold = abort_qber;
  request.block.post_processing.estimation.sample_fraction = sample;
  return request;
}

bool IsWeakCoherentProtocol(const std::string& s) { return s == "decoy-bb84" || s == "bb84-wcp"; }

// The options of --qkd decoy-bb84 / bb84-wcp, or InvalidArgument naming the
// flag that is out of range.
absl::StatusOr<qnet::netsim::WeakCoherentBb84Options> WeakCoherentOptionsFromFlags(uint64_t seed) {
  qnet::netsim::WeakCoherentBb84Options options;
  options.decoys = absl::GetFlag(FLAGS_qkd) == "decoy-bb84";
  options.seed = seed;
  const int64_t pulses = absl::GetFlag(FLAGS_pulses) == 0 ? 100'000'000 : absl::GetFlag(FLAGS_pulses);
  if (pulses < 1000 || pulses > 100'000'000'000) {
    return absl::InvalidArgumentError("--pulses must be between 1000 and 100000000000");
  }
  options.pulses = static_cast<uint64_t>(pulses);
  options.intensities.mean_photon_number = {absl::GetFlag(FLAGS_mu), absl::GetFlag(FLAGS_nu), 0.0};
  std::vector<std::string> parts = absl::StrSplit(absl::GetFlag(FLAGS_intensity_probabilities), ',');
  if (parts.size() != 3) {
    return absl::InvalidArgumentError("--intensity-probabilities takes three numbers: signal,decoy,vacuum");
  }
  for (int k = 0; k < 3; ++k) {
    if (!absl::SimpleAtod(parts[k], &options.intensities.probability[k])) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--intensity-probabilities: '%s' is not a number", parts[k]));
    }
  }
  if (options.decoys) {
    if (absl::Status s = qnet::qkd::ValidateDecoyIntensities(options.intensities); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--mu, --nu, --intensity-probabilities: ", s.message()));
    }
  } else if (!(options.intensities.mean_photon_number[0] > 0 && options.intensities.mean_photon_number[0] <= 100)) {
    return absl::InvalidArgumentError("--mu must be in (0, 100]");
  }
  const std::string eavesdrop = absl::GetFlag(FLAGS_eavesdrop);
  if (!eavesdrop.empty() && eavesdrop != "pns") return absl::InvalidArgumentError("--eavesdrop takes pns (or nothing)");
  options.photon_number_splitting = eavesdrop == "pns";
  return options;
}

// The satellite links a key from `from` to `to` runs over: the one
// between them, or a satellite's links to both (a trusted relay); empty if
// neither.
std::vector<const qnet::physical::SatelliteLink*> SatellitePath(const qnet::config::NetworkConfig& config,
                                                                const std::string& from, const std::string& to) {
  if (const auto* direct = config.FindSatelliteLink(from, to)) return {direct};
  for (const qnet::physical::SatelliteLink& a : config.satellite_links) {
    if (a.ground != from) continue;
    if (const auto* b = config.FindSatelliteLink(a.satellite, to); b != nullptr && b->ground == to) return {&a, b};
  }
  return {};
}

// qnetsim --qkd decoy-bb84 over satellite links: a pass per link, the key
// of a relay the shorter of the two (the satellite XORs them and learns it).
// -1 if no satellite link joins the two nodes.
int RunSatellite(const qnet::config::NetworkConfig& config, const std::string& path,
                 const qnet::netsim::WeakCoherentBb84Options& bb84, const std::string& from, const std::string& to,
                 const std::string& output) {
  const std::vector<const qnet::physical::SatelliteLink*> links = SatellitePath(config, from, to);
  if (links.empty()) return -1;
  if (bb84.photon_number_splitting) return Fail("--eavesdrop pns is not modelled on satellite links");
  qnet::netsim::SatellitePassOptions options;
  options.bb84 = bb84;
  options.segment_s = absl::GetFlag(FLAGS_pass_segment_s);
  nlohmann::ordered_json j;
  j["network"] = config.name;
  j["seed"] = bb84.seed;
  j["protocol"] = "decoy-bb84";
  j["from"] = from;
  j["to"] = to;
  if (links.size() == 2) j["trusted_relay"] = links[0]->satellite;
  uint64_t key = ~uint64_t{0};
  if (output != "json") {
    std::printf("network %s (%s), seed %llu, decoy-bb84 %s -> %s over %s\n", config.name.c_str(), path.c_str(),
                static_cast<unsigned long long>(bb84.seed), from.c_str(), to.c_str(),
                links.size() == 2 ? absl::StrFormat("two satellite passes, trusted relay %s (it learns the key)",
                                                    links[0]->satellite)
                                         .c_str()
                                  : "one satellite pass");
  }
  for (const qnet::physical::SatelliteLink* link : links) {
    SetPhase(absl::StrFormat("simulating the pass of %s over %s", link->satellite, link->ground));
    const auto wall_start = std::chrono::steady_clock::now();
    auto pass = qnet::netsim::RunSatellitePass(*link, options);
    EndProgress();
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    if (!pass.ok()) return Fail(absl::StrFormat("%s: %s", link->name, pass.status().message()));
    const uint64_t bits = pass->finite_key ? pass->finite_key->key_bits : 0;
    key = std::min(key, bits);
    if (output == "json") {
      nlohmann::ordered_json p;
      p["link"] = link->name;
      p["seconds_up"] = pass->seconds_up;
      p["pulses"] = pass->pulses;
      p["sifted_bits"] = pass->sifted_bits;
      const char* names[3] = {"signal", "decoy", "vacuum"};
      for (int k = 0; k < 3; ++k) {
        const auto& c = pass->counts[k];
        p["intensities"].push_back({{"name", names[k]}, {"pulses", c.pulses}, {"detections", c.detections},
                                    {"gain", c.gain()}, {"qber", c.error_rate()}});
      }
      if (pass->asymptotic) {
        p["asymptotic_key_rate_per_pulse"] = pass->asymptotic->key_rate_per_pulse;
        p["asymptotic_standard_error"] = pass->asymptotic_standard_error;
      }
      p["finite_key_bits"] = bits;
      for (const auto& seg : pass->segments) {
        p["segments"].push_back({{"t_s", seg.t_s}, {"elevation_deg", seg.elevation_deg}, {"range_km", seg.range_km},
                                 {"link_up", seg.link_up}, {"transmittance", seg.transmittance},
                                 {"pulses", seg.pulses}, {"signal_pulses", seg.pulses_per_intensity[0]},
                                 {"signal_detections", seg.detections[0]}, {"sifted", seg.sifted}});
      }
      p["wall_seconds"] = wall;
      j["passes"].push_back(p);
      continue;
    }
    std::printf("\n%s -> %s: pass culminating at %.0f deg, link up above %.0f deg for %.0f s, %.4g pulses (%.0f "
                "MHz)\n",
                link->satellite.c_str(), link->ground.c_str(), link->channel.max_elevation_deg,
                link->channel.min_elevation_deg, pass->seconds_up, static_cast<double>(pass->pulses),
                link->source_rate_hz / 1e6);
    std::printf("  %8s  %9s  %9s  %9s  %12s\n", "t (s)", "elevation", "range km", "loss dB", "sifted bits");
    const int every = std::max<int>(1, static_cast<int>(std::lround(30.0 / options.segment_s)));
    for (size_t i = 0; i < pass->segments.size(); i += every) {
      const auto& seg = pass->segments[i];
      std::printf("  %8.0f  %9.1f  %9.0f  %9s  %12llu\n", seg.t_s, seg.elevation_deg, seg.range_km,
                  seg.link_up ? absl::StrFormat("%.1f", -10 * std::log10(seg.transmittance)).c_str() : "down",
                  static_cast<unsigned long long>(seg.sifted));
    }
    const auto& c = pass->counts;
    std::printf("  gains                signal %.4g, decoy %.4g, vacuum %.4g; QBER signal %.4f\n", c[0].gain(),
                c[1].gain(), c[2].gain(), c[0].error_rate());
    if (pass->asymptotic) {
      std::printf("  decoy estimate       Y1 >= %.4g, e1 <= %.4f; asymptotic %.4g +- %.2g bits per pulse\n",
                  pass->asymptotic->yield_single_lower, pass->asymptotic->error_single_upper,
                  pass->asymptotic->key_rate_per_pulse, pass->asymptotic_standard_error);
    }
    std::printf("  finite key           %llu bits from the pass (Lim et al. 2014)%s; %llu sifted bits\n",
                static_cast<unsigned long long>(bits), bits == 0 ? ": ABORT, no secret key" : "",
                static_cast<unsigned long long>(pass->sifted_bits));
    std::printf("  simulator            %.3f s wall\n", wall);
  }
  if (output == "json") {
    j["key_bits"] = key;
    std::printf("%s\n", j.dump().c_str());
  } else if (links.size() == 2) {
    std::printf("\nrelayed key          %llu bits (the shorter pass's; %s holds both and learns it)\n",
                static_cast<unsigned long long>(key), links[0]->satellite.c_str());
  }
  return 0;
}

// qnetsim --qkd decoy-bb84|bb84-wcp: the photons of one link and the key
// the estimate allows.
int RunWeakCoherent(const qnet::config::NetworkConfig& config, const std::string& path, uint64_t seed,
                    const std::string& from, const std::string& to, const std::string& output) {
  auto options = WeakCoherentOptionsFromFlags(seed);
  if (options.ok() && !config.FindLink(from, to) && !SatellitePath(config, from, to).empty() &&
      given_flags.count("pulses") > 0) {
    return Fail("--pulses does not apply over satellite links: the pass and the source rate set the pulses");
  }
  if (!options.ok()) return Fail(std::string(options.status().message()));
  const qnet::physical::LinkPhysics* found = config.FindLink(from, to);
  if (found != nullptr && given_flags.count("pass_segment_s") > 0) {
    return Fail(absl::StrFormat("--pass-segment-s applies to satellite links; %s - %s is a fibre link", from, to));
  }
  if (found == nullptr && options->decoys) {
    if (int code = RunSatellite(config, path, *options, from, to, output); code >= 0) return code;
  }
  if (found == nullptr) {
    return Fail(absl::StrFormat("--qkd %s runs over one link: %s and %s are not neighbours in %s%s",
                                absl::GetFlag(FLAGS_qkd), from, to, path,
                                SatellitePath(config, from, to).empty() ? ""
                                                                        : " (over satellite links: decoy-bb84 only)"));
  }
  qnet::physical::LinkPhysics link = *found;
  SetPhase(absl::StrFormat("simulating %d laser pulses %s -> %s", options->pulses, from, to));
  const auto wall_start = std::chrono::steady_clock::now();
  auto result = qnet::netsim::RunWeakCoherentBb84(link, *options);
  EndProgress();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  if (!result.ok()) return Fail(absl::StrFormat("%s -> %s: %s", from, to, result.status().message()));
  const auto& r = *result;
  const double pulses = static_cast<double>(options->pulses);
  const double eve_share = r.sifted_signal_bits == 0 ? 0.0
                                                      : static_cast<double>(r.eavesdropper_known_bits) /
                                                            static_cast<double>(r.sifted_signal_bits);
  if (output == "json") {
    nlohmann::ordered_json j;
    j["network"] = config.name;
    j["seed"] = seed;
    j["protocol"] = absl::GetFlag(FLAGS_qkd);
    j["from"] = from;
    j["to"] = to;
    j["length_km"] = link.length_km;
    j["pulses"] = options->pulses;
    j["simulated_seconds"] = r.simulated_seconds;
    j["eavesdropper"] = options->photon_number_splitting ? "pns" : "none";
    const char* names[3] = {"signal", "decoy", "vacuum"};
    for (int k = 0; k < (options->decoys ? 3 : 1); ++k) {
      const auto& c = r.counts[k];
      j["intensities"].push_back({{"name", names[k]},
                                  {"mu", options->intensities.mean_photon_number[k]},
                                  {"pulses", c.pulses},
                                  {"detections", c.detections},
                                  {"gain", c.gain()},
                                  {"sifted_z", c.sifted_z},
                                  {"errors_z", c.errors_z},
                                  {"sifted_x", c.sifted_x},
                                  {"errors_x", c.errors_x},
                                  {"qber", c.error_rate()}});
    }
    j["true_single_photon"] = {{"yield", r.by_photon_number[1].yield()},
                               {"error_rate", r.by_photon_number[1].error_rate()}};
    if (r.asymptotic) {
      j["asymptotic"] = {{"yield_vacuum", r.asymptotic->yield_vacuum},
                         {"yield_single_lower", r.asymptotic->yield_single_lower},
                         {"error_single_upper", r.asymptotic->error_single_upper},
                         {"key_rate_per_pulse", r.asymptotic->key_rate_per_pulse},
                         {"key_rate_standard_error", r.asymptotic_standard_error}};
    }
    if (r.finite_key) {
      j["finite_key"] = {{"single_photon_events_z_lower", r.finite_key->single_photon_events_z_lower},
                         {"phase_error_upper", r.finite_key->phase_error_upper},
                         {"key_bits", r.finite_key->key_bits},
                         {"key_bits_per_pulse", static_cast<double>(r.finite_key->key_bits) / pulses}};
    }
    j["single_photon_assumption_rate_per_pulse"] = r.single_photon_assumption_rate;
    if (options->decoys) j["analytic_rate_per_pulse"] = r.analytic_rate;
    j["infinite_decoy_rate_per_pulse"] = r.infinite_decoy_rate;
    j["single_photon_source_rate_per_pulse"] = r.single_photon_source_rate;
    j["plob_bound_per_pulse"] = r.plob_bound;
    j["eavesdropper_known_fraction"] = eve_share;
    j["wall_seconds"] = wall;
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("network %s (%s), seed %llu, %s over %s (%.4g km), %.4g pulses (%.4g s at 1 GHz)%s\n",
              config.name.c_str(), path.c_str(), static_cast<unsigned long long>(seed),
              absl::GetFlag(FLAGS_qkd).c_str(), link.name.c_str(), link.length_km, pulses, r.simulated_seconds,
              options->photon_number_splitting ? ", photon-number-splitting eavesdropper" : "");
  std::printf("\n  %-8s %6s  %12s  %12s  %10s   %s\n", "pulses", "mu", "sent", "gain", "QBER",
              "(closed form without an eavesdropper: gain, QBER)");
  const char* names[3] = {"signal", "decoy", "vacuum"};
  for (int k = 0; k < (options->decoys ? 3 : 1); ++k) {
    const auto& c = r.counts[k];
    const qnet::qkd::ExpectedCounts expected =
        qnet::qkd::ExpectedWeakCoherent(r.link_model, options->intensities.mean_photon_number[k]);
    std::printf("  %-8s %6.3f  %12llu  %12.5g  %10.5f   (%.5g, %.5f)\n", names[k],
                options->intensities.mean_photon_number[k], static_cast<unsigned long long>(c.pulses), c.gain(),
                c.error_rate(), expected.gain, expected.error_rate);
  }
  std::printf("\n  single photons       yield %.5g, error %.5f (the simulator's truth; no real Alice knows it)\n",
              r.by_photon_number[1].yield(), r.by_photon_number[1].error_rate());
  if (r.asymptotic) {
    std::printf("  decoy estimate       Y1 >= %.5g, e1 <= %.5f (vacuum + weak decoy, Ma et al. 2005)\n",
                r.asymptotic->yield_single_lower, r.asymptotic->error_single_upper);
    std::printf("  key rate (GLLP)      %.5g +- %.2g bits per pulse, asymptotic (closed form for this link: %.5g)\n",
                r.asymptotic->key_rate_per_pulse, r.asymptotic_standard_error, r.analytic_rate);
    std::printf("  finite key           %llu bits from these pulses = %.5g per pulse (Lim et al. 2014, eps_sec "
                "%.0e)%s\n",
                static_cast<unsigned long long>(r.finite_key->key_bits),
                static_cast<double>(r.finite_key->key_bits) / pulses, options->finite_key.epsilon_secrecy,
                r.finite_key->key_bits == 0 ? ": ABORT, no secret key" : "");
  } else {
    std::printf("  key rate claimed     %.5g bits per pulse, if every pulse were a single photon (no decoys: the "
                "claim a photon-number-splitting attack breaks)\n",
                r.single_photon_assumption_rate);
  }
  std::printf("  closed forms         infinite decoys %.5g, ideal single-photon source %.5g bits per pulse; PLOB bound "
              "%.5g\n",
              r.infinite_decoy_rate, r.single_photon_source_rate, r.plob_bound);
  if (options->photon_number_splitting) {
    std::printf("  eavesdropper         holds %.2f%% of the sifted signal bits exactly (%llu of %llu); she blocked "
                "%llu pulses\n",
                100.0 * eve_share, static_cast<unsigned long long>(r.eavesdropper_known_bits),
                static_cast<unsigned long long>(r.sifted_signal_bits),
                static_cast<unsigned long long>(r.fibre.pulses_blocked));
  }
  std::printf("  simulator            %.3f s wall\n", wall);
  return 0;
}

// qnetsim --qkd: one key request from `from` to `to`, reported like
// `qnetctl qkd` reports the daemons' (key rate per simulated second).
int RunQkd(const qnet::config::NetworkConfig& config, const std::string& path, uint64_t seed, const std::string& from,
           const std::string& to, const std::string& output) {
  auto request_or = KeyRequestFromFlags();
  if (!request_or.ok()) return Fail(std::string(request_or.status().message()));
  qnet::keydist::KeyRequest request = *request_or;
  request.peer = to;
  const int64_t bits = static_cast<int64_t>(request.bits);
  SetPhase(absl::StrFormat("building %d nodes", config.nodes.size()));
  auto network = qnet::netsim::SimulatedNetwork::Create(config, seed);
  if (!network.ok()) return Fail(std::string(network.status().message()));
  TeardownReport teardown;
  Watch(**network);
  SetPhase(absl::StrFormat("simulating QKD %s - %s, %d key bits", from, to, bits));
  const auto wall_start = std::chrono::steady_clock::now();
  auto result = qnet::netsim::RunKeyExperiment(**network, from, request,
                                               qnet::FromSeconds(absl::GetFlag(FLAGS_time_limit_s)));
  EndProgress();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  if (!result.ok()) return Fail(absl::StrFormat("QKD %s -> %s: %s", from, to, result.status().message()));
  const qnet::keydist::KeyAgreementResult& r = result->agreement;
  const double sim_s = qnet::ToSeconds(r.simulated_duration);
  const double rate = sim_s > 0 ? static_cast<double>(r.key.size()) / sim_s : 0.0;
  const std::string protocol_name(qnet::keydist::QkdProtocolName(r.protocol));
  if (output == "json") {
    std::vector<std::string> hops, relays, blocks;
    for (const auto& n : r.path) hops.push_back(JsonString(n));
    for (const auto& n : r.relay_nodes) relays.push_back(JsonString(n));
    for (const auto& b : r.blocks) {
      blocks.push_back(absl::StrFormat(
          "{\"key_id\":%s,\"raw_pairs\":%d,\"sifted_bits\":%d,\"qber\":%.6f,\"qber_z\":%.6f,\"qber_x\":%.6f,"
          "\"final_key_bits\":%d,\"auth_bits_consumed\":%d,\"simulated_seconds\":%.9g}",
          JsonString(b.key_id), b.raw_pairs, b.sifted_bits, b.qber, b.qber_z, b.qber_x, b.final_key_bits,
          b.auth_bits_consumed,
          qnet::ToSeconds(b.simulated_duration)));
    }
    std::string extra;
    if (r.chsh_s) extra += absl::StrFormat(",\"chsh_s\":%.6f", *r.chsh_s);
    if (absl::GetFlag(FLAGS_show_key)) extra += absl::StrFormat(",\"key_hex\":%s", JsonString(qnet::keydist::KeyHex(r.key)));
    if (!result->keys_match) extra += absl::StrFormat(",\"keys_problem\":%s", JsonString(result->keys_problem));
    std::printf("%s\n", absl::StrFormat(
        "{\"network\":%s,\"seed\":%llu,\"protocol\":%s,\"from\":%s,\"to\":%s,\"path\":[%s],\"relay_nodes\":[%s],"
        "\"raw_pairs\":%d,\"sifted_bits\":%d,\"qber_z\":%.6f,\"qber_x\":%.6f,\"final_key_bits\":%d,"
        "\"auth_bits_consumed\":%d,\"discarded_blocks\":%d,\"error_correction_efficiency\":%.4f,\"simulated_seconds\":%.9g,"
        "\"key_bits_per_second\":%.6g,\"keys_match\":%s,\"blocks\":[%s]%s,\"events\":%d,\"wall_seconds\":%.4f}",
        JsonString(config.name), static_cast<unsigned long long>(seed), JsonString(protocol_name), JsonString(from),
        JsonString(to), absl::StrJoin(hops, ","), absl::StrJoin(relays, ","), r.raw_pairs, r.sifted_bits, r.qber_z,
        r.qber_x, r.key.size(), r.auth_bits_consumed, r.discarded_blocks, r.error_correction_efficiency, sim_s, rate,
        result->keys_match ? "true" : "false", absl::StrJoin(blocks, ","), extra, result->events, wall).c_str());
    return result->keys_match ? 0 : 1;
  }
  std::printf("network %s (%s), seed %llu, %s key of %lld bits\n", config.name.c_str(), path.c_str(),
              static_cast<unsigned long long>(seed), protocol_name.c_str(), static_cast<long long>(bits));
  std::printf("\n%s -> %s  path %s\n", from.c_str(), to.c_str(), absl::StrJoin(r.path, " - ").c_str());
  if (!r.relay_nodes.empty()) {
    std::printf("  trusted relays       %s (they learn the key)\n", absl::StrJoin(r.relay_nodes, ", ").c_str());
  }
  std::printf("  blocks               %zu with a key, %u discarded (residual errors after Cascade)\n",
              r.blocks.size(), r.discarded_blocks);
  std::printf("  raw pairs            %llu, sifted bits %llu\n", static_cast<unsigned long long>(r.raw_pairs),
              static_cast<unsigned long long>(r.sifted_bits));
  std::printf("  QBER                 Z %.4f, X %.4f (measured on the disclosed sample)\n", r.qber_z, r.qber_x);
  if (r.chsh_s) std::printf("  CHSH S               %.4f (mean over blocks)\n", *r.chsh_s);
  std::printf("  error correction     f = %.3f (Cascade leak / n h(Q))\n", r.error_correction_efficiency);
  std::printf("  final key            %zu bits in %s simulated  ->  %.4g key bits/s\n", r.key.size(),
              qnet::FormatDuration(r.simulated_duration).c_str(), rate);
  std::printf("  authentication       %llu bits of the keys went back to the pre-shared pool (Wegman-Carter MACs)\n",
              static_cast<unsigned long long>(r.auth_bits_consumed));
  std::printf("  both ends' keys      %s\n", result->keys_match ? "identical (fetched by key id at each end)"
                                                                : absl::StrCat("NOT identical: ", result->keys_problem).c_str());
  for (const auto& b : r.blocks) std::printf("  key id               %s (%llu bits)\n", b.key_id.c_str(),
                                             static_cast<unsigned long long>(b.final_key_bits));
  if (absl::GetFlag(FLAGS_show_key)) std::printf("  key                  %s\n", qnet::keydist::KeyHex(r.key).c_str());
  std::printf("  simulator            %s\n", SimulatorLine(result->events, **network, wall).c_str());
  return result->keys_match ? 0 : 1;
}

// qnetsim --sweep: checks the flags that go together and runs the sweep.
int RunTrafficFromFlags(const qnet::config::NetworkConfig& config, const std::string& path, uint64_t seed,
                        BasisChoice basis, double min_fidelity, const std::string& output) {
  qnet::netsim::TrafficExperiment experiment;
  experiment.requests = static_cast<uint32_t>(absl::GetFlag(FLAGS_traffic));
  experiment.arrival_rate_hz = absl::GetFlag(FLAGS_arrival_rate);
  experiment.pairs_per_request = static_cast<uint32_t>(absl::GetFlag(FLAGS_pairs_per_request));
  experiment.basis = basis;
  experiment.min_fidelity = min_fidelity;
  experiment.request_timeout = qnet::FromSeconds(absl::GetFlag(FLAGS_request_timeout_s));
  experiment.seed = seed;
  if (experiment.requests > 1'000'000) return Fail("--traffic must be between 1 and 1000000 requests");
  if (!(experiment.arrival_rate_hz > 0 && experiment.arrival_rate_hz <= 1e9)) {
    return Fail("--arrival-rate must be in (0, 1e9] requests per simulated second");
  }
  if (absl::GetFlag(FLAGS_pairs_per_request) < 1 || absl::GetFlag(FLAGS_pairs_per_request) > 1'000'000) {
    return Fail("--pairs-per-request must be between 1 and 1000000");
  }
  if (!(absl::GetFlag(FLAGS_request_timeout_s) > 0 && absl::GetFlag(FLAGS_request_timeout_s) <= 1e6)) {
    return Fail("--request-timeout-s must be in (0, 1e6] simulated seconds");
  }
  const std::string from = absl::GetFlag(FLAGS_from), to = absl::GetFlag(FLAGS_to);
  if (!from.empty()) experiment.endpoints.emplace_back(from, to);
  SetPhase(absl::StrFormat("building %d nodes", config.nodes.size()));
  auto network = qnet::netsim::SimulatedNetwork::Create(config, seed);
  if (!network.ok()) return Fail(std::string(network.status().message()));
  TeardownReport teardown;
  Watch(**network);
  SetPhase(absl::StrFormat("simulating %d requests of %d pairs (routes converge first)", experiment.requests,
                           experiment.pairs_per_request));
  const auto wall_start = std::chrono::steady_clock::now();
  auto result =
      qnet::netsim::RunTraffic(**network, experiment, qnet::FromSeconds(absl::GetFlag(FLAGS_time_limit_s)));
  EndProgress();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  if (!result.ok()) return Fail(std::string(result.status().message()));
  using qnet::netsim::Quantile;
  std::vector<double> latency, rate, fidelity, hops;
  size_t served = 0;
  std::map<std::string, int> why;
  for (const auto& r : result->requests) {
    if (!r.served) {
      ++why[r.error.substr(0, r.error.find(':'))];
      continue;
    }
    ++served;
    latency.push_back(r.latency_s);
    rate.push_back(r.pairs_per_second);
    fidelity.push_back(r.mean_fidelity_estimate);
    hops.push_back(r.hops);
  }
  const auto& s = result->statistics;
  const double sim_s = qnet::ToSeconds(result->simulated_time);
  if (output == "json") {
    nlohmann::json j;
    j["network"] = config.name;
    j["seed"] = seed;
    j["requests"] = nlohmann::json::array();
    for (const auto& r : result->requests) {
      nlohmann::json q = {{"from", r.from},     {"to", r.to},           {"arrival_s", r.arrival_s},
                          {"served", r.served}, {"hops", r.hops},       {"pairs", r.pairs},
                          {"latency_s", r.latency_s}, {"pairs_per_second", r.pairs_per_second},
                          {"fidelity_estimate", r.mean_fidelity_estimate}};
      if (!r.served) q["error"] = r.error;
      j["requests"].push_back(std::move(q));
    }
    const auto quantiles = [](const std::vector<double>& v) {
      return nlohmann::json{{"p10", Quantile(v, 0.1)}, {"p50", Quantile(v, 0.5)}, {"p90", Quantile(v, 0.9)},
                            {"max", Quantile(v, 1.0)}};
    };
    const auto err = [](const qnet::apps::ErrorRate& e) {
      return nlohmann::json{{"pairs", e.pairs}, {"errors", e.errors}, {"rate", e.rate()}, {"stderr", e.standard_error()}};
    };
    j["summary"] = {{"requests", result->requests.size()},
                    {"served", served},
                    {"latency_s", quantiles(latency)},
                    {"pairs_per_second", quantiles(rate)},
                    {"fidelity_estimate", quantiles(fidelity)},
                    {"hops", quantiles(hops)},
                    {"pairs_measured", s.pairs},
                    {"error_rate", {{"z", err(s.z)}, {"x", err(s.x)}, {"y", err(s.y)}}}};
    if (s.fidelity) j["summary"]["fidelity"] = {{"value", s.fidelity->value}, {"stderr", s.fidelity->standard_error}};
    j["memory"] = nlohmann::json::array();
    for (const auto& m : result->memory) {
      j["memory"].push_back({{"node", m.node}, {"qubits", m.qubits}, {"allocated_qubit_seconds", m.allocated_qubit_seconds},
                             {"utilisation", m.utilisation}, {"peak_in_use", m.peak_in_use}});
    }
    j["links"] = nlohmann::json::array();
    for (const auto& l : result->links) {
      j["links"].push_back({{"link", l.link}, {"heralded", l.heralded}, {"attempts", l.attempts},
                            {"pairs_per_second", l.pairs_per_second}});
    }
    j["simulated_seconds"] = sim_s;
    j["events"] = result->events;
    j["wall_seconds"] = wall;
    std::printf("%s\n", j.dump().c_str());
    return served == result->requests.size() ? 0 : 1;
  }
  std::printf("network %s (%s), seed %llu: %u requests (Poisson, %g per simulated s), %u %s MEASURE pairs each\n",
              config.name.c_str(), path.c_str(), static_cast<unsigned long long>(seed), experiment.requests,
              experiment.arrival_rate_hz, experiment.pairs_per_request, absl::GetFlag(FLAGS_basis).c_str());
  std::printf("\n  served               %zu of %zu in %s simulated", served, result->requests.size(),
              qnet::FormatDuration(result->simulated_time).c_str());
  std::vector<std::string> reasons;
  for (const auto& [reason, n] : why) reasons.push_back(absl::StrFormat("%d %s", n, reason));
  std::printf("%s\n", reasons.empty() ? "" : absl::StrCat("; failed: ", absl::StrJoin(reasons, ", ")).c_str());
  // `digits` significant digits, or (fixed) decimals.
  const auto row = [](const char* name, const std::vector<double>& v, int digits, bool fixed) {
    const auto f = [&](double q) {
      return fixed ? absl::StrFormat("%.*f", digits, Quantile(v, q)) : absl::StrFormat("%.*g", digits, Quantile(v, q));
    };
    std::printf("  %-20s p10 %s  p50 %s  p90 %s  max %s\n", name, f(0.1).c_str(), f(0.5).c_str(), f(0.9).c_str(),
                f(1.0).c_str());
  };
  if (served > 0) {
    row("latency (s)", latency, 4, false);
    row("pairs per s", rate, 4, false);
    row("fidelity estimate", fidelity, 4, true);
    row("hops", hops, 0, true);
  }
  const auto qber = [](const char* name, const qnet::apps::ErrorRate& e) {
    if (e.pairs > 0) std::printf("  error rate %s         %.4f +- %.4f  (%llu pairs)\n", name, e.rate(), e.standard_error(),
                                 static_cast<unsigned long long>(e.pairs));
  };
  qber("Z", s.z);
  qber("X", s.x);
  qber("Y", s.y);
  if (s.fidelity) {
    std::printf("  fidelity (measured)  %.4f +- %.4f  over every delivered pair\n", s.fidelity->value,
                s.fidelity->standard_error);
  }
  std::vector<const qnet::netsim::NodeMemoryUse*> busiest;
  double mean_use = 0;
  for (const auto& m : result->memory) {
    busiest.push_back(&m);
    mean_use += m.utilisation / static_cast<double>(result->memory.size());
  }
  std::sort(busiest.begin(), busiest.end(), [](auto* a, auto* b) { return a->utilisation > b->utilisation; });
  std::vector<std::string> top;
  for (size_t i = 0; i < busiest.size() && i < 5; ++i) {
    top.push_back(absl::StrFormat("%s %.0f%% (peak %d/%d)", busiest[i]->node, 100 * busiest[i]->utilisation,
                                  busiest[i]->peak_in_use, busiest[i]->qubits));
  }
  std::printf("  memory utilisation   mean %.0f%% over %zu nodes; busiest: %s\n", 100 * mean_use, result->memory.size(),
              absl::StrJoin(top, ", ").c_str());
  std::vector<const qnet::netsim::LinkUse*> links;
  for (const auto& l : result->links) links.push_back(&l);
  std::sort(links.begin(), links.end(), [](auto* a, auto* b) { return a->heralded > b->heralded; });
  top.clear();
  for (size_t i = 0; i < links.size() && i < 5; ++i) {
    top.push_back(absl::StrFormat("%s %llu (%.4g/s)", links[i]->link, static_cast<unsigned long long>(links[i]->heralded),
                                  links[i]->pairs_per_second));
  }
  std::printf("  link pairs           busiest: %s\n", absl::StrJoin(top, ", ").c_str());
  std::printf("  simulator            %llu events, %.3f s wall\n", static_cast<unsigned long long>(result->events), wall);
  std::printf("  (--output json has every request, node and link)\n");
  return served == result->requests.size() ? 0 : 1;
}

int RunSweepFromFlags(const qnet::config::NetworkConfig& config, const std::string& path, uint64_t seed,
                      BasisChoice basis) {
  using qnet::netsim::SweepOptions;
  auto range = qnet::plot::ParseSweep(absl::GetFlag(FLAGS_sweep));
  if (!range.ok()) return Fail(std::string(range.status().message()));
  SweepOptions options;
  options.range = *range;
  options.network_path = path;
  options.seed = seed;
  options.link = absl::GetFlag(FLAGS_link);
  options.from = absl::GetFlag(FLAGS_from);
  options.to = absl::GetFlag(FLAGS_to);
  options.pairs = static_cast<uint32_t>(absl::GetFlag(FLAGS_pairs));
  options.basis = basis;
  options.basis_name = absl::GetFlag(FLAGS_basis);
  options.min_fidelity = absl::GetFlag(FLAGS_min_fidelity);
  options.time_limit = qnet::FromSeconds(absl::GetFlag(FLAGS_time_limit_s));
  options.output = absl::GetFlag(FLAGS_output);
  options.plot_path = absl::GetFlag(FLAGS_plot);
  options.jobs = absl::GetFlag(FLAGS_jobs);
  if (options.jobs < 0 || options.jobs > 1024) return Fail("--jobs must be in [0, 1024] (0: one per core)");
  if (!options.plot_path.empty() && !absl::EndsWithIgnoreCase(options.plot_path, ".svg") &&
      !absl::EndsWithIgnoreCase(options.plot_path, ".png")) {
    return Fail(absl::StrFormat("--plot %s must end in .svg or .png (the format follows the extension)",
                                options.plot_path));
  }
  const bool hops = options.range.parameter == qnet::plot::kSweepHops;
  for (const std::string& n : {options.from, options.to}) {
    if (!n.empty() && config.FindNode(n) == nullptr) return Fail(absl::StrFormat("no node '%s' in %s", n, path));
  }
  if (options.link != "all" && config.FindLinkByName(options.link) == nullptr) {
    return Fail(absl::StrFormat("no link '%s' in %s", options.link, path));
  }
  if (hops) {
    if (options.from.empty() || !options.to.empty()) {
      return Fail("--sweep hops needs --from and no --to: each point's far end is the first node that many hops away");
    }
  } else if (options.from.empty() != options.to.empty()) {
    return Fail("--from and --to go together (see --help)");
  } else if (!options.from.empty() && options.from == options.to) {
    return Fail("--from and --to must name different nodes");
  }
  if (IsWeakCoherentProtocol(absl::GetFlag(FLAGS_qkd))) {
    if (options.from.empty() || hops) return Fail("--qkd decoy-bb84|bb84-wcp sweeps length_km between neighbours --from and --to");
    const qnet::physical::LinkPhysics* link = config.FindLink(options.from, options.to);
    if (link == nullptr) return Fail(absl::StrFormat("%s and %s are not neighbours in %s", options.from, options.to, path));
    if (options.link != "all" && options.link != link->name) {
      return Fail(absl::StrFormat("--link %s is not the link between %s and %s", options.link, options.from, options.to));
    }
    options.link = link->name;
    auto weak = WeakCoherentOptionsFromFlags(seed);
    if (!weak.ok()) return Fail(std::string(weak.status().message()));
    options.mode = SweepOptions::Mode::kWeakCoherent;
    options.weak_coherent = *weak;
  } else if (!absl::GetFlag(FLAGS_qkd).empty()) {
    if (options.from.empty()) return Fail("--qkd needs --from (and --to unless hops are swept)");
    auto request = KeyRequestFromFlags();
    if (!request.ok()) return Fail(std::string(request.status().message()));
    options.mode = SweepOptions::Mode::kQkd;
    options.key_request = *request;
  } else if (!options.from.empty()) {
    options.mode = SweepOptions::Mode::kPath;
  } else {
    options.mode = SweepOptions::Mode::kLink;
    if (options.link == "all") {
      if (config.links.size() != 1) {
        return Fail(absl::StrFormat("--sweep over link pairs needs --link NAME: %s has %d links", path,
                                    config.links.size()));
      }
      options.link = config.links[0].name;
    }
  }
  return qnet::netsim::RunSweep(config, options);
}

// A flag's name as users spell it (abseil's underscores back to dashes).
std::string Dashed(std::string flag) {
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

// qnetsim's options for --help, in the dash spelling, with their defaults
// (Abseil's own --help would name the source file and the underscores).
std::string FlagsHelp() {
  std::vector<std::pair<std::string, std::string>> lines;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!absl::EndsWith(flag->Filename(), "qnetsim_main.cc")) continue;
    const std::string dashed = Dashed(std::string(name));
    const std::string value = flag->DefaultValue();
    // A help text that states its default itself (--seed's -1 means "the
    // file's") keeps only that one.
    const bool says_default = absl::StrContains(flag->Help(), "(default:");
    lines.emplace_back(dashed, absl::StrCat(flag->Help(), value.empty() || says_default
                                                               ? ""
                                                               : absl::StrCat(" (default: ", value, ")")));
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& [name, help] : lines) absl::StrAppend(&out, absl::StrFormat("  --%-18s %s\n", name, help));
  return out;
}

}  // namespace

// qnetsim --circuit: a circuit across nodes, shot by shot.
int RunCircuitFromFlags(const qnet::config::NetworkConfig& config, const std::string& path, uint64_t seed,
                        double min_fidelity, const std::string& output) {
  const std::string file = absl::GetFlag(FLAGS_circuit);
  std::ifstream in(file);
  if (!in) return Fail(absl::StrFormat("cannot read the circuit file %s", file));
  std::stringstream text;
  text << in.rdbuf();
  auto program = qnet::transport::ParseCircuit(text.str());
  if (!program.ok()) return Fail(absl::StrFormat("%s: %s", file, program.status().message()));
  for (const std::string& node : program->nodes) {
    if (config.FindNode(node) == nullptr) return Fail(absl::StrFormat("%s names node '%s', which is not in %s", file, node, path));
  }
  const std::string coordinator = absl::GetFlag(FLAGS_coordinator);
  if (!coordinator.empty() && config.FindNode(coordinator) == nullptr) {
    return Fail(absl::StrFormat("no node '%s' in %s", coordinator, path));
  }
  const int shots = absl::GetFlag(FLAGS_shots);
  if (shots < 1 || shots > 10'000'000) return Fail("--shots must be between 1 and 10000000");
  qnet::netsim::CircuitExperiment experiment;
  experiment.program = *std::move(program);
  experiment.coordinator = coordinator;
  experiment.shots = static_cast<uint32_t>(shots);
  experiment.min_fidelity = min_fidelity;
  SetPhase(absl::StrFormat("building %d nodes", config.nodes.size()));
  auto network = qnet::netsim::SimulatedNetwork::Create(config, seed);
  if (!network.ok()) return Fail(std::string(network.status().message()));
  TeardownReport teardown;
  Watch(**network);
  SetPhase(absl::StrFormat("running %s %d times (routes converge first)", file, shots));
  const auto wall_start = std::chrono::steady_clock::now();
  auto result = qnet::netsim::RunCircuitExperiment(**network, experiment,
                                                   qnet::FromSeconds(absl::GetFlag(FLAGS_time_limit_s)));
  EndProgress();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  if (!result.ok()) return Fail(absl::StrFormat("%s: %s", file, result.status().message()));
  const auto& r = result->report;
  const double sim_s = qnet::ToSeconds(r.simulated_time);
  if (output == "json") {
    nlohmann::json j;
    j["network"] = config.name;
    j["seed"] = seed;
    j["circuit"] = file;
    j["coordinator"] = result->coordinator;
    j["shots"] = r.shots;
    j["measurements"] = r.measurements;
    j["counts"] = nlohmann::json::object();
    for (const auto& [outcome, n] : r.counts) j["counts"][outcome] = n;
    j["pairs_used"] = r.pairs_used;
    j["pairs_discarded"] = r.pairs_discarded;
    j["simulated_seconds"] = sim_s;
    j["events"] = result->events;
    j["wall_seconds"] = wall;
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s: %s, %u shots coordinated by %s, seed %llu\n", config.name.c_str(), file.c_str(), r.shots,
              result->coordinator.c_str(), static_cast<unsigned long long>(seed));
  std::printf("  outcomes of          %s\n", absl::StrJoin(r.measurements, " ").c_str());
  for (const auto& [outcome, n] : r.counts) {
    std::printf("  %-20s %llu (%.4f +- %.4f)\n", outcome.c_str(), static_cast<unsigned long long>(n),
                static_cast<double>(n) / r.shots,
                std::sqrt(static_cast<double>(n) / r.shots * (1 - static_cast<double>(n) / r.shots) / r.shots));
  }
  std::printf("  entangled pairs      %llu used, %llu discarded below --min-fidelity\n",
              static_cast<unsigned long long>(r.pairs_used), static_cast<unsigned long long>(r.pairs_discarded));
  std::printf("  simulated            %s (%.4g shots per second)\n", qnet::FormatDuration(r.simulated_time).c_str(),
              sim_s > 0 ? r.shots / sim_s : 0.0);
  std::printf("  simulator            %s\n", SimulatorLine(result->events, **network, wall).c_str());
  return 0;
}

// qnetsim --ghz: GHZ states across nodes, measured setting by setting.
int RunGhzFromFlags(const qnet::config::NetworkConfig& config, const std::string& path, uint64_t seed,
                    double min_fidelity, const std::string& output) {
  qnet::netsim::GhzExperiment experiment;
  experiment.nodes = absl::StrSplit(absl::GetFlag(FLAGS_ghz), ',', absl::SkipEmpty());
  experiment.min_fidelity = min_fidelity;
  const int shots = absl::GetFlag(FLAGS_shots);
  const int n = static_cast<int>(experiment.nodes.size());
  if (n < 3 || n > qnet::transport::kMaxGhzNodes) {
    return Fail(absl::StrFormat("--ghz takes 3 to %d comma-separated nodes, not %d", qnet::transport::kMaxGhzNodes, n));
  }
  std::set<std::string> seen;
  for (const std::string& node : experiment.nodes) {
    if (config.FindNode(node) == nullptr) return Fail(absl::StrFormat("no node '%s' in %s", node, path));
    if (!seen.insert(node).second) return Fail(absl::StrFormat("--ghz lists node '%s' twice", node));
  }
  const int settings = (1 << (n - 1)) + 1;
  if (shots < settings || shots > 10'000'000) {
    return Fail(absl::StrFormat("--shots must be between %d (one per setting of a %d-node GHZ state) and 10000000",
                                settings, n));
  }
  experiment.shots = static_cast<uint32_t>(shots);
  SetPhase(absl::StrFormat("building %d nodes", config.nodes.size()));
  auto network = qnet::netsim::SimulatedNetwork::Create(config, seed);
  if (!network.ok()) return Fail(std::string(network.status().message()));
  TeardownReport teardown;
  Watch(**network);
  SetPhase(absl::StrFormat("simulating %d GHZ states over %s (routes converge first)", shots, absl::GetFlag(FLAGS_ghz)));
  const auto wall_start = std::chrono::steady_clock::now();
  auto result = qnet::netsim::RunGhzExperiment(**network, experiment,
                                               qnet::FromSeconds(absl::GetFlag(FLAGS_time_limit_s)));
  EndProgress();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  if (!result.ok()) return Fail(absl::StrFormat("GHZ over %s: %s", absl::GetFlag(FLAGS_ghz), result.status().message()));
  const auto& e = result->estimate;
  const auto& r = result->report;
  const double sim_s = qnet::ToSeconds(r.simulated_time);
  const double rate = sim_s > 0 ? static_cast<double>(r.shots) / sim_s : 0.0;
  if (output == "json") {
    nlohmann::json j;
    j["network"] = config.name;
    j["seed"] = seed;
    j["nodes"] = r.nodes;
    j["construction"] = "fusion at the first node";
    j["shots"] = r.shots;
    j["simulated_seconds"] = sim_s;
    j["states_per_second"] = rate;
    j["pairs_used"] = r.pairs_used;
    j["pairs_discarded"] = r.pairs_discarded;
    j["pair_fidelity_estimate"] = r.mean_pair_fidelity_estimate;
    j["fidelity"] = {{"value", e.fidelity}, {"stderr", e.fidelity_se}};
    j["populations"] = {{"value", e.populations}, {"stderr", e.populations_se}};
    j["coherence"] = {{"value", e.coherence}, {"stderr", e.coherence_se}};
    j["mermin"] = {{"value", e.mermin},
                   {"stderr", e.mermin_se},
                   {"local_bound", e.mermin_local_bound},
                   {"quantum_max", e.mermin_quantum_max},
                   {"violation_sigmas", e.mermin_violation_sigmas}};
    j["settings"] = nlohmann::json::array();
    for (const auto& s : e.settings) {
      j["settings"].push_back({{"bases", s.bases}, {"shots", s.shots}, {"expectation", s.expectation}, {"stderr", s.se}});
    }
    j["events"] = result->events;
    j["wall_seconds"] = wall;
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s: GHZ state over %s (fusion at %s), seed %llu\n", config.name.c_str(),
              absl::StrJoin(r.nodes, ", ").c_str(), r.nodes.front().c_str(), static_cast<unsigned long long>(seed));
  std::printf("  states               %u in %s simulated  ->  %.4g per second; %llu pairs used, %llu discarded "
              "(pair fidelity estimate %.4f)\n",
              r.shots, qnet::FormatDuration(r.simulated_time).c_str(), rate,
              static_cast<unsigned long long>(r.pairs_used), static_cast<unsigned long long>(r.pairs_discarded),
              r.mean_pair_fidelity_estimate);
  std::printf("  fidelity             %.4f +- %.4f (from outcomes: populations %.4f +- %.4f, coherence %.4f +- %.4f)\n",
              e.fidelity, e.fidelity_se, e.populations, e.populations_se, e.coherence, e.coherence_se);
  std::printf("  Mermin               %.4f +- %.4f (local bound %g, GHZ %g: %s by %.1f standard errors)\n", e.mermin,
              e.mermin_se, e.mermin_local_bound, e.mermin_quantum_max,
              e.mermin > e.mermin_local_bound ? "violated" : "not violated", std::abs(e.mermin_violation_sigmas));
  for (const auto& s : e.settings) {
    std::printf("  %-20s %llu shots, %s %+.4f +- %.4f\n", s.bases.c_str(), static_cast<unsigned long long>(s.shots),
                s.bases.find('Z') != std::string::npos ? "P(all equal)" : "parity", s.expectation, s.se);
  }
  std::printf("  simulator            %s\n", SimulatorLine(result->events, **network, wall).c_str());
  return 0;
}

// qnetsim --teleport STATE --from A --to B: the simulator's twin of
// `qnetctl teleport` (same shot rule: shot i measured on axis i % 3).
int RunTeleportFromFlags(const qnet::config::NetworkConfig& config, const std::string& path, uint64_t seed,
                         double min_fidelity, const std::string& output) {
  const std::string text = absl::GetFlag(FLAGS_teleport);
  const std::string from = absl::GetFlag(FLAGS_from), to = absl::GetFlag(FLAGS_to);
  if (from.empty() || to.empty()) return Fail("--teleport needs --from NODE and --to NODE");
  for (const std::string& n : {from, to}) {
    if (config.FindNode(n) == nullptr) return Fail(absl::StrFormat("no node '%s' in %s", n, path));
  }
  if (from == to) return Fail("--from and --to must name different nodes");
  qnet::netsim::TeleportExperiment experiment;
  experiment.from = from;
  experiment.to = to;
  experiment.min_fidelity = min_fidelity;
  std::string state_name;
  if (const size_t comma = text.find(','); comma != std::string::npos) {
    double theta = 0, phi = 0;
    if (!absl::SimpleAtod(text.substr(0, comma), &theta) || !absl::SimpleAtod(text.substr(comma + 1), &phi) ||
        !std::isfinite(theta) || !std::isfinite(phi)) {
      return Fail(absl::StrFormat(
          "--teleport must be 0, 1, +, -, +i, -i or THETA,PHI in radians (e.g. 1.0472,0.7854), got '%s'", text));
    }
    experiment.state = {theta, phi};
    state_name = absl::StrFormat("theta=%g, phi=%g", theta, phi);
  } else {
    absl::StatusOr<qnet::transport::NamedState> named = qnet::transport::ParseNamedState(text);
    if (!named.ok()) {
      return Fail(absl::StrFormat("--teleport must be 0, 1, +, -, +i, -i or THETA,PHI in radians, got '%s'", text));
    }
    experiment.state = qnet::transport::ToAngles(*named);
    state_name = std::string(qnet::transport::NamedStateName(*named));
  }
  const int shots = absl::GetFlag(FLAGS_shots);
  if (shots < 3 || shots > 10'000'000) {
    return Fail("--shots must be between 3 (one per measurement axis: X, Y, Z) and 10000000");
  }
  experiment.shots = static_cast<uint32_t>(shots);
  SetPhase(absl::StrFormat("building %d nodes", config.nodes.size()));
  auto network = qnet::netsim::SimulatedNetwork::Create(config, seed);
  if (!network.ok()) return Fail(std::string(network.status().message()));
  TeardownReport teardown;
  Watch(**network);
  SetPhase(absl::StrFormat("teleporting %s %d times from %s to %s (routes converge first)", state_name, shots, from, to));
  const auto wall_start = std::chrono::steady_clock::now();
  auto result = qnet::netsim::RunTeleportExperiment(**network, experiment,
                                                    qnet::FromSeconds(absl::GetFlag(FLAGS_time_limit_s)));
  EndProgress();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  if (!result.ok()) {
    return Fail(absl::StrFormat("teleport from %s to %s: %s", from, to, result.status().message()));
  }
  const auto& e = result->estimate;
  const double rate = result->simulated_seconds > 0 ? result->shots / result->simulated_seconds : 0.0;
  constexpr const char* kAxes[3] = {"X", "Y", "Z"};
  if (output == "json") {
    nlohmann::json j;
    j["network"] = config.name;
    j["seed"] = seed;
    j["from"] = from;
    j["to"] = to;
    j["state"] = state_name;
    j["shots"] = result->shots;
    j["simulated_seconds"] = result->simulated_seconds;
    j["teleports_per_second"] = rate;
    j["pairs_discarded"] = result->pairs_discarded;
    j["pair_fidelity_estimate"] = result->pair_fidelity_estimate;
    j["bloch"] = {{"value", e.r}, {"stderr", e.standard_error}};
    j["fidelity"] = {{"value", e.fidelity}, {"stderr", e.fidelity_standard_error}};
    j["true_fidelity_simulation_only"] = result->true_fidelity;
    j["axes"] = nlohmann::json::array();
    for (int a = 0; a < 3; ++a) {
      j["axes"].push_back({{"axis", kAxes[a]}, {"shots", result->counts[a].shots}, {"plus", result->counts[a].plus}});
    }
    j["events"] = result->events;
    j["wall_seconds"] = wall;
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s: teleport %s from %s to %s, seed %llu\n", config.name.c_str(), state_name.c_str(), from.c_str(),
              to.c_str(), static_cast<unsigned long long>(seed));
  std::printf("  teleports            %u in %s simulated  ->  %.4g per second; %llu pairs discarded (pair fidelity "
              "estimate %.4f)\n",
              result->shots, qnet::FormatDuration(qnet::FromSeconds(result->simulated_seconds)).c_str(), rate,
              static_cast<unsigned long long>(result->pairs_discarded), result->pair_fidelity_estimate);
  std::printf("  Bloch vector         (%+.4f, %+.4f, %+.4f) +- (%.4f, %.4f, %.4f) from X/Y/Z outcomes\n", e.r[0], e.r[1],
              e.r[2], e.standard_error[0], e.standard_error[1], e.standard_error[2]);
  std::printf("  fidelity             %.4f +- %.4f (from outcomes; 95%% interval %.4f .. %.4f; classical bound 2/3)\n",
              e.fidelity, e.fidelity_standard_error, std::max(0.0, e.fidelity - 1.96 * e.fidelity_standard_error),
              std::min(1.0, e.fidelity + 1.96 * e.fidelity_standard_error));
  std::printf("  true fidelity        %.4f (simulation only: the simulated qubits' mean <psi|rho|psi>)\n",
              result->true_fidelity);
  std::printf("  simulator            %s\n", SimulatorLine(result->events, **network, wall).c_str());
  return 0;
}

int main(int argc, char** argv) {
  const std::string usage =
      "Runs a network file in the in-process simulator and measures entangled pairs on its links.\n"
      "Usage: qnetsim --network FILE [--pairs N] [--basis six-state] [--link NAME|all] [--seed N] [--output json]\n"
      "       qnetsim --network FILE --from NODE --to NODE [--pairs N] [--min-fidelity F] ...  (end to end)\n"
      "       qnetsim --network FILE --qkd bbm92|e91|bb84|relay --from NODE --to NODE [--bits N] ...  (QKD)\n"
      "       qnetsim --network FILE --qkd decoy-bb84|bb84-wcp --from A --to B [--mu 0.5 --nu 0.1] [--pulses N] "
      "[--eavesdrop pns]\n"
      "       qnetsim --network FILE --ghz ROOT,B,C[,...] [--shots N] [--min-fidelity F]  (GHZ states)\n"
      "       qnetsim --network FILE --circuit PROGRAM [--shots N] [--coordinator NODE]  (circuits across nodes)\n"
      "       qnetsim --network FILE --teleport STATE --from NODE --to NODE [--shots N] [--min-fidelity F]  "
      "(teleportation)\n"
      "       the link, end-to-end and QKD runs with --sweep length_km=0:100:10 (or hops=1:8 with --from only) "
      "[--plot FILE.svg|png]";
  absl::SetProgramUsageMessage(usage);
  // One flag style across qnet's tools: dashes (--min-fidelity). Abseil's
  // flags are named with underscores, so dashes are mapped to them; the old
  // underscore spelling still works, with a note, for one release.
  std::vector<std::string> args(argv, argv + argc);
  std::vector<std::string> old_spellings;
  for (size_t i = 1; i < args.size(); ++i) {
    std::string& a = args[i];
    if (a == "--") break;
    if (a == "--help" || a == "-h" || a == "-help") {
      std::printf("%s\n\nOptions:\n%s", usage.c_str(), FlagsHelp().c_str());
      return 0;
    }
    if (a.rfind("--", 0) != 0) continue;
    const size_t end = std::min(a.find('='), a.size());
    const std::string name = a.substr(2, end - 2);
    if (name.find('_') != std::string::npos && absl::FindCommandLineFlag(name) != nullptr) old_spellings.push_back(name);
    std::replace(a.begin() + 2, a.begin() + static_cast<std::ptrdiff_t>(end), '-', '_');
    const std::string flag = a.substr(2, end - 2);
    given_flags.insert(flag);
    if (absl::FindCommandLineFlag(flag) == nullptr &&
        !(flag.rfind("no", 0) == 0 && absl::FindCommandLineFlag(flag.substr(2)) != nullptr)) {
      return Fail(absl::StrFormat("unknown option --%s (see --help)", name));
    }
  }
  for (const std::string& name : old_spellings) {
    const std::string dashed = Dashed(name);
    std::fprintf(stderr, "qnetsim: note: --%s is spelled --%s now; the old spelling goes in a later release\n",
                 name.c_str(), dashed.c_str());
  }
  std::vector<char*> normalised;
  for (std::string& a : args) normalised.push_back(a.data());
  std::vector<char*> rest = absl::ParseCommandLine(static_cast<int>(normalised.size()), normalised.data());
  if (rest.size() > 1) return Fail(absl::StrFormat("unexpected argument '%s' (see --help)", rest[1]));
  const std::string path = absl::GetFlag(FLAGS_network);
  if (path.empty()) return Fail("--network FILE is required (see --help)");
  {
    // Weak-coherent BB84's flags mean nothing to the other runs: refused,
    // not silently ignored.
    const std::string qkd = absl::GetFlag(FLAGS_qkd);
    const bool weak = IsWeakCoherentProtocol(qkd);
    for (const char* flag : {"mu", "pulses", "eavesdrop", "pass_segment_s", "nu", "intensity_probabilities"}) {
      if (given_flags.count(flag) == 0) continue;
      const bool decoy_only = std::string(flag) == "nu" || std::string(flag) == "intensity_probabilities" ||
                              std::string(flag) == "pass_segment_s";
      if (!weak || (decoy_only && qkd != "decoy-bb84")) {
        return Fail(absl::StrFormat("--%s applies only with --qkd %s", Dashed(flag),
                                    decoy_only ? "decoy-bb84" : "decoy-bb84 or bb84-wcp"));
      }
    }
    const double segment = absl::GetFlag(FLAGS_pass_segment_s);
    if (!(segment >= 0.01 && segment <= 60)) return Fail("--pass-segment-s must be in [0.01, 60] seconds");
  }
  BasisChoice basis;
  if (!ParseBasis(absl::GetFlag(FLAGS_basis), &basis)) {
    return Fail("--basis must be one of z, x, y, bb84, six-state, chsh");
  }
  const int pairs = absl::GetFlag(FLAGS_pairs);
  if (pairs < 1 || pairs > 10'000'000) return Fail("--pairs must be between 1 and 10000000");
  const double min_fidelity = absl::GetFlag(FLAGS_min_fidelity);
  if (!(min_fidelity >= 0.0 && min_fidelity <= 1.0)) return Fail("--min-fidelity must be in [0, 1]");
  const std::string output = absl::GetFlag(FLAGS_output);
  if (output != "text" && output != "json") return Fail("--output must be text or json");

  progress.emplace(!absl::GetFlag(FLAGS_quiet));
  SetPhase(absl::StrFormat("loading %s", path));
  auto config = qnet::config::LoadNetworkFile(path);
  if (!config.ok()) return Fail(std::string(config.status().message()));
  const uint64_t seed = absl::GetFlag(FLAGS_seed) >= 0 ? static_cast<uint64_t>(absl::GetFlag(FLAGS_seed))
                                                       : config->seed.value_or(1);
  const std::string from = absl::GetFlag(FLAGS_from), to = absl::GetFlag(FLAGS_to);
  if (!absl::GetFlag(FLAGS_sweep).empty()) {
    for (const char* flag : {"traffic", "arrival_rate", "pairs_per_request", "request_timeout_s", "ghz", "shots", "circuit", "coordinator",
                             "teleport"}) {
      if (given_flags.count(flag) > 0) {
        return Fail(absl::StrFormat("--%s does not go with --sweep (a sweep reruns one request per point)", Dashed(flag)));
      }
    }
    EndProgress();  // a sweep prints a line per point as it goes
    return RunSweepFromFlags(*config, path, seed, basis);
  }
  if (!absl::GetFlag(FLAGS_plot).empty()) return Fail("--plot draws a sweep: give --sweep too (see --help)");
  if (!absl::GetFlag(FLAGS_teleport).empty()) {
    if (!absl::GetFlag(FLAGS_ghz).empty() || !absl::GetFlag(FLAGS_circuit).empty()) {
      return Fail("--teleport, --ghz and --circuit are different runs: give one");
    }
    for (const char* flag : {"qkd", "traffic", "pairs", "basis", "link", "coordinator", "jobs", "arrival_rate",
                             "pairs_per_request", "request_timeout_s"}) {
      if (given_flags.count(flag) > 0) return Fail(absl::StrFormat("--%s does not go with --teleport", Dashed(flag)));
    }
    return RunTeleportFromFlags(*config, path, seed, min_fidelity, output);
  }
  if (!absl::GetFlag(FLAGS_ghz).empty()) {
    if (!absl::GetFlag(FLAGS_circuit).empty()) return Fail("--ghz and --circuit are two runs: give one");
    for (const char* flag : {"from", "to", "qkd", "traffic", "pairs", "basis", "link", "jobs", "arrival_rate",
                             "pairs_per_request", "request_timeout_s"}) {
      if (given_flags.count(flag) > 0) return Fail(absl::StrFormat("--%s does not go with --ghz", Dashed(flag)));
    }
    return RunGhzFromFlags(*config, path, seed, min_fidelity, output);
  }
  if (!absl::GetFlag(FLAGS_circuit).empty()) {
    for (const char* flag : {"from", "to", "qkd", "traffic", "pairs", "basis", "link", "jobs", "arrival_rate",
                             "pairs_per_request", "request_timeout_s"}) {
      if (given_flags.count(flag) > 0) return Fail(absl::StrFormat("--%s does not go with --circuit", Dashed(flag)));
    }
    return RunCircuitFromFlags(*config, path, seed, min_fidelity, output);
  }
  if (given_flags.count("coordinator") > 0) return Fail("--coordinator applies only with --circuit");
  if (given_flags.count("shots") > 0) return Fail("--shots applies only with --ghz, --circuit or --teleport");
  if (given_flags.count("jobs") > 0) return Fail("--jobs applies only with --sweep");
  if (absl::GetFlag(FLAGS_traffic) != 0) {
    if (absl::GetFlag(FLAGS_traffic) < 0) return Fail("--traffic must be between 1 and 1000000 requests");
    if (!absl::GetFlag(FLAGS_qkd).empty()) return Fail("--traffic runs entanglement requests; drop --qkd");
    if (from.empty() != to.empty()) return Fail("--from and --to go together (see --help)");
    for (const std::string& n : {from, to}) {
      if (!n.empty() && config->FindNode(n) == nullptr) return Fail(absl::StrFormat("no node '%s' in %s", n, path));
    }
    if (!from.empty() && from == to) return Fail("--from and --to must name different nodes");
    return RunTrafficFromFlags(*config, path, seed, basis, min_fidelity, output);
  }
  for (const char* flag : {"arrival_rate", "pairs_per_request", "request_timeout_s"}) {
    if (given_flags.count(flag) > 0) {
      return Fail(absl::StrFormat("--%s applies only with --traffic N", Dashed(flag)));
    }
  }
  if (from.empty() != to.empty()) return Fail("--from and --to go together (see --help)");
  if (!absl::GetFlag(FLAGS_qkd).empty() && from.empty()) return Fail("--qkd needs --from and --to (see --help)");
  if (!from.empty()) {
    for (const std::string& n : {from, to}) {
      if (config->FindNode(n) == nullptr) return Fail(absl::StrFormat("no node '%s' in %s", n, path));
    }
    if (from == to) return Fail("--from and --to must name different nodes");
    if (IsWeakCoherentProtocol(absl::GetFlag(FLAGS_qkd))) return RunWeakCoherent(*config, path, seed, from, to, output);
    if (!absl::GetFlag(FLAGS_qkd).empty()) return RunQkd(*config, path, seed, from, to, output);
    SetPhase(absl::StrFormat("building %d nodes", config->nodes.size()));
    auto network = qnet::netsim::SimulatedNetwork::Create(*config, seed);
    if (!network.ok()) return Fail(std::string(network.status().message()));
    TeardownReport teardown;
    Watch(**network);
    SetPhase(absl::StrFormat("simulating %d pairs %s - %s (routes converge first)", pairs, from, to));
    qnet::netsim::PathExperiment experiment;
    experiment.origin = from;
    experiment.remote = to;
    experiment.pairs = static_cast<uint32_t>(pairs);
    experiment.basis = basis;
    experiment.min_fidelity = min_fidelity;
    const auto wall_start = std::chrono::steady_clock::now();
    auto result = qnet::netsim::RunPathExperiment(**network, experiment,
                                                  qnet::FromSeconds(absl::GetFlag(FLAGS_time_limit_s)));
    EndProgress();
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    if (!result.ok()) return Fail(absl::StrFormat("%s -> %s: %s", from, to, result.status().message()));
    const auto& s = result->statistics;
    const double sim_s = qnet::ToSeconds(result->simulated_time);
    const double rate = sim_s > 0 ? static_cast<double>(s.pairs) / sim_s : 0.0;
    if (output == "json") {
      auto err = [](const qnet::apps::ErrorRate& e) {
        return absl::StrFormat("{\"pairs\":%d,\"errors\":%d,\"rate\":%.6f,\"stderr\":%.6f}", e.pairs, e.errors,
                               e.rate(), e.standard_error());
      };
      std::vector<std::string> hops;
      for (const auto& n : result->path) hops.push_back(JsonString(n));
      std::string extra;
      if (s.fidelity) extra += absl::StrFormat(",\"fidelity\":{\"value\":%.6f,\"stderr\":%.6f}", s.fidelity->value, s.fidelity->standard_error);
      if (s.chsh) extra += absl::StrFormat(",\"chsh\":{\"value\":%.6f,\"stderr\":%.6f}", s.chsh->value, s.chsh->standard_error);
      std::vector<std::string> memory;
      for (const auto& m : result->memory) {
        memory.push_back(absl::StrFormat(
            "{\"node\":%s,\"qubits\":%d,\"allocated_qubit_seconds\":%.9g,\"utilisation\":%.6f,\"peak_in_use\":%d}",
            JsonString(m.node), m.qubits, m.allocated_qubit_seconds, m.utilisation, m.peak_in_use));
      }
      extra += absl::StrFormat(",\"memory\":[%s]", absl::StrJoin(memory, ","));
      std::fputs(absl::StrFormat("{\"network\":%s,\"seed\":%llu,\"from\":%s,\"to\":%s,\"layer\":%s,\"path\":[%s],\"pairs\":%d,"
                  "\"simulated_seconds\":%.9g,\"pairs_per_second\":%.6g,\"error_rate\":{\"z\":%s,\"x\":%s,\"y\":%s}%s,"
                  "\"fidelity_estimate\":%.6f,\"swaps\":%d,\"discarded\":%d,\"events\":%d,\"wall_seconds\":%.4f}\n",
                  JsonString(config->name), static_cast<unsigned long long>(seed), JsonString(from), JsonString(to),
                  JsonString(result->layer == qnet::netsim::PathExperimentResult::Layer::kLink ? "link" : "network"),
                  absl::StrJoin(hops, ","), s.pairs, sim_s, rate, err(s.z), err(s.x), err(s.y), extra,
                  result->mean_fidelity_estimate, result->swaps, result->discarded, result->events, wall)
                     .c_str(),
                 stdout);
      return 0;
    }
    std::printf("network %s (%s), seed %llu, %d %s MEASURE pairs end to end\n", config->name.c_str(), path.c_str(),
                static_cast<unsigned long long>(seed), pairs, absl::GetFlag(FLAGS_basis).c_str());
    const int hops = static_cast<int>(result->path.size()) - 1;
    std::printf("\n%s -> %s  path %s (%d hop%s)\n", from.c_str(), to.c_str(),
                absl::StrJoin(result->path, " - ").c_str(), hops, hops == 1 ? "" : "s");
    std::printf("  pairs delivered      %llu in %s simulated  ->  %.4g pairs/s\n", static_cast<unsigned long long>(s.pairs),
                qnet::FormatDuration(result->simulated_time).c_str(), rate);
    auto qber = [](const char* name, const qnet::apps::ErrorRate& e) {
      if (e.pairs > 0) {
        std::printf("  error rate %s         %.4f +- %.4f  (%llu pairs measured in %s at both ends)\n", name, e.rate(),
                    e.standard_error(), static_cast<unsigned long long>(e.pairs), name);
      }
    };
    qber("Z", s.z);
    qber("X", s.x);
    qber("Y", s.y);
    if (s.fidelity) {
      std::printf("  fidelity (measured)  %.4f +- %.4f  = 1 - (eZ + eX + eY)/2, from outcomes only\n", s.fidelity->value,
                  s.fidelity->standard_error);
    }
    if (s.chsh) {
      std::printf("  CHSH S (measured)    %.4f +- %.4f  (classical bound 2, quantum bound 2.828)%s\n", s.chsh->value,
                  s.chsh->standard_error,
                  qnet::apps::AboveBoundNote(s.chsh->value, s.chsh->standard_error, qnet::apps::kTsirelsonBound,
                                             "quantum bound")
                      .c_str());
    }
    if (result->layer == qnet::netsim::PathExperimentResult::Layer::kLink) {
      std::printf("  link-layer estimate  %.4f  (neighbours: served by their link layer, as qnetd does)\n",
                  result->mean_fidelity_estimate);
    } else {
      std::printf("  network estimate     %.4f  (links' calibration, swap noise, memory waits)\n",
                  result->mean_fidelity_estimate);
      std::printf("  repeaters            %llu swaps, %llu link pairs discarded (cutoff or below the minimum)\n",
                  static_cast<unsigned long long>(result->swaps), static_cast<unsigned long long>(result->discarded));
    }
    std::vector<std::string> memory;
    for (const auto& m : result->memory) {
      memory.push_back(absl::StrFormat("%s %.0f%% (peak %d/%d)", m.node, 100 * m.utilisation, m.peak_in_use, m.qubits));
    }
    std::printf("  memory utilisation   %s  (allocated qubit-time / (qubits x request time))\n",
                absl::StrJoin(memory, ", ").c_str());
    std::printf("  simulator            %s\n", SimulatorLine(result->events, **network, wall).c_str());
    return 0;
  }
  std::vector<qnet::physical::LinkPhysics> links;
  for (const auto& l : config->links) {
    if (absl::GetFlag(FLAGS_link) == "all" || absl::GetFlag(FLAGS_link) == l.name) links.push_back(l);
  }
  if (links.empty() && config->links.empty()) {
    return Fail(absl::StrFormat("%s has no fibre links to measure pairs on%s", path,
                                config->satellite_links.empty()
                                    ? ""
                                    : " (its satellite links run with --qkd decoy-bb84 --from SATELLITE --to STATION)"));
  }
  if (links.empty()) {
    std::vector<std::string> names;
    for (const auto& l : config->links) names.push_back(l.name);
    return Fail(absl::StrFormat("no link '%s' in %s (links: %s)", absl::GetFlag(FLAGS_link), path,
                                absl::StrJoin(names, ", ")));
  }
  SetPhase(absl::StrFormat("building %d nodes", config->nodes.size()));
  auto network = qnet::netsim::SimulatedNetwork::Create(*config, seed);
  if (!network.ok()) return Fail(std::string(network.status().message()));
  TeardownReport teardown;
  Watch(**network);
  SetPhase(absl::StrFormat("simulating %d pairs on %d link%s", pairs, links.size(), links.size() == 1 ? "" : "s"));
  // Per-link results follow as each link finishes, with the reporter paused.
  if (output == "text") {
    auto paused = PauseProgress();
    std::printf("network %s (%s), seed %llu, %d %s MEASURE pairs per link\n", config->name.c_str(), path.c_str(),
                static_cast<unsigned long long>(seed), pairs, absl::GetFlag(FLAGS_basis).c_str());
  }
  std::vector<std::string> json_links;
  int failures = 0;
  for (const auto& l : links) {
    qnet::netsim::LinkExperiment experiment;
    experiment.origin = l.node_a;
    experiment.remote = l.node_b;
    experiment.pairs = static_cast<uint32_t>(pairs);
    experiment.basis = basis;
    experiment.min_fidelity = min_fidelity;
    const auto wall_start = std::chrono::steady_clock::now();
    auto result = qnet::netsim::RunLinkExperiment(**network, experiment,
                                                  qnet::FromSeconds(absl::GetFlag(FLAGS_time_limit_s)));
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    auto paused = PauseProgress();
    if (!result.ok()) {
      ++failures;
      if (output == "text") {
        std::printf("\n%s: FAILED: %s\n", l.name.c_str(), std::string(result.status().message()).c_str());
      } else {
        json_links.push_back(absl::StrFormat("{\"link\":%s,\"error\":%s}", JsonString(l.name),
                                             JsonString(std::string(result.status().message()))));
      }
      continue;
    }
    const auto& s = result->statistics;
    const double sim_s = qnet::ToSeconds(result->simulated_time);
    const double rate = sim_s > 0 ? static_cast<double>(s.pairs) / sim_s : 0.0;
    if (output == "text") {
      std::printf("\n%s  %.1f km, %s, hardware %s/%s\n", l.name.c_str(), l.length_km,
                  std::string(qnet::physical::SchemeName(l.scheme)).c_str(),
                  config->FindNode(l.node_a)->hardware.preset.c_str(),
                  config->FindNode(l.node_b)->hardware.preset.c_str());
      std::printf("  pairs delivered      %llu in %s simulated  ->  %.4g pairs/s\n",
                  static_cast<unsigned long long>(s.pairs), qnet::FormatDuration(result->simulated_time).c_str(), rate);
      auto qber = [](const char* name, const qnet::apps::ErrorRate& e) {
        if (e.pairs > 0) {
          std::printf("  error rate %s         %.4f +- %.4f  (%llu pairs measured in %s at both ends)\n", name,
                      e.rate(), e.standard_error(), static_cast<unsigned long long>(e.pairs), name);
        }
      };
      qber("Z", s.z);
      qber("X", s.x);
      qber("Y", s.y);
      if (s.fidelity) {
        std::printf("  fidelity (measured)  %.4f +- %.4f  = 1 - (eZ + eX + eY)/2, from outcomes only\n",
                    s.fidelity->value, s.fidelity->standard_error);
      }
      if (s.chsh) {
        std::printf("  CHSH S (measured)    %.4f +- %.4f  (classical bound 2, quantum bound 2.828)%s\n", s.chsh->value,
                    s.chsh->standard_error,
                    qnet::apps::AboveBoundNote(s.chsh->value, s.chsh->standard_error, qnet::apps::kTsirelsonBound,
                                               "quantum bound")
                        .c_str());
      }
      std::printf("  link-layer estimate  %.4f  (the link layer's calibrated fidelity estimate)\n",
                  result->mean_fidelity_estimate);
      std::printf("  simulator            %s\n", SimulatorLine(result->events, **network, wall).c_str());
    } else {
      auto err = [](const qnet::apps::ErrorRate& e) {
        return absl::StrFormat("{\"pairs\":%d,\"errors\":%d,\"rate\":%.6f,\"stderr\":%.6f}", e.pairs, e.errors,
                               e.rate(), e.standard_error());
      };
      std::string extra;
      if (s.fidelity) extra += absl::StrFormat(",\"fidelity\":{\"value\":%.6f,\"stderr\":%.6f}", s.fidelity->value, s.fidelity->standard_error);
      if (s.chsh) extra += absl::StrFormat(",\"chsh\":{\"value\":%.6f,\"stderr\":%.6f}", s.chsh->value, s.chsh->standard_error);
      json_links.push_back(absl::StrFormat(
          "{\"link\":%s,\"length_km\":%.3f,\"scheme\":%s,\"pairs\":%d,\"simulated_seconds\":%.9g,"
          "\"pairs_per_second\":%.6g,\"error_rate\":{\"z\":%s,\"x\":%s,\"y\":%s}%s,"
          "\"fidelity_estimate\":%.6f,\"events\":%d,\"wall_seconds\":%.4f}",
          JsonString(l.name), l.length_km, JsonString(std::string(qnet::physical::SchemeName(l.scheme))), s.pairs,
          sim_s, rate, err(s.z), err(s.x), err(s.y), extra, result->mean_fidelity_estimate, result->events, wall));
    }
  }
  EndProgress();
  if (output == "json") {
    std::printf("{\"network\":%s,\"seed\":%llu,\"links\":[%s]}\n", JsonString(config->name).c_str(),
                static_cast<unsigned long long>(seed), absl::StrJoin(json_links, ",").c_str());
  }
  return failures == 0 ? 0 : 1;
}
