// The ETSI GS QKD 014 server over real mutual TLS: SAEs are authenticated by
// their app certificate (network CA, role, node), requests are validated
// before the key manager sees them, keys travel as base64 under the
// standard's field names, and errors are JSON with the standard's codes.
#include "kme/etsi014_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "security/identity.h"
#include "security/pki.h"

namespace qnet::kme {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using security::Identity;
using security::Role;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kNetwork[] = "net";

// Records every call; answers with keys whose bytes follow from the ID (so
// any byte value, 0x00 and 0xff included, goes over the wire) or `error`.
class FakeBackend : public KeyDeliveryBackend {
 public:
  struct EncCall {
    std::string caller, slave;
    uint64_t number, size_bits;
    std::vector<std::string> additional;
  };
  struct DecCall {
    std::string caller, master;
    std::vector<std::string> key_ids;
  };

  static std::string KeyBytes(const std::string& key_id, size_t bytes) {
    std::string key(bytes, '\0');
    size_t seed = std::hash<std::string>{}(key_id);
    for (size_t i = 0; i < bytes; ++i) key[i] = static_cast<char>((seed >> (i % 8)) + i * 37);
    if (bytes >= 2) {
      key[0] = '\0';
      key[1] = static_cast<char>(0xff);
    }
    return key;
  }

  absl::StatusOr<KeyPoolStatus> Status(const std::string& caller, const std::string& slave) override {
    std::lock_guard<std::mutex> lock(mu_);
    status_calls.push_back({caller, slave});
    if (!error.ok()) return error;
    KeyPoolStatus s;
    s.source_kme_id = "alice";
    s.target_kme_id = "bob";
    s.master_sae_id = caller;
    s.slave_sae_id = slave;
    s.key_size = 256;
    s.stored_key_count = 25000;
    s.max_key_count = 100000;
    s.max_key_per_request = 128;
    s.max_key_size = 8192;
    s.min_key_size = 64;
    s.max_sae_id_count = 0;
    return s;
  }

  absl::StatusOr<std::vector<DeliveredKey>> EncKeys(const std::string& caller, const std::string& slave,
                                                    uint64_t number, uint64_t size_bits,
                                                    const std::vector<std::string>& additional) override {
    std::lock_guard<std::mutex> lock(mu_);
    enc_calls.push_back({caller, slave, number, size_bits, additional});
    if (!error.ok()) return error;
    std::vector<DeliveredKey> keys;
    for (uint64_t i = 0; i < number - short_count; ++i) {
      std::string id = absl::StrCat("00000000-0000-4000-8000-", absl::Dec(++next_id_, absl::kZeroPad12));
      keys.push_back({id, KeyBytes(id, size_bits / 8)});
    }
    return keys;
  }

  absl::StatusOr<std::vector<DeliveredKey>> DecKeys(const std::string& caller, const std::string& master,
                                                    const std::vector<std::string>& key_ids) override {
    std::lock_guard<std::mutex> lock(mu_);
    dec_calls.push_back({caller, master, key_ids});
    if (!error.ok()) return error;
    std::vector<DeliveredKey> keys;
    for (const std::string& id : key_ids) keys.push_back({id, KeyBytes(id, 32)});
    return keys;
  }

  size_t calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return status_calls.size() + enc_calls.size() + dec_calls.size();
  }
  void Reset() {
    std::lock_guard<std::mutex> lock(mu_);
    status_calls.clear();
    enc_calls.clear();
    dec_calls.clear();
    error = absl::OkStatus();
    short_count = 0;
  }

  std::vector<std::pair<std::string, std::string>> status_calls;
  std::vector<EncCall> enc_calls;
  std::vector<DecCall> dec_calls;
  absl::Status error;
  uint64_t short_count = 0;  // deliver this many keys fewer than asked (a broken key manager)

 private:
  std::mutex mu_;
  uint64_t next_id_ = 0;
};

