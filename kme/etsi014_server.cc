#include "kme/etsi014_server.h"

#include <httplib.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "security/identity.h"
#include "security/openssl_handles.h"

namespace qnet::kme {
namespace {

using security::OpenSslError;
using security::OpenSslPtr;

using Json = nlohmann::json;

// Requests are small JSON documents: 128 key IDs are about 6 KiB.
constexpr size_t kMaxBodyBytes = 64 * 1024;
// Bounds how long a silent or slow client holds one of the few workers.
constexpr time_t kIoTimeoutSeconds = 5;
// Also how long an idle keep-alive connection can delay the destructor:
// httplib's wait for a connection's next request does not notice stop().
constexpr time_t kKeepAliveSeconds = 2;
constexpr absl::string_view kPathPrefix = "/api/v1/keys/";

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
// completes and the refusal is a readable 401. OpenSSL still records the
// chain's verification error, which each request checks.
int AcceptAnyClientCertificate(int /*preverify_ok*/, X509_STORE_CTX* /*ctx*/) { return 1; }

absl::Status ConfigureTls(SSL_CTX* ctx, const security::TlsMaterial& tls) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);

  std::vector<OpenSslPtr<X509>> chain = ReadCertificates(tls.cert_pem);
  if (chain.empty()) return absl::InvalidArgumentError("the KME's certificate is not a PEM certificate");
  if (SSL_CTX_use_certificate(ctx, chain[0].get()) != 1) {
    return absl::InvalidArgumentError(OpenSslError("the KME's certificate is unusable"));
  }
  for (size_t i = 1; i < chain.size(); ++i) {
    if (SSL_CTX_add1_chain_cert(ctx, chain[i].get()) != 1) {
      return absl::InvalidArgumentError(OpenSslError("the KME's certificate chain is unusable"));
    }
  }
  OpenSslPtr<BIO> key_bio = MemoryBio(tls.key_pem);
  OpenSslPtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) return absl::InvalidArgumentError(OpenSslError("the KME's key is not a PEM private key"));
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return absl::InvalidArgumentError(OpenSslError("the KME's key does not match its certificate"));
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
  // resuming a session when peer verification is on (curl resumes).
  static constexpr unsigned char kSessionContext[] = "qnet-kme-etsi014";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
  return absl::OkStatus();
}

absl::StatusOr<std::pair<std::string, int>> ParseListen(const std::string& listen) {
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

// One HTTP answer: a JSON body, and for 405 the methods the path allows.
struct Reply {
  int status = 200;
  Json body;
  std::string allow;
};

Reply Error(int status, std::string message) { return Reply{status, Json{{"message", std::move(message)}}, ""}; }

int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kAlreadyExists:
      return 400;
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kDeadlineExceeded:
      return 503;
    default:
      return 500;
  }
}

Reply BackendError(const absl::Status& status) {
  return Error(HttpStatusOf(status.code()), std::string(status.message()));
}

// Never throws on bytes that are not UTF-8 (they can come from the path).
std::string Dump(const Json& json) { return json.dump(-1, ' ', false, Json::error_handler_t::replace); }

// A client-supplied value quoted in a message, cut short.
std::string Quote(absl::string_view text) {
  constexpr size_t kMax = 64;
  return absl::StrCat("'", text.substr(0, kMax), text.size() > kMax ? "...'" : "'");
}

std::string Base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string CommonName(X509* cert) {
  char text[256] = "";
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, text, sizeof text);
  return text;
}

struct Context {
  std::string network, node;
  KeyDeliveryBackend* backend;
};

