// Waiting time for an end-to-end pair on a swap-ASAP repeater chain with
// deterministic swaps and ideal memories: every link retries independently
// until it succeeds (geometric attempts with success probability p), the
// repeaters swap as soon as both sides hold a pair, so the pair is there
// when the slowest link succeeds. The mean number of attempt periods is
// E[max of k geometric(p)] = sum_{j=1..k} (-1)^(j+1) C(k,j) / (1 - (1-p)^j)
// (e.g. Shchukin, Schmidt, van Loock, PRA 100, 032322 (2019), deterministic
// swapping). Classical signalling adds a few link delays, which a low p
// makes small against the wait.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "physical/calibration.h"
#include "tests/network/network_harness.h"

namespace qnet::network {
namespace {

using qnet::testing::ChainYaml;
using qnet::testing::NetLog;
using qnet::testing::SimStackNetwork;

double ExpectedMaxOfGeometrics(int k, double p) {
  double sum = 0.0;
  double binomial = 1.0;  // C(k, j)
  for (int j = 1; j <= k; ++j) {
    binomial = binomial * (k - j + 1) / j;
    sum += (j % 2 == 1 ? 1.0 : -1.0) * binomial / (1.0 - std::pow(1.0 - p, j));
  }
  return sum;
}

TEST(NetworkWaitingTimeSimTest, MeanWaitMatchesTheMaximumOfTheLinksGeometricWaits) {
  for (int hops : {1, 2, 4, 8, 16}) {
    SCOPED_TRACE(absl::StrCat(hops, " hops"));
    // Detectors at 2% efficiency: p ~ 2e-4 per attempt on 1 km links.
    SimStackNetwork net(ChainYaml(hops, "ideal", 1.0, "", "    detector_efficiency: 0.02\n"), 300 + hops);
    const config::NetworkConfig& config = net.config();
    auto calibration = physical::Calibrate(config.nodes[0].hardware, config.nodes[1].hardware, config.links[0], 0.0);
    ASSERT_TRUE(calibration.ok()) << calibration.status();
    const double p = calibration->success_probability;
    const double period_s = ToSeconds(calibration->attempt_duration);
    ASSERT_GT(p, 1e-4);
    ASSERT_LT(p, 5e-4);

    const std::string tail = absl::StrCat("n", hops);
    NetLog tail_log;
    ASSERT_TRUE(net.node(tail).network().RegisterReceiver(0, tail_log.Handler(&net.device(tail))).ok());
    net.RunFor(std::chrono::milliseconds(1));
    const int requests = 300;
    std::vector<double> waits;
    for (int i = 0; i < requests; ++i) {
      NetLog head;
      TimePoint delivered_at;
      EndToEndRequest r;
      r.remote_node = tail;
      r.number = 1;
      r.type = link::RequestType::kMeasure;
      const TimePoint start = net.Now();
      auto id = net.node("n0").network().Create(
          r, head.Handler(nullptr, [&](const PairDelivered&) { delivered_at = net.Now(); }));
      ASSERT_TRUE(id.ok()) << id.status();
      ASSERT_TRUE(net.RunUntil([&] { return head.Ended(); }, std::chrono::seconds(60)));
      ASSERT_EQ(head.pairs.size(), 1u) << (head.failed.empty() ? "" : head.failed[0].message);
      waits.push_back(ToSeconds(delivered_at - start));
      // The next request starts on a quiet network.
      ASSERT_TRUE(net.RunUntil(
          [&] {
            for (int n = 0; n <= hops; ++n) {
              if (net.node(absl::StrCat("n", n)).network().active_circuits() != 0) return false;
            }
            return true;
          },
          std::chrono::seconds(1)));
    }
    double mean = 0.0, square = 0.0;
    for (double w : waits) {
      mean += w;
      square += w * w;
    }
    mean /= requests;
    const double sigma = std::sqrt((square / requests - mean * mean) / requests);
    const double expected = ExpectedMaxOfGeometrics(hops, p) * period_s;
    // Signalling: set-up to the tail and back, the link requests' hand-shake,
    // the heralds, the track to the tail and the verdict back: well under 12
    // one-way path delays plus a few attempt periods.
    const double path_delay_s = hops * ToSeconds(FibreDelay(1.0));
    const double signalling_s = 12 * path_delay_s + 4 * period_s;
    EXPECT_GT(mean, expected - 5 * sigma) << "expected " << expected << " s";
    EXPECT_LT(mean, expected + 5 * sigma + signalling_s) << "expected " << expected << " s";
    // The alternative a broken swap-ASAP would show: links one after another.
    if (hops >= 2) {
      EXPECT_LT(mean, hops / p * period_s * 0.8);
    }
    RecordProperty(absl::StrCat("mean_wait_ms_", hops), std::to_string(mean * 1e3));
    RecordProperty(absl::StrCat("expected_wait_ms_", hops), std::to_string(expected * 1e3));
  }
}

}  // namespace
}  // namespace qnet::network