std::string DecodeBase64(const std::string& text) {
  std::string out(text.size() / 4 * 3 + 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  EXPECT_GE(n, 0) << "not base64: " << text;
  if (n < 0) return "";
  size_t padding = 0;
  for (size_t i = text.size(); i > 0 && text[i - 1] == '='; --i) ++padding;
  out.resize(static_cast<size_t>(n) - padding);
  return out;
}

Identity App(const std::string& node, const std::string& name) {
  return Identity{.network = kNetwork, .role = Role::kApp, .node = node, .name = name};
}

class Etsi014ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new fs::path(fs::path(::testing::TempDir()) / absl::StrCat("qnet-etsi014-", getpid()));
    fs::remove_all(*root_);
    // The network's PKI, and an impostor CA that also calls itself network
    // "net" and issues the very same SAE identity.
    ASSERT_TRUE(security::InitNetworkPki(Pki(), kNetwork, {"alice", "bob"}).ok());
    ASSERT_TRUE(security::InitNetworkPki(OtherPki(), kNetwork, {"alice"}).ok());
    for (const Identity& id : {App("alice", "saeA"), App("bob", "saeB")}) {
      absl::StatusOr<fs::path> issued = security::IssueCertificate(Pki(), id);
      ASSERT_TRUE(issued.ok()) << issued.status();
    }
    ASSERT_TRUE(security::IssueCertificate(OtherPki(), App("alice", "saeA")).ok());
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }
  static fs::path Pki() { return *root_ / "pki"; }
  static fs::path OtherPki() { return *root_ / "other"; }

  void SetUp() override {
    absl::StatusOr<security::TlsMaterial> tls =
        security::LoadTls(Pki(), Identity{.network = kNetwork, .role = Role::kNode, .node = "alice", .name = "alice"});
    ASSERT_TRUE(tls.ok()) << tls.status();
    Etsi014ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.network = kNetwork;
    options.node = "alice";
    options.tls = *tls;
    options.worker_threads = 4;
    absl::StatusOr<std::unique_ptr<Etsi014Server>> server = Etsi014Server::Start(options, backend_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ASSERT_GT(server_->port(), 0);
  }

  // A client that checks it reached node alice (the node certificate's DNS
  // name) and presents `pki`'s certificate `stem`, or none.
  std::unique_ptr<httplib::SSLClient> Client(const std::string& stem = "app-alice-saeA", const fs::path& pki = Pki()) {
    std::unique_ptr<httplib::SSLClient> client =
        stem.empty() ? std::make_unique<httplib::SSLClient>("alice", server_->port())
                     : std::make_unique<httplib::SSLClient>("alice", server_->port(), (pki / (stem + ".crt")).string(),
                                                            (pki / (stem + ".key")).string());
    client->set_hostname_addr_map({{"alice", "127.0.0.1"}});
    client->set_ca_cert_path((Pki() / "ca.crt").string());
    client->enable_server_certificate_verification(true);
    client->set_connection_timeout(5);
    client->set_read_timeout(10);
    return client;
  }

  // A request that must be answered with `status` and a JSON body; returns it.
  Json Expect(httplib::Result result, int status) {
    EXPECT_TRUE(result) << "no answer: " << httplib::to_string(result.error());
    if (!result) return Json();
    EXPECT_EQ(result->status, status) << result->body;
    EXPECT_EQ(result->get_header_value("Content-Type"), "application/json");
    Json body = Json::parse(result->body, nullptr, false);
    EXPECT_FALSE(body.is_discarded()) << result->body;
    if (status != 200) {
      EXPECT_TRUE(body.contains("message") && body["message"].is_string() && !body["message"].empty()) << body;
    }
    return body;
  }

  // The keys of a key container, checked against the backend's bytes.
  std::vector<std::string> KeyIds(const Json& container, size_t key_bytes) {
    std::vector<std::string> ids;
    EXPECT_TRUE(container.is_object() && container.size() == 1 && container["keys"].is_array()) << container;
    if (!container.contains("keys")) return ids;
    for (const Json& k : container["keys"]) {
      EXPECT_EQ(k.size(), 2u) << k;
      const std::string id = k["key_ID"].get<std::string>();
      const std::string key = DecodeBase64(k["key"].get<std::string>());
      EXPECT_EQ(key.size(), key_bytes);
      EXPECT_EQ(key, FakeBackend::KeyBytes(id, key_bytes)) << id;
      ids.push_back(id);
    }
    return ids;
  }

  static fs::path* root_;
  FakeBackend backend_;
  std::unique_ptr<Etsi014Server> server_;
};

fs::path* Etsi014ServerTest::root_ = nullptr;

