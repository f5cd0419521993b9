#include "security/node_signature.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "absl/strings/str_cat.h"
#include "security/openssl_handles.h"

namespace qnet::security {
namespace {

OpenSslPtr<X509> PemCert(const std::string& pem) {
  OpenSslPtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return OpenSslPtr<X509>(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

// Signature layout: 2-byte big-endian length of the certificate's DER, the
// DER, then the ECDSA signature.
constexpr size_t kLengthBytes = 2;

}  // namespace

struct NodeSigner::Impl {
  OpenSslPtr<EVP_PKEY> key;
  std::string cert_der;
};

NodeSigner::~NodeSigner() = default;

absl::StatusOr<std::unique_ptr<NodeSigner>> NodeSigner::Create(const TlsMaterial& tls) {
  auto impl = std::make_unique<Impl>();
  OpenSslPtr<BIO> bio(BIO_new_mem_buf(tls.key_pem.data(), static_cast<int>(tls.key_pem.size())));
  impl->key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  OpenSslPtr<X509> cert = PemCert(tls.cert_pem);
  if (impl->key == nullptr || cert == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the node's certificate or key cannot be read");
  }
  unsigned char* der = nullptr;
  int n = i2d_X509(cert.get(), &der);
  if (n <= 0 || n > 0xffff) return absl::InvalidArgumentError("the node's certificate cannot be encoded");
  impl->cert_der.assign(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  std::unique_ptr<NodeSigner> signer(new NodeSigner());
  signer->impl_ = std::move(impl);
  return signer;
}

std::string NodeSigner::Sign(absl::string_view message) const {
  OpenSslPtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  size_t size = 0;
  std::string sig;
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, impl_->key.get()) == 1 &&
      EVP_DigestSign(ctx.get(), nullptr, &size, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) == 1) {
    sig.resize(size);
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &size,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1) {
      sig.resize(size);
    } else {
      sig.clear();
    }
  }
  ERR_clear_error();
  const size_t n = impl_->cert_der.size();
  std::string out;
  out.reserve(kLengthBytes + n + sig.size());
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n & 0xff));
  out += impl_->cert_der;
  out += sig;
  return out;
}

struct NodeSignatureVerifier::Impl {
  OpenSslPtr<X509_STORE> store;
  std::string network;
  mutable std::mutex mu;
  // Certificates (DER) already verified against the CA, with their node.
  mutable std::map<std::string, std::pair<std::string, std::shared_ptr<EVP_PKEY>>> verified;
};

NodeSignatureVerifier::~NodeSignatureVerifier() = default;

absl::StatusOr<std::unique_ptr<NodeSignatureVerifier>> NodeSignatureVerifier::Create(const std::string& ca_pem,
                                                                                     const std::string& network) {
  auto impl = std::make_unique<Impl>();
  OpenSslPtr<X509> ca = PemCert(ca_pem);
  if (ca == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the network's CA certificate cannot be read");
  }
  impl->store.reset(X509_STORE_new());
  X509_STORE_add_cert(impl->store.get(), ca.get());
  impl->network = network;
  std::unique_ptr<NodeSignatureVerifier> v(new NodeSignatureVerifier());
  v->impl_ = std::move(impl);
  return v;
}

absl::Status NodeSignatureVerifier::Verify(absl::string_view node, absl::string_view message,
                                           absl::string_view signature) const {
  auto refuse = [&](absl::string_view why) {
    return absl::PermissionDeniedError(absl::StrCat("signature of node '", node, "': ", why));
  };
  if (signature.size() < kLengthBytes) return refuse("missing");
  const size_t n = (static_cast<unsigned char>(signature[0]) << 8) | static_cast<unsigned char>(signature[1]);
  if (signature.size() < kLengthBytes + n + 8) return refuse("truncated");
  const std::string der(signature.substr(kLengthBytes, n));
  const absl::string_view sig = signature.substr(kLengthBytes + n);

  std::shared_ptr<EVP_PKEY> key;
  {
    std::lock_guard lock(impl_->mu);
    if (auto it = impl_->verified.find(der); it != impl_->verified.end()) {
      if (it->second.first != node) return refuse(absl::StrCat("signed with node '", it->second.first, "''s certificate"));
      key = it->second.second;
    }
  }
  if (key == nullptr) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
    OpenSslPtr<X509> cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
    if (cert == nullptr) {
      ERR_clear_error();
      return refuse("the certificate cannot be read");
    }
    OpenSslPtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
    X509_STORE_CTX_init(ctx.get(), impl_->store.get(), cert.get(), nullptr);
    const bool chain_ok = X509_verify_cert(ctx.get()) == 1;
    ERR_clear_error();
    if (!chain_ok) return refuse("the certificate is not the network CA's");
    OpenSslPtr<BIO> bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_X509(bio.get(), cert.get());
    char* data = nullptr;
    long size = BIO_get_mem_data(bio.get(), &data);
    absl::StatusOr<Identity> id = IdentityOfCertificate(absl::string_view(data, static_cast<size_t>(size)));
    if (!id.ok() || id->role != Role::kNode || id->network != impl_->network) {
      return refuse("the certificate names no node of this network");
    }
    if (id->node != node) return refuse(absl::StrCat("signed with node '", id->node, "''s certificate"));
    key = std::shared_ptr<EVP_PKEY>(X509_get_pubkey(cert.get()), EVP_PKEY_free);
    std::lock_guard lock(impl_->mu);
    impl_->verified[der] = {id->node, key};
  }
  OpenSslPtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  const bool ok =
      EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) == 1 &&
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  ERR_clear_error();
  if (!ok) return refuse("does not match the message");
  return absl::OkStatus();
}

}  // namespace qnet::security
