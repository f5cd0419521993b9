#include "daemon/metrics_endpoint.h"

#include <httplib.h>
#include <prometheus/text_serializer.h>

#include "absl/strings/str_cat.h"

namespace qnet::daemon {
namespace {

constexpr const char* kExpositionType = "text/plain; version=0.0.4; charset=utf-8";

// 0 when the client may scrape; else the HTTP status, with the reason in `why`.
int Authorize(const MetricsEndpointOptions& options, const httplib::Request& req, std::string& why) {
  if (!options.tls.has_value()) return 0;  // insecure-local-only: like its gRPC port
  absl::StatusOr<security::Identity> caller = security::ClientIdentity(req, options.network);
  if (!caller.ok()) {
    why = std::string(caller.status().message());
    return 401;
  }
  if (caller->role != security::Role::kMonitor && caller->role != security::Role::kOperator) {
    why = absl::StrCat(security::Describe(*caller),
                       " may not read metrics: scrape with a monitor certificate (qnetctl pki issue --role monitor) "
                       "or an operator's");
    return 403;
  }
  return 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(MetricsEndpointOptions options,
                                                                        MetricsCollector collect) {
  auto shared = std::make_shared<const MetricsEndpointOptions>(options);
  auto handler = [shared, collect = std::move(collect)](const httplib::Request& req, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    std::string why;
    if (int refused = Authorize(*shared, req, why); refused != 0) {
      res.status = refused;
      res.set_content(why + "\n", "text/plain; charset=utf-8");
      return;
    }
    if (req.path != "/metrics") {
      res.status = 404;
      res.set_content(absl::StrCat("no such resource '", req.path.substr(0, 64), "': the metrics are at /metrics\n"),
                      "text/plain; charset=utf-8");
      return;
    }
    absl::StatusOr<std::vector<prometheus::MetricFamily>> families = collect();
    if (!families.ok()) {
      res.status = families.status().code() == absl::StatusCode::kUnavailable ? 503 : 500;
      res.set_content(std::string(families.status().message()) + "\n", "text/plain; charset=utf-8");
      return;
    }
    res.set_content(prometheus::TextSerializer().Serialize(*families), kExpositionType);
  };
  absl::StatusOr<std::unique_ptr<security::HttpsServer>> server = security::HttpsServer::Start(
      {.listen = options.listen, .tls = options.tls, .what = "the metrics endpoint", .max_body_bytes = 4096},
      [&](httplib::Server& s) {
        s.Get(".*", handler);
        // Scrapers only read.
        httplib::Server::Handler read_only = [](const httplib::Request&, httplib::Response& res) {
          res.status = 405;
          res.set_header("Allow", "GET, HEAD");
          res.set_content("the metrics endpoint is read-only (GET /metrics)\n", "text/plain; charset=utf-8");
        };
        s.Post(".*", read_only);
        s.Put(".*", read_only);
        s.Delete(".*", read_only);
      });
  if (!server.ok()) return server.status();
  std::unique_ptr<MetricsEndpoint> endpoint(new MetricsEndpoint());
  endpoint->server_ = *std::move(server);
  return endpoint;
}

}  // namespace qnet::daemon