TEST_F(Etsi014ServerTest, StatusHasTheStandardsFields) {
  EXPECT_EQ(server_->url(), absl::StrCat("https://127.0.0.1:", server_->port()));
  Json s = Expect(Client()->Get("/api/v1/keys/saeB/status"), 200);
  EXPECT_EQ(s, Json::parse(R"({"source_KME_ID": "alice", "target_KME_ID": "bob", "master_SAE_ID": "saeA",
                                "slave_SAE_ID": "saeB", "key_size": 256, "stored_key_count": 25000,
                                "max_key_count": 100000, "max_key_per_request": 128, "max_key_size": 8192,
                                "min_key_size": 64, "max_SAE_ID_count": 0})"));
  ASSERT_EQ(backend_.status_calls.size(), 1u);
  EXPECT_EQ(backend_.status_calls[0].first, "saeA");
  EXPECT_EQ(backend_.status_calls[0].second, "saeB");
}

TEST_F(Etsi014ServerTest, GetEncKeysDefaultsToOneKeyOfTheDefaultSize) {
  Json keys = Expect(Client()->Get("/api/v1/keys/saeB/enc_keys"), 200);
  EXPECT_EQ(KeyIds(keys, kDefaultKeySizeBits / 8).size(), 1u);
  ASSERT_EQ(backend_.enc_calls.size(), 1u);
  EXPECT_EQ(backend_.enc_calls[0].caller, "saeA");
  EXPECT_EQ(backend_.enc_calls[0].slave, "saeB");
  EXPECT_EQ(backend_.enc_calls[0].number, 1u);
  EXPECT_EQ(backend_.enc_calls[0].size_bits, kDefaultKeySizeBits);
  EXPECT_TRUE(backend_.enc_calls[0].additional.empty());
}

TEST_F(Etsi014ServerTest, GetEncKeysPassesNumberAndSize) {
  Json keys = Expect(Client()->Get("/api/v1/keys/saeB/enc_keys?number=3&size=520"), 200);
  std::vector<std::string> ids = KeyIds(keys, 65);
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 3u);
  ASSERT_EQ(backend_.enc_calls.size(), 1u);
  EXPECT_EQ(backend_.enc_calls[0].number, 3u);
  EXPECT_EQ(backend_.enc_calls[0].size_bits, 520u);
  // The limits themselves are allowed.
  Expect(Client()->Get("/api/v1/keys/saeB/enc_keys?number=128&size=64"), 200);
  Expect(Client()->Get("/api/v1/keys/saeB/enc_keys?number=1&size=8192"), 200);
  ASSERT_EQ(backend_.enc_calls.size(), 3u);
  EXPECT_EQ(backend_.enc_calls[1].number, 128u);
  EXPECT_EQ(backend_.enc_calls[2].size_bits, 8192u);
}

TEST_F(Etsi014ServerTest, PostEncKeysPassesNumberSizeAndAdditionalSlaves) {
  Json keys = Expect(Client()->Post("/api/v1/keys/saeB/enc_keys",
                                    R"({"number": 2, "size": 128, "additional_slave_SAE_IDs": ["saeC", "saeD"],
                                        "extension_optional": [{"abc_route_type": "direct"}]})",
                                    "application/json"),
                     200);
  EXPECT_EQ(KeyIds(keys, 16).size(), 2u);
  ASSERT_EQ(backend_.enc_calls.size(), 1u);
  EXPECT_EQ(backend_.enc_calls[0].caller, "saeA");
  EXPECT_EQ(backend_.enc_calls[0].number, 2u);
  EXPECT_EQ(backend_.enc_calls[0].size_bits, 128u);
  EXPECT_THAT(backend_.enc_calls[0].additional, ElementsAre("saeC", "saeD"));
  // Defaults apply to a POST too.
  EXPECT_EQ(KeyIds(Expect(Client()->Post("/api/v1/keys/saeB/enc_keys", "{}", "application/json"), 200), 32).size(), 1u);
}

