// qnetctl's key distribution commands: qkd, key (fetch one end's copy), and
// eavesdrop (the intercept-resend fault QKD is meant to detect).
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "cli/entangle_client.h"
#include "cli/qnetctl_command.h"
#include "qnet/v1/node_service.grpc.pb.h"

namespace qnet::qnetctl {

absl::StatusOr<v1::EavesdropResponse> EavesdropOnLink(const std::filesystem::path& dir,
                                                      const config::NetworkConfig& network,
                                                      const std::string& link_name, std::optional<double> fraction,
                                                      bool photon_number_splitting) {
  const physical::LinkPhysics* link = network.FindLinkByName(link_name);
  if (link == nullptr) {
    std::vector<std::string> names;
    for (const auto& l : network.links) names.push_back(l.name);
    return absl::NotFoundError(absl::StrCat("no link '", link_name, "' in network ", network.name, " (links: ",
                                            absl::StrJoin(names, ", "), ")"));
  }
  v1::EavesdropRequest request;
  if (fraction) {
    request.set_set(true);
    request.set_fraction(*fraction);
  }
  if (photon_number_splitting) {
    request.set_set(true);
    request.set_fraction(0);
    request.set_photon_number_splitting(true);
  }
  // Both ends: the one that hosts the heralding station applies it; each
  // answers with what it knows of it.
  std::vector<v1::EavesdropResponse> ends;
  for (const auto& [node, neighbour] : {std::pair{link->node_a, link->node_b}, std::pair{link->node_b, link->node_a}}) {
    auto address = NodeAddress(dir, node);
    if (!address.ok()) return address.status();
    auto stub = v1::Node::NewStub(security::ClientChannel(*address));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    request.set_neighbour(neighbour);
    v1::EavesdropResponse response;
    grpc::Status s = stub->Eavesdrop(&context, request, &response);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                          absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code())), ": ",
                                       node, ": ", s.error_message()));
    }
    ends.push_back(std::move(response));
  }
  // PNS acts at each end's source: the end that sent photons is the news.
  if (photon_number_splitting || ends[0].photon_number_splitting()) {
    return ends[1].pulses_sent() > ends[0].pulses_sent() ? ends[1] : ends[0];
  }
  return ends[0].station_here() ? ends[0] : ends[1];
}

