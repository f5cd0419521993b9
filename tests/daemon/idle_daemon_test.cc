// What an idle daemon sends its neighbours: heartbeats at the configured
// interval (at least five per silence limit) and no protocol messages, also
// at a large time scale. Many daemons share one machine (64 of a grid in
// bench/daemon_scale_bench.cc), so idle traffic is CPU every one of them pays.
#include <chrono>
#include <thread>

#include "gtest/gtest.h"
#include "in_process_daemons.h"
#include "tests/common/wait_until.h"

namespace qnet::daemon {
namespace {

using testing::InProcessNetwork;
using qnet::testing::WaitUntil;

NeighbourState StateOf(Daemon& d, const std::string& neighbour) {
  return d.loop().Call([&] {
    for (const NeighbourState& n : d.links().Neighbours()) {
      if (n.name == neighbour) return n;
    }
    return NeighbourState{};
  });
}

bool Connected(Daemon& d, const std::string& neighbour) { return StateOf(d, neighbour).connected; }

// Frames b receives from a over `window` of an idle link, after the link
// came up and its first messages (adverts) went through.
uint64_t IdleFramesReceived(InProcessNetwork& net, std::chrono::milliseconds window) {
  EXPECT_TRUE(WaitUntil("a - b up", [&] { return Connected(net[0], "b") && Connected(net[1], "a"); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const uint64_t before = StateOf(net[1], "a").frames_received;
  std::this_thread::sleep_for(window);
  return StateOf(net[1], "a").frames_received - before;
}

TEST(IdleDaemonTest, HeartbeatsFollowTheConfiguredIntervalAtMostAFifthOfTheSilenceLimit) {
  constexpr auto kWindow = std::chrono::milliseconds(2400);
  {
    // qnetd's defaults: 3 s silence limit, a heartbeat every 600 ms (4 in
    // the window; 12 at the former 200 ms).
    InProcessNetwork net({"a", "b"}, 1.0, [](DaemonOptions& o) { o.peer_timing = PeerLinkTiming{}; });
    ASSERT_TRUE(net.ok());
    const uint64_t frames = IdleFramesReceived(net, kWindow);
    EXPECT_GE(frames, 2u);
    EXPECT_LE(frames, 6u);
  }
  {
    // A 1 s silence limit: heartbeats every 200 ms (12 in the window).
    InProcessNetwork net({"a", "b"}, 1.0, [](DaemonOptions& o) {
      o.peer_timing = PeerLinkTiming{};
      o.peer_timing.silence_limit = std::chrono::milliseconds(1000);
    });
    ASSERT_TRUE(net.ok());
    EXPECT_GE(IdleFramesReceived(net, kWindow), 8u);
  }
}

TEST(IdleDaemonTest, AnIdleNetworkAtALargeTimeScaleSendsNoProtocolMessages) {
  // At S = 1000 a simulated 30 s advert refresh would re-flood every 30 ms
  // of wall time; the daemon refreshes every 30 s of wall time instead.
  InProcessNetwork net({"a", "b"}, 1.0, [](DaemonOptions& o) { o.time_scale = 1000; });
  ASSERT_TRUE(net.ok());
  ASSERT_TRUE(WaitUntil("a route from a to b", [&] {
    return net[0].loop().Call([&] {
      absl::StatusOr<v1::GetRoutesResponse> routes = net[0].Routes();
      return routes.ok() && routes->routes_size() == 1;
    });
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const uint64_t batches = StateOf(net[1], "a").batches_received;
  std::this_thread::sleep_for(std::chrono::seconds(1));  // 1000 simulated seconds
  EXPECT_EQ(StateOf(net[1], "a").batches_received, batches);
  EXPECT_TRUE(Connected(net[1], "a"));
}

}  // namespace
}  // namespace qnet::daemon
