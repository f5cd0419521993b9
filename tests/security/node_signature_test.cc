// Node signatures: a node's signature verifies as that node's only, over
// that message only, and only with the network's CA.
#include "security/node_signature.h"

#include <unistd.h>

#include <filesystem>

#include "gtest/gtest.h"
#include "security/pki.h"

namespace qnet::security {
namespace {
namespace fs = std::filesystem;

Identity Node(const std::string& name) {
  return {.network = "chain", .role = Role::kNode, .node = name, .name = name};
}

TEST(NodeSignatureTest, VerifiesOnlyTheSignersOwnMessageUnderTheNetworksCa) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("qnet-sig-" + std::to_string(getpid()));
  const fs::path other = dir / "other";
  fs::remove_all(dir);
  ASSERT_TRUE(InitNetworkPki(dir, "chain", {"alice", "bob"}).ok());
  ASSERT_TRUE(InitNetworkPki(other, "chain", {"alice"}).ok());
  auto alice_tls = LoadTls(dir, Node("alice"));
  auto bob_tls = LoadTls(dir, Node("bob"));
  auto impostor_tls = LoadTls(other, Node("alice"));
  ASSERT_TRUE(alice_tls.ok() && bob_tls.ok() && impostor_tls.ok());
  auto alice = NodeSigner::Create(*alice_tls);
  auto bob = NodeSigner::Create(*bob_tls);
  auto impostor = NodeSigner::Create(*impostor_tls);
  ASSERT_TRUE(alice.ok() && bob.ok() && impostor.ok());
  auto verifier = NodeSignatureVerifier::Create(alice_tls->ca_pem, "chain");
  ASSERT_TRUE(verifier.ok());
  auto wrong_network = NodeSignatureVerifier::Create(alice_tls->ca_pem, "ring");
  ASSERT_TRUE(wrong_network.ok());

  const std::string message = "advert alice seq 7 links alice-bob";
  const std::string sig = (*alice)->Sign(message);
  EXPECT_TRUE((*verifier)->Verify("alice", message, sig).ok());
  EXPECT_TRUE((*verifier)->Verify("alice", message, sig).ok());  // cached certificate
  // Another message, another claimed origin, another signer, another CA.
  EXPECT_FALSE((*verifier)->Verify("alice", message + "!", sig).ok());
  absl::Status as_bob = (*verifier)->Verify("bob", message, sig);
  EXPECT_EQ(as_bob.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(as_bob.message().find("node 'alice''s certificate"), std::string::npos) << as_bob;
  EXPECT_FALSE((*verifier)->Verify("alice", message, (*bob)->Sign(message)).ok());
  absl::Status foreign = (*verifier)->Verify("alice", message, (*impostor)->Sign(message));
  EXPECT_NE(foreign.message().find("not the network CA's"), std::string::npos) << foreign;
  EXPECT_FALSE((*wrong_network)->Verify("alice", message, sig).ok());
  // Every single-bit flip of the signature is refused; garbage never crashes.
  for (size_t i = 0; i < sig.size(); i += 7) {
    std::string flipped = sig;
    flipped[i] ^= 0x10;
    EXPECT_FALSE((*verifier)->Verify("alice", message, flipped).ok()) << "byte " << i;
  }
  for (const std::string& garbage : {std::string(), std::string("\x00", 1), std::string("\xff\xff garbage"),
                                     sig.substr(0, sig.size() / 2)}) {
    EXPECT_FALSE((*verifier)->Verify("alice", message, garbage).ok());
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace qnet::security
