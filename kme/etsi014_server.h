// The ETSI GS QKD 014 v1.1.1 REST API a node's key management entity (KME)
// offers its applications (SAEs): HTTPS with mutual TLS on its own port.
// The SAE's identity is its client certificate: issued by the network's CA,
// naming `urn:qnet:NETWORK:app:NODE:SAE_ID` with NODE this KME's node. A
// client without such a certificate gets 401 (the TLS handshake accepts any
// client certificate, or none, so that the refusal is an HTTP answer the
// client can read). Routes:
//   GET       /api/v1/keys/{slave_SAE_ID}/status
//   GET|POST  /api/v1/keys/{slave_SAE_ID}/enc_keys   (number, size, additional_slave_SAE_IDs)
//   GET|POST  /api/v1/keys/{master_SAE_ID}/dec_keys  (key_ID, or {"key_IDs": [{"key_ID": ...}]})
// Errors are the standard's: {"message": ...} with 400 (bad request), 401
// (SAE not authorised), 503 (the pool cannot serve now); 404 / 405 for
// other paths and methods. What the keys are comes from a KeyDeliveryBackend
// (the daemon's key manager); this file is HTTP, JSON and TLS only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "security/https_server.h"
#include "security/pki.h"

namespace qnet::kme {

// The standard's limits, fixed per KME.
inline constexpr uint64_t kMaxKeysPerRequest = 128;
inline constexpr uint64_t kMinKeySizeBits = 64;
inline constexpr uint64_t kMaxKeySizeBits = 8192;
inline constexpr uint64_t kDefaultKeySizeBits = 256;

// The status a master SAE sees for one slave SAE (ETSI GS QKD 014 6.1).
struct KeyPoolStatus {
  std::string source_kme_id, target_kme_id;  // the two nodes
  std::string master_sae_id, slave_sae_id;
  uint64_t key_size = kDefaultKeySizeBits;   // bits
  uint64_t stored_key_count = 0;             // keys of key_size the pool can serve now
  uint64_t max_key_count = 0;                // at the pool's high watermark
  uint64_t max_key_per_request = kMaxKeysPerRequest;
  uint64_t max_key_size = kMaxKeySizeBits, min_key_size = kMinKeySizeBits;
  uint64_t max_sae_id_count = 0;             // additional slave SAEs: not supported
};

struct DeliveredKey {
  std::string key_id;  // UUID
  std::string key;     // raw bytes (base64 on the wire)
};

// What the API asks of the key manager. Called from the HTTP server's
// worker threads: implementations are thread-safe. The status codes map to
// HTTP: InvalidArgument, NotFound, FailedPrecondition, OutOfRange,
// AlreadyExists -> 400; PermissionDenied, Unauthenticated -> 401;
// Unavailable, ResourceExhausted, DeadlineExceeded -> 503; anything else
// -> 500. The status message becomes the JSON "message".
class KeyDeliveryBackend {
 public:
  virtual ~KeyDeliveryBackend() = default;
  // `caller_sae` is the authenticated SAE (bound to this node).
  virtual absl::StatusOr<KeyPoolStatus> Status(const std::string& caller_sae, const std::string& slave_sae) = 0;
  // `size_bits` is a multiple of 8 in [kMinKeySizeBits, kMaxKeySizeBits],
  // `number` in [1, kMaxKeysPerRequest], `additional_slave_saes` may be
  // non-empty (the backend refuses what it does not support).
  virtual absl::StatusOr<std::vector<DeliveredKey>> EncKeys(const std::string& caller_sae,
                                                             const std::string& slave_sae, uint64_t number,
                                                             uint64_t size_bits,
                                                             const std::vector<std::string>& additional_slave_saes) = 0;
  virtual absl::StatusOr<std::vector<DeliveredKey>> DecKeys(const std::string& caller_sae,
                                                             const std::string& master_sae,
                                                             const std::vector<std::string>& key_ids) = 0;
};

struct Etsi014ServerOptions {
  std::string listen = "127.0.0.1:0";  // host:port; port 0 picks a free one
  std::string network;                 // the SAE certificates' network
  std::string node;                    // this KME's node: SAEs must be bound to it
  security::TlsMaterial tls;           // the node's certificate, key and the network's CA
  int worker_threads = 4;
};

class Etsi014Server {
 public:
  // Binds and starts serving on its own threads. InvalidArgument for a bad
  // listen address or TLS material, Unavailable if the port cannot be bound.
  // `backend` must outlive the server.
  static absl::StatusOr<std::unique_ptr<Etsi014Server>> Start(Etsi014ServerOptions options,
                                                              KeyDeliveryBackend& backend);
  // Stops accepting, finishes requests in flight, joins the threads.
  ~Etsi014Server();
  Etsi014Server(const Etsi014Server&) = delete;
  Etsi014Server& operator=(const Etsi014Server&) = delete;

  int port() const;
  std::string url() const;  // https://HOST:PORT

 private:
  Etsi014Server() = default;
  std::unique_ptr<security::HttpsServer> server_;
};

}  // namespace qnet::kme
