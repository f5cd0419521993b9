// Two daemons that ask each other's hardware plane for qubits neither holds
// at the same time (found by bench/daemon_scale_bench.cc: on the 64-daemon
// grid at time scale 100, g06 and g07 waited on each other's MoveGroup for
// the full 10 s move deadline and a request failed). A holder asked about a
// qubit it knows nothing of waits for its own fetches in flight (one may
// bring the qubit's group), but not, when the requester only guessed the
// holder from the qubit id, for fetches that ask the requester. (Not
// waiting for those whatever the requester knew was tried in 1a8896a and
// was wrong: a requester that had just passed the group on was told "not
// found"; see distributed_state_backend_test's ScriptedBackendTest.)
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
