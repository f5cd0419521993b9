// Test harness for key distribution: a simulated network (network-file YAML)
// with a KeyDistribution on every node, recorders for the initiator's and
// the responders' results, and a runner for one session.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "keydist/key_distribution.h"
#include "qkd/binary_entropy.h"
#include "tests/network/network_harness.h"

namespace qnet::testing {

struct ResponderRecord {
  std::string initiator;
  keydist::SessionId id = 0;
  absl::StatusOr<keydist::QkdResult> result;
};

struct SessionRecord {
  keydist::SessionId id = 0;
  std::optional<absl::StatusOr<keydist::QkdResult>> result;
  std::vector<keydist::QkdProgress> progress;
  TimePoint started, ended;
};

class KeyNetwork {
 public:
  // Key distribution runs in every node's stack (stack::NodeStack builds it).
  KeyNetwork(std::string_view yaml, uint64_t seed) : net_(yaml, seed) {
    for (const config::NodeConfig& n : net_.config().nodes) Observe(n.name);
    net_.RunFor(std::chrono::milliseconds(1));  // routing adverts spread
  }

  SimStackNetwork& net() { return net_; }
  keydist::KeyDistribution& kd(const std::string& node) {
    keydist::KeyDistribution* kd = net_.node(node).key_distribution();
    EXPECT_NE(kd, nullptr) << "key distribution is stopped at " << node;
    return *kd;
  }
  const std::vector<ResponderRecord>& responded(const std::string& node) { return responded_[node]; }

  // Key distribution starts again at `node`, with the node's physical layer
  // (BB84 photons) unless `with_physical` is false.
  void Start(const std::string& node, bool with_physical = true) {
    ASSERT_TRUE(net_.node(node).StartKeyDistribution(with_physical).ok());
    Observe(node);
  }
  // Key distribution stops at `node` (its stack runs on).
  void Stop(const std::string& node) { net_.node(node).StopKeyDistribution(); }
  // The node crashes (its stack, key distribution included, is gone).
  void Crash(const std::string& node) { net_.Crash(node); }
  // The crashed node runs again with a fresh stack (its sessions forgotten).
  void Restart(const std::string& node) {
    net_.Restart(node);
    Observe(node);
  }

  // Starts a session from `from` to `to`; the record fills in as it runs.
  void Begin(const std::string& from, const std::string& to, const keydist::QkdSessionOptions& options,
             SessionRecord& record) {
    record.started = net_.Now();
    auto id = kd(from).StartSession(
        to, options, [&record](keydist::SessionId, const keydist::QkdProgress& p) { record.progress.push_back(p); },
        [&record, this](keydist::SessionId, absl::StatusOr<keydist::QkdResult> r) {
          record.result = std::move(r);
          record.ended = net_.Now();
        });
    ASSERT_TRUE(id.ok()) << id.status();
    record.id = *id;
  }

  // Runs a session and waits until the initiator and the responder report.
  void Run(const std::string& from, const std::string& to, const keydist::QkdSessionOptions& options,
           SessionRecord& record, Duration limit = std::chrono::seconds(120)) {
    const size_t responded_before = responded_[to].size();
    Begin(from, to, options, record);
    ASSERT_TRUE(net_.RunUntil([&] { return record.result.has_value() && responded_[to].size() > responded_before; },
                              limit))
        << "initiator done: " << record.result.has_value();
  }

  // No session or relay is left anywhere, and the network holds nothing.
  void ExpectClean() {
    net_.RunFor(std::chrono::milliseconds(50));
    for (const config::NodeConfig& n : net_.config().nodes) {
      stack::NodeStack* s = net_.running(n.name);
      if (s == nullptr || s->key_distribution() == nullptr) continue;
      EXPECT_EQ(s->key_distribution()->active_sessions(), 0u) << n.name;
      EXPECT_EQ(s->key_distribution()->active_relays(), 0u) << n.name;
    }
    ExpectNetworkClean(net_, Duration(0));
  }

 private:
  // Records what the node's responder side hands to its key agreement.
  void Observe(const std::string& node) {
    keydist::KeyAgreement* agreement = net_.node(node).key_agreement();
    ASSERT_NE(agreement, nullptr) << node;
    agreement->SetResponderObserver(
        [this, node](const std::string& initiator, keydist::SessionId id, absl::StatusOr<keydist::QkdResult> r) {
          responded_[node].push_back({initiator, id, std::move(r)});
        });
  }

  SimStackNetwork net_;
  std::map<std::string, std::vector<ResponderRecord>> responded_;
};

// Test-sized sessions: with failure probabilities eps_PE = eps_PA = 1e-6
// (instead of 1e-10) and a 30% sample (instead of 10%) the finite-size
// margins let ~10^4 pairs give a key, which keeps the test binaries fast
// (also under the sanitizers); the production defaults need a few times more.
// A chain of ideal nodes on 1 km double-click links of two-photon
// visibility v (each link's pairs carry a Z error with probability (1-v)/2).
inline std::string VisibilityChain(int hops, double v) {
  return ChainYaml(hops, "ideal", 1.0, "", absl::StrCat("    visibility: ", v, "\n"));
}

inline constexpr double kTestEpsilon = 1e-6;
inline keydist::QkdSessionOptions TestOptions(uint32_t pairs,
                                              keydist::QkdProtocol protocol = keydist::QkdProtocol::kBbm92) {
  keydist::QkdSessionOptions o;
  o.protocol = protocol;
  o.pairs = pairs;
  o.post_processing.estimation.sample_fraction = 0.3;
  o.post_processing.estimation.failure_probability = kTestEpsilon;
  o.post_processing.privacy_amplification_failure_probability = kTestEpsilon;
  return o;
}

// The privacy amplification bound recomputed from a report's public numbers
// with the Serfling bound written out here (parameter_estimation.h), at the
// failure probabilities eps_PE, eps_PA:
//   e_U(b) = rate_b + sqrt((n + k)(k + 1) ln(2/eps_PE) / (2 n k^2)),
// k the basis-b sample, n the key bits of the other basis;
//   l = n_Z (1 - h(e_U(X))) + n_X (1 - h(e_U(Z))) - leak_EC - leak_count - 64 - 2 log2(1/eps_PA).
inline double ReferenceKeyBound(const qkd::PostProcessingReport& r, double eps_pe = kTestEpsilon,
                                double eps_pa = kTestEpsilon) {
  auto upper = [eps_pe](const qkd::ErrorRateBound& b) {
    if (b.sampled == 0 || b.population == 0) return 1.0;
    const double k = static_cast<double>(b.sampled), n = static_cast<double>(b.population);
    return std::min(1.0, b.rate() + std::sqrt((n + k) * (k + 1) * std::log(2.0 / eps_pe) / (2 * n * k * k)));
  };
  auto entropy = [](double p) { return p >= 0.5 ? 1.0 : qkd::BinaryEntropy(p); };
  const double n_z = static_cast<double>(r.qber.x.population);  // Z key bits, bounded by the X sample
  const double n_x = static_cast<double>(r.qber.z.population);
  return n_z * (1 - entropy(upper(r.qber.x))) + n_x * (1 - entropy(upper(r.qber.z))) -
         static_cast<double>(r.leaked_error_correction_bits + r.leaked_error_count_bits) - 64.0 -
         2 * std::log2(1 / eps_pa);
}

}  // namespace qnet::testing