TEST_F(Etsi014ServerTest, DecKeysByGetAndPost) {
  const std::string id1 = "3fa85f64-5717-4562-b3fc-2c963f66afa6", id2 = "9b2c1e0a-0d3e-4b4f-8a1a-0c7f6d5e4c3b";
  Json one = Expect(Client()->Get(absl::StrCat("/api/v1/keys/saeM/dec_keys?key_ID=", id1)), 200);
  EXPECT_THAT(KeyIds(one, 32), ElementsAre(id1));
  Json two = Expect(Client()->Post("/api/v1/keys/saeM/dec_keys",
                                   absl::StrCat(R"({"key_IDs": [{"key_ID": ")", id2, R"("}, {"key_ID": ")", id1,
                                                R"(", "key_ID_extension": {}}]})"),
                                   "application/json"),
                    200);
  EXPECT_THAT(KeyIds(two, 32), ElementsAre(id2, id1));
  ASSERT_EQ(backend_.dec_calls.size(), 2u);
  EXPECT_EQ(backend_.dec_calls[0].caller, "saeA");
  EXPECT_EQ(backend_.dec_calls[0].master, "saeM");
  EXPECT_THAT(backend_.dec_calls[0].key_ids, ElementsAre(id1));
  EXPECT_THAT(backend_.dec_calls[1].key_ids, ElementsAre(id2, id1));
}

TEST_F(Etsi014ServerTest, BadRequestsAreRefusedBeforeTheKeyManager) {
  struct Case {
    bool post;
    std::string path, body, message;
  };
  std::string many_ids = R"({"key_IDs": [)";
  for (int i = 0; i <= static_cast<int>(kMaxKeysPerRequest); ++i) {
    many_ids += absl::StrCat(i == 0 ? "" : ",", R"({"key_ID": "id-)", i, R"("})");
  }
  many_ids += "]}";
  const std::string enc = "/api/v1/keys/saeB/enc_keys", dec = "/api/v1/keys/saeB/dec_keys";
  const std::vector<Case> cases = {
      {false, enc + "?number=0", "", "number must be in [1, 128]"},
      {false, enc + "?number=129", "", "number must be in [1, 128]"},
      {false, enc + "?number=-1", "", "number must be a positive integer"},
      {false, enc + "?number=%2B3", "", "number must be a positive integer"},
      {false, enc + "?number=abc", "", "number must be a positive integer"},
      {false, enc + "?number=1.5", "", "number must be a positive integer"},
      {false, enc + "?number=", "", "number must be a positive integer"},
      {false, enc + "?number=99999999999999999999999", "", "number must be a positive integer"},
      {false, enc + "?number=2&number=3", "", "number is given 2 times"},
      {false, enc + "?size=100", "", "size must be a multiple of 8"},
      {false, enc + "?size=56", "", "size must be in [64, 8192]"},
      {false, enc + "?size=8200", "", "size must be in [64, 8192]"},
      {false, enc + "?size=0", "", "size must be in [64, 8192]"},
      {false, enc + "?size=big", "", "size must be a positive integer"},
      {true, enc, "", "not JSON"},
      {true, enc, "number=3", "not JSON"},
      {true, enc, R"({"number": 2)", "not JSON"},
      {true, enc, "[1, 2]", "not a JSON object"},
      {true, enc, R"({"number": 0})", "number must be in [1, 128]"},
      {true, enc, R"({"number": 129})", "number must be in [1, 128]"},
      {true, enc, R"({"number": -2})", "number must be a positive integer"},
      {true, enc, R"({"number": 2.5})", "number must be a positive integer"},
      {true, enc, R"({"number": "2"})", "number must be a positive integer"},
      {true, enc, R"({"size": 100})", "size must be a multiple of 8"},
      {true, enc, R"({"size": 56})", "size must be in [64, 8192]"},
      {true, enc, R"({"size": 16384})", "size must be in [64, 8192]"},
      {true, enc, R"({"size": "256"})", "size must be a positive integer"},
      {true, enc, R"({"additional_slave_SAE_IDs": "saeC"})", "additional_slave_SAE_IDs must be a list"},
      {true, enc, R"({"additional_slave_SAE_IDs": [7]})", "additional_slave_SAE_IDs must be a list"},
      {true, enc, R"({"extension_mandatory": [{"abc_route_type": "direct"}]})", "extension_mandatory is not supported"},
      {false, dec, "", "key_ID is missing"},
      {false, dec + "?key_ID=", "", "key_ID is empty"},
      {false, dec + "?key_ID=a&key_ID=b", "", "key_ID is given 2 times"},
      {true, dec, "{", "not JSON"},
      {true, dec, "{}", "key_IDs is missing"},
      {true, dec, R"({"key_IDs": "id-1"})", "key_IDs must be a list of"},
      {true, dec, R"({"key_IDs": {"key_ID": "id-1"}})", "key_IDs must be a list of"},
      {true, dec, R"({"key_IDs": []})", "key_IDs is empty"},
      {true, dec, R"({"key_IDs": ["id-1"]})", "key_IDs must be a list of"},
      {true, dec, R"({"key_IDs": [{"key_ID": 5}]})", "key_IDs must be a list of"},
      {true, dec, R"({"key_IDs": [{"id": "id-1"}]})", "key_IDs must be a list of"},
      {true, dec, R"({"key_IDs": [{"key_ID": ""}]})", "key_ID is empty"},
      {true, dec, R"({"key_IDs": [{"key_ID": "id-1"}, {"key_ID": "id-1"}]})", "key_ID 'id-1' is repeated"},
      {true, dec, many_ids, "key_IDs lists 129 keys; at most 128"},
  };
  std::unique_ptr<httplib::SSLClient> client = Client();
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.post ? "POST " : "GET ", c.path, " ", c.body.substr(0, 80)));
    Json error = Expect(c.post ? client->Post(c.path, c.body, "application/json") : client->Get(c.path), 400);
    EXPECT_THAT(error.value("message", ""), HasSubstr(c.message));
  }
  EXPECT_EQ(backend_.calls(), 0u);
}

