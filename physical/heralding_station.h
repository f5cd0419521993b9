// The heralding station in the middle of one link, simulated by the link's
// node_a (the "station host"). Once both ends are ready for a generation it
// samples how many attempts the first success takes and which click pattern
// heralds it, from the link's AttemptModel, and prepares the two memory
// qubits in the state that pattern leaves behind. It reports each outcome to
// the host's physical layer, which tells the two ends. One random draw per
// generation however small the success probability: attempts are never
// simulated one by one.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/node_context.h"
#include "core/rng.h"
#include "core/time.h"
#include "physical/heralding_model.h"
#include "physical/params.h"
#include "physical/state_backend.h"
#include "quantum/bell.h"
#include "quantum/quantum_system.h"

namespace qnet::physical {

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

  NodeContext& host_;
  StateBackend& backend_;
  LinkPhysics link_;
  NodeHardware a_;
  NodeHardware b_;
  Duration report_lead_;
  OutcomeSink sink_;
  Rng rng_;
  uint64_t next_serial_ = 1;
  absl::flat_hash_map<uint64_t, Generation> generations_;
  // Keyed by the bit pattern of alpha: the same parameters give the same model.
  absl::flat_hash_map<uint64_t, AttemptModel> models_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace qnet::physical
