#include "security/https_server.h"

#include <httplib.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "security/openssl_handles.h"

namespace qnet::security {
namespace {

OpenSslPtr<BIO> MemoryBio(const std::string& text) {
  return OpenSslPtr<BIO>(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Every certificate in a PEM text, in order.
std::vector<OpenSslPtr<X509>> ReadCertificates(const std::string& pem) {
  std::vector<OpenSslPtr<X509>> certs;
  OpenSslPtr<BIO> bio = MemoryBio(pem);
  while (OpenSslPtr<X509> cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) certs.push_back(std::move(cert));
  ERR_clear_error();  // the read past the last certificate
  return certs;
}

// Accepts every client certificate, and none, so that the handshake always
// completes and the refusal is a readable HTTP answer. OpenSSL still records
// the chain's verification error, which ClientIdentity checks.
int AcceptAnyClientCertificate(int /*preverify_ok*/, X509_STORE_CTX* /*ctx*/) { return 1; }

absl::Status ConfigureTls(SSL_CTX* ctx, const TlsMaterial& tls, const std::string& what) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);

  std::vector<OpenSslPtr<X509>> chain = ReadCertificates(tls.cert_pem);
  if (chain.empty()) return absl::InvalidArgumentError(absl::StrCat(what, "'s certificate is not a PEM certificate"));
  if (SSL_CTX_use_certificate(ctx, chain[0].get()) != 1) {
    return absl::InvalidArgumentError(OpenSslError(absl::StrCat(what, "'s certificate is unusable")));
  }
  for (size_t i = 1; i < chain.size(); ++i) {
    if (SSL_CTX_add1_chain_cert(ctx, chain[i].get()) != 1) {
      return absl::InvalidArgumentError(OpenSslError(absl::StrCat(what, "'s certificate chain is unusable")));
    }
  }
  OpenSslPtr<BIO> key_bio = MemoryBio(tls.key_pem);
  OpenSslPtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(OpenSslError(absl::StrCat(what, "'s key is not a PEM private key")));
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return absl::InvalidArgumentError(OpenSslError(absl::StrCat(what, "'s key does not match its certificate")));
  }

  std::vector<OpenSslPtr<X509>> cas = ReadCertificates(tls.ca_pem);
  if (cas.empty()) return absl::InvalidArgumentError("the network's CA is not a PEM certificate");
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  for (const OpenSslPtr<X509>& ca : cas) {
    if (X509_STORE_add_cert(store, ca.get()) != 1 || SSL_CTX_add_client_CA(ctx, ca.get()) != 1) {
      return absl::InvalidArgumentError(OpenSslError("the network's CA is unusable"));
    }
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, AcceptAnyClientCertificate);
  // Without a session id context OpenSSL fails the handshake of a client
  // resuming a session when peer verification is on (curl resumes). One per
  // kind of server: a session of one is no session of another.
  const std::string context = absl::StrCat("qnet-https:", what).substr(0, SSL_MAX_SID_CTX_LENGTH);
  SSL_CTX_set_session_id_context(ctx, reinterpret_cast<const unsigned char*>(context.data()),
                                 static_cast<unsigned int>(context.size()));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::pair<std::string, int>> ParseListenAddress(const std::string& listen) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("listen address '", listen, "': ", why));
  };
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return bad("not host:port");
  std::string host = listen.substr(0, colon);
  const std::string port_text = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (absl::StrContains(host, ':')) {
    return bad("an IPv6 host goes in brackets ([::1]:port)");
  }
  if (host.empty()) return bad("no host");
  int port = -1;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || !absl::ascii_isdigit(static_cast<unsigned char>(port_text[0])) || ec != std::errc() ||
      end != port_text.data() + port_text.size() || port > 65535) {
    return bad("the port is not a number in [0, 65535]");
  }
  return std::pair{host, port};
}

