#include "physical/heralding_model.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <complex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/status.h"

namespace qnet::physical {
namespace {

// ---------------------------------------------------------------------------
// The photonic model.
//
// Four bosonic modes: the photon from node A or node B, each in one of two
// internal modes h, v (polarisation / frequency / temporal shape; only the
// overlap of the two nodes' photons matters). Node A's photon is h, node B's
// is sqrt(V) h + sqrt(1-V) v, so <chi_A|chi_B> = sqrt(V) and two-photon
// bunching at the beam splitter has probability (1+V)/2. At most one photon
// per node, so the Fock space of "at most two photons in four modes" (15
// states) is exact.
//
// After the 50:50 beam splitter the same four modes are read as (D+, h),
// (D+, v), (D-, h), (D-, v). Losses (emission, fibre, detector) are modelled
// as a beam splitter to an unobserved environment on each input mode; equal
// detector efficiencies commute with the lossless beam splitter, so folding
// them into the input loss is exact.
// ---------------------------------------------------------------------------

constexpr int kModes = 4;
constexpr int kMaxPhotons = 2;
constexpr int kDim = 15;  // 1 + 4 + 10 occupation patterns with <= 2 photons

using Complex = std::complex<double>;
using FockMatrix = Eigen::Matrix<Complex, kDim, kDim>;
using FockVector = Eigen::Matrix<Complex, kDim, 1>;
using Occupation = std::array<int, kModes>;

// Input mode indices (before the beam splitter) and output mode indices.
constexpr int kAh = 0, kBh = 2, kBv = 3;  // (A, v) = 1 is never populated
constexpr int kPlusH = 0, kPlusV = 1, kMinusH = 2, kMinusV = 3;

// The truncated Fock space, its creation operators and the beam splitter
// unitary acting on it. Independent of every parameter, so built once.
class FockSpace {
 public:
  FockSpace() {
    int next = 0;
    for (int total = 0; total <= kMaxPhotons; ++total) {
      for (int a = 0; a <= total; ++a) {
        for (int b = 0; a + b <= total; ++b) {
          for (int c = 0; a + b + c <= total; ++c) {
            occupations_[next++] = Occupation{a, b, c, total - a - b - c};
          }
        }
      }
    }
    for (int mode = 0; mode < kModes; ++mode) {
      creation_[mode].setZero();
      for (int j = 0; j < kDim; ++j) {
        Occupation n = occupations_[j];
        if (Total(n) == kMaxPhotons) continue;  // truncation: never reached by our states
        const double amplitude = std::sqrt(static_cast<double>(n[mode] + 1));
        ++n[mode];
        creation_[mode](Index(n), j) = amplitude;
      }
    }
    BuildBeamSplitter();
  }

  const Occupation& occupation(int index) const { return occupations_[index]; }
  const FockMatrix& creation(int mode) const { return creation_[mode]; }
  const FockMatrix& beam_splitter() const { return beam_splitter_; }

  int Index(const Occupation& n) const {
    for (int j = 0; j < kDim; ++j) {
      if (occupations_[j] == n) return j;
    }
    return -1;
  }

  FockVector Vacuum() const {
    FockVector v = FockVector::Zero();
    v(Index(Occupation{0, 0, 0, 0})) = 1.0;
    return v;
  }

  static int Total(const Occupation& n) { return n[0] + n[1] + n[2] + n[3]; }

 private:
  // 50:50 beam splitter: a_{A,s}^dag -> (c_{+,s}^dag + c_{-,s}^dag)/sqrt2,
  // a_{B,s}^dag -> (c_{+,s}^dag - c_{-,s}^dag)/sqrt2 for each internal mode s.
  // On Fock states, U prod_i (a_i^dag)^{n_i}/sqrt(n_i!) |0> =
  // prod_i (sum_j S_ji c_j^dag)^{n_i}/sqrt(n_i!) |0>.
  void BuildBeamSplitter() {
    const double r = 1.0 / std::sqrt(2.0);
    Eigen::Matrix4d s = Eigen::Matrix4d::Zero();  // s(out, in)
    for (int internal = 0; internal < 2; ++internal) {
      const int a = kAh + internal, b = kBh + internal;
      const int plus = kPlusH + internal, minus = kMinusH + internal;
      s(plus, a) = r;
      s(minus, a) = r;
      s(plus, b) = r;
      s(minus, b) = -r;
    }
    std::array<FockMatrix, kModes> image;  // U a_i^dag U^dag
    for (int in = 0; in < kModes; ++in) {
      image[in].setZero();
      for (int out = 0; out < kModes; ++out) image[in] += s(out, in) * creation_[out];
    }
    for (int j = 0; j < kDim; ++j) {
      const Occupation& n = occupations_[j];
      FockVector v = Vacuum();
      for (int in = 0; in < kModes; ++in) {
        for (int k = 0; k < n[in]; ++k) v = image[in] * v;
        v /= std::sqrt(std::tgamma(n[in] + 1.0));
      }
      beam_splitter_.col(j) = v;
    }
  }