// The SAE ID of the client, or why it is not an SAE of this KME.
absl::StatusOr<std::string> Authenticate(const Context& c, const httplib::Request& req) {
  auto refuse = [](auto&&... parts) { return absl::UnauthenticatedError(absl::StrCat(parts...)); };
  if (req.ssl == nullptr) return refuse("no TLS session");
  X509* cert = SSL_get0_peer_certificate(req.ssl);
  if (cert == nullptr) {
    return refuse("no client certificate: an SAE presents its app certificate issued by network ", c.network, "'s CA");
  }
  // The handshake let every certificate through; its verification result
  // (kept with the session, so also right for a resumed one) decides.
  const long verified = SSL_get_verify_result(req.ssl);
  if (verified != X509_V_OK) {
    return refuse("client certificate '", CommonName(cert), "' is not signed by network ", c.network, "'s CA (",
                  X509_verify_cert_error_string(verified), ")");
  }
  OpenSslPtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(bio.get(), cert)) return refuse(OpenSslError("client certificate unreadable"));
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  absl::StatusOr<security::Identity> id = security::IdentityOfCertificate(absl::string_view(data, size));
  if (!id.ok()) return refuse(id.status().message());
  if (id->network != c.network) {
    return refuse("client certificate is of network ", id->network, ", not ", c.network);
  }
  if (id->role != security::Role::kApp) {
    return refuse("client certificate names ", security::Describe(*id),
                  ", not an application (SAE): only app certificates may fetch keys");
  }
  if (id->node != c.node) {
    return refuse(security::Describe(*id), " is bound to node ", id->node, ", not this KME's node ", c.node);
  }
  return id->name;
}

absl::Status CheckNumber(uint64_t number) {
  if (number < 1 || number > kMaxKeysPerRequest) {
    return absl::InvalidArgumentError(
        absl::StrCat("number must be in [1, ", kMaxKeysPerRequest, "] (max_key_per_request), not ", number));
  }
  return absl::OkStatus();
}

absl::Status CheckSize(uint64_t size) {
  if (size % 8 != 0) return absl::InvalidArgumentError(absl::StrCat("size must be a multiple of 8 bits, not ", size));
  if (size < kMinKeySizeBits || size > kMaxKeySizeBits) {
    return absl::InvalidArgumentError(
        absl::StrCat("size must be in [", kMinKeySizeBits, ", ", kMaxKeySizeBits, "] bits, not ", size));
  }
  return absl::OkStatus();
}

// The single value of query parameter `name`, absent, or an error if repeated.
absl::StatusOr<std::optional<std::string>> QueryParam(const httplib::Request& req, const char* name) {
  const size_t count = req.get_param_value_count(name);
  if (count == 0) return std::nullopt;
  if (count > 1) return absl::InvalidArgumentError(absl::StrCat(name, " is given ", count, " times"));
  return req.get_param_value(name);
}

absl::StatusOr<uint64_t> QueryInteger(const httplib::Request& req, const char* name, uint64_t fallback) {
  absl::StatusOr<std::optional<std::string>> text = QueryParam(req, name);
  if (!text.ok()) return text.status();
  if (!text->has_value()) return fallback;
  const std::string& t = **text;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
  // from_chars takes no sign or space, but "-0" is still refused here.
  if (t.empty() || !absl::ascii_isdigit(static_cast<unsigned char>(t[0])) || ec != std::errc() ||
      end != t.data() + t.size()) {
    return absl::InvalidArgumentError(absl::StrCat(name, " must be a positive integer, not ", Quote(t)));
  }
  return value;
}

absl::StatusOr<uint64_t> JsonInteger(const Json& body, const char* name, uint64_t fallback) {
  auto it = body.find(name);
  if (it == body.end()) return fallback;
  if (!it->is_number_unsigned()) {
    return absl::InvalidArgumentError(absl::StrCat(name, " must be a positive integer, not ", Quote(Dump(*it))));
  }
  return it->get<uint64_t>();
}

absl::StatusOr<Json> JsonObjectBody(const httplib::Request& req) {
  Json body = Json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return absl::InvalidArgumentError("the request body is not JSON");
  if (!body.is_object()) return absl::InvalidArgumentError("the request body is not a JSON object");
  return body;
}

struct KeyRequest {
  uint64_t number = 1, size = kDefaultKeySizeBits;
  std::vector<std::string> additional_slave_saes;
};

