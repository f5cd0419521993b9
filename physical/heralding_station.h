// The heralding station in the middle of one link, simulated by the link's
// node_a (the "station host"). Once both ends are ready for a generation it
// samples how many attempts the first success takes and which click pattern
// heralds it, from the link's AttemptModel, and prepares the two memory
// qubits in the state that pattern leaves behind. It reports each outcome to
// the host's physical layer, which tells the two ends. One random draw per
// generation however small the success probability: attempts are never
// simulated one by one.
//
// Eavesdropper (a fault to inject, for QKD and Bell tests): "Eve" sits on the
// fibre from node_a to the station. On a fraction x of the heralded pairs
// (LinkPhysics::eavesdropper_fraction, or SetEavesdropperFraction at run
// time) she measures node_a's photon, which is entangled with node_a's memory
// qubit, in a basis she picks uniformly from {Z, X}, records the outcome, and
// resends a photon in the state she found. The herald is unchanged (she
// resends into the same mode), and what it leaves behind is exactly the pair
// with node_a's memory qubit projectively measured in her basis, the outcome
// unknown to the nodes: rho -> sum_k (P_k x I) rho (P_k x I). So the station
// does just that to the prepared state: a Born-rule measurement of qubit_a,
// with her own seeded stream, after preparation and before reporting. (The
// memory's decay is applied later from the emission time, so the order
// emission, Eve, decay is kept.) For PHI+ measured by both ends in the same
// random BB84 basis, she dephases in the other basis half the time, which
// flips the parity with probability 1/2: QBER = x/4 in each basis.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/lifetime.h"
#include "core/node_context.h"
#include "core/rng.h"
#include "core/time.h"
#include "physical/heralding_model.h"
#include "physical/params.h"
#include "physical/state_backend.h"
#include "quantum/bell.h"
#include "quantum/quantum_system.h"

namespace qnet::physical {

// What the eavesdropper on one link has done since the station started.
struct EavesdropperStats {
  uint64_t pairs_seen = 0;         // heralded pairs prepared (whether she was on or not)
  uint64_t pairs_intercepted = 0;  // of those, the ones she measured
  // Her records: recorded[basis][outcome], basis 0 = Z, 1 = X; outcome 0 is
  // the +1 eigenstate. The entries sum to pairs_intercepted.
  std::array<std::array<uint64_t, 2>, 2> recorded{};
};

class HeraldingStation {
 public:
  enum class End { kA, kB };

  // One end's readiness for a generation.
  struct Request {
    quantum::QubitId qubit = 0;       // the end's memory qubit to entangle
    double bright_state_alpha = 0.0;  // single-click only
    uint64_t max_attempts = 0;        // 0 = until cancelled
  };

  struct Outcome {
    uint64_t generation_id = 0;
    // OK: heralded. DeadlineExceeded: max_attempts passed without success.
    // InvalidArgument: the ends disagree on the parameters, or the model
    // rejects them. Unavailable: the qubits' state could not be reached.
    absl::Status status;
    quantum::BellState label = quantum::BellState::kPhiPlus;
    uint64_t attempts = 0;
    TimePoint click_time;  // station time of the successful (or last) attempt
    quantum::QubitId qubit_a = 0;
    quantum::QubitId qubit_b = 0;
  };
  using OutcomeSink = std::function<void(const Outcome&)>;

  // `report_lead`: how long before the click the outcome is reported (the
  // host forwards B's herald over the whole link, L_A/c longer than the
  // station's own signal would take). The sink never runs inside a call to
  // this class.
  HeraldingStation(NodeContext& host, StateBackend& backend, LinkPhysics link, NodeHardware a,
                   NodeHardware b, Duration report_lead, OutcomeSink sink);
  ~HeraldingStation();
  HeraldingStation(const HeraldingStation&) = delete;
  HeraldingStation& operator=(const HeraldingStation&) = delete;

  // Notes one end's readiness; attempts start when both ends are ready.
  // AlreadyExists if that end is already ready for this generation.
  absl::Status Ready(End end, uint64_t generation_id, const Request& request);
  // Stops the generation: nothing is reported for it, and nothing is
  // prepared unless the outcome was already reported. Returns whether the
  // generation was known.
  bool Cancel(uint64_t generation_id);
  void CancelAll();

  // The attempt model for a bright-state parameter, computed once per value.
  absl::StatusOr<const AttemptModel*> Model(double bright_state_alpha);

  const LinkPhysics& link() const { return link_; }
  size_t active_generations() const { return generations_.size(); }

  // The fraction of heralded pairs the eavesdropper measures from now on
  // (pairs already heralded keep their fate). InvalidArgument unless it is a
  // number in [0, 1].
  absl::Status SetEavesdropperFraction(double fraction);
  double eavesdropper_fraction() const { return link_.eavesdropper_fraction; }
  const EavesdropperStats& eavesdropper_stats() const { return eavesdropper_stats_; }

 private:
  struct Generation {
    std::optional<Request> a;
    std::optional<Request> b;
    TimerId timer = kNoTimer;
    uint64_t serial = 0;  // tells a stale backend completion from a live one
  };

  void Start(uint64_t generation_id, Generation& generation);
  // Schedules `outcome` to be reported at `at` (or now, if that has passed).
  void ReportAt(TimePoint at, Generation& generation, Outcome outcome,
                const Eigen::Matrix4cd* state);
  void Report(uint64_t serial, Outcome outcome, std::optional<Eigen::Matrix4cd> state);
  // Eve's turn on a freshly prepared pair: measures qubit_a with probability
  // eavesdropper_fraction.
  absl::Status Eavesdrop(quantum::QuantumSystem& system, quantum::QubitId qubit_a);

  NodeContext& host_;
  StateBackend& backend_;
  LinkPhysics link_;
  NodeHardware a_;
  NodeHardware b_;
  Duration report_lead_;
  OutcomeSink sink_;
  Rng rng_;
  Rng eavesdropper_rng_;  // her own stream, so switching her on shifts no other draw
  EavesdropperStats eavesdropper_stats_;
  uint64_t next_serial_ = 1;
  absl::flat_hash_map<uint64_t, Generation> generations_;
  // Keyed by the bit pattern of alpha: the same parameters give the same model.
  absl::flat_hash_map<uint64_t, AttemptModel> models_;
  Lifetime lifetime_;  // last: ends before the members its callbacks use
};

}  // namespace qnet::physical
