// Conversions between the network layer's state and its wire messages
// (times, Bell-diagonal estimates, decay rates, link-layer errors), and the
// one way its parts send a NetworkMessage to a neighbour. Internal to
// network/: shared by NetworkLayer's source files, AdvertFlooding and
// DatagramService.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "core/node_context.h"
#include "core/time.h"
#include "link/link_service.h"
#include "network/bell_diagonal.h"
#include "network/network_service.h"
#include "qnet/v1/network_messages.pb.h"

namespace qnet::network {

inline int64_t ToNs(TimePoint t) { return t.time_since_epoch().count(); }
inline TimePoint FromNs(int64_t ns) { return TimePoint(Duration(ns)); }

// T1/T2 on the wire: 0 stands for "no decay" (infinite or unset).
inline double RateToWire(double t) { return std::isfinite(t) && t > 0 ? t : 0.0; }

inline BellDiagonal StateFromWire(const v1::CircuitTrack& track) {
  BellDiagonal d;
  if (track.state_size() == 4) {
    for (int i = 0; i < 4; ++i) d.p[static_cast<size_t>(i)] = track.state(i);
  }
  return d;
}

inline void StateToWire(const BellDiagonal& d, v1::CircuitTrack* track) {
  track->clear_state();
  for (double p : d.p) track->add_state(p);
}

inline MemoryDecayRates HeadRatesFromWire(const v1::CircuitTrack& track) {
  MemoryDecayRates r;
  if (track.head_t1_s() > 0) r.t1_s = track.head_t1_s();
  if (track.head_t2_s() > 0) r.t2_s = track.head_t2_s();
  if (track.head_depolarising_time_s() > 0) r.depolarising_time_s = track.head_depolarising_time_s();
  return r;
}

inline NetworkError FromLinkError(link::LinkError e) {
  switch (e) {
    case link::LinkError::kUnsupported: return NetworkError::kUnsupported;
    case link::LinkError::kTimeout: return NetworkError::kTimeout;
    case link::LinkError::kNoResources: return NetworkError::kNoResources;
    case link::LinkError::kRejected: return NetworkError::kRejected;
    case link::LinkError::kExpired: return NetworkError::kPeerDown;
    case link::LinkError::kPeerDown: return NetworkError::kPeerDown;
    case link::LinkError::kCancelled: return NetworkError::kCancelled;
    case link::LinkError::kDeviceError: return NetworkError::kDeviceError;
  }
  return NetworkError::kDeviceError;
}

// A link layer's refusal (a status) as a network error.
inline NetworkError FromStatus(const absl::Status& s) {
  std::optional<link::LinkError> e = link::LinkErrorFromStatusCode(s.code());
  if (s.code() == absl::StatusCode::kInvalidArgument) return NetworkError::kDeviceError;
  return e.has_value() ? FromLinkError(*e) : NetworkError::kDeviceError;
}

inline void SendNetworkMessage(NodeContext& context, const std::string& neighbour, v1::NetworkMessage message) {
  v1::PeerMessage m;
  *m.mutable_network() = std::move(message);
  context.SendToNeighbour(neighbour, std::move(m));
}

}  // namespace qnet::network