TEST_F(Etsi014ServerTest, OnlyAppsOfThisNodeFromThisNetworksCaAreServed) {
  struct Case {
    std::string stem;
    fs::path pki;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"", Pki(), "no client certificate"},
      {"app-alice-saeA", OtherPki(), "not signed by network net's CA"},
      {"operator-operator", Pki(), "names operator operator, not an application (SAE)"},
      {"node-alice", Pki(), "names node alice, not an application (SAE)"},
      {"app-bob-saeB", Pki(), "app saeB of bob is bound to node bob, not this KME's node alice"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.stem + " of " + c.pki.filename().string());
    std::unique_ptr<httplib::SSLClient> client = Client(c.stem, c.pki);
    EXPECT_THAT(Expect(client->Get("/api/v1/keys/saeB/enc_keys"), 401).value("message", ""), HasSubstr(c.message));
    EXPECT_THAT(
        Expect(client->Post("/api/v1/keys/saeB/dec_keys", R"({"key_IDs": [{"key_ID": "x"}]})", "application/json"), 401)
            .value("message", ""),
        HasSubstr(c.message));
    EXPECT_EQ(Expect(client->Get("/api/v1/keys/saeB/status"), 401).value("message", ""),
              Expect(client->Get("/no/such/path"), 401).value("message", ""));
  }
  EXPECT_EQ(backend_.calls(), 0u);
  // The same identity from the network's own CA is served.
  Expect(Client("app-alice-saeA", Pki())->Get("/api/v1/keys/saeB/status"), 200);
}

TEST_F(Etsi014ServerTest, KeyManagerErrorsMapToTheStandardsCodes) {
  const std::vector<std::pair<absl::Status, int>> cases = {
      {absl::InvalidArgumentError("unknown slave SAE"), 400},
      {absl::NotFoundError("no such key_ID"), 400},
      {absl::FailedPreconditionError("key not yet committed"), 400},
      {absl::OutOfRangeError("size beyond the block"), 400},
      {absl::AlreadyExistsError("key already delivered"), 400},
      {absl::PermissionDeniedError("saeA may not fetch keys of saeZ"), 401},
      {absl::UnauthenticatedError("who are you"), 401},
      {absl::UnavailableError("the pool is empty"), 503},
      {absl::ResourceExhaustedError("pool exhausted"), 503},
      {absl::DeadlineExceededError("peer KME too slow"), 503},
      {absl::InternalError("vault corrupt"), 500},
      {absl::UnknownError("?"), 500},
  };
  std::unique_ptr<httplib::SSLClient> client = Client();
  for (const auto& [status, http] : cases) {
    SCOPED_TRACE(status.ToString());
    backend_.error = status;
    const std::vector<std::function<httplib::Result()>> requests = {
        [&] { return client->Get("/api/v1/keys/saeB/status"); },
        [&] { return client->Get("/api/v1/keys/saeB/enc_keys"); },
        [&] { return client->Post("/api/v1/keys/saeB/enc_keys", R"({"number": 2})", "application/json"); },
        [&] { return client->Get("/api/v1/keys/saeB/dec_keys?key_ID=k1"); },
        [&] {
          return client->Post("/api/v1/keys/saeB/dec_keys", R"({"key_IDs": [{"key_ID": "k1"}]})", "application/json");
        },
    };
    for (const auto& request : requests) {
      EXPECT_EQ(Expect(request(), http).value("message", ""), status.message());
    }
  }
}

