// Physical parameters of quantum network hardware: what a node's memory and
// gates are like, and what a fibre link with a heralding station in the middle
// is like. Values come from the network file (via named presets plus
// overrides); the simulated device and the heralding model consume them.
#pragma once

#include <limits>
#include <string>

#include "core/time.h"

namespace qnet::physical {

inline constexpr double kInfinity = std::numeric_limits<double>::infinity();

enum class HeraldingScheme {
  kSingleClick,  // one photon interferes; bright-state parameter alpha trades rate for fidelity
  kDoubleClick,  // Barrett-Kok: two rounds, a click in each
  // Not a photonic scheme: an abstract link that heralds a Werner pair of a
  // given fidelity with a given probability per attempt, as SeQUeNCe, QuISP
  // and most papers model links; for reproducing their studies like with like.
  kWerner,
};
std::string_view SchemeName(HeraldingScheme s);  // "single-click" / "double-click" / "werner"

// A quantum network node's device.
struct NodeHardware {
  std::string preset = "ideal";  // the preset the values started from
  int num_qubits = 2;            // memory qubits available for entanglement
  double t1_s = kInfinity;       // energy relaxation time of memory qubits
  double t2_s = kInfinity;       // dephasing time (with dynamical decoupling where used)
  // Depolarising memory noise beside T1/T2, the other model studies use: an
  // idle qubit keeps its state with probability exp(-t / depolarising_time_s)
  // and is otherwise replaced by I/2.
  double depolarising_time_s = kInfinity;
  // Dephasing of stored qubits while the node tries to entangle: each
  // entanglement attempt on one of its qubits multiplies the coherence of
  // every other qubit it stores by exp(-1 / attempt_dephasing_n), so N
  // attempts leave 1/e (NV nuclear-spin memories, dephased by the electron's
  // attempts: Kalb et al., PRA 97, 062330 (2018), their N_1/e). Infinite for
  // none, the default of every preset.
  double attempt_dephasing_n = kInfinity;
  // Probability that an emission attempt puts a photon into the fibre, in
  // the right mode (emission x zero-phonon/branching x collection x coupling).
  double emission_efficiency = 1.0;
  double single_qubit_gate_error = 0.0;  // depolarising probability per gate
  double two_qubit_gate_error = 0.0;     // two-qubit depolarising probability per gate
  double readout_error_0 = 0.0;          // P(read 1 | prepared 0)
  double readout_error_1 = 0.0;          // P(read 0 | prepared 1)
  Duration single_qubit_gate_time{0};
  Duration two_qubit_gate_time{0};
  Duration measurement_time{0};
  // Local time of one emission (initialise + excite + emit); the attempt
  // period is never shorter than this nor than the round trip to the station.
  Duration emission_cycle_time{0};
};

// A fibre link between two nodes with a heralding station at a point on it.
struct LinkPhysics {
  std::string name;      // e.g. "alice-bob"
  std::string node_a;
  std::string node_b;
  double length_km = 0.0;
  double station_fraction = 0.5;      // distance A->station / length
  double attenuation_db_per_km = 0.2;
  double detector_efficiency = 1.0;
  double dark_count_rate_hz = 0.0;    // per detector
  Duration detection_window{0};       // dark counts fall into this window per round
  double visibility = 1.0;            // two-photon (Hong-Ou-Mandel) visibility
  HeraldingScheme scheme = HeraldingScheme::kSingleClick;
  // Fraction of heralded pairs an intercept-resend eavesdropper on the fibre
  // from node_a to the station measures (physical/heralding_station.h). A
  // fault to inject, not a property of the hardware: 0 (off) by default.
  double eavesdropper_fraction = 0.0;
  // scheme kWerner only (the photonic fields above then play no part in
  // generation): each attempt heralds with `success_probability` the state
  // F |PHI+><PHI+| + (1-F)/3 (the other three Bell states), F =
  // werner_fidelity; an attempt lasts `attempt_duration`, or the round trip
  // to the farther end of the link (and at least an emission cycle) when 0.
  double werner_fidelity = 1.0;
  double success_probability = 1.0;
  Duration attempt_duration{0};

  double length_a_km() const { return length_km * station_fraction; }
  double length_b_km() const { return length_km * (1.0 - station_fraction); }
};

}  // namespace qnet::physical
