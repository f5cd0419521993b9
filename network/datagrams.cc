#include "network/datagrams.h"

#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "network/network_service.h"
#include "network/network_wire.h"

namespace qnet::network {

DatagramService::DatagramService(NodeContext& context, const AdvertFlooding& routing)
    : context_(context), routing_(routing) {}

absl::Status DatagramService::RegisterReceiver(uint32_t purpose_id, Handler handler) {
  if (!handler) return absl::InvalidArgumentError("a datagram receiver needs a handler");
  if (!receivers_.emplace(purpose_id, std::move(handler)).second) {
    return absl::AlreadyExistsError(
        absl::StrCat("datagram purpose id ", purpose_id, " already has a receiver at ", Where()));
  }
  return absl::OkStatus();
}

absl::Status DatagramService::UnregisterReceiver(uint32_t purpose_id) {
  if (receivers_.erase(purpose_id) == 0) {
    return absl::NotFoundError(absl::StrCat("datagram purpose id ", purpose_id, " has no receiver at ", Where()));
  }
  return absl::OkStatus();
}

absl::Status DatagramService::Send(const std::string& destination, uint32_t purpose_id, std::string payload) {
  v1::Datagram d;
  d.set_source(Where());
  d.set_destination(destination);
  d.set_purpose_id(purpose_id);
  d.set_payload(std::move(payload));
  d.set_hops_left(64);
  if (destination != Where()) {
    absl::StatusOr<Route> route = routing_.database().PathTo(Where(), destination);
    if (!route.ok()) return ToStatus(NetworkError::kNoRoute, std::string(route.status().message()));
  }
  // Delivered (or forwarded) from the event loop, never inside this call.
  context_.StartTimer(Duration(0), lifetime_.Guard([this, d = std::move(d)]() mutable { OnDatagram(std::move(d)); }));
  return absl::OkStatus();
}

void DatagramService::OnDatagram(v1::Datagram d) {
  if (d.destination() == Where()) {
    auto it = receivers_.find(d.purpose_id());
    if (it == receivers_.end()) {
      ++dropped_;
      return;
    }
    Handler handler = it->second;  // may unregister itself
    handler(d.source(), d.payload());
    return;
  }
  if (d.hops_left() == 0) {
    ++dropped_;
    return;
  }
  absl::StatusOr<Route> route = routing_.database().PathTo(Where(), d.destination());
  if (!route.ok() || !routing_.IsUp(route->path[1])) {
    ++dropped_;
    return;
  }
  d.set_hops_left(d.hops_left() - 1);
  v1::NetworkMessage m;
  *m.mutable_datagram() = std::move(d);
  SendNetworkMessage(context_, route->path[1], std::move(m));
}

}  // namespace qnet::network
