// The network file: one YAML document naming a network's nodes (each with a
// hardware preset and optional per-value overrides) and its fibre links (each
// with a length, a heralding scheme and optional optics overrides). Every
// runtime (simulator, daemons, CLI) starts from the NetworkConfig parsed here.
// A mistake in the file is reported as "file:line:column: what is wrong"
// together with what would be accepted. Every number has a physical range
// (non-finite values are refused, except .inf for T1/T2), and a file holds at
// most kMaxNodes nodes and kMaxLinks links in kMaxFileBytes: a typo or a
// hostile file is refused before it can stall a runtime. Loading is linear in
// the file's size (names are looked up through hash indexes).
//
//   network: chain3
//   seed: 42                 # optional
//   nodes:
//     - name: alice
//       hardware: nv         # physical/presets.h
//       t2_s: 1.0            # optional overrides, unit in the key
//   links:
//     - between: [alice, bob]
//       length_km: 10
//       scheme: single-click # optional; default from node alice's preset
//       eavesdropper_fraction: 0.2  # optional fault: intercept-resend on this
//                            # share of pairs, on alice's side (default 0)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "physical/params.h"
#include "physical/satellite_channel.h"

namespace qnet::config {

// Limits on what a network file may ask of a runtime (README, "The network
// file"). 10^5 nodes load in well under a second; the state engine, the
// routing table and the daemons' ports run out long before that anyway.
inline constexpr size_t kMaxNodes = 100'000;
inline constexpr size_t kMaxLinks = 400'000;         // a square grid of kMaxNodes has ~2 per node
inline constexpr size_t kMaxFileBytes = 64u << 20;   // a 10^5-node chain file is ~8 MB
inline constexpr double kMaxLengthKm = 1e5;          // 2.5 times round the Earth

struct NodeConfig {
  std::string name;
  uint32_t index = 0;               // position in the file's node list
  physical::NodeHardware hardware;  // the preset's values with the file's overrides
};

// Key management (issue 15): the applications (ETSI GS QKD 014 SAEs) and
// the pools of key the nodes' key managers keep for them.
//
//   key_management:
//     saes:
//       - name: sae-a            # the SAE_ID; unique in the network
//         node: alice            # the node whose KME it talks to
//     pools:
//       - between: [alice, bob]  # alice fills it: keys for alice's SAEs (masters)
//                                # and bob's (slaves); [bob, alice] is the other way
//         low_watermark_bits: 4096     # refill below this (default 4096)
//         high_watermark_bits: 32768   # up to this (default 8 x low)
//         pairs_per_block: 20000       # pairs per QKD session (default 20000)
//         protocol: bbm92              # bbm92 | e91 | bb84 | relay
//         sample_fraction: 0.1         # of sifted bits spent on the QBER estimate
struct SaeConfig {
  std::string name;
  std::string node;
};
inline constexpr uint64_t kDefaultLowWatermarkBits = 4096;
inline constexpr uint64_t kMaxWatermarkBits = 1ull << 30;  // 128 MiB of key per pool
inline constexpr uint32_t kDefaultPoolPairsPerBlock = 20000;
inline constexpr uint32_t kMaxPoolPairsPerBlock = 1000000;
struct KeyPoolConfig {
  // As in `between`: node_a's KME runs the QKD sessions and serves its SAEs'
  // enc_keys; node_b's serves its SAEs' dec_keys for those keys.
  std::string node_a, node_b;
  uint64_t low_watermark_bits = kDefaultLowWatermarkBits;
  uint64_t high_watermark_bits = 8 * kDefaultLowWatermarkBits;
  uint32_t pairs_per_block = kDefaultPoolPairsPerBlock;
  std::string protocol = "bbm92";
  double sample_fraction = 0.1;  // post-processing's parameter estimation, in (0, 0.9]
};
struct KeyManagementConfig {
  std::vector<SaeConfig> saes;
  std::vector<KeyPoolConfig> pools;

  const SaeConfig* FindSae(std::string_view name) const;
  // The pool node `from` fills for SAE pairs with masters at `from` and
  // slaves at `to` (between: [from, to]); nullptr if none.
  const KeyPoolConfig* FindPool(std::string_view from, std::string_view to) const;
};

struct NetworkConfig {
  std::string name;
  std::optional<uint64_t> seed;  // the file's default seed, if it gives one
  std::string source;            // the file it came from, for messages
  std::vector<NodeConfig> nodes;
  // In file order. name is "a-b", node_a/node_b as in `between`; optics
  // default to node_a's preset, then the file's overrides.
  std::vector<physical::LinkPhysics> links;
  KeyManagementConfig key_management;  // empty when the file has none
  // Prepare-and-measure satellite downlinks (`satellite_links:`), in file
  // order. Not part of `links`: only weak-coherent BB84 runs over them
  // (qnetsim --qkd decoy-bb84); the entanglement stack and the daemons model
  // fibre and do not see them.
  std::vector<physical::SatelliteLink> satellite_links;
  // The satellite link between a satellite and a ground station, either
  // order; nullptr if none.
  const physical::SatelliteLink* FindSatelliteLink(std::string_view a, std::string_view b) const;

  // nullptr if absent. Constant time: the parser builds the indexes below.
  const NodeConfig* FindNode(std::string_view name) const;
  // The link between two nodes, in either order.
  const physical::LinkPhysics* FindLink(std::string_view a, std::string_view b) const;
  const physical::LinkPhysics* FindLinkByName(std::string_view name) const;
  // Neighbours of `node` in link order (empty for an unknown node).
  std::vector<std::string> Neighbours(std::string_view node) const;

  // Rebuilds the indexes from `nodes` and `links`; only code that edits
  // those vectors after parsing needs it.
  void Reindex();

  // Indexes into `nodes` and `links`, kept by the parser.
  absl::flat_hash_map<std::string, size_t> node_index;
  absl::flat_hash_map<std::string, size_t> link_index;       // by link name
  absl::flat_hash_map<std::string, size_t> node_pair_index;  // "a\nb", names sorted
  absl::flat_hash_map<std::string, std::vector<size_t>> links_of_node;  // in link order
};

// InvalidArgument with "source_name:line:column: problem" for any mistake:
// malformed YAML, unknown or duplicate key, wrong type, value out of its
// range (the message gives the range), unknown preset, duplicate node, link
// to an unknown node, self-link, duplicate link, missing required key, more
// than kMaxNodes nodes, kMaxLinks links or kMaxFileBytes bytes.
absl::StatusOr<NetworkConfig> ParseNetworkConfig(std::string_view text, std::string_view source_name);
// As ParseNetworkConfig; NotFound if the file cannot be read.
absl::StatusOr<NetworkConfig> LoadNetworkFile(const std::string& path);

// Levenshtein distance: the "did you mean" behind the file's unknown-key
// errors and qnetctl's unknown-option errors.
size_t EditDistance(std::string_view a, std::string_view b);

}  // namespace qnet::config
