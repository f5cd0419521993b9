// Node.Qkd requests as the daemon reads them (daemon::ToKeyRequest): the
// laser protocols' options reach the session, and values a gRPC client can
// send but no laser has are refused with the field named.
#include <cmath>
#include <limits>

#include "daemon/qkd_service.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qnet::daemon {
namespace {

using ::testing::HasSubstr;

v1::QkdRequest Laser(v1::QkdRequest::Protocol protocol) {
  v1::QkdRequest r;
  r.set_peer("bob");
  r.set_bits(100);
  r.set_protocol(protocol);
  return r;
}

TEST(QkdRequestTest, DecoyBb84TakesItsIntensitiesAndDefaults) {
  absl::StatusOr<keydist::KeyRequest> plain = ToKeyRequest(Laser(v1::QkdRequest::DECOY_BB84));
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->block.protocol, keydist::QkdProtocol::kBb84);
  EXPECT_EQ(plain->block.pairs, kDefaultDecoyPulsesPerBlock);
  ASSERT_TRUE(plain->block.post_processing.decoy.has_value());
  EXPECT_EQ(plain->block.post_processing.decoy->intensities.mean_photon_number, (std::array<double, 3>{0.5, 0.1, 0}));
  EXPECT_EQ(plain->block.post_processing.decoy->intensities.probability, (std::array<double, 3>{0.8, 0.1, 0.1}));

  v1::QkdRequest r = Laser(v1::QkdRequest::DECOY_BB84);
  r.set_mu(0.6);
  r.set_nu(0.2);
  for (double p : {0.5, 0.3, 0.2}) r.add_intensity_probabilities(p);
  absl::StatusOr<keydist::KeyRequest> set = ToKeyRequest(r);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->block.post_processing.decoy->intensities.mean_photon_number, (std::array<double, 3>{0.6, 0.2, 0}));
  EXPECT_EQ(set->block.post_processing.decoy->intensities.probability, (std::array<double, 3>{0.5, 0.3, 0.2}));

  absl::StatusOr<keydist::KeyRequest> wcp = ToKeyRequest(Laser(v1::QkdRequest::BB84_WCP));
  ASSERT_TRUE(wcp.ok()) << wcp.status();
  EXPECT_EQ(wcp->block.laser_mean_photon_number, 0.5);
  EXPECT_FALSE(wcp->block.post_processing.decoy.has_value());
}

TEST(QkdRequestTest, ImpossibleLaserSettingsAreRefusedNamingTheField) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  struct Case {
    v1::QkdRequest request;
    const char* says;
  };
  std::vector<Case> cases;
  {
    v1::QkdRequest r = Laser(v1::QkdRequest::DECOY_BB84);
    r.set_mu(-0.5);
    cases.push_back({r, "mu must be a mean photon number in (0, 100]"});
  }
  {
    v1::QkdRequest r = Laser(v1::QkdRequest::DECOY_BB84);
    r.set_nu(nan);
    cases.push_back({r, "nu must be a mean photon number in (0, 100]"});
  }
  {
    v1::QkdRequest r = Laser(v1::QkdRequest::DECOY_BB84);
    r.set_mu(0.1);
    r.set_nu(0.4);
    cases.push_back({r, "mu, nu, intensity_probabilities: "});
  }
  {
    v1::QkdRequest r = Laser(v1::QkdRequest::DECOY_BB84);
    r.add_intensity_probabilities(0.5);
    r.add_intensity_probabilities(0.5);
    cases.push_back({r, "intensity_probabilities takes three numbers"});
  }
  {
    v1::QkdRequest r = Laser(v1::QkdRequest::BB84_WCP);
    r.set_nu(0.1);
    cases.push_back({r, "BB84_WCP sends one intensity"});
  }
  {
    v1::QkdRequest r = Laser(v1::QkdRequest::BBM92);
    r.set_mu(0.5);
    cases.push_back({r, "mu, nu and intensity_probabilities are for DECOY_BB84 and BB84_WCP"});
  }
  {
    v1::QkdRequest r = Laser(v1::QkdRequest::DECOY_BB84);
    r.set_pairs_per_block(kMaxPulsesPerBlock + 1);
    cases.push_back({r, "pairs_per_block must be at most 10000000 (pulses)"});
  }
  {
    v1::QkdRequest r = Laser(v1::QkdRequest::BBM92);
    r.set_pairs_per_block(kMaxPairsPerBlock + 1);
    cases.push_back({r, "pairs_per_block must be at most 1000000, got"});
  }
  for (const Case& c : cases) {
    absl::StatusOr<keydist::KeyRequest> out = ToKeyRequest(c.request);
    ASSERT_FALSE(out.ok()) << c.says;
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(out.status().message()), HasSubstr(c.says));
  }
}

}  // namespace
}  // namespace qnet::daemon