namespace {

using qnet::v1::EntangleRequest;

int Eavesdrop(const Args& args, bool json) {
  const std::string link_name = Flag(args, "--link");
  if (link_name.empty()) return Fail("eavesdrop needs --link LINK (see qnetctl links)");
  const std::string mode = Flag(args, "--mode", "intercept-resend");
  if (mode != "intercept-resend" && mode != "pns" && mode != "off") {
    return Fail(absl::StrCat("--mode must be intercept-resend, pns or off, got '", mode, "'"));
  }
  if (mode != "intercept-resend" && !Flag(args, "--fraction").empty()) {
    return Fail(absl::StrCat("--fraction is for --mode intercept-resend; --mode ", mode, " takes none"));
  }
  std::optional<double> fraction;
  if (std::string f = Flag(args, "--fraction"); !f.empty()) {
    double x = 0;
    if (!absl::SimpleAtod(f, &x)) return Fail(absl::StrCat("--fraction must be a number in [0, 1], got '", f, "'"));
    fraction = x;
  }
  if (mode == "off") fraction = 0.0;  // and PNS off with it (the daemon switches her off first)
  auto dir = StateDir(args);
  if (!dir.ok()) return Fail(std::string(dir.status().message()));
  auto network = StateNetwork(*dir);
  if (!network.ok()) return Fail(std::string(network.status().message()));
  absl::StatusOr<qnet::v1::EavesdropResponse> eavesdropper =
      EavesdropOnLink(*dir, *network, link_name, fraction, mode == "pns");
  if (!eavesdropper.ok()) return Fail(std::string(eavesdropper.status().message()));
  const qnet::v1::EavesdropResponse& host = *eavesdropper;
  if (host.photon_number_splitting()) {
    if (json) {
      std::cout << absl::StrFormat(
          "{\"link\":\"%s\",\"mode\":\"pns\",\"sender\":\"%s\",\"pulses_sent\":%d,\"pulses_split\":%d,"
          "\"pulses_blocked\":%d,\"photons_delivered\":%d}\n",
          link_name, host.node(), host.pulses_sent(), host.pulses_split(), host.pulses_blocked(),
          host.photons_delivered());
      return 0;
    }
    std::cout << absl::StrFormat(
        "photon-number-splitting eavesdropper on %s: ON at both ends' sources (laser pulses: she keeps a photon of "
        "each multi-photon pulse, blocks single photons, forwards losslessly)\n",
        link_name);
    std::cout << absl::StrFormat("  from %s so far: %d pulses sent, %d split, %d blocked, %d delivered\n", host.node(),
                                 host.pulses_sent(), host.pulses_split(), host.pulses_blocked(),
                                 host.photons_delivered());
    std::cout << "  BB84 without decoys (--protocol bb84-wcp) will not notice; decoy-bb84 aborts\n";
    return 0;
  }
  if (json) {
    std::cout << absl::StrFormat(
        "{\"link\":\"%s\",\"station\":\"%s\",\"fraction\":%g,\"pairs_seen\":%d,\"pairs_intercepted\":%d}\n",
        link_name, host.node(), host.fraction(), host.pairs_seen(), host.pairs_intercepted());
    return 0;
  }
  std::cout << absl::StrFormat("eavesdropper on %s: %s (fraction %g, in force at %s, which hosts the station)\n",
                               link_name, host.fraction() > 0 ? "ON" : "off", host.fraction(), host.node());
  std::cout << absl::StrFormat("  intercepted %d of %d heralded pairs so far; expect a QBER of about %.3f per basis\n",
                               host.pairs_intercepted(), host.pairs_seen(), host.fraction() / 4);
  return 0;
}

int Qkd(const Args& args, bool json) {
  const std::string node = Flag(args, "--node");
  const std::string with = Flag(args, "--with");
  if (node.empty()) return Fail("qkd needs --node NODE (one end)");
  if (with.empty()) return Fail("qkd needs --with NODE (the other end)");
  qnet::v1::QkdRequest request;
  request.set_peer(with);
  uint32_t bits = 0;
  if (!absl::SimpleAtoi(Flag(args, "--bits"), &bits) || bits == 0) {
    return Fail("qkd needs --bits N (final key bits wanted, a positive number)");
  }
  request.set_bits(bits);
  const std::string protocol = absl::AsciiStrToLower(Flag(args, "--protocol", "bbm92"));
  if (protocol == "bbm92") {
    request.set_protocol(qnet::v1::QkdRequest::BBM92);
  } else if (protocol == "e91") {
    request.set_protocol(qnet::v1::QkdRequest::E91);
  } else if (protocol == "bb84") {
    request.set_protocol(qnet::v1::QkdRequest::BB84);
  } else if (protocol == "relay") {
    request.set_protocol(qnet::v1::QkdRequest::RELAY);
  } else if (protocol == "decoy-bb84") {
    request.set_protocol(qnet::v1::QkdRequest::DECOY_BB84);
  } else if (protocol == "bb84-wcp") {
    request.set_protocol(qnet::v1::QkdRequest::BB84_WCP);
  } else {
    return Fail(absl::StrCat("--protocol must be bbm92, e91, bb84, decoy-bb84, bb84-wcp or relay, got '", protocol,
                             "'"));
  }
  const bool laser = protocol == "decoy-bb84" || protocol == "bb84-wcp";
  for (const char* flag : {"--mu", "--nu", "--intensity-probabilities"}) {
    if (Flag(args, flag).empty()) continue;
    if (!laser || (protocol == "bb84-wcp" && std::string(flag) != "--mu")) {
      return Fail(absl::StrCat(flag, " is for ", std::string(flag) == "--mu" ? "--protocol decoy-bb84 or bb84-wcp"
                                                                             : "--protocol decoy-bb84",
                               " (laser pulses)"));
    }
  }
  if (const std::string text = Flag(args, "--intensity-probabilities"); !text.empty()) {
    const std::vector<std::string> parts = absl::StrSplit(text, ',');
    if (parts.size() != 3) {
      return Fail(absl::StrCat("--intensity-probabilities takes three numbers signal,decoy,vacuum, got '", text, "'"));
    }
    for (const std::string& part : parts) {
      double p = 0;
      if (!absl::SimpleAtod(part, &p)) {
        return Fail(absl::StrCat("--intensity-probabilities: '", part, "' is not a number"));
      }
      request.add_intensity_probabilities(p);
    }
  }
  struct NumberFlag {
    const char* name;
    std::function<void(double)> set;
  };
  for (const NumberFlag& f : std::vector<NumberFlag>{
           {"--pairs-per-block", [&](double v) { request.set_pairs_per_block(static_cast<uint32_t>(v)); }},
           {"--abort-qber", [&](double v) { request.set_abort_qber(v); }},
           {"--min-chsh", [&](double v) { request.set_min_chsh(v); }},
           {"--sample-fraction", [&](double v) { request.set_sample_fraction(v); }},
           {"--max-blocks", [&](double v) { request.set_max_blocks(static_cast<uint32_t>(v)); }},
           {"--mu", [&](double v) { request.set_mu(v); }},
           {"--nu", [&](double v) { request.set_nu(v); }}}) {
    const std::string text = Flag(args, f.name);
    if (text.empty()) continue;
    double v = 0;
    if (!absl::SimpleAtod(text, &v) || v <= 0) return Fail(absl::StrCat(f.name, " must be a positive number, got '", text, "'"));
    f.set(v);
  }
  EntangleRequest limits;
  if (absl::Status s = SetFidelityAndTimeout(args, limits); !s.ok()) return Fail(std::string(s.message()));
  request.set_min_fidelity(limits.min_fidelity());
  request.set_timeout_s(limits.timeout_s());
  const std::string show = Flag(args, "--show-key", "no");
  if (show != "yes" && show != "no") return Fail(absl::StrCat("--show-key must be yes or no, got '", show, "'"));
  request.set_show_key(show == "yes");
  auto address = StateNodeAddress(args, node);
  if (!address.ok()) return Fail(std::string(address.status().message()));

  // Progress on stderr: each stage once; while measuring, the pairs so far
  // (the daemons report every 1%) with an ETA from the rate so far:
  // rewritten in place on a terminal, otherwise a line at most every 1.5 s,
  // so that a log neither stays silent nor floods. --quiet: none.
  const bool terminal = isatty(STDERR_FILENO) != 0;
  const uint64_t block_pairs = request.pairs_per_block() > 0                        ? request.pairs_per_block()
                               : request.protocol() == qnet::v1::QkdRequest::DECOY_BB84 ? 4000000
                                                                                        : 20000;
  std::string last_stage;
  absl::Time last_line = absl::InfinitePast();
  absl::Time measuring_since = absl::Now();
  bool open_line = false;
  auto on_progress = [&](const qnet::v1::QkdProgress& p) {
    if (json || Quiet()) return;
    const absl::Time now = absl::Now();
    if (p.stage() == "measuring" && p.stage() == last_stage) {
      if (!terminal && now - last_line < absl::Milliseconds(1500)) return;
      last_line = now;
      const double wall = absl::ToDoubleSeconds(now - measuring_since);
      const double rate = wall > 0 ? static_cast<double>(p.raw_pairs()) / wall : 0.0;
      const std::string eta =
          rate > 0 && p.raw_pairs() < block_pairs
              ? absl::StrFormat(", %.0f pairs/s, ~%.0f s to go", rate,
                                static_cast<double>(block_pairs - p.raw_pairs()) / rate)
              : "";
      std::cerr << (terminal ? "\r\x1b[K" : "")
                << absl::StrFormat("block %d measuring  %d of %d pairs (%.0f%%%s)", p.block() + 1, p.raw_pairs(),
                                   block_pairs, 100.0 * static_cast<double>(p.raw_pairs()) / block_pairs, eta)
                << (terminal ? "" : "\n");
      open_line = terminal;
      return;
    }
    if (p.stage() == last_stage) return;
    last_stage = p.stage();
    if (p.stage() == "measuring") measuring_since = now;
    last_line = now;
    if (open_line) std::cerr << "\n";
    open_line = false;
    std::cerr << absl::StrFormat("block %d %-10s raw %d, sifted %d, QBER %.4f, reconciled %d, key %d (total %d)\n",
                                 p.block() + 1, p.stage(), p.raw_pairs(), p.sifted_bits(), p.qber(),
                                 p.reconciled_bits(), p.final_key_bits(), p.total_key_bits() + p.final_key_bits());
  };
  auto summary = qnet::cli::RunQkd(*address, request, absl::Hours(24 * 7), on_progress);
  if (open_line) std::cerr << "\n";  // end the rewritten progress line before what follows
  if (!summary.ok()) {
    return Fail(absl::StrCat(absl::StatusCodeToString(summary.status().code()), ": ", summary.status().message()));
  }
  if (json) {
    std::cout << Json(*summary) << "\n";
    return 0;
  }
  const auto& sm = *summary;
  std::cout << absl::StrFormat("%s key %s - %s: %d bits in %d block%s, path %s\n", sm.protocol(), node, with,
                               sm.final_key_bits(), sm.blocks_size(), sm.blocks_size() == 1 ? "" : "s",
                               absl::StrJoin(sm.path(), " - "));
  if (sm.relay_nodes_size() > 0) {
    std::cout << absl::StrFormat("  trusted relays (they know the key): %s\n", absl::StrJoin(sm.relay_nodes(), ", "));
  }
  if (sm.protocol() == "decoy-BB84") {
    // The X basis is all disclosed (the estimate); the key is the Z bits.
    std::cout << absl::StrFormat("  pulses %d, sifted bits %d, QBER X %.4f (all X bits disclosed; key from Z)\n",
                                 sm.raw_pairs(), sm.sifted_bits(), sm.qber_x());
  } else {
    std::cout << absl::StrFormat("  %s %d, sifted bits %d, QBER Z %.4f, X %.4f\n",
                                 sm.protocol().find("BB84") != std::string::npos ? "pulses" : "raw pairs",
                                 sm.raw_pairs(), sm.sifted_bits(), sm.qber_z(), sm.qber_x());
  }
  if (sm.protocol() == "BB84-WCP") {
    std::cout << "  laser pulses analysed as single photons (no decoys): a photon-number-splitting eavesdropper "
                 "could know this key; use --protocol decoy-bb84\n";
  }
  if (sm.protocol() == "E91") std::cout << absl::StrFormat("  CHSH S = %.4f\n", sm.chsh_s());
  std::cout << (sm.error_correction_efficiency() > 0
                    ? absl::StrFormat("  Cascade efficiency f = %.3f (leaked bits / (n h(QBER)))\n",
                                      sm.error_correction_efficiency())
                    : std::string("  Cascade efficiency f: - (no errors to correct)\n"));
  std::cout << absl::StrFormat("  authentication: %d more bits went back to the pre-shared pool (Wegman-Carter MACs)\n",
                               sm.auth_bits_consumed());
  std::cout << absl::StrFormat("  secret key rate %.1f bits per simulated s (%.3f s), %.1f bits per wall s (%.3f s)\n",
                               sm.key_rate_per_simulated_s(), sm.simulated_duration_s(), sm.key_rate_per_wall_s(),
                               sm.wall_duration_s());
  for (const auto& b : sm.blocks()) {
    // f is undefined without errors (no leak to compare with n h(0) = 0): "-", as in the summary.
    const std::string f = b.error_correction_efficiency() > 0 ? absl::StrFormat("%.3f", b.error_correction_efficiency())
                                                              : std::string("-");
    std::string extra;
    if (sm.protocol() == "E91") extra = absl::StrFormat(", S %.3f +- %.3f", b.chsh_s(), b.chsh_s_standard_error());
    if (sm.protocol() == "decoy-BB84") {
      extra = absl::StrFormat(", single-photon Z events >= %.0f, vacuum >= %.0f, phase error <= %.4f",
                              b.decoy_single_photon_events(), b.decoy_vacuum_events(), b.decoy_phase_error_upper());
    }
    std::cout << absl::StrFormat("  key id %s: %d bits (QBER %.4f, f %s%s)\n", b.key_id(), b.final_key_bits(),
                                 b.qber(), f, extra);
  }
  if (!sm.key_hex().empty()) std::cout << "  key (hex): " << sm.key_hex() << "\n";
  std::cout << LagWarning(sm.lag());
  return 0;
}

int Key(const Args& args, bool json) {
  const std::string node = Flag(args, "--node");
  const std::string id = Flag(args, "--id");
  if (node.empty()) return Fail("key needs --node NODE");
  if (id.empty()) return Fail("key needs --id KEY_ID (from qnetctl qkd)");
  auto address = StateNodeAddress(args, node);
  if (!address.ok()) return Fail(std::string(address.status().message()));
  auto fetched = qnet::cli::FetchKey(*address, id);
  if (!fetched.ok()) {
    return Fail(absl::StrCat(absl::StatusCodeToString(fetched.status().code()), ": ", fetched.status().message()));
  }
  const qnet::v1::GetKeyResponse& key = *fetched;
  if (json) {
    std::cout << Json(key) << "\n";
    return 0;
  }
  std::cout << absl::StrFormat("%s at %s: %d bits shared with %s (%s)\n%s\n", key.key_id(), node, key.bits(),
                               key.peer(), key.protocol(), key.key_hex());
  return 0;
}

}  // namespace

