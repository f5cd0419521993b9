// Key delivery end to end, as applications see it: a 3-daemon chain
// alice - bob - charlie started like `qnetctl up`, whose network file asks
// for a key pool between alice and charlie (end-to-end BBM92 through the
// repeater bob). The SAEs are Debian's curl with the certificates the
// launcher issued: sae-a gets keys from alice's KME (ETSI GS QKD 014
// enc_keys), sae-c gets the same bytes for those key_IDs from charlie's
// (dec_keys), once; every error case gets the standard's status code.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/launcher.h"
#include "gtest/gtest.h"
#include "security/pki.h"
#include "tests/common/multiprocess_test.h"
#include "tests/common/run_command.h"
#include "tests/daemon/node_queries.h"
#include "tests/kme/kme_test_client.h"

namespace qnet::kme {
namespace {

namespace fs = std::filesystem;
using qnet::kme::testing::Curl;
using qnet::kme::testing::HttpReply;
using qnet::kme::testing::KeyPools;
using qnet::kme::testing::SaeCredentials;

class KeyDeliveryMpTest : public qnet::testing::MultiProcessTest {
 protected:
  void SetUp() override {
    // Ideal nodes and 1 km links of visibility 0.99 (as the daemon QKD
    // tests): ~1% X-basis errors end to end. Blocks of 6500 pairs with half
    // the sifted bits sampled give a few hundred key bits each.
    file_ = state_dir_ / "kmechain.yaml";
    std::ofstream(file_) << "network: kmechain\nseed: 5\nnodes:\n"
                            "  - {name: alice, hardware: ideal}\n  - {name: bob, hardware: ideal}\n"
                            "  - {name: charlie, hardware: ideal}\nlinks:\n"
                            "  - {between: [alice, bob], length_km: 1, visibility: 0.99}\n"
                            "  - {between: [bob, charlie], length_km: 1, visibility: 0.99}\n"
                            "key_management:\n  saes:\n"
                            "    - {name: sae-a, node: alice}\n    - {name: sae-a2, node: alice}\n"
                            "    - {name: sae-b, node: bob}\n"
                            "    - {name: sae-c, node: charlie}\n    - {name: sae-c2, node: charlie}\n"
                            "  pools:\n"
                            "    - {between: [alice, charlie], low_watermark_bits: 1024, high_watermark_bits: 2048,"
                            " pairs_per_block: 15000, sample_fraction: 0.5}\n";
    auto net = cli::LocalNetwork::Start(LaunchOptionsFor(file_.string(), 10.0));
    ASSERT_TRUE(net.ok()) << net.status();
    net_ = *std::move(net);
  }
  void TearDown() override {
    net_.reset();
    MultiProcessTest::TearDown();
  }
  SaeCredentials Sae(const std::string& name, const std::string& node) const {
    return SaeCredentials::Of(net_->pki_dir(), "kmechain", node, name);
  }