  std::array<Occupation, kDim> occupations_;
  std::array<FockMatrix, kModes> creation_;
  FockMatrix beam_splitter_;
};

const FockSpace& Space() {
  static const FockSpace* const space = new FockSpace();
  return *space;
}

// Kraus operator of a pure-loss channel (transmissivity t) on one mode that
// loses exactly `lost` photons to the environment:
// |n> -> sqrt(C(n, lost)) t^{(n-lost)/2} (1-t)^{lost/2} |n - lost>.
// Each basis state maps to at most one basis state, so it is stored as that
// map (target index or -1, real amplitude) rather than as a dense matrix.
struct LossKraus {
  std::array<int, kDim> target;
  std::array<double, kDim> amplitude;

  LossKraus(int mode, double t, int lost) {
    const FockSpace& space = Space();
    for (int j = 0; j < kDim; ++j) {
      Occupation n = space.occupation(j);
      const int have = n[mode];
      target[j] = -1;
      amplitude[j] = 0.0;
      if (have < lost) continue;
      const double binomial =
          std::tgamma(have + 1.0) / (std::tgamma(lost + 1.0) * std::tgamma(have - lost + 1.0));
      amplitude[j] = std::sqrt(binomial * std::pow(t, have - lost) * std::pow(1.0 - t, lost));
      n[mode] -= lost;
      target[j] = space.Index(n);
    }
  }

  // out += K^dag f K, i.e. out(i, j) += a_i a_j f(target_i, target_j).
  void AddAdjointAction(const FockMatrix& f, FockMatrix& out) const {
    for (int i = 0; i < kDim; ++i) {
      if (target[i] < 0) continue;
      for (int j = 0; j < kDim; ++j) {
        if (target[j] < 0) continue;
        out(i, j) += amplitude[i] * amplitude[j] * f(target[i], target[j]);
      }
    }
  }
};

// Which detector produced the (single) click of one round.
enum class Click { kPlus, kMinus };

// POVM element of "exactly this detector clicks" for threshold detectors
// with dark-count probability p_dc, on the output modes. Efficiency is
// already in the loss. A detector stays dark iff no photon reaches it and it
// has no dark count: (1 - p_dc) |vac><vac| on its two internal modes.
// Diagonal in the Fock basis: returns the diagonal.
Eigen::Matrix<double, kDim, 1> ClickPovm(Click click, double p_dc) {
  const FockSpace& space = Space();
  Eigen::Matrix<double, kDim, 1> e;
  for (int j = 0; j < kDim; ++j) {
    const Occupation& n = space.occupation(j);
    const bool plus_empty = n[kPlusH] + n[kPlusV] == 0;
    const bool minus_empty = n[kMinusH] + n[kMinusV] == 0;
    const double plus_silent = plus_empty ? 1.0 - p_dc : 0.0;
    const double minus_silent = minus_empty ? 1.0 - p_dc : 0.0;
    e(j) = click == Click::kPlus ? (1.0 - plus_silent) * minus_silent : (1.0 - minus_silent) * plus_silent;
  }
  return e;
}

// The optics of one round, for both one-click patterns: the herald matrices
// M_click[m][m'] = Tr[E_click Lambda(|phi_m><phi_m'|)] over the memory basis
// m = 2*m_A + m_B, where phi_m has a photon from node X iff m_X = 1.
struct RoundHerald {
  Eigen::Matrix4cd plus;
  Eigen::Matrix4cd minus;
};

RoundHerald ComputeRoundHerald(double eta_a, double eta_b, double visibility, double p_dc) {
  const FockSpace& space = Space();

  // Photonic states phi_m as the columns of a 15 x 4 matrix.
  const FockMatrix photon_a = space.creation(kAh);
  const FockMatrix photon_b =
      std::sqrt(visibility) * space.creation(kBh) + std::sqrt(1.0 - visibility) * space.creation(kBv);
  Eigen::Matrix<Complex, kDim, 4> phi;
  const FockVector vacuum = space.Vacuum();
  for (int m = 0; m < 4; ++m) {
    FockVector v = vacuum;
    if (m & 1) v = photon_b * v;  // m_B
    if (m & 2) v = photon_a * v;  // m_A
    phi.col(m) = v;
  }

  // Heisenberg picture: the effective POVM on the emitted photons is
  // F = Lambda^dag(U^dag E U), with Lambda the product of per-mode losses.
  // Then M[m][m'] = Tr[E Lambda(|phi_m><phi_m'|)] = <phi_m'| F |phi_m>.
  const std::array<double, kModes> transmissivity = {eta_a, eta_a, eta_b, eta_b};
  std::vector<std::vector<LossKraus>> kraus(kModes);
  for (int mode = 0; mode < kModes; ++mode) {
    for (int lost = 0; lost <= kMaxPhotons; ++lost) kraus[mode].emplace_back(mode, transmissivity[mode], lost);
  }
  const FockMatrix& u = space.beam_splitter();
  auto herald = [&](Click click) {
    FockMatrix f = u.adjoint() * ClickPovm(click, p_dc).asDiagonal() * u;
    for (int mode = 0; mode < kModes; ++mode) {
      FockMatrix next = FockMatrix::Zero();
      for (const LossKraus& k : kraus[mode]) k.AddAdjointAction(f, next);
      f = next;
    }
    const Eigen::Matrix4cd overlaps = phi.adjoint() * f * phi;  // (m', m) -> <phi_m'|F|phi_m>
    return Eigen::Matrix4cd(overlaps.transpose());
  };
  return RoundHerald{herald(Click::kPlus), herald(Click::kMinus)};
}

// The memory state conditioned on a click pattern, left unnormalised. The
// memory branch |m> carries the photonic state phi_m, so conditioning on the
// photons multiplies each memory coherence rho[m][m'] by M[m][m']:
// rho_out = rho_in o M (elementwise), with trace = P(pattern).
Eigen::Matrix4cd Herald(const Eigen::Matrix4cd& rho, const Eigen::Matrix4cd& m) { return rho.cwiseProduct(m); }

// X on both memories: |m_A m_B> -> |~m_A ~m_B>, index m -> 3 - m.
Eigen::Matrix4cd FlipBoth(const Eigen::Matrix4cd& rho) {
  Eigen::Matrix4cd out;
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) out(i, j) = rho(3 - i, 3 - j);
  }
  return out;
}

