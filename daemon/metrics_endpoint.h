// A daemon's Prometheus endpoint: GET /metrics in the text exposition
// format, on its own port (qnetd --metrics-listen). With TLS it is HTTPS
// with mutual TLS: the scraper presents a monitor (or operator) certificate
// of the network's CA, anything else gets 401 / 403 with the reason. An
// insecure-local-only daemon serves plain HTTP on the loopback interface.
// What the metrics are comes from a collector the daemon provides; this
// file is HTTP, TLS and the exposition format only (prometheus-cpp's
// TextSerializer over cpp-httplib, the HTTPS stack the KME uses too).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "absl/status/statusor.h"
#include "security/https_server.h"

namespace qnet::daemon {

struct MetricsEndpointOptions {
  std::string listen = "127.0.0.1:0";
  std::string network;                    // whose certificates may scrape
  std::optional<security::TlsMaterial> tls;  // none: plain HTTP (loopback only)
};

// Returns the families to serve, or why not (Unavailable: the answer is a 503).
using MetricsCollector = std::function<absl::StatusOr<std::vector<prometheus::MetricFamily>>()>;

class MetricsEndpoint {
 public:
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(MetricsEndpointOptions options,
                                                                MetricsCollector collect);
  int port() const { return server_->port(); }
  std::string url() const { return server_->url() + "/metrics"; }

 private:
  MetricsEndpoint() = default;
  std::unique_ptr<security::HttpsServer> server_;
};

}  // namespace qnet::daemon