TEST_F(Etsi014ServerTest, AKeyManagerDeliveringTooFewKeysIsAnInternalError) {
  backend_.short_count = 1;
  Expect(Client()->Get("/api/v1/keys/saeB/enc_keys?number=3"), 500);
}

TEST_F(Etsi014ServerTest, UnknownPathsAreNotFoundAndWrongMethodsNotAllowed) {
  std::unique_ptr<httplib::SSLClient> client = Client();
  for (const char* path : {"/", "/api/v1/keys/saeB", "/api/v1/keys/saeB/keys", "/api/v1/keys//status",
                           "/api/v1/keys/saeB/status/x", "/api/v2/keys/saeB/status"}) {
    SCOPED_TRACE(path);
    Expect(client->Get(path), 404);
    Expect(client->Post(path, "{}", "application/json"), 404);
  }
  httplib::Result post_status = client->Post("/api/v1/keys/saeB/status", "{}", "application/json");
  Expect(std::move(post_status), 405);
  httplib::Result put = client->Put("/api/v1/keys/saeB/enc_keys", "{}", "application/json");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->get_header_value("Allow"), "GET, POST");
  Expect(std::move(put), 405);
  Expect(client->Delete("/api/v1/keys/saeB/dec_keys"), 405);
  Expect(client->Patch("/api/v1/keys/saeB/dec_keys", "{}", "application/json"), 405);
  Expect(client->Options("/api/v1/keys/saeB/enc_keys"), 405);
  // HEAD would spend keys on an answer without a body.
  httplib::Result head = client->Head("/api/v1/keys/saeB/enc_keys");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 405);
  EXPECT_EQ(backend_.calls(), 0u);
}

TEST_F(Etsi014ServerTest, OversizedBodiesAreRefused) {
  httplib::Result r = Client()->Post("/api/v1/keys/saeB/dec_keys", std::string(100 * 1024, ' '), "application/json");
  EXPECT_THAT(Expect(std::move(r), 413).value("message", ""), HasSubstr("larger than"));
  EXPECT_EQ(backend_.calls(), 0u);
}

TEST_F(Etsi014ServerTest, ConcurrentRequestsAreAllServed) {
  std::vector<std::thread> threads;
  std::atomic<int> served{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      std::unique_ptr<httplib::SSLClient> client = Client();
      for (int i = 0; i < 5; ++i) {
        httplib::Result r = client->Get("/api/v1/keys/saeB/enc_keys?number=2");
        if (r && r->status == 200) ++served;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(served, 40);
  EXPECT_EQ(backend_.enc_calls.size(), 40u);
}

TEST_F(Etsi014ServerTest, StoppingDoesNotWaitLongForIdleKeepAliveClients) {
  std::unique_ptr<httplib::SSLClient> client = Client();
  client->set_keep_alive(true);
  Expect(client->Get("/api/v1/keys/saeB/status"), 200);
  Expect(client->Get("/api/v1/keys/saeB/status"), 200);  // the same connection
  const auto start = std::chrono::steady_clock::now();
  server_.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
  EXPECT_FALSE(client->Get("/api/v1/keys/saeB/status"));
}

// One request on a raw OpenSSL connection, so that a session can be
// resumed (httplib's client never does): the response text, and whether
// the session was resumed; `session` in: to resume, out: the new one.
struct RawAnswer {
  std::string text;
  bool resumed = false;
};

RawAnswer RawGet(int port, const fs::path& ca, const fs::path& pki, const std::string& stem, const std::string& path,
                 int tls_version, SSL_SESSION** session) {
  RawAnswer answer;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, tls_version);
  SSL_CTX_set_max_proto_version(ctx, tls_version);
  SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (!stem.empty()) {
    EXPECT_EQ(SSL_CTX_use_certificate_file(ctx, (pki / (stem + ".crt")).c_str(), SSL_FILETYPE_PEM), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx, (pki / (stem + ".key")).c_str(), SSL_FILETYPE_PEM), 1);
  }
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set_tlsext_host_name(ssl, "alice");
  SSL_set1_host(ssl, "alice");
  if (*session != nullptr) SSL_set_session(ssl, *session);
  if (SSL_connect(ssl) == 1) {
    answer.resumed = SSL_session_reused(ssl) == 1;
    const std::string request = absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: alice\r\nConnection: close\r\n\r\n");
    SSL_write(ssl, request.data(), static_cast<int>(request.size()));
    char buffer[4096];
    int n;
    while ((n = SSL_read(ssl, buffer, sizeof buffer)) > 0) answer.text.append(buffer, static_cast<size_t>(n));
    if (*session != nullptr) SSL_SESSION_free(*session);
    *session = SSL_get1_session(ssl);  // TLS 1.3: the ticket read with the response
    SSL_shutdown(ssl);                 // else SSL_free marks the session not resumable
  } else {
    ADD_FAILURE() << "handshake failed";
  }
  SSL_free(ssl);
  ::close(fd);
  SSL_CTX_free(ctx);
  return answer;
}