absl::StatusOr<std::unique_ptr<HttpsServer>> HttpsServer::Start(HttpsServerOptions options,
                                                              const std::function<void(httplib::Server&)>& routes) {
  absl::StatusOr<std::pair<std::string, int>> address = ParseListenAddress(options.listen);
  if (!address.ok()) return address.status();
  if (options.worker_threads < 1) return absl::InvalidArgumentError("worker_threads must be at least 1");

  std::unique_ptr<httplib::Server> server;
  if (options.tls.has_value()) {
    std::string tls_error;
    auto ssl = std::make_unique<httplib::SSLServer>([&](SSL_CTX& ctx) {
      absl::Status s = ConfigureTls(&ctx, *options.tls, options.what);
      tls_error = std::string(s.message());
      return s.ok();
    });
    if (!ssl->is_valid()) {
      return absl::InvalidArgumentError(absl::StrCat(options.what, ": TLS material: ", tls_error));
    }
    server = std::move(ssl);
  } else {
    server = std::make_unique<httplib::Server>();
  }

  server->set_payload_max_length(options.max_body_bytes);
  server->set_read_timeout(options.io_timeout_s, 0);
  server->set_write_timeout(options.io_timeout_s, 0);
  server->set_keep_alive_timeout(options.keep_alive_s);
  // httplib writes a response's headers and body separately: with Nagle on,
  // the body waited for the client's delayed ACK (~40 ms per keep-alive
  // request; bench/kme_bench.cc BM_KmeEncKeys).
  server->set_tcp_nodelay(true);
  // Debian's default is 5 requests per connection, each 5th paying a new
  // TLS handshake.
  server->set_keep_alive_max_count(1000);
  const size_t workers = static_cast<size_t>(options.worker_threads);
  server->new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  // httplib's default sets SO_REUSEPORT, which would let another process
  // bind this port too and take a share of the clients' connections.
  server->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  routes(*server);

  const auto& [host, port] = *address;
  int bound = port;
  errno = 0;
  if (port == 0) {
    bound = server->bind_to_any_port(host);
  } else if (!server->bind_to_port(host, port)) {
    bound = -1;
  }
  if (bound <= 0) {
    // httplib reports only failure; the bind's errno is still here.
    const int why = errno;
    return absl::UnavailableError(absl::StrCat(options.what, " cannot listen on ", options.listen,
                                               why != 0 ? absl::StrCat(": ", std::strerror(why)) : ""));
  }

  std::unique_ptr<HttpsServer> https(new HttpsServer());
  https->host_ = host;
  https->port_ = bound;
  https->tls_ = options.tls.has_value();
  https->server_ = std::move(server);
  auto finished = std::make_shared<std::atomic<bool>>(false);
  httplib::Server* s = https->server_.get();
  https->thread_ = std::thread([s, finished] {
    s->listen_after_bind();
    *finished = true;
  });
  // stop() does nothing until the accept loop runs: wait for it.
  while (!s->is_running() && !*finished) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (*finished) return absl::UnavailableError(absl::StrCat(options.what, " stopped listening on ", options.listen));
  return https;
}

HttpsServer::~HttpsServer() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string HttpsServer::url() const {
  return absl::StrCat(tls_ ? "https://" : "http://", absl::StrContains(host_, ':') ? absl::StrCat("[", host_, "]") : host_,
                      ":", port_);
}

absl::StatusOr<Identity> ClientIdentity(const httplib::Request& request, const std::string& network) {
  auto refuse = [](auto&&... parts) { return absl::UnauthenticatedError(absl::StrCat(parts...)); };
  if (request.ssl == nullptr) return refuse("no TLS session");
  X509* cert = SSL_get0_peer_certificate(request.ssl);
  if (cert == nullptr) {
    return refuse("no client certificate: present one issued by network ", network, "'s CA");
  }
  // The handshake let every certificate through; its verification result
  // (kept with the session, so also right for a resumed one) decides.
  const long verified = SSL_get_verify_result(request.ssl);
  if (verified != X509_V_OK) {
    return refuse("client certificate '", CommonName(cert), "' is not signed by network ", network, "'s CA (",
                  X509_verify_cert_error_string(verified), ")");
  }
  OpenSslPtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(bio.get(), cert)) return refuse(OpenSslError("client certificate unreadable"));
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  absl::StatusOr<Identity> id = CachedIdentityOfCertificate(absl::string_view(data, size));
  if (!id.ok()) return refuse(id.status().message());
  if (id->network != network) return refuse("client certificate is of network ", id->network, ", not ", network);
  return id;
}

}  // namespace qnet::security
