// qnet's HTTP endpoints (the KME's ETSI GS QKD 014 API, a daemon's
// Prometheus metrics) on one server: cpp-httplib over OpenSSL with the
// network's certificates. The TLS handshake accepts any client certificate,
// or none, so that a refusal is an HTTP answer the client can read; each
// request names its caller with ClientIdentity (the network's CA decides).
// Without TLS material the server speaks plain HTTP, which only an
// insecure-local-only daemon uses (on the loopback interface).
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/statusor.h"
#include "security/identity.h"
#include "security/pki.h"

namespace httplib {
class Server;
struct Request;
}  // namespace httplib

namespace qnet::security {

struct HttpsServerOptions {
  std::string listen = "127.0.0.1:0";  // host:port; port 0 picks a free one
  std::optional<TlsMaterial> tls;      // none: plain HTTP
  std::string what = "the server";     // "the KME": names it in errors
  int worker_threads = 2;
  size_t max_body_bytes = 64 * 1024;
  // Bounds how long a silent or slow client holds a worker.
  time_t io_timeout_s = 5;
  // Also how long an idle keep-alive connection can delay the destructor:
  // httplib's wait for a connection's next request does not notice stop().
  time_t keep_alive_s = 2;
};

class HttpsServer {
 public:
  // Binds and starts serving on its own threads; `routes` installs the
  // handlers first. InvalidArgument for a bad address or TLS material,
  // Unavailable if the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpsServer>> Start(HttpsServerOptions options,
                                                            const std::function<void(httplib::Server&)>& routes);
  // Stops accepting, finishes requests in flight, joins the threads.
  ~HttpsServer();
  HttpsServer(const HttpsServer&) = delete;
  HttpsServer& operator=(const HttpsServer&) = delete;

  int port() const { return port_; }
  bool tls() const { return tls_; }
  std::string url() const;  // https://HOST:PORT (http:// without TLS)

 private:
  HttpsServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string host_;
  int port_ = 0;
  bool tls_ = false;
};

// "host:port" (IPv6 hosts in brackets) with a port in [0, 65535].
absl::StatusOr<std::pair<std::string, int>> ParseListenAddress(const std::string& listen);

// The qnet identity of the request's client certificate, verified against
// the server's CA and of `network`: Unauthenticated saying why not (no TLS,
// no certificate, another CA, another network).
absl::StatusOr<Identity> ClientIdentity(const httplib::Request& request, const std::string& network);

}  // namespace qnet::security
