// End-to-end pairs across repeater chains in the simulator: swap outcomes and
// heralds compose into the right Pauli frame at any length, and the error
// rates match closed forms for the links' states.
#include <cmath>

#include "apps/pair_statistics.h"
#include "gtest/gtest.h"
#include "tests/network/network_harness.h"

namespace qnet::network {
namespace {

using qnet::testing::ChainYaml;
using qnet::testing::NetLog;
using qnet::testing::SimStackNetwork;
using std::chrono::seconds;

struct Ends {
  NetLog head, tail;
};

// Runs one request from n0 to n<hops> and waits for both ends to finish.
void RunRequest(SimStackNetwork& net, int hops, const EndToEndRequest& request, Ends& run, Duration limit) {
  const std::string tail = absl::StrCat("n", hops);
  ASSERT_TRUE(net.node(tail).network().RegisterReceiver(request.purpose_id,
                                                        run.tail.Handler(&net.device(tail))).ok());
  net.RunFor(std::chrono::milliseconds(1));  // routing adverts spread
  auto id = net.node("n0").network().Create(request, run.head.Handler(&net.device("n0")));
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(net.RunUntil([&] { return run.head.Ended() && run.tail.Ended(); }, limit))
      << "head pairs " << run.head.pairs.size() << " tail pairs " << run.tail.pairs.size();
}

// Double-click links with two-photon visibility V herald a mixture of the
// announced psi state and the other psi state with weight (1-V)/2: a Z-type
// frame error. Across k links the Z-type errors compose, so in the X basis
// the end-to-end error rate is (1 - V^k)/2 and in the Z basis it is 0.
TEST(NetworkChainSimTest, VisibilityErrorsComposeAcrossChainsOfAnyLength) {
  const double v = 0.9;
  for (int hops : {1, 2, 3, 5, 8}) {
    SCOPED_TRACE(absl::StrCat(hops, " hops"));
    SimStackNetwork net(ChainYaml(hops, "ideal", 1.0, "", "    visibility: 0.9\n"), 100 + hops);
    EndToEndRequest r;
    r.remote_node = absl::StrCat("n", hops);
    r.number = 1500;
    r.type = link::RequestType::kMeasure;
    r.basis = link::BasisChoice::kBb84;
    Ends run;
    RunRequest(net, hops, r, run, seconds(60));
    ASSERT_TRUE(run.head.failed.empty()) << run.head.failed[0].message;
    ASSERT_EQ(run.head.pairs.size(), 1500u);
    ASSERT_EQ(run.tail.pairs.size(), 1500u);
    auto matched = qnet::testing::MatchEnds(run.head.pairs, run.tail.pairs);
    ASSERT_EQ(matched.size(), 1500u);
    apps::PairStatistics stats = apps::AnalysePairs(matched);
    EXPECT_EQ(stats.z.errors, 0u);
    const double expected = (1 - std::pow(v, hops)) / 2;
    const double sigma = std::sqrt(expected * (1 - expected) / static_cast<double>(stats.x.pairs));
    EXPECT_NEAR(stats.x.rate(), expected, 5 * sigma + 1e-9) << "X pairs " << stats.x.pairs;
    for (const PairDelivered& p : run.head.pairs) {
      EXPECT_EQ(p.path.size(), static_cast<size_t>(hops + 1));
    }
    qnet::testing::ExpectNetworkClean(net);
  }
}

}  // namespace
}  // namespace qnet::network
