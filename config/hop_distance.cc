#include "config/hop_distance.h"

#include <algorithm>
#include <deque>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"

namespace qnet::config {

absl::StatusOr<std::string> NodeAtHops(const NetworkConfig& config, const std::string& origin, int hops) {
  if (config.FindNode(origin) == nullptr) {
    return absl::NotFoundError(absl::StrFormat("no node '%s' in %s", origin, config.source));
  }
  absl::flat_hash_map<std::string, int> distance{{origin, 0}};
  std::deque<std::string> queue{origin};
  int farthest = 0;
  while (!queue.empty()) {
    const std::string node = queue.front();
    queue.pop_front();
    for (const std::string& next : config.Neighbours(node)) {
      if (distance.contains(next)) continue;
      distance[next] = distance[node] + 1;
      farthest = std::max(farthest, distance[next]);
      queue.push_back(next);
    }
  }
  for (const NodeConfig& node : config.nodes) {
    auto it = distance.find(node.name);
    if (it != distance.end() && it->second == hops) return node.name;
  }
  return absl::NotFoundError(absl::StrFormat("no node is %d hops from %s (the farthest is %d hops away)", hops,
                                             origin, farthest));
}

}  // namespace qnet::config
