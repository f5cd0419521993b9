#include "sim/sim_channel.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sim/sim_network.h"

namespace qnet::sim {

absl::Status ChannelOptions::Validate() const {
  if (extra_delay < Duration::zero()) {
    return absl::InvalidArgumentError(
        absl::StrCat("channel extra_delay must be >= 0, got ", FormatDuration(extra_delay)));
  }
  if (jitter < Duration::zero()) {
    return absl::InvalidArgumentError(absl::StrCat("channel jitter must be >= 0, got ", FormatDuration(jitter)));
  }
  if (!(loss_probability >= 0.0 && loss_probability <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("channel loss_probability must be in [0, 1], got ", loss_probability));
  }
  return absl::OkStatus();
}

SimChannel::SimChannel(SimNetwork& network, std::string name, uint32_t a, uint32_t b, double length_km,
                       const ChannelOptions& options, Rng rng)
    : network_(network),
      name_(std::move(name)),
      a_(a),
      b_(b),
      length_km_(length_km),
      fibre_delay_(FibreDelay(length_km)),
      options_(options),
      rng_(rng) {}

const std::string& SimChannel::node_a() const { return network_.nodes_[a_]->name_; }
const std::string& SimChannel::node_b() const { return network_.nodes_[b_]->name_; }

absl::Status SimChannel::SetOptions(const ChannelOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("link ", name_, ": ", s.message()));
  }
  options_ = options;
  return absl::OkStatus();
}

bool SimChannel::usable() const {
  return up_ && network_.nodes_[a_]->running_ && network_.nodes_[b_]->running_;
}

void SimChannel::TakeDown() {
  const bool was = usable();
  up_ = false;
  OnUsabilityChange(was);
}

void SimChannel::BringUp() {
  const bool was = usable();
  up_ = true;
  OnUsabilityChange(was);
}

void SimChannel::OnUsabilityChange(bool was_usable) {
  const bool now_usable = usable();
  if (was_usable == now_usable) return;
  if (!now_usable) ++epoch_;
  network_.NotifyNeighbour(a_, b_, now_usable);
  network_.NotifyNeighbour(b_, a_, now_usable);
}

std::optional<Duration> SimChannel::DeliveryDelay() {
  ++stats_.sent;
  if (!usable()) {
    ++stats_.dropped_down;
    return std::nullopt;
  }
  // Draw order (loss, then jitter) is fixed so a seed reproduces the run.
  if (options_.loss_probability > 0.0 && rng_.Bernoulli(options_.loss_probability)) {
    ++stats_.lost;
    return std::nullopt;
  }
  Duration d = delay();
  if (options_.jitter > Duration::zero()) {
    d += Duration(static_cast<int64_t>(rng_.UniformInt(static_cast<uint64_t>(options_.jitter.count()) + 1)));
  }
  return d;
}

void SimChannel::Send(uint32_t from, v1::PeerMessage message) {
  const std::optional<Duration> d = DeliveryDelay();
  if (!d.has_value()) return;
  const uint32_t to = Other(from);
  Simulator& sim = network_.simulator_;
  // Without jitter every message on a direction has the same delay, and the
  // simulator runs equal-time events in scheduling order, so delivery is FIFO.
  if (options_.serialize_messages) {
    std::string bytes;
    message.SerializeToString(&bytes);
    stats_.bytes += bytes.size();
    sim.ScheduleAfter(*d, [this, to, epoch = epoch_, bytes = std::move(bytes)] { DeliverBytes(to, epoch, bytes); });
  } else {
    uint32_t slot;
    if (free_in_flight_.empty()) {
      slot = static_cast<uint32_t>(in_flight_.size());
      in_flight_.emplace_back();
    } else {
      slot = free_in_flight_.back();
      free_in_flight_.pop_back();
    }
    InFlight& parked = in_flight_[slot];
    parked.message = std::move(message);
    parked.epoch = epoch_;
    parked.to = to;
    sim.ScheduleAfter(*d, [this, slot] { DeliverInFlight(slot); });
  }
}

void SimChannel::DeliverInFlight(uint32_t slot) {
  InFlight& parked = in_flight_[slot];
  // Out of the slot first: the receiver may send on this channel, which can
  // reuse the slot or grow in_flight_.
  const v1::PeerMessage message(std::move(parked.message));
  const uint32_t to = parked.to;
  const uint64_t epoch = parked.epoch;
  free_in_flight_.push_back(slot);
  Deliver(to, epoch, message);
}

void SimChannel::Send(uint32_t from, std::shared_ptr<const v1::PeerMessage> message) {
  if (options_.serialize_messages) return Send(from, v1::PeerMessage(*message));
  const std::optional<Duration> d = DeliveryDelay();
  if (!d.has_value()) return;
  network_.simulator_.ScheduleAfter(
      *d, [this, to = Other(from), epoch = epoch_, message = std::move(message)] { Deliver(to, epoch, *message); });
}

void SimChannel::Deliver(uint32_t to, uint64_t epoch, const v1::PeerMessage& message) {
  if (epoch != epoch_ || !usable()) {
    ++stats_.dropped_down;
    return;
  }
  network_.Deliver(to, Other(to), message, stats_);
}

void SimChannel::DeliverBytes(uint32_t to, uint64_t epoch, const std::string& bytes) {
  v1::PeerMessage message;
  // Our own serialisation cannot fail to parse; if it ever did, the wire
  // format is broken and silently dropping would hide it.
  if (!message.ParseFromString(bytes)) {
    std::fprintf(stderr, "qnet sim: link %s: a message failed to parse after serialisation\n", name_.c_str());
    std::abort();
  }
  Deliver(to, epoch, message);
}

}  // namespace qnet::sim
