#include "security/pki.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/strings/str_cat.h"
#include "security/openssl_handles.h"

namespace qnet::security {
namespace fs = std::filesystem;
namespace {

// Certificates last ten years: a qnet network is a test bed whose CA lives
// in its state directory; re-issuing is `qnetctl pki issue`.
constexpr long kValiditySeconds = 10L * 365 * 24 * 3600;
constexpr absl::string_view kCaPrefix = "qnet CA of network ";

absl::StatusOr<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path.string(), ": ", std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Writes atomically (temp file + rename) with `mode` from the start, so a
// private key is never readable by others, not even briefly.
absl::Status WriteFile(const fs::path& path, const std::string& text, mode_t mode) {
  const fs::path tmp = path.string() + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot write ", tmp.string(), ": ", std::strerror(errno)));
  ::fchmod(fd, mode);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return absl::InternalError(absl::StrCat("cannot write ", tmp.string(), ": ", std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot write ", path.string(), ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<OpenSslPtr<EVP_PKEY>> NewKey() {
  OpenSslPtr<EVP_PKEY> key(EVP_EC_gen("P-256"));
  if (key == nullptr) return absl::InternalError(OpenSslError("generating a P-256 key"));
  return key;
}

absl::StatusOr<std::string> KeyPem(EVP_PKEY* key) {
  OpenSslPtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    return absl::InternalError(OpenSslError("encoding a private key"));
  }
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

absl::StatusOr<std::string> CertPem(X509* cert) {
  OpenSslPtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(bio.get(), cert)) return absl::InternalError(OpenSslError("encoding a certificate"));
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

absl::StatusOr<OpenSslPtr<X509>> ParseCert(absl::string_view pem) {
  OpenSslPtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  OpenSslPtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) return absl::InvalidArgumentError(OpenSslError("not a PEM certificate"));
  return cert;
}

absl::StatusOr<OpenSslPtr<EVP_PKEY>> ParseKey(absl::string_view pem) {
  OpenSslPtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  OpenSslPtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) return absl::InvalidArgumentError(OpenSslError("not a PEM private key"));
  return key;
}

absl::Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  OpenSslPtr<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (ext == nullptr || !X509_add_ext(cert, ext.get(), -1)) {
    return absl::InternalError(OpenSslError(absl::StrCat("adding certificate extension ", value)));
  }
  return absl::OkStatus();
}

// A certificate for `key` named `common_name`, signed by `issuer_key` (and
// issued by `issuer`, or self-signed when null).
absl::StatusOr<OpenSslPtr<X509>> MakeCertificate(EVP_PKEY* key, const std::string& common_name, X509* issuer,
                                            EVP_PKEY* issuer_key, const std::vector<std::pair<int, std::string>>& exts) {
  OpenSslPtr<X509> cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return absl::InternalError(OpenSslError("random serial"));
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);  // tolerate clocks a little apart
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), kValiditySeconds);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("qnet"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(common_name.c_str()),
                             -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name);
  X509* issuer_for_ext = issuer != nullptr ? issuer : cert.get();
  for (const auto& [nid, value] : exts) {
    if (absl::Status s = AddExtension(cert.get(), issuer_for_ext, nid, value); !s.ok()) return s;
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) {
    return absl::InternalError(OpenSslError("signing a certificate"));
  }
  return cert;
}

fs::path CertPath(const fs::path& dir, const std::string& stem) { return dir / (stem + ".crt"); }
fs::path KeyPath(const fs::path& dir, const std::string& stem) { return dir / (stem + ".key"); }

absl::Status EnsureDirectory(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir.string(), ": ", ec.message()));
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  return absl::OkStatus();
}

}  // namespace

std::string CertificateStem(const Identity& identity) {
  switch (identity.role) {
    case Role::kNode: return absl::StrCat("node-", identity.node);
    case Role::kOperator: return absl::StrCat("operator-", identity.name);
    case Role::kApp: return absl::StrCat("app-", identity.node, "-", identity.name);
    case Role::kMonitor: return absl::StrCat("monitor-", identity.name);
  }
  return "";
}

Identity DefaultMonitor(const std::string& network) {
  return Identity{.network = network, .role = Role::kMonitor, .node = "", .name = "prometheus"};
}

Identity DefaultOperator(const std::string& network) {
  return Identity{.network = network, .role = Role::kOperator, .node = "", .name = "operator"};
}

