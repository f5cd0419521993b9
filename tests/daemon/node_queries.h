// What the multi-process tests ask a running qnetd over gRPC (Node.GetStatus,
// Node.GetRoutes) while they wait for links to come up, routes to converge
// or memory to be freed: one call each with a short (stretched) deadline,
// polled with WaitUntil (tests/common/wait_until.h).
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "qnet/v1/node_service.grpc.pb.h"
#include "security/client_endpoints.h"
#include "tests/common/wait_until.h"

namespace qnet::daemon::testing {

inline std::chrono::system_clock::time_point CallDeadline() {
  return std::chrono::system_clock::now() + qnet::testing::Scaled(std::chrono::milliseconds(2000));
}

inline absl::StatusOr<v1::GetStatusResponse> GetStatus(const std::string& address) {
  auto stub = v1::Node::NewStub(security::ClientChannel(address));
  grpc::ClientContext context;
  context.set_deadline(CallDeadline());
  v1::GetStatusResponse status;
  grpc::Status s = stub->GetStatus(&context, v1::GetStatusRequest(), &status);
  if (!s.ok()) return absl::UnavailableError(s.error_message());
  return status;
}

inline absl::StatusOr<v1::GetRoutesResponse> GetRoutes(const std::string& address) {
  auto stub = v1::Node::NewStub(security::ClientChannel(address));
  grpc::ClientContext context;
  context.set_deadline(CallDeadline());
  v1::GetRoutesResponse routes;
  grpc::Status s = stub->GetRoutes(&context, v1::GetRoutesRequest(), &routes);
  if (!s.ok()) return absl::UnavailableError(s.error_message());
  return routes;
}

// The daemon answers and every one of its neighbours (at least one) is connected.
inline bool AllNeighboursConnected(const std::string& address) {
  auto status = GetStatus(address);
  if (!status.ok() || status->neighbours_size() == 0) return false;
  for (const auto& n : status->neighbours()) {
    if (!n.connected()) return false;
  }
  return true;
}

// Waits until every neighbour of the daemon at `address` is connected.
inline ::testing::AssertionResult WaitConnected(const std::string& address) {
  return qnet::testing::WaitUntil(absl::StrCat("every link of ", address, " up"),
                                  [&] { return AllNeighboursConnected(address); }, std::chrono::seconds(10),
                                  std::chrono::milliseconds(100));
}

// The daemon answers and has no memory qubit in use.
inline bool MemoryFree(const std::string& address) {
  auto status = GetStatus(address);
  return status.ok() && status->memory_qubits_in_use() == 0;
}

// The daemon's route to `destination`, if it has one of `hops` hops (any
// number when 0).
inline std::optional<v1::RouteEntry> FindRoute(const std::string& address, const std::string& destination,
                                               size_t hops = 0) {
  auto routes = GetRoutes(address);
  if (!routes.ok()) return std::nullopt;
  for (const auto& r : routes->routes()) {
    if (r.destination() == destination && (hops == 0 || static_cast<size_t>(r.path_size()) == hops + 1)) return r;
  }
  return std::nullopt;
}

// Waits until `address` has a route to `destination` of `hops` hops (any
// number when 0). Adverts arrive in any order: a test that depends on the
// path waits for its length, not for any route.
inline absl::StatusOr<v1::RouteEntry> WaitRoute(const std::string& address, const std::string& destination,
                                                size_t hops = 0) {
  std::optional<v1::RouteEntry> route;
  auto found = qnet::testing::WaitUntil(absl::StrCat("a route of ", hops == 0 ? "any number of" : absl::StrCat(hops),
                                                     " hops from ", address, " to ", destination),
                                       [&] { return (route = FindRoute(address, destination, hops)).has_value(); },
                                       std::chrono::seconds(15), std::chrono::milliseconds(100));
  if (!found) return absl::DeadlineExceededError(found.message());
  return *route;
}

}  // namespace qnet::daemon::testing
