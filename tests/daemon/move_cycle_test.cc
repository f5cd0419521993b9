// Two daemons that each ask the other for a qubit neither knows of, on a
// hint (here the qubit id's node: no record or herald names a holder), must
// not wait for each other. DistributedStateBackend::HandleMove answers such
// a request only after its own in-flight fetches end (one may bring the
// qubit's group); a request on a hint waits only for fetches that ask other
// daemons. Before that rule the two waited for each other until the RPC
// deadline and both operations failed with "the holder ... is unreachable"
// (seen on the 64-daemon grid at time scale 100, bench/daemon_scale_bench.cc).
// The scripted cases, including the request by record that must wait, are
// in distributed_state_backend_test.cc.
#include <chrono>
#include <future>
#include <memory>
#include <vector>

#include "daemon/distributed_state_backend.h"
#include "gtest/gtest.h"
#include "in_process_daemons.h"
#include "physical/state_backend.h"

namespace qnet::daemon {
namespace {

using physical::MakeQubitId;
using quantum::QuantumSystem;
using testing::InProcessNetwork;

std::future<absl::Status> StartOp(Daemon& d, std::vector<QubitId> qubits) {
  auto done = std::make_shared<std::promise<absl::Status>>();
  auto result = done->get_future();
  d.loop().Post([&d, qubits, done] {
    d.backend().WithLocalQubits(qubits, [done](absl::StatusOr<QuantumSystem*> system) {
      done->set_value(system.status());
    });
  });
  return result;
}

TEST(MoveCycleTest, TwoDaemonsAskingEachOtherForUnknownQubitsDoNotWaitForEachOther) {
  InProcessNetwork net({"a", "b"}, 1.0, [](DaemonOptions& o) { o.move_deadline = std::chrono::seconds(3); });
  ASSERT_TRUE(net.ok());
  const auto start = std::chrono::steady_clock::now();
  // Each asks the other (the qubit id's node) for a qubit that exists nowhere.
  std::future<absl::Status> at_b = StartOp(net[1], {MakeQubitId(0, 5)});
  std::future<absl::Status> at_a = StartOp(net[0], {MakeQubitId(1, 5)});
  const absl::Status a = at_a.get();
  const absl::Status b = at_b.get();
  EXPECT_TRUE(a.ok()) << a;  // absent, as for one daemon alone (QubitsThatExistNowhereAreAbsent)
  EXPECT_TRUE(b.ok()) << b;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

}  // namespace
}  // namespace qnet::daemon