std::vector<Command> QkdCommands() {
  return {
      {"eavesdrop",
       {"--link", "--fraction", "--mode"},
       R"(Usage: qnetctl eavesdrop --link LINK [--fraction X] [--mode intercept-resend|pns|off]

A fault for experiments: an intercept-resend eavesdropper on LINK (a name
from `qnetctl links`, e.g. alice-bob) who measures a fraction X of the
heralded pairs' photons in a random basis (Z or X) and resends what she
found. Entanglement-based QKD over the link then sees a QBER of about X/4 per
basis, and a CHSH value falling towards sqrt(2) at X = 1. Sets X at both
ends' daemons (the link's first node hosts the heralding station, where it is
in force) and prints how many pairs she has intercepted. Without --fraction,
only reports. Off (0) unless the network file says otherwise.

--mode pns: the photon-number-splitting attack on the laser pulses of BB84
(--protocol bb84-wcp or decoy-bb84 in qnetctl qkd), at both ends' sources.
She counts each pulse's photons, blocks the single photons, keeps one photon
of every multi-photon pulse (she learns its bit once the bases are public)
and forwards another over a lossless line, as often as keeps Bob's click
rate what the fibre would give. BB84 without decoys then ends with a key she
knows; decoy-state BB84 sees the decoy and vacuum gains collapse and aborts.
Prints the pulses she split, blocked and let through so far.
--mode off switches every eavesdropper on LINK off.

  --link LINK       the link (required)
  --fraction X      intercept-resend: in [0, 1]; 0 switches her off
  --mode M          intercept-resend (default), pns or off
)",
       Eavesdrop},
      {"qkd",
       {"--with", "--bits", "--protocol", "--pairs-per-block", "--min-fidelity", "--timeout", "--abort-qber",
        "--min-chsh", "--max-blocks", "--sample-fraction", "--show-key", "--mu", "--nu",
        "--intensity-probabilities"},
       R"(Usage: qnetctl --node NODE qkd --with NODE --bits N
         [--protocol bbm92|e91|bb84|decoy-bb84|bb84-wcp|relay] [--mu M] [--nu N]
         [--intensity-probabilities PS,PD,PV]
         [--pairs-per-block P] [--abort-qber Q] [--min-chsh S] [--min-fidelity F]
         [--timeout DURATION] [--max-blocks B] [--sample-fraction X] [--show-key yes]

Quantum key distribution between NODE and --with until at least N final key
bits are shared. Each block measures P raw pairs and runs the full classical
post-processing over the network's classical channel: sifting, parameter
estimation on a random sample (abort above the QBER threshold), Cascade
error correction, verification with a universal hash, and Toeplitz privacy
amplification to the finite-key length (Tomamichel et al. 2012 with Serfling
bounds). Streams progress, then prints the QBER per basis, the Cascade
efficiency f, the final key length, the secret key rate per simulated and per
wall second, and the key ids (fetch each end's copy with `qnetctl key`).

  --with NODE           the other end (required)
  --bits N              final key bits wanted, 1..10^7 (required)
  --protocol P          bbm92 (default): end-to-end entangled pairs, Z/X at
                        random at each end; e91: the same plus CHSH test
                        pairs (S reported, abort below --min-chsh); bb84:
                        prepare-and-measure single photons (a neighbour);
                        relay: trusted nodes - BBM92 on each link of the path,
                        keys joined by XOR at the relays (each learns the key);
                        decoy-bb84: an attenuated laser with signal, decoy and
                        vacuum intensities (a neighbour), the X basis all
                        disclosed, the key from the Z bits at the finite-key
                        length of Lim et al. 2014 (eps_sec 1e-9, eps_cor
                        1e-15); bb84-wcp: the same laser at one intensity,
                        analysed as single photons (open to --mode pns of
                        qnetctl eavesdrop: shown, not recommended)
  --mu M                decoy-bb84, bb84-wcp: signal mean photon number
                        (default 0.5)
  --nu N                decoy-bb84: decoy mean photon number (default 0.1)
  --intensity-probabilities PS,PD,PV
                        decoy-bb84: how often the source sends signal, decoy
                        and vacuum (default 0.8,0.1,0.1)
  --pairs-per-block P   raw pairs (BB84: pulses, up to 10^7) per block (default
                        20000; decoy-bb84 4000000: the decoy bounds need
                        millions; larger blocks give a larger key fraction)
  --abort-qber Q        abort threshold (default 0.11)
  --sample-fraction X   share of the sifted bits disclosed to estimate the
                        QBER, in (0, 1) (default 0.1; short blocks need more)
  --min-chsh S          E91 abort threshold (default 2)
  --min-fidelity F      of each pair, in [0, 1] (default 0)
  --timeout DURATION    simulated time per block (default 600s)
  --max-blocks B        give up after B blocks (default 100)
  --show-key yes        print the key (hex); otherwise only its id
)",
       Qkd},
      {"key",
       {"--id"},
       R"(Usage: qnetctl --node NODE key --id KEY_ID

Prints the key NODE holds under KEY_ID (from `qnetctl qkd`; both ends hold
the same bits under the same id): its peer, protocol, length and bits (hex).
)",
       Key},
  };
}

}  // namespace qnet::qnetctl