absl::StatusOr<KeyRequest> ParseKeyRequest(const httplib::Request& req) {
  KeyRequest r;
  absl::StatusOr<uint64_t> number, size;
  if (req.method == "POST") {
    absl::StatusOr<Json> body = JsonObjectBody(req);
    if (!body.ok()) return body.status();
    number = JsonInteger(*body, "number", 1);
    size = JsonInteger(*body, "size", kDefaultKeySizeBits);
    if (auto it = body->find("additional_slave_SAE_IDs"); it != body->end()) {
      if (!it->is_array()) return absl::InvalidArgumentError("additional_slave_SAE_IDs must be a list of SAE IDs");
      for (const Json& sae : *it) {
        if (!sae.is_string() || sae.get_ref<const std::string&>().empty()) {
          return absl::InvalidArgumentError("additional_slave_SAE_IDs must be a list of SAE IDs");
        }
        r.additional_slave_saes.push_back(sae.get<std::string>());
      }
    }
    // The standard: a KME handles each mandatory extension or refuses the
    // request. This one knows none (optional ones are ignored).
    if (auto it = body->find("extension_mandatory"); it != body->end() && !(it->is_array() && it->empty())) {
      return absl::InvalidArgumentError(absl::StrCat("extension_mandatory is not supported: ", Quote(Dump(*it))));
    }
  } else {
    number = QueryInteger(req, "number", 1);
    size = QueryInteger(req, "size", kDefaultKeySizeBits);
  }
  if (!number.ok()) return number.status();
  if (!size.ok()) return size.status();
  if (absl::Status s = CheckNumber(*number); !s.ok()) return s;
  if (absl::Status s = CheckSize(*size); !s.ok()) return s;
  r.number = *number;
  r.size = *size;
  return r;
}

absl::StatusOr<std::vector<std::string>> ParseKeyIds(const httplib::Request& req) {
  std::vector<std::string> ids;
  if (req.method == "POST") {
    absl::StatusOr<Json> body = JsonObjectBody(req);
    if (!body.ok()) return body.status();
    auto it = body->find("key_IDs");
    if (it == body->end()) return absl::InvalidArgumentError("key_IDs is missing");
    const auto bad = absl::InvalidArgumentError(R"(key_IDs must be a list of {"key_ID": "<key ID>"} objects)");
    if (!it->is_array()) return bad;
    if (it->empty()) return absl::InvalidArgumentError("key_IDs is empty");
    if (it->size() > kMaxKeysPerRequest) {
      return absl::InvalidArgumentError(
          absl::StrCat("key_IDs lists ", it->size(), " keys; at most ", kMaxKeysPerRequest, " per request"));
    }
    for (const Json& entry : *it) {
      if (!entry.is_object()) return bad;
      auto id = entry.find("key_ID");
      if (id == entry.end() || !id->is_string()) return bad;
      ids.push_back(id->get<std::string>());
    }
  } else {
    absl::StatusOr<std::optional<std::string>> id = QueryParam(req, "key_ID");
    if (!id.ok()) return id.status();
    if (!id->has_value()) return absl::InvalidArgumentError("key_ID is missing");
    ids.push_back(**id);
  }
  std::set<std::string> seen;
  for (const std::string& id : ids) {
    if (id.empty()) return absl::InvalidArgumentError("key_ID is empty");
    // A repeated ID would deliver the key and then fail the request with it.
    if (!seen.insert(id).second) return absl::InvalidArgumentError(absl::StrCat("key_ID ", Quote(id), " is repeated"));
  }
  return ids;
}

Json KeyContainer(const std::vector<DeliveredKey>& keys) {
  Json list = Json::array();
  for (const DeliveredKey& k : keys) list.push_back({{"key_ID", k.key_id}, {"key", Base64(k.key)}});
  return Json{{"keys", std::move(list)}};
}

Reply StatusReply(const Context& c, const std::string& sae, const std::string& slave) {
  absl::StatusOr<KeyPoolStatus> s = c.backend->Status(sae, slave);
  if (!s.ok()) return BackendError(s.status());
  return Reply{200,
               Json{{"source_KME_ID", s->source_kme_id},
                    {"target_KME_ID", s->target_kme_id},
                    {"master_SAE_ID", s->master_sae_id},
                    {"slave_SAE_ID", s->slave_sae_id},
                    {"key_size", s->key_size},
                    {"stored_key_count", s->stored_key_count},
                    {"max_key_count", s->max_key_count},
                    {"max_key_per_request", s->max_key_per_request},
                    {"max_key_size", s->max_key_size},
                    {"min_key_size", s->min_key_size},
                    {"max_SAE_ID_count", s->max_sae_id_count}},
               ""};
}

