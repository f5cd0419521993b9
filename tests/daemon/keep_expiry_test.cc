// KEEP pairs that expire unmeasured (the daemon's keep-hold passes) must
// leave nothing behind in the daemons' state backends (issue 14: each such
// pair left one more simulated qubit held while status showed 0 memory in
// use). In-process daemons on a chain a - b - c: pairs with a neighbour (link
// layer) and across b (network layer, swapped at b).
//
// The leak of the issue (26 -> 36 qubits over 10 expired pairs) no longer
// shows here nor through qnetctl on ideal-pair and chain3 (checked by hand
// with --keep-hold 0.05): groups left holding only another daemon's qubits
// are handed over to it (HandOver), which closed it. This test guards it.
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "daemon/entanglement_service.h"
#include "gtest/gtest.h"
#include "in_process_daemons.h"
#include "tests/common/wait_until.h"

namespace qnet::daemon {
namespace {

using qnet::testing::WaitUntil;
using testing::InProcessNetwork;

struct Held {
  size_t qubits = 0;     // simulated qubits this daemon's backend holds
  uint32_t in_use = 0;   // memory slots its stack has allocated
  size_t keep_pairs = 0; // KEEP pairs the entanglement service holds for a client
};

Held HeldBy(Daemon& d) {
  return d.loop().Call([&] {
    return Held{d.backend().system().qubit_count(), d.stack().memory_qubits_in_use(), d.entanglement().held_pairs()};
  });
}

// One KEEP request for `pairs` pairs from node 0 to `remote`: how it ended.
absl::Status RunKeepRequest(Daemon& from, const std::string& remote, uint32_t pairs) {
  auto ended = std::make_shared<std::optional<absl::Status>>();
  v1::EntangleRequest request;
  request.set_remote_node(remote);
  request.set_pairs(pairs);
  request.set_type(v1::EntangleRequest::KEEP);
  const absl::Status started = from.loop().Call([&] {
    return from.entanglement()
        .Entangle(request, {.event = [](v1::EntangleEvent) {}, .end = [ended](absl::Status s) { *ended = s; }})
        .status();
  });
  if (!started.ok()) return started;
  if (!WaitUntil("the KEEP request ends", [&] { return from.loop().Call([&] { return ended->has_value(); }); })) {
    return absl::DeadlineExceededError("the KEEP request did not end");
  }
  return from.loop().Call([&] { return ended->value(); });
}

TEST(KeepExpiryTest, ExpiredKeepPairsLeaveNoQubitsInTheBackends) {
  // Held for 1 ms of simulated time (time scale 1): they expire unmeasured.
  InProcessNetwork net({"a", "b", "c"}, 1.0, [](DaemonOptions& o) { o.keep_hold = std::chrono::milliseconds(1); });
  ASSERT_TRUE(net.ok());
  ASSERT_TRUE(WaitUntil("routes a - c over b", [&] {
    return net[0].loop().Call([&] {
      auto route = net[0].stack().network().routes().PathTo("a", "c");
      return route.ok() && route->hops() == 2;
    });
  }));
  constexpr int kRequests = 10;
  for (int i = 0; i < kRequests; ++i) {
    const absl::Status link_level = RunKeepRequest(net[0], "b", 2);
    ASSERT_TRUE(link_level.ok()) << "link-layer request " << i << ": " << link_level;
    const absl::Status end_to_end = RunKeepRequest(net[0], "c", 1);
    ASSERT_TRUE(end_to_end.ok()) << "end-to-end request " << i << ": " << end_to_end;
  }
  // Every pair expires; hand-overs and discards between the daemons settle.
  for (size_t i = 0; i < net.size(); ++i) {
    EXPECT_TRUE(WaitUntil("node " + std::to_string(i) + "'s backend holds only the qubits in use", [&] {
      const Held h = HeldBy(net[i]);
      return h.keep_pairs == 0 && h.in_use == 0 && h.qubits == h.in_use;
    })) << "node " << i << ": " << HeldBy(net[i]).qubits << " qubits held, " << HeldBy(net[i]).in_use
        << " memory in use, " << HeldBy(net[i]).keep_pairs << " KEEP pairs held";
  }
}

}  // namespace
}  // namespace qnet::daemon
