#include "config/network_config.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "core/status.h"
#include "physical/heralding_model.h"
#include "physical/presets.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/yaml.h"

namespace qnet::config {
namespace {

using physical::HeraldingScheme;
using physical::LinkPhysics;
using physical::NodeHardware;

// Debian's Abseil has its own string_view type, distinct from std's.
absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

constexpr std::string_view kTopKeys[] = {"network", "seed", "nodes", "links", "key_management", "satellite_links"};
constexpr std::string_view kSatelliteLinkKeys[] = {
    "between",           "preset",           "altitude_km",          "beam_divergence_urad", "receiver_aperture_m",
    "pointing_error_urad", "zenith_transmission", "optics_efficiency", "background_counts_per_gate",
    "min_elevation_deg", "max_elevation_deg", "source_rate_hz",       "detector_efficiency", "dark_count_rate_hz",
    "detection_window_ns", "visibility"};
constexpr size_t kMaxSatelliteLinks = 1000;
constexpr std::string_view kKeyManagementKeys[] = {"saes", "pools"};
constexpr std::string_view kSaeKeys[] = {"name", "node"};
constexpr std::string_view kPoolKeys[] = {"between", "low_watermark_bits", "high_watermark_bits", "pairs_per_block",
                                          "protocol", "sample_fraction"};
constexpr std::string_view kPoolProtocols[] = {"bbm92", "e91", "bb84", "relay"};
constexpr std::string_view kNodeKeys[] = {
    "name",          "hardware",          "qubits", "t1_s", "t2_s", "emission_efficiency", "single_qubit_gate_error",
    "two_qubit_gate_error", "readout_error_0", "readout_error_1", "single_qubit_gate_time_us",
    "two_qubit_gate_time_us", "measurement_time_us", "emission_cycle_time_us", "depolarising_time_s",
    "attempt_dephasing_n"};
constexpr std::string_view kLinkKeys[] = {"between",           "length_km",          "scheme",
                                          "station_fraction",  "attenuation_db_per_km", "detector_efficiency",
                                          "dark_count_rate_hz", "detection_window_ns", "visibility",
                                          "eavesdropper_fraction", "werner_fidelity",
                                          "success_probability", "attempt_duration_us"};
// Keys of the abstract Werner link only (scheme: werner).
constexpr std::string_view kWernerLinkKeys[] = {"werner_fidelity", "success_probability", "attempt_duration_us"};
constexpr int kMaxQubits = 1000;  // a typo guard: the state engine could not hold more anyway

// The physical range of each number of the file. The bounds are generous
// (no real device or fibre comes near them) but finite, so that a typo or a
// hostile file (length_km: 1e300) is refused instead of making a link that
// never heralds or a timer that overflows.
struct Range {
  double lo;
  double hi;
  const char* unit;
};
constexpr Range kLength{0, kMaxLengthKm, "km"};
constexpr Range kAttenuation{0, 100, "dB/km"};         // telecom fibre ~0.2, visible light ~5
constexpr Range kDarkCountRate{0, 1e9, "Hz"};          // a detector clicking at 1 GHz is blind
constexpr Range kDetectionWindow{0, 1e9, "ns"};        // 1 s
constexpr Range kSampleFraction{0, 0.9, "of the sifted bits"};
constexpr Range kDecayTime{1e-9, 1e9, "s"};            // 1 ns .. 30 years; .inf for none
constexpr Range kAttemptCount{1, 1e12, "attempts"};    // attempt_dephasing_n; .inf for none
constexpr std::string_view kNeverDecays = "a qubit that never decays";
constexpr std::string_view kNeverDephased = "a memory that attempts do not dephase";
constexpr Range kOperationTime{0, 1e6, "us"};          // gates, readout, emission cycle: <= 1 s
constexpr Range kAttemptDuration{0, 1e7, "us"};        // an abstract link's attempt: <= 10 s
constexpr Range kAltitude{100, 40000, "km"};           // low Earth orbit .. beyond geostationary
constexpr Range kDivergence{0.1, 10000, "urad"};
constexpr Range kAperture{0.001, 100, "m"};
constexpr Range kPointing{0, 10000, "urad"};
constexpr Range kElevation{0, 90, "degrees"};
constexpr Range kSourceRate{1, 1e10, "Hz"};          // 10 GHz: beyond current QKD sources
// Names shown when a link names an unknown node (the file may hold 10^5).
constexpr size_t kNamesInMessages = 20;

std::string JoinKeys(absl::Span<const std::string_view> keys) {
  std::vector<std::string> v(keys.begin(), keys.end());
  return absl::StrJoin(v, ", ");
}

// Names end up in link names ("a-b"), log lines and command lines.
bool IsValidName(std::string_view s) {
  if (s.empty() || !absl::ascii_isalnum(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

// YAML 1.2 core-schema floats (".inf", "-.inf", ".nan") and ordinary numbers.
std::optional<double> ParseFloat(const std::string& text) {
  const std::string t = absl::AsciiStrToLower(Av(text));
  if (t == ".inf" || t == "+.inf") return std::numeric_limits<double>::infinity();
  if (t == "-.inf") return -std::numeric_limits<double>::infinity();
  if (t == ".nan") return std::numeric_limits<double>::quiet_NaN();
  double v;
  if (!absl::SimpleAtod(Av(text), &v)) return std::nullopt;
  return v;
}

std::string Kind(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      return absl::StrCat("'", n.Scalar(), "'");
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

// One "key: value" of a mapping, in file order.
struct Entry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

// Sees a YAML stream's parse events only to note where a second document
// starts: its first node (as Node::Mark() gives it), else its "---".
class DocumentCounter final : public YAML::EventHandler {
 public:
  const YAML::Mark& second() const { return second_; }
  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents_ == 2) second_ = mark;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { Node(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Node(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t, const std::string&) override {
    Node(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Node(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    Node(mark);
  }
  void OnMapEnd() override {}

 private:
  void Node(const YAML::Mark& mark) {
    if (documents_ == 2 && !second_has_node_) {
      second_ = mark;
      second_has_node_ = true;
    }
  }
  int documents_ = 0;
  bool second_has_node_ = false;
  YAML::Mark second_;
};

class FileReader {
 public:
  explicit FileReader(std::string_view source) : source_(source) {}

  absl::StatusOr<NetworkConfig> Read(std::string_view text);

 private:
  absl::Status Error(const YAML::Mark& mark, absl::string_view message) const {
    if (mark.is_null()) return absl::InvalidArgumentError(absl::StrCat(source_, ": ", message));
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ":", mark.line + 1, ":", mark.column + 1, ": ", message));
  }
  absl::Status Error(const YAML::Node& at, absl::string_view message) const { return Error(at.Mark(), message); }

  // The entries of a mapping; rejects non-mappings and duplicate keys.
  absl::StatusOr<std::vector<Entry>> Entries(const YAML::Node& map, const YAML::Mark& fallback,
                                             std::string_view what, absl::Span<const std::string_view> keys) const;
  absl::Status CheckKeys(const std::vector<Entry>& entries, std::string_view what,
                         absl::Span<const std::string_view> allowed) const;
  static const Entry* Find(const std::vector<Entry>& entries, std::string_view key) {
    for (const Entry& e : entries) {
      if (e.key == key) return &e;
    }
    return nullptr;
  }
  absl::StatusOr<const Entry*> Require(const std::vector<Entry>& entries, const YAML::Node& map,
                                       std::string_view what, std::string_view key, std::string_view hint) const;

  absl::StatusOr<std::string> String(const Entry& e, std::string_view what) const;
  absl::StatusOr<std::string> Name(const Entry& e, std::string_view what) const;
  absl::StatusOr<double> Number(const Entry& e, std::string_view what) const;
  absl::StatusOr<int64_t> Integer(const Entry& e, std::string_view what) const;
  // Range-checked readers; the message quotes the value as written.
  absl::StatusOr<double> UnitInterval(const Entry& e, std::string_view what) const;
  // A finite number in [lo, hi]; `unit` follows the range in the message.
  absl::StatusOr<double> InRange(const Entry& e, std::string_view what, const Range& range) const;
  // A number in `range`, or .inf for none (`none` says what .inf means):
  // decay times (kDecayTime) and attempt counts (kAttemptCount).
  absl::StatusOr<double> InRangeOrInfinite(const Entry& e, std::string_view what, const Range& range,
                                           std::string_view none) const;
  absl::StatusOr<Duration> DurationIn(const Entry& e, std::string_view what, const Range& range,
                                      double ns_per_unit) const;

  absl::Status ReadNode(const YAML::Node& item, const YAML::Mark& list_mark, size_t position, NetworkConfig& out);
  absl::Status ReadLink(const YAML::Node& item, const YAML::Mark& list_mark, size_t position, NetworkConfig& out);
  absl::Status ReadKeyManagement(const Entry& section, NetworkConfig& out);
  absl::Status ReadSatelliteLink(const YAML::Node& item, const YAML::Mark& list_mark, size_t position,
                                 NetworkConfig& out);
  // A node name that must be in the file's node list.
  absl::StatusOr<std::string> KnownNode(const YAML::Node& value, std::string_view what, const NetworkConfig& out) const;

  std::string source_;
  absl::flat_hash_map<std::string, int> node_line_;  // name -> line, for duplicate messages
  absl::flat_hash_map<std::string, int> pair_line_;  // "a\nb" (sorted) -> line
};

absl::StatusOr<std::vector<Entry>> FileReader::Entries(const YAML::Node& map, const YAML::Mark& fallback,
                                                       std::string_view what,
                                                       absl::Span<const std::string_view> keys) const {
  if (!map.IsMap()) {
    const YAML::Mark mark = map.Mark().is_null() ? fallback : map.Mark();
    return Error(mark, absl::StrCat(Av(what), " must be a mapping (keys: ", JoinKeys(keys), "), got ", Kind(map)));
  }
  std::vector<Entry> entries;
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (!it->first.IsScalar()) {
      return Error(it->first, absl::StrCat(Av(what), ": keys must be plain words, got ", Kind(it->first)));
    }
    Entry e{it->first.Scalar(), it->first, it->second};
    if (const Entry* first = Find(entries, e.key)) {
      return Error(e.key_node, absl::StrCat(Av(what), ": duplicate key '", e.key, "' (first given on line ",
                                            first->key_node.Mark().line + 1, ")"));
    }
    entries.push_back(std::move(e));
  }
  return entries;
}

absl::Status FileReader::CheckKeys(const std::vector<Entry>& entries, std::string_view what,
                                   absl::Span<const std::string_view> allowed) const {
  for (const Entry& e : entries) {
    if (std::find(allowed.begin(), allowed.end(), e.key) != allowed.end()) continue;
    std::string suggestion;
    size_t best = 3;  // only suggest near misses
    for (std::string_view k : allowed) {
      const size_t d = EditDistance(e.key, k);
      if (d < best) {
        best = d;
        suggestion = absl::StrCat(" (did you mean '", Av(k), "'?)");
      }
    }
    return Error(e.key_node, absl::StrCat(Av(what), ": unknown key '", e.key, "'", suggestion,
                                          "; allowed keys: ", JoinKeys(allowed)));
  }
  return absl::OkStatus();
}

absl::StatusOr<const Entry*> FileReader::Require(const std::vector<Entry>& entries, const YAML::Node& map,
                                                 std::string_view what, std::string_view key,
                                                 std::string_view hint) const {
  if (const Entry* e = Find(entries, key)) return e;
  return Error(map, absl::StrCat(Av(what), ": missing required key '", Av(key), "'", Av(hint)));
}

absl::StatusOr<std::string> FileReader::String(const Entry& e, std::string_view what) const {
  if (!e.value.IsScalar()) {
    return Error(e.value.IsNull() ? e.key_node : e.value,
                 absl::StrCat(Av(what), ": ", e.key, " must be a string, got ", Kind(e.value)));
  }
  return e.value.Scalar();
}

absl::StatusOr<std::string> FileReader::Name(const Entry& e, std::string_view what) const {
  QNET_ASSIGN_OR_RETURN(std::string s, String(e, what));
  if (!IsValidName(s)) {
    return Error(e.value, absl::StrCat(Av(what), ": ", e.key, " '", s,
                                       "' is not a valid name (letters, digits, '_', '-', '.'; starting with a "
                                       "letter or digit)"));
  }
  return s;
}

absl::StatusOr<double> FileReader::Number(const Entry& e, std::string_view what) const {
  std::optional<double> v;
  if (e.value.IsScalar()) v = ParseFloat(e.value.Scalar());
  if (!v) {
    return Error(e.value.IsNull() ? e.key_node : e.value,
                 absl::StrCat(Av(what), ": ", e.key, " must be a number, got ", Kind(e.value)));
  }
  if (std::isnan(*v)) return Error(e.value, absl::StrCat(Av(what), ": ", e.key, " must be a number, got NaN"));
  return *v;
}

absl::StatusOr<int64_t> FileReader::Integer(const Entry& e, std::string_view what) const {
  int64_t v;
  if (!e.value.IsScalar() || !absl::SimpleAtoi(Av(e.value.Scalar()), &v)) {
    return Error(e.value.IsNull() ? e.key_node : e.value,
                 absl::StrCat(Av(what), ": ", e.key, " must be an integer, got ", Kind(e.value)));
  }
  return v;
}

absl::StatusOr<double> FileReader::UnitInterval(const Entry& e, std::string_view what) const {
  QNET_ASSIGN_OR_RETURN(double v, Number(e, what));
  if (!(v >= 0.0 && v <= 1.0)) {
    return Error(e.value, absl::StrCat(Av(what), ": ", e.key, " = ", e.value.Scalar(), " is outside [0, 1]"));
  }
  return v;
}

absl::StatusOr<double> FileReader::InRange(const Entry& e, std::string_view what, const Range& range) const {
  QNET_ASSIGN_OR_RETURN(double v, Number(e, what));
  if (!(v >= range.lo && v <= range.hi)) {  // also refuses +-inf (NaN is refused by Number)
    return Error(e.value, absl::StrCat(Av(what), ": ", e.key, " = ", e.value.Scalar(), " is outside [", range.lo,
                                       ", ", range.hi, "] ", range.unit));
  }
  return v;
}

absl::StatusOr<double> FileReader::InRangeOrInfinite(const Entry& e, std::string_view what, const Range& range,
                                                     std::string_view none) const {
  QNET_ASSIGN_OR_RETURN(double v, Number(e, what));
  if (v == std::numeric_limits<double>::infinity()) return v;
  if (!(v >= range.lo && v <= range.hi)) {
    return Error(e.value, absl::StrCat(Av(what), ": ", e.key, " = ", e.value.Scalar(), " is outside [", range.lo,
                                       ", ", range.hi, "] ", range.unit, " (.inf for ", std::string(none), ")"));
  }
  return v;
}

absl::StatusOr<Duration> FileReader::DurationIn(const Entry& e, std::string_view what, const Range& range,
                                                double ns_per_unit) const {
  QNET_ASSIGN_OR_RETURN(double v, InRange(e, what, range));
  return Duration(std::llround(v * ns_per_unit));
}

absl::Status FileReader::ReadNode(const YAML::Node& item, const YAML::Mark& list_mark, size_t position,
                                  NetworkConfig& out) {
  const std::string list_what = absl::StrCat("node #", position + 1);
  QNET_ASSIGN_OR_RETURN(std::vector<Entry> entries, Entries(item, list_mark, list_what, kNodeKeys));
  QNET_ASSIGN_OR_RETURN(const Entry* name_entry, Require(entries, item, list_what, "name", ""));
  QNET_ASSIGN_OR_RETURN(std::string name, Name(*name_entry, list_what));
  const std::string what = absl::StrCat("node '", name, "'");
  QNET_RETURN_IF_ERROR(CheckKeys(entries, what, kNodeKeys));
  if (auto [it, inserted] = node_line_.emplace(name, name_entry->value.Mark().line + 1); !inserted) {
    return Error(name_entry->value,
                 absl::StrCat("duplicate node name '", name, "' (first defined on line ", it->second, ")"));
  }

  const std::string preset_hint =
      absl::StrCat(" (a hardware preset: ", absl::StrJoin(physical::PresetNames(), ", "), ")");
  QNET_ASSIGN_OR_RETURN(const Entry* hw_entry, Require(entries, item, what, "hardware", preset_hint));
  QNET_ASSIGN_OR_RETURN(std::string preset_name, String(*hw_entry, what));
  absl::StatusOr<physical::HardwarePreset> preset = physical::FindPreset(preset_name);
  if (!preset.ok()) {
    return Error(hw_entry->value, absl::StrCat(what, ": unknown hardware preset '", preset_name,
                                               "'; known presets: ", absl::StrJoin(physical::PresetNames(), ", ")));
  }

  NodeConfig node{name, static_cast<uint32_t>(out.nodes.size()), preset->node};
  NodeHardware& hw = node.hardware;
  hw.preset = preset->name;
  const Entry* t1_entry = nullptr;
  const Entry* t2_entry = nullptr;
  for (const Entry& e : entries) {
    const std::string& k = e.key;
    if (k == "name" || k == "hardware") continue;
    if (k == "qubits") {
      QNET_ASSIGN_OR_RETURN(int64_t q, Integer(e, what));
      if (q < 1 || q > kMaxQubits) {
        return Error(e.value, absl::StrCat(what, ": qubits = ", q, " is outside [1, ", kMaxQubits, "]"));
      }
      hw.num_qubits = static_cast<int>(q);
    } else if (k == "t1_s") {
      QNET_ASSIGN_OR_RETURN(hw.t1_s, InRangeOrInfinite(e, what, kDecayTime, kNeverDecays));
      t1_entry = &e;
    } else if (k == "t2_s") {
      QNET_ASSIGN_OR_RETURN(hw.t2_s, InRangeOrInfinite(e, what, kDecayTime, kNeverDecays));
      t2_entry = &e;
    } else if (k == "emission_efficiency") {
      QNET_ASSIGN_OR_RETURN(hw.emission_efficiency, UnitInterval(e, what));
    } else if (k == "single_qubit_gate_error") {
      QNET_ASSIGN_OR_RETURN(hw.single_qubit_gate_error, UnitInterval(e, what));
    } else if (k == "two_qubit_gate_error") {
      QNET_ASSIGN_OR_RETURN(hw.two_qubit_gate_error, UnitInterval(e, what));
    } else if (k == "readout_error_0") {
      QNET_ASSIGN_OR_RETURN(hw.readout_error_0, UnitInterval(e, what));
    } else if (k == "readout_error_1") {
      QNET_ASSIGN_OR_RETURN(hw.readout_error_1, UnitInterval(e, what));
    } else if (k == "single_qubit_gate_time_us") {
      QNET_ASSIGN_OR_RETURN(hw.single_qubit_gate_time, DurationIn(e, what, kOperationTime, 1e3));
    } else if (k == "two_qubit_gate_time_us") {
      QNET_ASSIGN_OR_RETURN(hw.two_qubit_gate_time, DurationIn(e, what, kOperationTime, 1e3));
    } else if (k == "measurement_time_us") {
      QNET_ASSIGN_OR_RETURN(hw.measurement_time, DurationIn(e, what, kOperationTime, 1e3));
    } else if (k == "emission_cycle_time_us") {
      QNET_ASSIGN_OR_RETURN(hw.emission_cycle_time, DurationIn(e, what, kOperationTime, 1e3));
    } else if (k == "depolarising_time_s") {
      QNET_ASSIGN_OR_RETURN(hw.depolarising_time_s, InRangeOrInfinite(e, what, kDecayTime, kNeverDecays));
    } else if (k == "attempt_dephasing_n") {
      QNET_ASSIGN_OR_RETURN(hw.attempt_dephasing_n, InRangeOrInfinite(e, what, kAttemptCount, kNeverDephased));
    }
  }
  // Relaxation alone dephases at 1/(2 T1), so T2 <= 2 T1 for any real qubit.
  if (hw.t2_s > 2.0 * hw.t1_s) {
    const Entry* at = t2_entry != nullptr ? t2_entry : t1_entry;
    return Error(at != nullptr ? at->value : item,
                 absl::StrCat(what, ": t2_s = ", hw.t2_s, " exceeds 2 * t1_s = ", 2.0 * hw.t1_s,
                              " (values not given here come from preset '", hw.preset,
                              "'); no physical qubit dephases that slowly"));
  }
  // Backstop: whatever the physical layer would reject must fail here, at the node.
  if (absl::Status s = physical::ValidateNodeHardware(hw, what); !s.ok()) return Error(item, s.message());
  out.node_index.emplace(node.name, out.nodes.size());
  out.nodes.push_back(std::move(node));
  return absl::OkStatus();
}

absl::Status FileReader::ReadLink(const YAML::Node& item, const YAML::Mark& list_mark, size_t position,
                                  NetworkConfig& out) {
  std::string what = absl::StrCat("link #", position + 1);
  QNET_ASSIGN_OR_RETURN(std::vector<Entry> entries, Entries(item, list_mark, what, kLinkKeys));
  QNET_RETURN_IF_ERROR(CheckKeys(entries, what, kLinkKeys));
  QNET_ASSIGN_OR_RETURN(const Entry* between, Require(entries, item, what, "between", " (two node names)"));
  if (!between->value.IsSequence() || between->value.size() != 2) {
    return Error(between->value.IsNull() ? between->key_node : between->value,
                 absl::StrCat(what, ": between must be a list of two node names, e.g. [alice, bob]; got ",
                              between->value.IsSequence() ? absl::StrCat(between->value.size(), " entries")
                                                          : Kind(between->value)));
  }
  std::string ends[2];
  const NodeConfig* end_nodes[2];
  for (int i = 0; i < 2; ++i) {
    const YAML::Node& n = between->value[i];
    Entry end{"between", between->key_node, n};
    QNET_ASSIGN_OR_RETURN(ends[i], String(end, what));
    end_nodes[i] = out.FindNode(ends[i]);
    if (end_nodes[i] == nullptr) {
      std::vector<std::string> known;
      for (size_t k = 0; k < out.nodes.size() && k < kNamesInMessages; ++k) known.push_back(out.nodes[k].name);
      const std::string more =
          out.nodes.size() > kNamesInMessages ? absl::StrCat(", ... (", out.nodes.size(), " in all)") : "";
      return Error(n, absl::StrCat(what, ": unknown node '", ends[i], "'; nodes in this file: ",
                                   absl::StrJoin(known, ", "), more));
    }
  }
  if (ends[0] == ends[1]) {
    return Error(between->value, absl::StrCat(what, ": links node '", ends[0], "' to itself"));
  }
  const std::string pair = ends[0] < ends[1] ? absl::StrCat(ends[0], "\n", ends[1]) : absl::StrCat(ends[1], "\n", ends[0]);
  if (auto [it, inserted] = pair_line_.emplace(pair, between->value.Mark().line + 1); !inserted) {
    return Error(between->value, absl::StrCat(what, ": duplicate link between '", ends[0], "' and '", ends[1],
                                              "' (first defined on line ", it->second, ")"));
  }
  const std::string link_name = absl::StrCat(ends[0], "-", ends[1]);
  if (out.FindLinkByName(link_name) != nullptr) {
    return Error(between->value, absl::StrCat(what, ": its name '", link_name,
                                              "' is already taken by another link (node names containing '-' "
                                              "can collide; rename a node)"));
  }
  what = absl::StrCat("link ", link_name);

  // Optics default to the preset of the first node named in `between`.
  absl::StatusOr<physical::HardwarePreset> preset = physical::FindPreset(end_nodes[0]->hardware.preset);
  if (!preset.ok()) return preset.status();  // cannot happen: the node's preset was found above
  LinkPhysics link = preset->link;
  link.name = link_name;
  link.node_a = ends[0];
  link.node_b = ends[1];
  link.station_fraction = 0.5;

  QNET_ASSIGN_OR_RETURN(const Entry* length, Require(entries, item, what, "length_km", " (fibre length in km)"));
  QNET_ASSIGN_OR_RETURN(link.length_km, InRange(*length, what, kLength));
  for (const Entry& e : entries) {
    const std::string& k = e.key;
    if (k == "scheme") {
      QNET_ASSIGN_OR_RETURN(std::string s, String(e, what));
      if (s == physical::SchemeName(HeraldingScheme::kSingleClick)) {
        link.scheme = HeraldingScheme::kSingleClick;
      } else if (s == physical::SchemeName(HeraldingScheme::kDoubleClick)) {
        link.scheme = HeraldingScheme::kDoubleClick;
      } else if (s == physical::SchemeName(HeraldingScheme::kWerner)) {
        link.scheme = HeraldingScheme::kWerner;
      } else {
        return Error(e.value, absl::StrCat(what, ": unknown scheme '", s,
                                           "'; use single-click, double-click or werner (an abstract Werner pair)"));
      }
    } else if (k == "station_fraction") {
      QNET_ASSIGN_OR_RETURN(link.station_fraction, UnitInterval(e, what));
    } else if (k == "attenuation_db_per_km") {
      QNET_ASSIGN_OR_RETURN(link.attenuation_db_per_km, InRange(e, what, kAttenuation));
    } else if (k == "detector_efficiency") {
      QNET_ASSIGN_OR_RETURN(link.detector_efficiency, UnitInterval(e, what));
    } else if (k == "dark_count_rate_hz") {
      QNET_ASSIGN_OR_RETURN(link.dark_count_rate_hz, InRange(e, what, kDarkCountRate));
    } else if (k == "detection_window_ns") {
      QNET_ASSIGN_OR_RETURN(link.detection_window, DurationIn(e, what, kDetectionWindow, 1.0));
    } else if (k == "visibility") {
      QNET_ASSIGN_OR_RETURN(link.visibility, UnitInterval(e, what));
    } else if (k == "eavesdropper_fraction") {
      QNET_ASSIGN_OR_RETURN(link.eavesdropper_fraction, UnitInterval(e, what));
    } else if (k == "werner_fidelity") {
      QNET_ASSIGN_OR_RETURN(link.werner_fidelity, UnitInterval(e, what));
    } else if (k == "success_probability") {
      QNET_ASSIGN_OR_RETURN(link.success_probability, UnitInterval(e, what));
    } else if (k == "attempt_duration_us") {
      QNET_ASSIGN_OR_RETURN(link.attempt_duration, DurationIn(e, what, kAttemptDuration, 1e3));
      if (link.attempt_duration <= Duration{0}) {
        return Error(e.value, absl::StrCat(what, ": attempt_duration_us must be positive (leave it out for the "
                                           "round trip to the farther end)"));
      }
    }
  }
  // The Werner keys describe the abstract link; on a photonic link they would
  // be silently ignored, and a study would not be what its file says.
  const bool werner = link.scheme == HeraldingScheme::kWerner;
  for (std::string_view key : kWernerLinkKeys) {
    const Entry* given = Find(entries, key);
    if (!werner && given != nullptr) {
      return Error(given->key_node, absl::StrCat(what, ": ", std::string(key),
                                                 " applies only to scheme: werner (this link is ",
                                                 std::string(physical::SchemeName(link.scheme)), ")"));
    }
    if (werner && key != "attempt_duration_us" && given == nullptr) {
      return Error(item, absl::StrCat(what, ": scheme: werner needs ", std::string(key),
                                      " (werner_fidelity: the pair's fidelity to PHI+; success_probability: per "
                                      "attempt)"));
    }
  }
  if (absl::Status s = physical::ValidateLinkPhysics(link); !s.ok()) return Error(item, s.message());
  const size_t index = out.links.size();
  out.link_index.emplace(link.name, index);
  out.node_pair_index.emplace(pair, index);
  out.links_of_node[link.node_a].push_back(index);
  out.links_of_node[link.node_b].push_back(index);
  out.links.push_back(std::move(link));
  return absl::OkStatus();
}

absl::StatusOr<NetworkConfig> FileReader::Read(std::string_view text) {
  if (text.size() > kMaxFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": the file has ", text.size(), " bytes; at most ",
                                                   kMaxFileBytes, " are allowed"));
  }
  // Not YAML::LoadAll: yaml-cpp 0.7's never returns on some input (a lone
  // ",": its parser reports empty documents forever without consuming any,
  // found by fuzz/network_file_fuzz.cc). The parser is asked for at most two
  // documents, then the first is loaded.
  YAML::Node root;
  try {
    DocumentCounter counter;
    std::istringstream stream{std::string(text)};
    YAML::Parser parser(stream);
    if (parser.HandleNextDocument(counter) && parser.HandleNextDocument(counter)) {
      return Error(counter.second(), "expected one YAML document, found a second one ('---')");
    }
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return Error(e.mark, absl::StrCat("not valid YAML: ", e.msg));
  }
  const YAML::Mark start;  // line 1, column 1
  if (root.IsNull()) {
    return Error(start, absl::StrCat("the file is empty; expected a mapping with keys ", JoinKeys(kTopKeys)));
  }
  QNET_ASSIGN_OR_RETURN(std::vector<Entry> top, Entries(root, start, "the network file", kTopKeys));
  QNET_RETURN_IF_ERROR(CheckKeys(top, "the network file", kTopKeys));

  NetworkConfig out;
  out.source = source_;
  QNET_ASSIGN_OR_RETURN(const Entry* network, Require(top, root, "the network file", "network", " (its name)"));
  QNET_ASSIGN_OR_RETURN(out.name, Name(*network, "the network file"));
  if (const Entry* seed = Find(top, "seed")) {
    uint64_t v;
    if (!seed->value.IsScalar() || absl::StartsWith(absl::StripAsciiWhitespace(Av(seed->value.Scalar())), "-") ||
        !absl::SimpleAtoi(Av(seed->value.Scalar()), &v)) {
      return Error(seed->value.IsNull() ? seed->key_node : seed->value,
                   absl::StrCat("seed must be an integer in [0, 2^64), got ", Kind(seed->value)));
    }
    out.seed = v;
  }

  QNET_ASSIGN_OR_RETURN(const Entry* nodes, Require(top, root, "the network file", "nodes", " (a list of nodes)"));
  if (!nodes->value.IsSequence() || nodes->value.size() == 0) {
    return Error(nodes->value.IsNull() ? nodes->key_node : nodes->value,
                 absl::StrCat("nodes must be a non-empty list of mappings with keys ", JoinKeys(kNodeKeys),
                              "; got ", nodes->value.IsSequence() ? "an empty list" : Kind(nodes->value)));
  }
  if (nodes->value.size() > kMaxNodes) {
    return Error(nodes->value, absl::StrCat("the file lists ", nodes->value.size(), " nodes; at most ", kMaxNodes,
                                            " are allowed"));
  }
  out.nodes.reserve(nodes->value.size());
  for (size_t i = 0; i < nodes->value.size(); ++i) {
    QNET_RETURN_IF_ERROR(ReadNode(nodes->value[i], nodes->value.Mark(), i, out));
  }

  if (const Entry* links = Find(top, "links"); links != nullptr && !links->value.IsNull()) {
    if (!links->value.IsSequence()) {
      return Error(links->value, absl::StrCat("links must be a list of mappings with keys ", JoinKeys(kLinkKeys),
                                              "; got ", Kind(links->value)));
    }
    if (links->value.size() > kMaxLinks) {
      return Error(links->value, absl::StrCat("the file lists ", links->value.size(), " links; at most ", kMaxLinks,
                                              " are allowed"));
    }
    out.links.reserve(links->value.size());
    for (size_t i = 0; i < links->value.size(); ++i) {
      QNET_RETURN_IF_ERROR(ReadLink(links->value[i], links->value.Mark(), i, out));
    }
  }
  if (const Entry* km = Find(top, "key_management"); km != nullptr && !km->value.IsNull()) {
    QNET_RETURN_IF_ERROR(ReadKeyManagement(*km, out));
  }
  if (const Entry* sat = Find(top, "satellite_links"); sat != nullptr && !sat->value.IsNull()) {
    if (!sat->value.IsSequence() || sat->value.size() > kMaxSatelliteLinks) {
      return Error(sat->value, absl::StrCat("satellite_links must be a list of at most ", kMaxSatelliteLinks,
                                            " mappings with keys ", JoinKeys(kSatelliteLinkKeys), "; got ",
                                            sat->value.IsSequence() ? absl::StrCat(sat->value.size(), " entries")
                                                                    : Kind(sat->value)));
    }
    for (size_t i = 0; i < sat->value.size(); ++i) {
      QNET_RETURN_IF_ERROR(ReadSatelliteLink(sat->value[i], sat->value.Mark(), i, out));
    }
  }
  return out;
}

absl::Status FileReader::ReadSatelliteLink(const YAML::Node& item, const YAML::Mark& list_mark, size_t position,
                                           NetworkConfig& out) {
  std::string what = absl::StrCat("satellite link #", position + 1);
  QNET_ASSIGN_OR_RETURN(std::vector<Entry> entries, Entries(item, list_mark, what, kSatelliteLinkKeys));
  QNET_RETURN_IF_ERROR(CheckKeys(entries, what, kSatelliteLinkKeys));
  QNET_ASSIGN_OR_RETURN(const Entry* between, Require(entries, item, what, "between",
                                                      " ([satellite, ground station])"));
  if (!between->value.IsSequence() || between->value.size() != 2) {
    return Error(between->value.IsNull() ? between->key_node : between->value,
                 absl::StrCat(what, ": between must be [satellite, ground station], e.g. [micius, xinglong]"));
  }
  std::string ends[2];
  for (int i = 0; i < 2; ++i) {
    QNET_ASSIGN_OR_RETURN(ends[i], KnownNode(between->value[i], what, out));
  }
  if (ends[0] == ends[1]) {
    return Error(between->value, absl::StrCat(what, ": links node '", ends[0], "' to itself"));
  }
  if (out.FindSatelliteLink(ends[0], ends[1]) != nullptr || out.FindLink(ends[0], ends[1]) != nullptr) {
    return Error(between->value, absl::StrCat(what, ": '", ends[0], "' and '", ends[1], "' are already linked"));
  }
  physical::SatelliteLink link;
  if (const Entry* preset = Find(entries, "preset")) {
    QNET_ASSIGN_OR_RETURN(std::string name, String(*preset, what));
    absl::StatusOr<physical::SatelliteLink> found = physical::SatelliteLinkPreset(name);
    if (!found.ok()) return Error(preset->value, absl::StrCat(what, ": ", found.status().message()));
    link = *found;
  }
  link.name = absl::StrCat(ends[0], "-", ends[1]);
  link.satellite = ends[0];
  link.ground = ends[1];
  what = absl::StrCat("satellite link ", link.name);
  physical::SatelliteLinkParams& c = link.channel;
  for (const Entry& e : entries) {
    const std::string& k = e.key;
    if (k == "altitude_km") {
      QNET_ASSIGN_OR_RETURN(c.altitude_km, InRange(e, what, kAltitude));
    } else if (k == "beam_divergence_urad") {
      QNET_ASSIGN_OR_RETURN(c.beam_divergence_urad, InRange(e, what, kDivergence));
    } else if (k == "receiver_aperture_m") {
      QNET_ASSIGN_OR_RETURN(c.receiver_aperture_m, InRange(e, what, kAperture));
    } else if (k == "pointing_error_urad") {
      QNET_ASSIGN_OR_RETURN(c.pointing_error_urad, InRange(e, what, kPointing));
    } else if (k == "zenith_transmission") {
      QNET_ASSIGN_OR_RETURN(c.zenith_transmission, UnitInterval(e, what));
    } else if (k == "optics_efficiency") {
      QNET_ASSIGN_OR_RETURN(c.optics_efficiency, UnitInterval(e, what));
    } else if (k == "background_counts_per_gate") {
      QNET_ASSIGN_OR_RETURN(c.background_counts_per_gate, UnitInterval(e, what));
    } else if (k == "min_elevation_deg") {
      QNET_ASSIGN_OR_RETURN(c.min_elevation_deg, InRange(e, what, kElevation));
    } else if (k == "max_elevation_deg") {
      QNET_ASSIGN_OR_RETURN(c.max_elevation_deg, InRange(e, what, kElevation));
    } else if (k == "source_rate_hz") {
      QNET_ASSIGN_OR_RETURN(link.source_rate_hz, InRange(e, what, kSourceRate));
    } else if (k == "detector_efficiency") {
      QNET_ASSIGN_OR_RETURN(link.detector_efficiency, UnitInterval(e, what));
    } else if (k == "dark_count_rate_hz") {
      QNET_ASSIGN_OR_RETURN(link.dark_count_rate_hz, InRange(e, what, kDarkCountRate));
    } else if (k == "detection_window_ns") {
      QNET_ASSIGN_OR_RETURN(link.detection_window, DurationIn(e, what, kDetectionWindow, 1.0));
    } else if (k == "visibility") {
      QNET_ASSIGN_OR_RETURN(link.visibility, UnitInterval(e, what));
    }
  }
  if (absl::Status s = physical::ValidateSatelliteLink(c, what); !s.ok()) return Error(item, s.message());
  out.satellite_links.push_back(std::move(link));
  return absl::OkStatus();
}

absl::StatusOr<std::string> FileReader::KnownNode(const YAML::Node& value, std::string_view what,
                                                  const NetworkConfig& out) const {
  if (!value.IsScalar()) return Error(value, absl::StrCat(Av(what), ": a node name is required, got ", Kind(value)));
  const std::string name = value.Scalar();
  if (out.FindNode(name) == nullptr) {
    std::vector<std::string> known;
    for (size_t k = 0; k < out.nodes.size() && k < kNamesInMessages; ++k) known.push_back(out.nodes[k].name);
    return Error(value, absl::StrCat(Av(what), ": unknown node '", name, "'; nodes in this file: ",
                                     absl::StrJoin(known, ", "), out.nodes.size() > kNamesInMessages ? ", ..." : ""));
  }
  return name;
}

absl::Status FileReader::ReadKeyManagement(const Entry& section, NetworkConfig& out) {
  const std::string what = "key_management";
  QNET_ASSIGN_OR_RETURN(std::vector<Entry> entries, Entries(section.value, section.key_node.Mark(), what,
                                                            kKeyManagementKeys));
  QNET_RETURN_IF_ERROR(CheckKeys(entries, what, kKeyManagementKeys));
  KeyManagementConfig& km = out.key_management;
  absl::flat_hash_map<std::string, int> sae_line;
  if (const Entry* saes = Find(entries, "saes"); saes != nullptr && !saes->value.IsNull()) {
    if (!saes->value.IsSequence()) {
      return Error(saes->value, absl::StrCat("key_management: saes must be a list of mappings with keys ",
                                             JoinKeys(kSaeKeys), "; got ", Kind(saes->value)));
    }
    if (saes->value.size() > kMaxNodes) {
      return Error(saes->value, absl::StrCat("key_management: at most ", kMaxNodes, " saes are allowed"));
    }
    for (size_t i = 0; i < saes->value.size(); ++i) {
      const YAML::Node& item = saes->value[i];
      const std::string item_what = absl::StrCat("key_management: sae ", i + 1);
      QNET_ASSIGN_OR_RETURN(std::vector<Entry> fields, Entries(item, saes->value.Mark(), item_what, kSaeKeys));
      QNET_RETURN_IF_ERROR(CheckKeys(fields, item_what, kSaeKeys));
      SaeConfig sae;
      QNET_ASSIGN_OR_RETURN(const Entry* name, Require(fields, item, item_what, "name", " (its SAE_ID)"));
      QNET_ASSIGN_OR_RETURN(sae.name, Name(*name, item_what));
      QNET_ASSIGN_OR_RETURN(const Entry* node, Require(fields, item, item_what, "node", " (the node it is bound to)"));
      QNET_ASSIGN_OR_RETURN(sae.node, KnownNode(node->value, absl::StrCat("sae ", sae.name), out));
      if (auto [it, inserted] = sae_line.emplace(sae.name, name->value.Mark().line + 1); !inserted) {
        return Error(name->value, absl::StrCat("key_management: duplicate sae '", sae.name,
                                               "' (first defined on line ", it->second, ")"));
      }
      km.saes.push_back(std::move(sae));
    }
  }
  absl::flat_hash_map<std::string, int> pool_line;
  if (const Entry* pools = Find(entries, "pools"); pools != nullptr && !pools->value.IsNull()) {
    if (!pools->value.IsSequence()) {
      return Error(pools->value, absl::StrCat("key_management: pools must be a list of mappings with keys ",
                                              JoinKeys(kPoolKeys), "; got ", Kind(pools->value)));
    }
    if (pools->value.size() > kMaxLinks) {
      return Error(pools->value, absl::StrCat("key_management: at most ", kMaxLinks, " pools are allowed"));
    }
    for (size_t i = 0; i < pools->value.size(); ++i) {
      const YAML::Node& item = pools->value[i];
      std::string item_what = absl::StrCat("key_management: pool ", i + 1);
      QNET_ASSIGN_OR_RETURN(std::vector<Entry> fields, Entries(item, pools->value.Mark(), item_what, kPoolKeys));
      QNET_RETURN_IF_ERROR(CheckKeys(fields, item_what, kPoolKeys));
      QNET_ASSIGN_OR_RETURN(const Entry* between,
                            Require(fields, item, item_what, "between", " (the two nodes, e.g. [alice, bob])"));
      if (!between->value.IsSequence() || between->value.size() != 2) {
        return Error(between->value, absl::StrCat(item_what, ": between must list two nodes, e.g. [alice, bob]"));
      }
      KeyPoolConfig pool;
      QNET_ASSIGN_OR_RETURN(pool.node_a, KnownNode(between->value[0], item_what, out));
      QNET_ASSIGN_OR_RETURN(pool.node_b, KnownNode(between->value[1], item_what, out));
      if (pool.node_a == pool.node_b) {
        return Error(between->value, absl::StrCat(item_what, ": a pool joins two different nodes, got '",
                                                  pool.node_a, "' twice"));
      }
      item_what = absl::StrCat("key_management: pool ", pool.node_a, "-", pool.node_b);
      const std::string pair = absl::StrCat(pool.node_a, "\n", pool.node_b);  // directed
      if (auto [it, inserted] = pool_line.emplace(pair, between->value.Mark().line + 1); !inserted) {
        return Error(between->value, absl::StrCat("key_management: duplicate pool between '", pool.node_a,
                                                  "' and '", pool.node_b, "' (first defined on line ", it->second,
                                                  ")"));
      }
      bool high_given = false;
      for (const Entry& e : fields) {
        if (e.key == "low_watermark_bits" || e.key == "high_watermark_bits") {
          QNET_ASSIGN_OR_RETURN(int64_t v, Integer(e, item_what));
          if (v < 8 || static_cast<uint64_t>(v) > kMaxWatermarkBits) {
            return Error(e.value, absl::StrCat(item_what, ": ", e.key, " = ", e.value.Scalar(), " is outside [8, ",
                                               kMaxWatermarkBits, "] bits"));
          }
          if (e.key == "low_watermark_bits") {
            pool.low_watermark_bits = static_cast<uint64_t>(v);
          } else {
            pool.high_watermark_bits = static_cast<uint64_t>(v);
            high_given = true;
          }
        } else if (e.key == "pairs_per_block") {
          QNET_ASSIGN_OR_RETURN(int64_t v, Integer(e, item_what));
          if (v < 1 || v > kMaxPoolPairsPerBlock) {
            return Error(e.value, absl::StrCat(item_what, ": pairs_per_block = ", e.value.Scalar(),
                                               " is outside [1, ", kMaxPoolPairsPerBlock, "]"));
          }
          pool.pairs_per_block = static_cast<uint32_t>(v);
        } else if (e.key == "sample_fraction") {
          QNET_ASSIGN_OR_RETURN(pool.sample_fraction, InRange(e, item_what, kSampleFraction));
          if (pool.sample_fraction == 0) {
            return Error(e.value, absl::StrCat(item_what, ": sample_fraction must be above 0 (the QBER is estimated "
                                               "on that share of the sifted bits)"));
          }
        } else if (e.key == "protocol") {
          QNET_ASSIGN_OR_RETURN(pool.protocol, String(e, item_what));
          if (std::find(std::begin(kPoolProtocols), std::end(kPoolProtocols), pool.protocol) ==
              std::end(kPoolProtocols)) {
            return Error(e.value, absl::StrCat(item_what, ": unknown protocol '", pool.protocol,
                                               "'; use one of ", JoinKeys(kPoolProtocols)));
          }
        }
      }
      if (!high_given) pool.high_watermark_bits = std::min(8 * pool.low_watermark_bits, kMaxWatermarkBits);
      if (pool.high_watermark_bits <= pool.low_watermark_bits) {
        return Error(item, absl::StrCat(item_what, ": high_watermark_bits (", pool.high_watermark_bits,
                                        ") must be above low_watermark_bits (", pool.low_watermark_bits, ")"));
      }
      if (pool.protocol == "bb84" && out.FindLink(pool.node_a, pool.node_b) == nullptr) {
        return Error(item, absl::StrCat(item_what, ": protocol bb84 runs over one link only, and '", pool.node_a,
                                        "' and '", pool.node_b, "' are not neighbours"));
      }
      km.pools.push_back(std::move(pool));
    }
  }
  return absl::OkStatus();
}

}  // namespace

namespace {
std::string PairKey(std::string_view a, std::string_view b) {
  return a < b ? absl::StrCat(Av(a), "\n", Av(b)) : absl::StrCat(Av(b), "\n", Av(a));
}
}  // namespace

const SaeConfig* KeyManagementConfig::FindSae(std::string_view sae_name) const {
  for (const SaeConfig& sae : saes) {
    if (sae.name == sae_name) return &sae;
  }
  return nullptr;
}

const KeyPoolConfig* KeyManagementConfig::FindPool(std::string_view from, std::string_view to) const {
  for (const KeyPoolConfig& pool : pools) {
    if (pool.node_a == from && pool.node_b == to) return &pool;
  }
  return nullptr;
}

const NodeConfig* NetworkConfig::FindNode(std::string_view node_name) const {
  auto it = node_index.find(Av(node_name));
  return it == node_index.end() ? nullptr : &nodes[it->second];
}

const physical::LinkPhysics* NetworkConfig::FindLink(std::string_view a, std::string_view b) const {
  auto it = node_pair_index.find(PairKey(a, b));
  return it == node_pair_index.end() ? nullptr : &links[it->second];
}

const physical::SatelliteLink* NetworkConfig::FindSatelliteLink(std::string_view a, std::string_view b) const {
  for (const physical::SatelliteLink& link : satellite_links) {
    if ((link.satellite == a && link.ground == b) || (link.satellite == b && link.ground == a)) return &link;
  }
  return nullptr;
}

const physical::LinkPhysics* NetworkConfig::FindLinkByName(std::string_view link_name) const {
  auto it = link_index.find(Av(link_name));
  return it == link_index.end() ? nullptr : &links[it->second];
}

std::vector<std::string> NetworkConfig::Neighbours(std::string_view node) const {
  std::vector<std::string> out;
  auto it = links_of_node.find(Av(node));
  if (it == links_of_node.end()) return out;
  for (size_t i : it->second) out.push_back(links[i].node_a == node ? links[i].node_b : links[i].node_a);
  return out;
}

void NetworkConfig::Reindex() {
  node_index.clear();
  link_index.clear();
  node_pair_index.clear();
  links_of_node.clear();
  for (size_t i = 0; i < nodes.size(); ++i) node_index.emplace(nodes[i].name, i);
  for (size_t i = 0; i < links.size(); ++i) {
    link_index.emplace(links[i].name, i);
    node_pair_index.emplace(PairKey(links[i].node_a, links[i].node_b), i);
    links_of_node[links[i].node_a].push_back(i);
    links_of_node[links[i].node_b].push_back(i);
  }
}

absl::StatusOr<NetworkConfig> ParseNetworkConfig(std::string_view text, std::string_view source_name) {
  return FileReader(source_name).Read(text);
}

absl::StatusOr<NetworkConfig> LoadNetworkFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read network file ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::NotFoundError(absl::StrCat("cannot read network file ", path, ": ", std::strerror(errno)));
  }
  return ParseNetworkConfig(text.str(), path);
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace qnet::config
