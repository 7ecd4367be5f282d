// ring: consistent hashing of logical shards onto clusters, each cluster owning
// `points_per_cluster` points on a 64-bit circle (as the cache pool's HashRing does for keys).
// Adding a cluster moves only the shards that land on its points, about 1/(N+1) of them, but the
// counts per cluster are uneven (a few percent with 160 points), and the previous map is not
// consulted: what a cluster owns follows from the names alone.
#include <algorithm>

#include "core/stable_hash.h"
#include "data/shard_map.h"

namespace millions::data {
namespace {

class Ring final : public ShardFunction {
 public:
  explicit Ring(int points) : points_(points) {}
  std::string_view name() const override { return "ring"; }
  std::vector<uint16_t> Assign(const std::vector<std::string>& clusters, int logical,
                               const ShardMap*) const override {
    std::vector<std::pair<uint64_t, uint16_t>> ring;
    ring.reserve(clusters.size() * static_cast<size_t>(points_));
    for (size_t c = 0; c < clusters.size(); ++c)
      for (int p = 0; p < points_; ++p)
        ring.emplace_back(StableHash(clusters[c] + "#" + std::to_string(p)), uint16_t(c));
    std::sort(ring.begin(), ring.end());
    std::vector<uint16_t> owner(static_cast<size_t>(logical));
    for (int s = 0; s < logical; ++s) {
      uint64_t h = StableHash("shard#" + std::to_string(s));
      auto it = std::lower_bound(ring.begin(), ring.end(), std::make_pair(h, uint16_t{0}));
      owner[s] = (it == ring.end() ? ring.front() : *it).second;
    }
    return owner;
  }

 private:
  int points_;
};

}  // namespace

std::unique_ptr<ShardFunction> MakeRingShardFunction(int points_per_cluster) {
  return std::make_unique<Ring>(points_per_cluster);
}

}  // namespace millions::data
