// Classical datagrams between any two nodes: the network layer's best-effort
// message service (QKD post-processing and teleport corrections travel this
// way). A datagram is forwarded hop by hop along the routing table's next
// hop, with a hop limit; it arrives in order while routes stay put, and is
// dropped (and counted) where there is no receiver or no way on.
// NetworkLayer owns one and exposes it through its datagram methods.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "core/lifetime.h"
#include "core/node_context.h"
#include "network/routing_adverts.h"
#include "qnet/v1/network_messages.pb.h"

namespace qnet::network {

class DatagramService {
 public:
  using Handler = std::function<void(const std::string& source, const std::string& payload)>;

  // Routes come from `routing`, which must outlive this.
  DatagramService(NodeContext& context, const AdvertFlooding& routing);
  DatagramService(const DatagramService&) = delete;
  DatagramService& operator=(const DatagramService&) = delete;

  // AlreadyExists if the purpose id has a receiver; InvalidArgument for an empty handler.
  absl::Status RegisterReceiver(uint32_t purpose_id, Handler handler);
  absl::Status UnregisterReceiver(uint32_t purpose_id);
  // NotFound "NO_ROUTE: ..." if the destination cannot be reached now.
  // The handler at the destination runs on its event loop (never inside this call).
  absl::Status Send(const std::string& destination, uint32_t purpose_id, std::string payload);
  // A datagram from a neighbour (or this node): delivered here or forwarded.
  void OnDatagram(v1::Datagram datagram);

  uint64_t dropped() const { return dropped_; }

 private:
  const std::string& Where() const { return context_.node_name(); }

  NodeContext& context_;
  const AdvertFlooding& routing_;
  absl::flat_hash_map<uint32_t, Handler> receivers_;
  uint64_t dropped_ = 0;
  Lifetime lifetime_;
};

}  // namespace qnet::network
