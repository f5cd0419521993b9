#include "kme/block_check.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace qnet::kme {

std::string BlockCheck(const std::string& block_id, const std::string& key) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  // An empty key still gives a value (HMAC accepts it); blocks are never empty.
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(block_id.data()),
       block_id.size(), mac, &length);
  return std::string(reinterpret_cast<const char*>(mac), length);
}

}  // namespace qnet::kme