  fs::path file_;
  std::unique_ptr<cli::LocalNetwork> net_;
};

TEST_F(KeyDeliveryMpTest, SaesGetTheSameKeysAtBothEndsOfAChainOnceAndEveryErrorHasItsCode) {
  const std::string alice = net_->KmeUrl("alice");
  const std::string charlie = net_->KmeUrl("charlie");
  ASSERT_FALSE(alice.empty());
  ASSERT_FALSE(charlie.empty());
  EXPECT_TRUE(net_->KmeUrl("bob").empty() == false) << "bob has an SAE, so it runs a KME";
  const SaeCredentials sae_a = Sae("sae-a", "alice"), sae_a2 = Sae("sae-a2", "alice");
  const SaeCredentials sae_b = Sae("sae-b", "bob");
  const SaeCredentials sae_c = Sae("sae-c", "charlie"), sae_c2 = Sae("sae-c2", "charlie");

  // The pool fills by itself: at least four 256-bit keys' worth.
  ASSERT_TRUE(qnet::testing::WaitUntil(
      "alice's pool toward charlie holds 1024 bits",
      [&] {
        auto pools = KeyPools(*net_->Address("alice"));
        if (!pools.ok() || pools->pools_size() != 1) return false;
        return pools->pools(0).available_bits() >= 1024;
      },
      std::chrono::seconds(400), std::chrono::milliseconds(500)));

  // The pool's figures in alice's Prometheus metrics, as GetKeyPools gives
  // them (the pool only grows while nothing is taken); charlie, the end that
  // does not fill it, exports none.
  {
    auto pools = KeyPools(*net_->Address("alice"));
    ASSERT_TRUE(pools.ok() && pools->pools_size() == 1);
    const fs::path pki = net_->pki_dir();
    const std::string stem = security::CertificateStem(security::DefaultMonitor("kmechain"));
    auto scrape = [&](const std::string& node) {
      int rc = 0;
      std::string body = qnet::testing::RunCommand(
          absl::StrCat("curl -sS --cacert ", (pki / "ca.crt").string(), " --cert ", (pki / (stem + ".crt")).string(),
                       " --key ", (pki / (stem + ".key")).string(), " '", net_->MetricsUrl(node), "'"),
          &rc);
      EXPECT_EQ(rc, 0) << body;
      return body;
    };
    auto value = [](const std::string& body, const std::string& sample) -> std::optional<double> {
      for (absl::string_view line : absl::StrSplit(body, '\n')) {
        if (!absl::StartsWith(line, sample)) continue;
        double v = 0;
        if (absl::SimpleAtod(line.substr(sample.size()), &v)) return v;
      }
      return std::nullopt;
    };
    const std::string at_alice = scrape("alice");
    const std::string labels = "{node=\"alice\",peer=\"charlie\"} ";
    EXPECT_GE(value(at_alice, "qnet_key_pool_bits" + labels).value_or(0), pools->pools(0).available_bits()) << at_alice;
    EXPECT_EQ(value(at_alice, "qnet_key_pool_low_watermark_bits" + labels),
              static_cast<double>(pools->pools(0).low_watermark_bits()))
        << at_alice;
    EXPECT_GE(value(at_alice, "qnet_key_pool_blocks_committed_total" + labels).value_or(0), 1) << at_alice;
    EXPECT_GE(value(at_alice, "qnet_key_pool_sessions_failed_total" + labels).value_or(-1),
              static_cast<double>(pools->pools(0).sessions_failed()))
        << at_alice;
    EXPECT_EQ(scrape("charlie").find("qnet_key_pool_bits{"), std::string::npos);
  }

  // Status (ETSI GS QKD 014 6.1), as sae-a sees its pool toward sae-c.
  HttpReply status = Curl(sae_a, alice + "/api/v1/keys/sae-c/status");
  ASSERT_EQ(status.code, 200) << status.body;
  nlohmann::json s = nlohmann::json::parse(status.body);
  EXPECT_EQ(s["source_KME_ID"], "alice");
  EXPECT_EQ(s["target_KME_ID"], "charlie");
  EXPECT_EQ(s["master_SAE_ID"], "sae-a");
  EXPECT_EQ(s["slave_SAE_ID"], "sae-c");
  EXPECT_EQ(s["key_size"], 256);
  EXPECT_GE(s["stored_key_count"].get<int>(), 4);
  EXPECT_EQ(s["max_key_count"], 2048 / 256);
  for (const char* field : {"max_key_per_request", "max_key_size", "min_key_size", "max_SAE_ID_count"}) {
    EXPECT_TRUE(s.contains(field)) << field;
  }

  // enc_keys: two 256-bit keys for sae-c.
  HttpReply enc = Curl(sae_a, alice + "/api/v1/keys/sae-c/enc_keys?number=2&size=256");
  ASSERT_EQ(enc.code, 200) << enc.body;
  nlohmann::json keys = nlohmann::json::parse(enc.body)["keys"];
  ASSERT_EQ(keys.size(), 2u);
  std::set<std::string> ids;
  for (const auto& k : keys) {
    ids.insert(k["key_ID"].get<std::string>());
    EXPECT_EQ(qnet::kme::testing::Base64Decode(k["key"].get<std::string>()).size(), 32u);
  }
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_NE(keys[0]["key"], keys[1]["key"]);
  const std::string id0 = keys[0]["key_ID"], id1 = keys[1]["key_ID"];

  // Another SAE of charlie asking for sae-c's keys: 401.
  HttpReply stolen = Curl(sae_c2, charlie + "/api/v1/keys/sae-a/dec_keys?key_ID=" + id0);
  EXPECT_EQ(stolen.code, 401) << stolen.body;
  // The right SAE naming another master (the key is sae-a's): 400.
  HttpReply wrong_pair = Curl(sae_c, charlie + "/api/v1/keys/sae-a2/dec_keys?key_ID=" + id0);
  EXPECT_EQ(wrong_pair.code, 400) << wrong_pair.body;
  EXPECT_NE(wrong_pair.body.find("message"), std::string::npos);

  // dec_keys (POST, the standard's key_IDs list): the same bytes, in order.
  HttpReply dec = Curl(sae_c, charlie + "/api/v1/keys/sae-a/dec_keys",
                       nlohmann::json{{"key_IDs", {{{"key_ID", id0}}, {{"key_ID", id1}}}}}.dump());
  ASSERT_EQ(dec.code, 200) << dec.body;
  nlohmann::json got = nlohmann::json::parse(dec.body)["keys"];
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0]["key_ID"], id0);
  EXPECT_EQ(got[0]["key"], keys[0]["key"]);
  EXPECT_EQ(got[1]["key_ID"], id1);
  EXPECT_EQ(got[1]["key"], keys[1]["key"]);
  // Never twice.
  HttpReply again = Curl(sae_c, charlie + "/api/v1/keys/sae-a/dec_keys?key_ID=" + id0);
  EXPECT_EQ(again.code, 400) << again.body;
  EXPECT_NE(again.body.find("already delivered"), std::string::npos) << again.body;

