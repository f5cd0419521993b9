// How many long-running Node requests (Entangle, Teleport, Qkd streams) one
// client may have in flight at a daemon: each holds state on the node's
// event loop until it ends, so one client opening streams without bound
// could exhaust the daemon for everyone. A client is its certificate's
// identity with TLS, its connection's address without (insecure-local-only,
// where any local process is trusted anyway). Past the limit a request ends
// at once with RESOURCE_EXHAUSTED naming the client and the limit.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace qnet::daemon {

inline constexpr uint32_t kDefaultMaxRequestsPerClient = 64;

class ClientRequestLimit : public std::enable_shared_from_this<ClientRequestLimit> {
 public:
  explicit ClientRequestLimit(uint32_t max_per_client) : max_(max_per_client) {}

  // A ticket held for as long as the request runs (the count goes down when
  // the last copy goes), or RESOURCE_EXHAUSTED. Thread-safe.
  using Ticket = std::shared_ptr<void>;
  absl::StatusOr<Ticket> Admit(const std::string& client, absl::string_view method) {
    std::lock_guard<std::mutex> lock(mu_);
    uint32_t& in_flight = in_flight_[client];
    if (in_flight >= max_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          method, " refused: ", client, " already has ", in_flight, " requests in flight at this daemon (at most ",
          max_, " per client, qnetd --max-requests-per-client); wait for one to end or cancel one"));
    }
    ++in_flight;
    std::weak_ptr<ClientRequestLimit> self = weak_from_this();
    return Ticket(static_cast<void*>(nullptr), [self, client](void*) {
      if (auto limit = self.lock()) limit->Release(client);
    });
  }

  uint32_t InFlight(const std::string& client) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = in_flight_.find(client);
    return it == in_flight_.end() ? 0 : it->second;
  }
  // Over all clients.
  uint32_t TotalInFlight() const {
    std::lock_guard<std::mutex> lock(mu_);
    uint32_t total = 0;
    for (const auto& [client, n] : in_flight_) total += n;
    return total;
  }
  uint32_t max_per_client() const { return max_; }

 private:
  void Release(const std::string& client) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = in_flight_.find(client);
    if (it == in_flight_.end()) return;
    if (--it->second == 0) in_flight_.erase(it);  // the map holds active clients only
  }

  const uint32_t max_;
  mutable std::mutex mu_;
  std::map<std::string, uint32_t> in_flight_;
};

}  // namespace qnet::daemon
