// balanced: every cluster holds floor(L/N) or ceil(L/N) logical shards, and a new map moves the
// fewest shards that reach that from the previous one: shards stay where they are unless their
// cluster is gone or holds more than its share; the surplus fills the clusters short of theirs.
// From N to N+1 clusters that is about L/(N+1) shards, the least any rule with equal counts can
// move. Deterministic: every node computing it from the same previous map gets the same answer.
#include <algorithm>
#include <unordered_map>

#include "data/shard_map.h"

namespace millions::data {
namespace {

class Balanced final : public ShardFunction {
 public:
  std::string_view name() const override { return "balanced"; }
  std::vector<uint16_t> Assign(const std::vector<std::string>& clusters, int logical,
                               const ShardMap* previous) const override {
    const int n = static_cast<int>(clusters.size());
    std::vector<int> owner(static_cast<size_t>(logical), -1);
    if (previous && previous->logical() == logical) {
      std::unordered_map<std::string, int> index;
      for (int c = 0; c < n; ++c) index.emplace(clusters[c], c);
      for (int s = 0; s < logical; ++s) {
        auto it = index.find(previous->ClusterOf(s));
        if (it != index.end()) owner[s] = it->second;
      }
    }
    std::vector<int> count(n, 0);
    for (int o : owner)
      if (o >= 0) ++count[o];
    // The L mod N clusters that keep one shard more are those that hold the most already.
    std::vector<int> order(n);
    for (int c = 0; c < n; ++c) order[c] = c;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return count[a] > count[b]; });
    std::vector<int> target(n, logical / n);
    for (int i = 0; i < logical % n; ++i) ++target[order[i]];
    // Release the surplus (highest shard numbers first) and the orphans into a pool...
    std::vector<int> pool;
    for (int s = logical - 1; s >= 0; --s) {
      int o = owner[s];
      if (o < 0) {
        pool.push_back(s);
      } else if (count[o] > target[o]) {
        --count[o];
        owner[s] = -1;
        pool.push_back(s);
      }
    }
    // ...and hand it to the clusters short of their share, lowest shard numbers first.
    std::sort(pool.begin(), pool.end());
    size_t next = 0;
    for (int c = 0; c < n; ++c)
      for (; count[c] < target[c]; ++count[c]) owner[pool[next++]] = c;
    std::vector<uint16_t> out(owner.size());
    for (size_t s = 0; s < owner.size(); ++s) out[s] = static_cast<uint16_t>(owner[s]);
    return out;
  }
};

}  // namespace

std::unique_ptr<ShardFunction> MakeBalancedShardFunction() { return std::make_unique<Balanced>(); }

}  // namespace millions::data