absl::StatusOr<std::string> PkiNetwork(const fs::path& dir) {
  if (!fs::exists(dir / "ca.crt")) return absl::NotFoundError(absl::StrCat("no CA in ", dir.string()));
  absl::StatusOr<std::string> pem = ReadFile(dir / "ca.crt");
  if (!pem.ok()) return pem.status();
  absl::StatusOr<OpenSslPtr<X509>> cert = ParseCert(*pem);
  if (!cert.ok()) return absl::InvalidArgumentError(absl::StrCat((dir / "ca.crt").string(), ": ", cert.status().message()));
  std::string cn = CommonName(cert->get());
  if (!absl::StartsWith(cn, kCaPrefix)) {
    return absl::InvalidArgumentError(absl::StrCat((dir / "ca.crt").string(), " is not a qnet network CA (CN '", cn, "')"));
  }
  return cn.substr(kCaPrefix.size());
}

absl::Status InitNetworkPki(const fs::path& dir, const std::string& network, const std::vector<std::string>& nodes) {
  if (!IsValidName(network)) return absl::InvalidArgumentError(absl::StrCat("'", network, "' is not a valid network name"));
  if (absl::Status s = EnsureDirectory(dir); !s.ok()) return s;
  if (!fs::exists(dir / "ca.crt")) {
    absl::StatusOr<OpenSslPtr<EVP_PKEY>> key = NewKey();
    if (!key.ok()) return key.status();
    absl::StatusOr<OpenSslPtr<X509>> cert =
        MakeCertificate(key->get(), absl::StrCat(kCaPrefix, network), nullptr, key->get(),
                        {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                         {NID_key_usage, "critical,keyCertSign,cRLSign"},
                         {NID_subject_key_identifier, "hash"}});
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key_pem = KeyPem(key->get());
    absl::StatusOr<std::string> cert_pem = CertPem(cert->get());
    if (!key_pem.ok()) return key_pem.status();
    if (!cert_pem.ok()) return cert_pem.status();
    if (absl::Status s = WriteFile(dir / "ca.key", *key_pem, 0600); !s.ok()) return s;
    if (absl::Status s = WriteFile(dir / "ca.crt", *cert_pem, 0644); !s.ok()) return s;
  }
  absl::StatusOr<std::string> existing = PkiNetwork(dir);
  if (!existing.ok()) return existing.status();
  if (*existing != network) {
    return absl::FailedPreconditionError(absl::StrCat("the CA in ", dir.string(), " is network '", *existing,
                                                      "''s, not '", network, "''s"));
  }
  std::vector<Identity> wanted;
  for (const std::string& node : nodes) wanted.push_back({.network = network, .role = Role::kNode, .node = node, .name = node});
  wanted.push_back(DefaultOperator(network));
  for (const Identity& id : wanted) {
    if (fs::exists(CertPath(dir, CertificateStem(id))) && fs::exists(KeyPath(dir, CertificateStem(id)))) continue;
    if (absl::StatusOr<fs::path> issued = IssueCertificate(dir, id); !issued.ok()) return issued.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<fs::path> IssueCertificate(const fs::path& dir, const Identity& identity) {
  for (const std::string* field : {&identity.network, &identity.name}) {
    if (!IsValidName(*field)) return absl::InvalidArgumentError(absl::StrCat("'", *field, "' is not a valid name"));
  }
  if (identity.role != Role::kOperator && identity.role != Role::kMonitor && !IsValidName(identity.node)) {
    return absl::InvalidArgumentError(absl::StrCat("a ", RoleName(identity.role), " certificate needs a node name"));
  }
  absl::StatusOr<std::string> network = PkiNetwork(dir);
  if (!network.ok()) return network.status();
  if (*network != identity.network) {
    return absl::InvalidArgumentError(absl::StrCat("the CA in ", dir.string(), " is network '", *network,
                                                   "''s; it cannot issue for network '", identity.network, "'"));
  }
  absl::StatusOr<std::string> ca_pem = ReadFile(dir / "ca.crt");
  absl::StatusOr<std::string> ca_key_pem = ReadFile(dir / "ca.key");
  if (!ca_pem.ok()) return ca_pem.status();
  if (!ca_key_pem.ok()) return ca_key_pem.status();
  absl::StatusOr<OpenSslPtr<X509>> ca = ParseCert(*ca_pem);
  absl::StatusOr<OpenSslPtr<EVP_PKEY>> ca_key = ParseKey(*ca_key_pem);
  if (!ca.ok()) return ca.status();
  if (!ca_key.ok()) return ca_key.status();

  absl::StatusOr<OpenSslPtr<EVP_PKEY>> key = NewKey();
  if (!key.ok()) return key.status();
  std::string san = absl::StrCat("URI:", IdentityUri(identity));
  // A node's name as a DNS name: clients and neighbours connect with the
  // node's name as the TLS target, so the handshake proves they reached it.
  // 127.0.0.1 too, for HTTPS clients of a local network's KME (curl
  // https://127.0.0.1:PORT/...): on one host every daemon is one trust
  // domain, and the port tells the nodes apart.
  if (identity.role == Role::kNode) san = absl::StrCat("DNS:", identity.node, ",IP:127.0.0.1,", san);
  absl::StatusOr<OpenSslPtr<X509>> cert =
      MakeCertificate(key->get(), Describe(identity), ca->get(), ca_key->get(),
                      {{NID_basic_constraints, "critical,CA:FALSE"},
                       {NID_key_usage, "critical,digitalSignature,keyAgreement"},
                       {NID_ext_key_usage, "serverAuth,clientAuth"},
                       {NID_subject_alt_name, san},
                       {NID_authority_key_identifier, "keyid:always"}});
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key_pem = KeyPem(key->get());
  absl::StatusOr<std::string> cert_pem = CertPem(cert->get());
  if (!key_pem.ok()) return key_pem.status();
  if (!cert_pem.ok()) return cert_pem.status();
  const std::string stem = CertificateStem(identity);
  if (absl::Status s = WriteFile(KeyPath(dir, stem), *key_pem, 0600); !s.ok()) return s;
  if (absl::Status s = WriteFile(CertPath(dir, stem), *cert_pem, 0644); !s.ok()) return s;
  return CertPath(dir, stem);
}

absl::StatusOr<TlsMaterial> LoadTlsFiles(const fs::path& ca, const fs::path& cert, const fs::path& key) {
  TlsMaterial m;
  for (auto [path, out] : {std::pair{&ca, &m.ca_pem}, std::pair{&cert, &m.cert_pem}, std::pair{&key, &m.key_pem}}) {
    absl::StatusOr<std::string> text = ReadFile(*path);
    if (!text.ok()) return text.status();
    *out = *std::move(text);
  }
  if (absl::StatusOr<OpenSslPtr<X509>> c = ParseCert(m.ca_pem); !c.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(ca.string(), ": ", c.status().message()));
  }
  absl::StatusOr<OpenSslPtr<X509>> own = ParseCert(m.cert_pem);
  if (!own.ok()) return absl::InvalidArgumentError(absl::StrCat(cert.string(), ": ", own.status().message()));
  absl::StatusOr<OpenSslPtr<EVP_PKEY>> k = ParseKey(m.key_pem);
  if (!k.ok()) return absl::InvalidArgumentError(absl::StrCat(key.string(), ": ", k.status().message()));
  if (X509_check_private_key(own->get(), k->get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(key.string(), " is not the key of ", cert.string()));
  }
  return m;
}

absl::StatusOr<TlsMaterial> LoadTls(const fs::path& dir, const Identity& identity) {
  const std::string stem = CertificateStem(identity);
  return LoadTlsFiles(dir / "ca.crt", CertPath(dir, stem), KeyPath(dir, stem));
}

absl::StatusOr<Identity> IdentityOfCertificate(absl::string_view pem) {
  absl::StatusOr<OpenSslPtr<X509>> cert = ParseCert(pem);
  if (!cert.ok()) return cert.status();
  OpenSslPtr<GENERAL_NAMES> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert->get(), NID_subject_alt_name, nullptr, nullptr)));
  if (names != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
      if (name->type != GEN_URI) continue;
      const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
      absl::string_view text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                            static_cast<size_t>(ASN1_STRING_length(uri)));
      if (absl::StartsWith(text, "urn:qnet:")) return ParseIdentityUri(text);
    }
  }
  return absl::PermissionDeniedError(
      absl::StrCat("certificate '", CommonName(cert->get()), "' names no qnet identity (no urn:qnet: subjectAltName)"));
}

absl::StatusOr<Identity> CachedIdentityOfCertificate(absl::string_view pem) {
  static absl::Mutex mu(absl::kConstInit);
  static auto* cache = new absl::flat_hash_map<std::string, absl::StatusOr<Identity>>();  // never freed: used at exit
  {
    absl::MutexLock lock(&mu);
    if (auto it = cache->find(pem); it != cache->end()) return it->second;
  }
  absl::StatusOr<Identity> identity = IdentityOfCertificate(pem);
  absl::MutexLock lock(&mu);
  if (cache->size() >= kMaxCachedIdentities) cache->clear();
  cache->emplace(std::string(pem), identity);
  return identity;
}

}  // namespace qnet::security