Reply EncKeysReply(const Context& c, const std::string& sae, const std::string& slave, const httplib::Request& req) {
  absl::StatusOr<KeyRequest> r = ParseKeyRequest(req);
  if (!r.ok()) return Error(400, std::string(r.status().message()));
  absl::StatusOr<std::vector<DeliveredKey>> keys =
      c.backend->EncKeys(sae, slave, r->number, r->size, r->additional_slave_saes);
  if (!keys.ok()) return BackendError(keys.status());
  // An SAE must never get fewer or shorter keys than it asked for.
  const bool right = keys->size() == r->number && std::all_of(keys->begin(), keys->end(), [&](const DeliveredKey& k) {
                       return k.key.size() * 8 == r->size && !k.key_id.empty();
                     });
  if (!right) return Error(500, "the key manager did not deliver the keys requested");
  return Reply{200, KeyContainer(*keys), ""};
}

Reply DecKeysReply(const Context& c, const std::string& sae, const std::string& master, const httplib::Request& req) {
  absl::StatusOr<std::vector<std::string>> ids = ParseKeyIds(req);
  if (!ids.ok()) return Error(400, std::string(ids.status().message()));
  absl::StatusOr<std::vector<DeliveredKey>> keys = c.backend->DecKeys(sae, master, *ids);
  if (!keys.ok()) return BackendError(keys.status());
  if (keys->size() != ids->size()) return Error(500, "the key manager did not deliver the keys requested");
  return Reply{200, KeyContainer(*keys), ""};
}

Reply Route(const Context& c, const httplib::Request& req) {
  absl::StatusOr<std::string> sae = Authenticate(c, req);
  if (!sae.ok()) return Error(401, std::string(sae.status().message()));

  std::vector<std::string> parts;
  if (absl::StartsWith(req.path, kPathPrefix)) parts = absl::StrSplit(req.path.substr(kPathPrefix.size()), '/');
  if (parts.size() != 2 || parts[0].empty() ||
      (parts[1] != "status" && parts[1] != "enc_keys" && parts[1] != "dec_keys")) {
    return Error(404, absl::StrCat("no such resource ", Quote(req.path), " (the API is ", kPathPrefix,
                                   "{SAE_ID}/status, enc_keys or dec_keys)"));
  }
  const std::string& other_sae = parts[0];
  const std::string& resource = parts[1];
  // HEAD would hand out keys without a body to carry them.
  const bool readonly = resource == "status";
  const bool allowed = req.method == "GET" || (readonly && req.method == "HEAD") || (!readonly && req.method == "POST");
  if (!allowed) {
    Reply r = Error(405, absl::StrCat(Quote(req.method), " is not allowed on ", resource, " (",
                                      readonly ? "GET" : "GET or POST", ")"));
    r.allow = readonly ? "GET, HEAD" : "GET, POST";
    return r;
  }
  if (resource == "status") return StatusReply(c, *sae, other_sae);
  if (resource == "enc_keys") return EncKeysReply(c, *sae, other_sae, req);
  return DecKeysReply(c, *sae, other_sae, req);
}

void Handle(const Context& c, const httplib::Request& req, httplib::Response& res) {
  Reply reply = Route(c, req);
  res.status = reply.status;
  if (!reply.allow.empty()) res.set_header("Allow", reply.allow);
  res.set_header("Cache-Control", "no-store");  // keys are secrets
  res.set_content(Dump(reply.body), "application/json");
}