  // Bad requests: 400 with a message.
  for (const std::string& query : {std::string("enc_keys?size=100"), std::string("enc_keys?number=1000"),
                                   std::string("enc_keys?number=x"), std::string("enc_keys?size=8")}) {
    HttpReply bad = Curl(sae_a, alice + "/api/v1/keys/sae-c/" + query);
    EXPECT_EQ(bad.code, 400) << query << ": " << bad.body;
    EXPECT_NE(bad.body.find("\"message\""), std::string::npos) << query;
  }
  HttpReply unknown_id =
      Curl(sae_c, charlie + "/api/v1/keys/sae-a/dec_keys?key_ID=00000000-0000-4000-8000-000000000000");
  EXPECT_EQ(unknown_id.code, 400) << unknown_id.body;
  HttpReply unknown_slave = Curl(sae_a, alice + "/api/v1/keys/nobody/enc_keys");
  EXPECT_EQ(unknown_slave.code, 400) << unknown_slave.body;
  // No pool between alice and bob: 400 naming it.
  HttpReply no_pool = Curl(sae_a, alice + "/api/v1/keys/sae-b/enc_keys");
  EXPECT_EQ(no_pool.code, 400) << no_pool.body;
  EXPECT_NE(no_pool.body.find("no key pool"), std::string::npos) << no_pool.body;

  // 503: more than the pool holds (128 keys of 8192 bits = 1 Mbit).
  HttpReply empty = Curl(sae_a, alice + "/api/v1/keys/sae-c/enc_keys?number=128&size=8192");
  EXPECT_EQ(empty.code, 503) << empty.body;

  // 401: an SAE bound to another node, no certificate, another CA's.
  HttpReply elsewhere = Curl(sae_b, alice + "/api/v1/keys/sae-c/enc_keys");
  EXPECT_EQ(elsewhere.code, 401) << elsewhere.body;
  SaeCredentials anonymous = sae_a;
  anonymous.cert.clear();
  anonymous.key.clear();
  HttpReply no_cert = Curl(anonymous, alice + "/api/v1/keys/sae-c/status");
  EXPECT_EQ(no_cert.code, 401) << no_cert.body;
  const fs::path foreign = state_dir_ / "foreign-pki";
  ASSERT_TRUE(security::InitNetworkPki(foreign, "kmechain", {"alice"}).ok());
  ASSERT_TRUE(security::IssueCertificate(
                  foreign, {.network = "kmechain", .role = security::Role::kApp, .node = "alice", .name = "sae-a"})
                  .ok());
  SaeCredentials forged = SaeCredentials::Of(foreign.string(), "kmechain", "alice", "sae-a");
  forged.ca = sae_a.ca;  // it trusts the real CA; its certificate is from the other one
  HttpReply forged_reply = Curl(forged, alice + "/api/v1/keys/sae-c/enc_keys");
  EXPECT_EQ(forged_reply.code, 401) << forged_reply.body;

  // qnetctl shows the same: the KME URLs, the SAEs' certificate files, the pools.
  int exit_code = -1;
  const std::string qnetctl = absl::StrCat(QNETCTL_PATH, " --state-dir ", state_dir_.string(), " ");
  std::string out = qnet::testing::RunCommand(qnetctl + "keys url --node charlie 2>&1", &exit_code);
  EXPECT_EQ(exit_code, 0) << out;
  EXPECT_EQ(out, charlie + "\n");
  out = qnet::testing::RunCommand(qnetctl + "keys sae --name sae-a --output json 2>&1", &exit_code);
  ASSERT_EQ(exit_code, 0) << out;
  nlohmann::json sae_json = nlohmann::json::parse(out);
  ASSERT_EQ(sae_json.size(), 1u);
  EXPECT_EQ(sae_json[0]["kme_url"], alice);
  EXPECT_EQ(sae_json[0]["cert"], sae_a.cert);
  out = qnet::testing::RunCommand(qnetctl + "keys status --node alice 2>&1", &exit_code);
  EXPECT_EQ(exit_code, 0) << out;
  EXPECT_NE(out.find("-> charlie"), std::string::npos) << out;
  EXPECT_NE(out.find(alice), std::string::npos) << out;
  out = qnet::testing::RunCommand(qnetctl + "keys pool --node charlie --peer alice --output json 2>&1", &exit_code);
  ASSERT_EQ(exit_code, 0) << out;
  EXPECT_EQ(nlohmann::json::parse(out)["state"], "filled by alice");
  out = qnet::testing::RunCommand(qnetctl + "keys pool --node alice --peer bob 2>&1", &exit_code);
  EXPECT_EQ(exit_code, 1) << out;
  EXPECT_NE(out.find("keeps no key pool with 'bob'"), std::string::npos) << out;

  // The operator sees the pools and what is reserved.
  auto pools = KeyPools(*net_->Address("charlie"));
  ASSERT_TRUE(pools.ok()) << pools.status();
  EXPECT_EQ(pools->kme_url(), charlie);
  EXPECT_GE(pools->delivered_keys(), 2u);
}

}  // namespace
}  // namespace qnet::kme
