// The physical layer of one node: heralded entanglement generation on each of
// its links, offered to the link layer above. Both ends of a link call
// StartGeneration with the same generation id; the link's node_a also hosts
// the simulated heralding station, which starts attempts once both ends are
// ready and heralds the outcome to both. A success leaves the two memory
// slots holding the entangled pair, labelled with the Bell state the station
// announced; both ends learn the same label.
//
// Timing: the station's click happens at t_click = t_start + K x attempt
// duration, where t_start is when the host knows both ends are ready. Each end
// hears the herald at t_click + (its distance to the station)/c. Each memory
// qubit decoheres from its emission in the successful attempt,
// t_click - (its distance)/c, so waiting for the herald costs fidelity. (An
// approximation: the attempt model's state is taken as the state at emission,
// and the emission of earlier, failed attempts is not modelled as memory
// time, since each attempt re-initialises the qubit.)
//
// Ownership: the slot stays allocated to the caller on every path (the caller
// frees it); a generation that does not succeed leaves no qubit state behind.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/node_context.h"
#include "core/time.h"
#include "physical/heralding_station.h"
#include "physical/params.h"
#include "physical/quantum_device.h"
#include "physical/state_backend.h"
#include "qnet/v1/peer_messages.pb.h"
#include "quantum/bell.h"

namespace qnet::physical {

// One of the node's links, as the node's physical layer needs it.
struct PhysicalLink {
  LinkPhysics physics;      // node_a / node_b name the ends; this node is one of them
  NodeHardware far_end;     // the hardware of the other end
};

struct GenerationParams {
  // Single-click bright-state parameter: P(emitting) per attempt; trades rate
  // for fidelity. Both ends must pass the same value. Ignored by double-click
  // models.
  double bright_state_alpha = 0.1;
  // Give up after this many attempts (DeadlineExceeded); 0 = until aborted.
  // Both ends must pass the same value.
  uint64_t max_attempts = 0;
};

struct GenerationResult {
  // OK: the slot holds a heralded qubit entangled with the far end's slot.
  // Cancelled: the far end aborted. Unavailable: the link went down.
  // DeadlineExceeded: max_attempts without success. InvalidArgument: the ends
  // disagree on the parameters or the link cannot generate with them.
  absl::Status status;
  quantum::BellState label = quantum::BellState::kPhiPlus;  // the heralded Bell state (OK only)
  int slot = -1;
  TimePoint heralded_at;  // when the herald reached this node
  TimePoint emitted_at;   // when this node's qubit left for the successful attempt (OK only)
  uint64_t attempts = 0;  // attempts the station made (0 if it never started)
};

class PhysicalLayer {
 public:
  using GenerationCallback = std::function<void(const GenerationResult&)>;

  // InvalidArgument if this node (context.node_name()) is not an end of a
  // link, two links share a name or a neighbour, or a link's geometry is
  // impossible (negative length, station outside the fibre).
  static absl::StatusOr<std::unique_ptr<PhysicalLayer>> Create(NodeContext& context,
                                                               QuantumDevice& device,
                                                               StateBackend& backend,
                                                               NodeHardware hardware,
                                                               std::vector<PhysicalLink> links);
  ~PhysicalLayer();
  PhysicalLayer(const PhysicalLayer&) = delete;
  PhysicalLayer& operator=(const PhysicalLayer&) = delete;

  // Starts generation `generation_id` on `link` into the allocated, idle
  // `slot`. `done` runs exactly once, on the event loop and never inside
  // this call, unless the caller itself aborts the generation. Fails at once
  // (and `done` never runs) for an unknown link, a generation id already
  // under way on the link, or a slot the device cannot use.
  absl::Status StartGeneration(const std::string& link, uint64_t generation_id, int slot,
                               const GenerationParams& params, GenerationCallback done);
  // Stops the generation at both ends: the far end's callback gets
  // Cancelled, this end's callback does not run, and the slot is left idle
  // (still allocated). Returns false if no such generation is under way here.
  // (A success the far end had already heard stands there.)
  bool AbortGeneration(const std::string& link, uint64_t generation_id);

  // Entry points for the node's stack dispatcher.
  void OnPhysicalMessage(const std::string& from, const v1::PhysicalMessage& message);
  // Fails every generation on links to `neighbour` with Unavailable.
  void OnNeighbourDown(const std::string& neighbour);

  // Generations under way at this end (started and not yet finished).
  size_t active_generations() const;
  // Messages that named an unknown link, came from the wrong node, or did
  // not fit any generation's state (a protocol bug or a stale message).
  uint64_t ignored_messages() const { return ignored_messages_; }

 private:
  struct Generation {
    uint64_t id = 0;
    int slot = -1;
    GenerationCallback done;
    quantum::QubitId qubit = 0;
    TimerId delivery_timer = kNoTimer;  // herald heard, acting at its arrival time
  };
  struct Ended {
    absl::Status status;
    bool started_here = false;
  };
  struct LinkState {
    PhysicalLink link;
    bool is_station_host = false;
    std::string far_end;
    Duration to_station{0};  // fibre delay from this node to the station
    std::unique_ptr<HeraldingStation> station;  // station host only
    absl::flat_hash_map<uint64_t, Generation> generations;
    // Generations that ended here, or that the far end ended before this end
    // started (then a late StartGeneration fails with how it ended). Late
    // messages for them are ignored. The most recent kEndedMemory only.
    absl::flat_hash_map<uint64_t, Ended> ended;
    std::deque<uint64_t> ended_order;
  };
  static constexpr size_t kEndedMemory = 4096;

  PhysicalLayer(NodeContext& context, QuantumDevice& device, StateBackend& backend, NodeHardware hardware);

  void Send(const LinkState& link, v1::PhysicalMessage message);
  void NoteEnded(LinkState& link, uint64_t generation_id, const absl::Status& why, bool started_here);
  // Removes the generation, cancels its timer, releases its qubit unless it
  // succeeded (then the qubit is bound to the slot), and runs its callback.
  void Finish(LinkState& link, uint64_t generation_id, GenerationResult result);
  // Drops the generation without a callback (this end aborted it).
  void Drop(LinkState& link, uint64_t generation_id);
  // Frees the slot's wait and discards any state of the generation's qubit.
  void ReleaseQubit(const Generation& generation);

  void OnStationOutcome(LinkState& link, const HeraldingStation::Outcome& outcome);
  void OnReady(LinkState& link, const v1::GenerationReady& ready);
  void OnAbort(LinkState& link, uint64_t generation_id);
  void OnHerald(LinkState& link, const v1::Herald& herald);
  void OnStationError(LinkState& link, const v1::StationError& error);
  // Acts on a herald (`failure` OK means success) at this node's arrival time.
  void ScheduleDelivery(LinkState& link, uint64_t generation_id, absl::Status failure,
                        quantum::BellState label, uint64_t attempts, TimePoint click_time);
  void Deliver(LinkState& link, uint64_t generation_id, const absl::Status& failure,
               quantum::BellState label, uint64_t attempts, TimePoint click_time);

  NodeContext& context_;
  QuantumDevice& device_;
  StateBackend& backend_;
  NodeHardware hardware_;
  absl::flat_hash_map<std::string, std::unique_ptr<LinkState>> links_;
  uint64_t ignored_messages_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace qnet::physical