// Messages for the errors httplib answers itself (before any handler).
std::string LibraryErrorMessage(int status) {
  switch (status) {
    case 400:
      return "malformed HTTP request (or an unknown method)";
    case 413:
      return absl::StrCat("request body larger than ", kMaxBodyBytes, " bytes");
    case 414:
      return "request URI too long";
    case 416:
      return "bad Range header";
    default:
      return absl::StrCat("HTTP error ", status);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Etsi014Server>> Etsi014Server::Start(Etsi014ServerOptions options,
                                                                    KeyDeliveryBackend& backend) {
  absl::StatusOr<std::pair<std::string, int>> address = ParseListen(options.listen);
  if (!address.ok()) return address.status();
  if (options.worker_threads < 1) return absl::InvalidArgumentError("worker_threads must be at least 1");
  if (options.network.empty() || options.node.empty()) {
    return absl::InvalidArgumentError("the KME needs its network and node names");
  }

  std::string tls_error;
  auto server = std::make_unique<httplib::SSLServer>([&](SSL_CTX& ctx) {
    absl::Status s = ConfigureTls(&ctx, options.tls);
    tls_error = std::string(s.message());
    return s.ok();
  });
  if (!server->is_valid()) return absl::InvalidArgumentError(absl::StrCat("KME TLS material: ", tls_error));

  server->set_payload_max_length(kMaxBodyBytes);
  server->set_read_timeout(kIoTimeoutSeconds, 0);
  server->set_write_timeout(kIoTimeoutSeconds, 0);
  server->set_keep_alive_timeout(kKeepAliveSeconds);
  // httplib writes a response's headers and body separately: with Nagle on,
  // the body waited for the client's delayed ACK (~40 ms per keep-alive
  // request; bench/kme_bench.cc BM_KmeEncKeys).
  server->set_tcp_nodelay(true);
  // Debian's default is 5 requests per connection, each 5th paying a new
  // TLS handshake.
  server->set_keep_alive_max_count(1000);
  const size_t workers = static_cast<size_t>(options.worker_threads);
  server->new_task_queue = [workers] { return new httplib::ThreadPool(workers); };

  auto context = std::make_shared<const Context>(Context{options.network, options.node, &backend});
  auto handler = [context](const httplib::Request& req, httplib::Response& res) { Handle(*context, req, res); };
  // Every path of every method httplib routes reaches Handle, which answers
  // 401 / 404 / 405 itself.
  server->Get(".*", handler);
  server->Post(".*", handler);
  server->Put(".*", handler);
  server->Patch(".*", handler);
  server->Delete(".*", handler);
  server->Options(".*", handler);
  // Methods httplib parses but has no handlers for (TRACE, CONNECT, PRI):
  // it would answer a bare 400. Others it refuses as malformed.
  // httplib's default sets SO_REUSEPORT, which would let another process
  // bind this port too and take a share of the SAEs' connections.
  server->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  server->set_pre_routing_handler([handler](const httplib::Request& req, httplib::Response& res) {
    static const std::set<std::string> kRouted = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
    if (kRouted.count(req.method) != 0) return httplib::Server::HandlerResponse::Unhandled;
    handler(req, res);
    return httplib::Server::HandlerResponse::Handled;
  });
  server->set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    res.set_content(Dump(Json{{"message", LibraryErrorMessage(res.status)}}), "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));
  server->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    res.status = 500;
    res.set_content(Dump(Json{{"message", "internal error of the KME"}}), "application/json");
  });

  const auto& [host, port] = *address;
  int bound = port;
  if (port == 0) {
    bound = server->bind_to_any_port(host);
  } else if (!server->bind_to_port(host, port)) {
    bound = -1;
  }
  if (bound <= 0) return absl::UnavailableError(absl::StrCat("the KME cannot listen on ", options.listen));

  std::unique_ptr<Etsi014Server> kme(new Etsi014Server());
  kme->host_ = host;
  kme->port_ = bound;
  kme->server_ = std::move(server);
  auto finished = std::make_shared<std::atomic<bool>>(false);
  httplib::SSLServer* s = kme->server_.get();
  kme->thread_ = std::thread([s, finished] {
    s->listen_after_bind();
    *finished = true;
  });
  // stop() does nothing until the accept loop runs: wait for it.
  while (!s->is_running() && !*finished) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (*finished) return absl::UnavailableError(absl::StrCat("the KME stopped listening on ", options.listen));
  return kme;
}

Etsi014Server::~Etsi014Server() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string Etsi014Server::url() const {
  return absl::StrCat("https://", absl::StrContains(host_, ':') ? absl::StrCat("[", host_, "]") : host_, ":", port_);
}

}  // namespace qnet::kme
