#include "kme/etsi014_server.h"

#include <httplib.h>
#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "security/identity.h"
#include "security/https_server.h"

namespace qnet::kme {
namespace {

using Json = nlohmann::json;

// Requests are small JSON documents: 128 key IDs are about 6 KiB.
constexpr size_t kMaxBodyBytes = 64 * 1024;
constexpr absl::string_view kPathPrefix = "/api/v1/keys/";

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

struct Context {
  std::string network, node;
  KeyDeliveryBackend* backend;
};

// The SAE ID of the client, or why it is not an SAE of this KME.
absl::StatusOr<std::string> Authenticate(const Context& c, const httplib::Request& req) {
  auto refuse = [](auto&&... parts) { return absl::UnauthenticatedError(absl::StrCat(parts...)); };
  absl::StatusOr<security::Identity> id = security::ClientIdentity(req, c.network);
  if (!id.ok()) return id.status();
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
  if (options.network.empty() || options.node.empty()) {
    return absl::InvalidArgumentError("the KME needs its network and node names");
  }

  auto context = std::make_shared<const Context>(Context{options.network, options.node, &backend});
  auto handler = [context](const httplib::Request& req, httplib::Response& res) { Handle(*context, req, res); };
  absl::StatusOr<std::unique_ptr<security::HttpsServer>> https = security::HttpsServer::Start(
      {.listen = options.listen,
       .tls = options.tls,
       .what = "the KME",
       .worker_threads = options.worker_threads,
       .max_body_bytes = kMaxBodyBytes},
      [&](httplib::Server& server) {
        // Every path of every method httplib routes reaches Handle, which
        // answers 401 / 404 / 405 itself.
        server.Get(".*", handler);
        server.Post(".*", handler);
        server.Put(".*", handler);
        server.Patch(".*", handler);
        server.Delete(".*", handler);
        server.Options(".*", handler);
        // Methods httplib parses but has no handlers for (TRACE, CONNECT,
        // PRI): it would answer a bare 400. Others it refuses as malformed.
        server.set_pre_routing_handler([handler](const httplib::Request& req, httplib::Response& res) {
          static const std::set<std::string> kRouted = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
          if (kRouted.count(req.method) != 0) return httplib::Server::HandlerResponse::Unhandled;
          handler(req, res);
          return httplib::Server::HandlerResponse::Handled;
        });
        server.set_error_handler(
            httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
              if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
              res.set_content(Dump(Json{{"message", LibraryErrorMessage(res.status)}}), "application/json");
              return httplib::Server::HandlerResponse::Handled;
            }));
        server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
          res.status = 500;
          res.set_content(Dump(Json{{"message", "internal error of the KME"}}), "application/json");
        });
      });
  if (!https.ok()) return https.status();
  std::unique_ptr<Etsi014Server> kme(new Etsi014Server());
  kme->server_ = *std::move(https);
  return kme;
}

Etsi014Server::~Etsi014Server() = default;

int Etsi014Server::port() const { return server_->port(); }

std::string Etsi014Server::url() const { return server_->url(); }

}  // namespace qnet::kme
