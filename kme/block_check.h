// The check value two KMEs compare before committing a QKD key block: both
// must hold the same key under the same block id. HMAC-SHA256 of the block
// id keyed with the block's key: it tells whether the keys agree without
// revealing them.
#pragma once

#include <string>

namespace qnet::kme {

std::string BlockCheck(const std::string& block_id, const std::string& key);

}  // namespace qnet::kme