struct CurlResult {
  std::string out;
  int exit_code;
};

CurlResult RunCurl(const std::string& args) {
  std::string command = absl::StrCat("/usr/bin/curl -sS --max-time 20 ", args, " 2>&1");
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {"popen failed", -1};
  std::string out;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  int status = ::pclose(pipe);
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

TEST_F(Etsi014ServerTest, CurlIsARealClient) {
  if (!fs::exists("/usr/bin/curl")) GTEST_SKIP() << "no /usr/bin/curl";
  const std::string port = std::to_string(server_->port());
  const std::string common =
      absl::StrCat("--cacert '", (Pki() / "ca.crt").string(), "' --resolve alice:", port, ":127.0.0.1 ");
  const std::string cert = absl::StrCat("--cert '", (Pki() / "app-alice-saeA.crt").string(), "' --key '",
                                        (Pki() / "app-alice-saeA.key").string(), "' ");
  const std::string base = absl::StrCat("https://alice:", port, "/api/v1/keys/saeB/");

  CurlResult get = RunCurl(absl::StrCat(common, cert, "'", base, "enc_keys?number=2&size=512'"));
  ASSERT_EQ(get.exit_code, 0) << get.out;
  Json keys = Json::parse(get.out, nullptr, false);
  ASSERT_FALSE(keys.is_discarded()) << get.out;
  EXPECT_EQ(KeyIds(keys, 64).size(), 2u);

  CurlResult post = RunCurl(absl::StrCat(common, cert, "-H 'Content-Type: application/json' -d '",
                                         R"({"number": 3, "size": 256})", "' '", base, "enc_keys'"));
  ASSERT_EQ(post.exit_code, 0) << post.out;
  EXPECT_EQ(KeyIds(Json::parse(post.out, nullptr, false), 32).size(), 3u);

  ASSERT_EQ(backend_.enc_calls.size(), 2u);
  EXPECT_EQ(backend_.enc_calls[0].caller, "saeA");
  EXPECT_EQ(backend_.enc_calls[0].number, 2u);
  EXPECT_EQ(backend_.enc_calls[0].size_bits, 512u);
  EXPECT_EQ(backend_.enc_calls[1].number, 3u);

  // Without a certificate curl completes the handshake and reads the 401.
  CurlResult anonymous = RunCurl(absl::StrCat(common, "-w '\\n%{http_code}' '", base, "status'"));
  ASSERT_EQ(anonymous.exit_code, 0) << anonymous.out;
  EXPECT_THAT(anonymous.out, HasSubstr("no client certificate"));
  EXPECT_THAT(anonymous.out, ::testing::EndsWith("\n401"));

  // A method httplib knows but routes nowhere, and one it does not know.
  CurlResult trace = RunCurl(absl::StrCat(common, cert, "-X TRACE -w '\\n%{http_code}' '", base, "status'"));
  EXPECT_THAT(trace.out, ::testing::EndsWith("\n405")) << trace.out;
  CurlResult foo = RunCurl(absl::StrCat(common, cert, "-X FOO -w '\\n%{http_code}' '", base, "status'"));
  EXPECT_THAT(foo.out, ::testing::EndsWith("\n400")) << foo.out;
  EXPECT_THAT(foo.out, HasSubstr("unknown method")) << foo.out;
}

// A resumed session presents no certificate: the verdict on the first
// handshake's certificate must come with the session.
TEST_F(Etsi014ServerTest, AResumedSessionKeepsItsCertificatesVerdict) {
  for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    for (const fs::path& pki : {Pki(), OtherPki()}) {
      SCOPED_TRACE(absl::StrCat(version == TLS1_2_VERSION ? "TLS 1.2 " : "TLS 1.3 ", pki.filename().string()));
      SSL_SESSION* session = nullptr;
      RawAnswer first = RawGet(server_->port(), Pki() / "ca.crt", pki, "app-alice-saeA", "/api/v1/keys/saeB/status",
                               version, &session);
      RawAnswer again =
          RawGet(server_->port(), Pki() / "ca.crt", pki, "", "/api/v1/keys/saeB/status", version, &session);
      SSL_SESSION_free(session);
      EXPECT_FALSE(first.resumed);
      EXPECT_TRUE(again.resumed);
      for (const RawAnswer& a : {first, again}) {
        if (pki == Pki()) {
          EXPECT_THAT(a.text, ::testing::StartsWith("HTTP/1.1 200 ")) << a.text;
          EXPECT_THAT(a.text, HasSubstr(R"("master_SAE_ID":"saeA")"));
        } else {
          EXPECT_THAT(a.text, ::testing::StartsWith("HTTP/1.1 401 ")) << a.text;
          EXPECT_THAT(a.text, HasSubstr("not signed by network net's CA"));
        }
      }
    }
  }
  EXPECT_EQ(backend_.status_calls.size(), 4u);
}