HeraldedOutcome Normalised(quantum::BellState label, const Eigen::Matrix4cd& unnormalised) {
  HeraldedOutcome outcome;
  outcome.label = label;
  const double p = unnormalised.trace().real();
  outcome.probability = std::max(p, 0.0);
  if (p > 0.0) {
    const Eigen::Matrix4cd rho = unnormalised / p;
    outcome.state = (rho + rho.adjoint()) / 2.0;
  } else {
    // Never sampled; keep the contract "a valid density matrix".
    outcome.state = Eigen::Matrix4cd::Identity() / 4.0;
  }
  return outcome;
}

double FibreTransmission(double attenuation_db_per_km, double length_km) {
  return std::pow(10.0, -attenuation_db_per_km * length_km / 10.0);
}

std::string FormatValue(double v) { return absl::StrCat(v); }

absl::Status RequireUnitInterval(double v, const std::string& who, const char* field) {
  if (v >= 0.0 && v <= 1.0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(who, ": ", field, " = ", FormatValue(v), " is outside [0, 1]"));
}

absl::Status RequireNonNegative(double v, const std::string& who, const char* field, bool allow_infinity) {
  if (v >= 0.0 && (allow_infinity || std::isfinite(v))) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(who, ": ", field, " = ", FormatValue(v), " must be ",
                                                 allow_infinity ? "non-negative" : "finite and non-negative"));
}

absl::Status RequireNonNegative(Duration d, const std::string& who, const char* field) {
  if (d.count() >= 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(who, ": ", field, " = ", FormatDuration(d), " must not be negative"));
}

std::string NodeLabel(const char* role, const std::string& name) {
  return name.empty() ? std::string(role) : absl::StrCat(role, " (", name, ")");
}

}  // namespace

double DarkCountProbability(const LinkPhysics& link) {
  // Poissonian dark counts: P(at least one in the window).
  return -std::expm1(-link.dark_count_rate_hz * ToSeconds(link.detection_window));
}

