// The network PKI: certificates name their qnet identity, keys are private,
// re-running keeps what exists, and a CA issues only for its own network.
#include "security/pki.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "security/identity.h"

namespace qnet::security {
namespace {
namespace fs = std::filesystem;

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("qnet-pki-" + std::to_string(getpid()) + "-" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

mode_t Mode(const fs::path& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

TEST(IdentityTest, UrisRoundTripAndBadOnesAreRefused) {
  for (const Identity& id : {Identity{.network = "net", .role = Role::kNode, .node = "alice", .name = "alice"},
                             Identity{.network = "net", .role = Role::kOperator, .node = "", .name = "ops"},
                             Identity{.network = "net", .role = Role::kApp, .node = "alice", .name = "vpn1"}}) {
    absl::StatusOr<Identity> back = ParseIdentityUri(IdentityUri(id));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, id) << IdentityUri(id);
  }
  EXPECT_EQ(IdentityUri({.network = "n", .role = Role::kApp, .node = "a", .name = "x"}), "urn:qnet:n:app:a:x");
  for (const char* bad : {"", "urn:qnet:", "urn:qnet:n:node", "urn:qnet:n:king:a", "urn:qnet:n:app:a",
                          "urn:qnet:n:node:a:b", "urn:other:n:node:a", "urn:qnet:n:node:-a", "urn:qnet::node:a"}) {
    EXPECT_FALSE(ParseIdentityUri(bad).ok()) << bad;
  }
}

TEST_F(PkiTest, InitMakesACertificatePerNodeAndTheOperatorWithPrivateKeys) {
  ASSERT_TRUE(InitNetworkPki(dir_, "chain", {"alice", "bob"}).ok());
  EXPECT_EQ(Mode(dir_), 0700u);
  for (const char* stem : {"ca", "node-alice", "node-bob", "operator-operator"}) {
    EXPECT_EQ(Mode(dir_ / (std::string(stem) + ".key")), 0600u) << stem;
    EXPECT_TRUE(fs::exists(dir_ / (std::string(stem) + ".crt"))) << stem;
  }
  absl::StatusOr<TlsMaterial> alice =
      LoadTls(dir_, {.network = "chain", .role = Role::kNode, .node = "alice", .name = "alice"});
  ASSERT_TRUE(alice.ok()) << alice.status();
  absl::StatusOr<Identity> named = IdentityOfCertificate(alice->cert_pem);
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(named->role, Role::kNode);
  EXPECT_EQ(named->node, "alice");
  EXPECT_EQ(named->network, "chain");
  EXPECT_EQ(*PkiNetwork(dir_), "chain");
  // The CA is no leaf identity.
  EXPECT_FALSE(IdentityOfCertificate(alice->ca_pem).ok());
}

// The cached lookup every gRPC call's authorisation uses answers exactly as
// the parse does, for each certificate, a refused one included, also once
// the cache has started over.
TEST_F(PkiTest, CachedIdentitiesAnswerAsTheParseDoes) {
  ASSERT_TRUE(InitNetworkPki(dir_, "chain", {"alice", "bob"}).ok());
  auto pem_of = [&](const Identity& who) { return LoadTls(dir_, who)->cert_pem; };
  const std::string alice = pem_of({.network = "chain", .role = Role::kNode, .node = "alice", .name = "alice"});
  const std::string bob = pem_of({.network = "chain", .role = Role::kNode, .node = "bob", .name = "bob"});
  const std::string ca = LoadTls(dir_, {.network = "chain", .role = Role::kNode, .node = "alice", .name = "alice"})->ca_pem;
  for (int round = 0; round < 2; ++round) {
    for (const std::string* pem : {&alice, &bob, &alice}) {
      absl::StatusOr<Identity> cached = CachedIdentityOfCertificate(*pem);
      ASSERT_TRUE(cached.ok()) << cached.status();
      EXPECT_EQ(*cached, *IdentityOfCertificate(*pem));
    }
    EXPECT_EQ(CachedIdentityOfCertificate(ca).status(), IdentityOfCertificate(ca).status());
    EXPECT_FALSE(CachedIdentityOfCertificate("not a certificate").ok());
    // Fill the cache past its bound with distinct non-certificates: it starts over.
    for (size_t i = 0; i <= kMaxCachedIdentities; ++i) (void)CachedIdentityOfCertificate(absl::StrCat("junk ", i));
  }
  EXPECT_EQ(CachedIdentityOfCertificate(bob)->node, "bob");
}

TEST_F(PkiTest, ReInitKeepsCertificatesAndRefusesAnotherNetwork) {
  ASSERT_TRUE(InitNetworkPki(dir_, "chain", {"alice"}).ok());
  absl::StatusOr<TlsMaterial> before = LoadTls(dir_, DefaultOperator("chain"));
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE(InitNetworkPki(dir_, "chain", {"alice", "bob"}).ok());
  absl::StatusOr<TlsMaterial> after = LoadTls(dir_, DefaultOperator("chain"));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(before->cert_pem, after->cert_pem);
  EXPECT_EQ(before->ca_pem, after->ca_pem);
  EXPECT_TRUE(fs::exists(dir_ / "node-bob.crt"));
  absl::Status other = InitNetworkPki(dir_, "ring", {"alice"});
  EXPECT_EQ(other.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(other.message().find("'chain'"), std::string::npos) << other;
  absl::StatusOr<fs::path> foreign =
      IssueCertificate(dir_, {.network = "ring", .role = Role::kOperator, .node = "", .name = "ops"});
  EXPECT_FALSE(foreign.ok());
}

TEST_F(PkiTest, IssuesAppCertificatesAndChecksKeysMatch) {
  ASSERT_TRUE(InitNetworkPki(dir_, "chain", {"alice"}).ok());
  const Identity app{.network = "chain", .role = Role::kApp, .node = "alice", .name = "vpn1"};
  absl::StatusOr<fs::path> cert = IssueCertificate(dir_, app);
  ASSERT_TRUE(cert.ok()) << cert.status();
  EXPECT_EQ(cert->filename(), "app-alice-vpn1.crt");
  absl::StatusOr<TlsMaterial> tls = LoadTls(dir_, app);
  ASSERT_TRUE(tls.ok());
  EXPECT_EQ(*IdentityOfCertificate(tls->cert_pem), app);
  // A key that is not the certificate's.
  absl::StatusOr<TlsMaterial> mixed =
      LoadTlsFiles(dir_ / "ca.crt", dir_ / "app-alice-vpn1.crt", dir_ / "node-alice.key");
  EXPECT_FALSE(mixed.ok());
  EXPECT_NE(mixed.status().message().find("is not the key of"), std::string::npos) << mixed.status();
  EXPECT_FALSE(LoadTlsFiles(dir_ / "ca.crt", dir_ / "missing.crt", dir_ / "node-alice.key").ok());
  EXPECT_FALSE(IssueCertificate(dir_, {.network = "chain", .role = Role::kApp, .node = "", .name = "x"}).ok());
  EXPECT_FALSE(IssueCertificate(dir_, {.network = "chain", .role = Role::kOperator, .node = "", .name = "a b"}).ok());
}

}  // namespace
}  // namespace qnet::security