TEST(Etsi014ServerStartTest, BadOptionsAreRefused) {
  const fs::path dir = fs::path(::testing::TempDir()) / absl::StrCat("qnet-etsi014-start-", getpid());
  fs::remove_all(dir);
  ASSERT_TRUE(security::InitNetworkPki(dir, kNetwork, {"alice"}).ok());
  absl::StatusOr<security::TlsMaterial> tls =
      security::LoadTls(dir, Identity{.network = kNetwork, .role = Role::kNode, .node = "alice", .name = "alice"});
  ASSERT_TRUE(tls.ok());
  FakeBackend backend;
  auto start = [&](const std::string& listen, security::TlsMaterial material, int workers = 2) {
    Etsi014ServerOptions options;
    options.listen = listen;
    options.network = kNetwork;
    options.node = "alice";
    options.tls = std::move(material);
    options.worker_threads = workers;
    return Etsi014Server::Start(options, backend);
  };
  for (const char* listen :
       {"127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:x", "::1:80"}) {
    EXPECT_EQ(start(listen, *tls).status().code(), absl::StatusCode::kInvalidArgument) << listen;
  }
  EXPECT_EQ(start("127.0.0.1:0", *tls, 0).status().code(), absl::StatusCode::kInvalidArgument);
  security::TlsMaterial bad = *tls;
  bad.cert_pem = "garbage";
  EXPECT_EQ(start("127.0.0.1:0", bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad = *tls;
  bad.ca_pem = "";
  EXPECT_EQ(start("127.0.0.1:0", bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad = *tls;
  bad.key_pem = security::LoadTls(dir, security::DefaultOperator(kNetwork)).value().key_pem;
  absl::Status mismatch = start("127.0.0.1:0", bad).status();
  EXPECT_EQ(mismatch.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(mismatch.message(), HasSubstr("does not match"));

  absl::StatusOr<std::unique_ptr<Etsi014Server>> first = start("127.0.0.1:0", *tls);
  ASSERT_TRUE(first.ok()) << first.status();
  const int port = (*first)->port();
  EXPECT_EQ(start(absl::StrCat("127.0.0.1:", port), *tls).status().code(), absl::StatusCode::kUnavailable);
  // Once stopped, its port is free again and a fixed port works.
  first->reset();
  absl::StatusOr<std::unique_ptr<Etsi014Server>> again = start(absl::StrCat("127.0.0.1:", port), *tls);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->port(), port);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace qnet::kme