absl::Status ValidateNodeHardware(const NodeHardware& node, std::string_view which_view) {
  // (absl::StrCat here predates std::string_view interop.)
  const std::string which(which_view);
  if (node.num_qubits < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(which, ": num_qubits = ", node.num_qubits, " must be at least 1"));
  }
  if (!(node.t1_s > 0.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(which, ": t1_s = ", FormatValue(node.t1_s), " must be positive (use inf for no decay)"));
  }
  if (!(node.t2_s > 0.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(which, ": t2_s = ", FormatValue(node.t2_s), " must be positive (use inf for no dephasing)"));
  }
  // T2 <= 2 T1: relaxation alone already dephases at rate 1/(2 T1).
  if (node.t2_s > 2.0 * node.t1_s) {
    return absl::InvalidArgumentError(absl::StrCat(which, ": t2_s = ", FormatValue(node.t2_s),
                                                   " exceeds 2 * t1_s = ", FormatValue(2.0 * node.t1_s),
                                                   ", which no physical qubit allows"));
  }
  if (!(node.attempt_dephasing_n >= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(which, ": attempt_dephasing_n = ", FormatValue(node.attempt_dephasing_n),
                                                   " must be at least 1 attempt (use inf for none)"));
  }
  QNET_RETURN_IF_ERROR(RequireUnitInterval(node.emission_efficiency, which, "emission_efficiency"));
  QNET_RETURN_IF_ERROR(RequireUnitInterval(node.single_qubit_gate_error, which, "single_qubit_gate_error"));
  QNET_RETURN_IF_ERROR(RequireUnitInterval(node.two_qubit_gate_error, which, "two_qubit_gate_error"));
  QNET_RETURN_IF_ERROR(RequireUnitInterval(node.readout_error_0, which, "readout_error_0"));
  QNET_RETURN_IF_ERROR(RequireUnitInterval(node.readout_error_1, which, "readout_error_1"));
  QNET_RETURN_IF_ERROR(RequireNonNegative(node.single_qubit_gate_time, which, "single_qubit_gate_time"));
  QNET_RETURN_IF_ERROR(RequireNonNegative(node.two_qubit_gate_time, which, "two_qubit_gate_time"));
  QNET_RETURN_IF_ERROR(RequireNonNegative(node.measurement_time, which, "measurement_time"));
  QNET_RETURN_IF_ERROR(RequireNonNegative(node.emission_cycle_time, which, "emission_cycle_time"));
  return absl::OkStatus();
}

absl::Status ValidateLinkPhysics(const LinkPhysics& link) {
  const std::string who = link.name.empty() ? "link" : absl::StrCat("link ", link.name);
  QNET_RETURN_IF_ERROR(RequireNonNegative(link.length_km, who, "length_km", /*allow_infinity=*/false));
  QNET_RETURN_IF_ERROR(RequireUnitInterval(link.station_fraction, who, "station_fraction"));
  QNET_RETURN_IF_ERROR(
      RequireNonNegative(link.attenuation_db_per_km, who, "attenuation_db_per_km", /*allow_infinity=*/false));
  QNET_RETURN_IF_ERROR(RequireUnitInterval(link.detector_efficiency, who, "detector_efficiency"));
  QNET_RETURN_IF_ERROR(
      RequireNonNegative(link.dark_count_rate_hz, who, "dark_count_rate_hz", /*allow_infinity=*/false));
  QNET_RETURN_IF_ERROR(RequireNonNegative(link.detection_window, who, "detection_window"));
  QNET_RETURN_IF_ERROR(RequireUnitInterval(link.visibility, who, "visibility"));
  QNET_RETURN_IF_ERROR(RequireUnitInterval(link.eavesdropper_fraction, who, "eavesdropper_fraction"));
  if (link.scheme != HeraldingScheme::kSingleClick && link.scheme != HeraldingScheme::kDoubleClick &&
      link.scheme != HeraldingScheme::kWerner) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": scheme ", static_cast<int>(link.scheme), " is not a known heralding scheme"));
  }
  QNET_RETURN_IF_ERROR(RequireUnitInterval(link.werner_fidelity, who, "werner_fidelity"));
  QNET_RETURN_IF_ERROR(RequireUnitInterval(link.success_probability, who, "success_probability"));
  QNET_RETURN_IF_ERROR(RequireNonNegative(link.attempt_duration, who, "attempt_duration"));
  return absl::OkStatus();
}

absl::StatusOr<AttemptModel> ComputeAttemptModel(const NodeHardware& a, const NodeHardware& b,
                                                 const LinkPhysics& link, double bright_state_alpha) {
  QNET_RETURN_IF_ERROR(ValidateNodeHardware(a, NodeLabel("node_a", link.node_a)));
  QNET_RETURN_IF_ERROR(ValidateNodeHardware(b, NodeLabel("node_b", link.node_b)));
  QNET_RETURN_IF_ERROR(ValidateLinkPhysics(link));
  const bool single_click = link.scheme == HeraldingScheme::kSingleClick;
  if (single_click && !(bright_state_alpha > 0.0 && bright_state_alpha < 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bright_state_alpha = ", FormatValue(bright_state_alpha),
        " is outside (0, 1); single-click needs each memory in sqrt(1-alpha)|0> + sqrt(alpha)|1>",
        link.name.empty() ? "" : absl::StrCat(" (link ", link.name, ")")));
  }

  AttemptModel model;
  // Timing: a node may start the next attempt once its own emission cycle is
  // over and the station's verdict is back (a round trip to the farther end).
  const Duration cycle = std::max(a.emission_cycle_time, b.emission_cycle_time);
  const Duration round_trip = FibreDelay(2.0 * std::max(link.length_a_km(), link.length_b_km()));

  using quantum::BellState;
  if (link.scheme == HeraldingScheme::kWerner) {
    // The abstract link: no photons, so no transmissivities; the state is
    // the Werner state around PHI+ whatever the hardware.
    const double f = link.werner_fidelity;
    Eigen::Matrix4cd rho = Eigen::Matrix4cd::Zero();
    for (const BellState s : {BellState::kPhiPlus, BellState::kPhiMinus, BellState::kPsiPlus, BellState::kPsiMinus}) {
      const Eigen::Vector4cd v = quantum::BellVector(s);
      rho += (s == BellState::kPhiPlus ? f : (1.0 - f) / 3.0) * (v * v.adjoint());
    }
    model.outcomes.push_back(HeraldedOutcome{BellState::kPhiPlus, link.success_probability, rho});
    model.success_probability = link.success_probability;
    model.attempt_duration =
        link.attempt_duration > Duration{0} ? link.attempt_duration : std::max(cycle, round_trip);
    return model;
  }
  model.transmissivity_a = a.emission_efficiency *
                           FibreTransmission(link.attenuation_db_per_km, link.length_a_km()) *
                           link.detector_efficiency;
  model.transmissivity_b = b.emission_efficiency *
                           FibreTransmission(link.attenuation_db_per_km, link.length_b_km()) *
                           link.detector_efficiency;
  const RoundHerald round =
      ComputeRoundHerald(model.transmissivity_a, model.transmissivity_b, link.visibility, DarkCountProbability(link));

  if (single_click) {
    const double alpha = bright_state_alpha;
    const double amplitude[2] = {std::sqrt(1.0 - alpha), std::sqrt(alpha)};
    Eigen::Vector4cd psi;
    for (int m = 0; m < 4; ++m) psi(m) = amplitude[m >> 1] * amplitude[m & 1];
    const Eigen::Matrix4cd rho = psi * psi.adjoint();
    // With the beam-splitter sign convention above, D+ projects the
    // one-photon part onto |01> + |10> and D- onto |10> - |01>.
    model.outcomes.push_back(Normalised(BellState::kPsiPlus, Herald(rho, round.plus)));
    model.outcomes.push_back(Normalised(BellState::kPsiMinus, Herald(rho, round.minus)));
    model.attempt_duration = std::max(cycle, round_trip);
  } else {
    // Barrett-Kok: both memories in |+>, a round, X on both, a second round;
    // the station reports once after both rounds. The state is left as it is
    // after the second round (no flip back: PSI+- are invariant under X x X).
    const Eigen::Matrix4cd rho = Eigen::Matrix4cd::Constant(0.25);
    const std::array<std::pair<const Eigen::Matrix4cd*, Click>, 2> rounds = {
        std::pair{&round.plus, Click::kPlus}, std::pair{&round.minus, Click::kMinus}};
    for (const auto& [first, first_click] : rounds) {
      const Eigen::Matrix4cd after_first = FlipBoth(Herald(rho, *first));
      for (const auto& [second, second_click] : rounds) {
        const BellState label = first_click == second_click ? BellState::kPsiPlus : BellState::kPsiMinus;
        model.outcomes.push_back(Normalised(label, Herald(after_first, *second)));
      }
    }
    // Round 2 follows round 1 after one emission cycle without waiting for a
    // herald; then as in single-click.
    model.attempt_duration = cycle + std::max(cycle, round_trip);
  }
  for (const HeraldedOutcome& outcome : model.outcomes) model.success_probability += outcome.probability;
  return model;
}

}  // namespace qnet::physical
