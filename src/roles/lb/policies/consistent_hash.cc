// Consistent hash on a header or cookie value (for the rare stateful backend): a ring with 100
// points per unit of weight; a key goes to the first healthy backend clockwise from its hash.
// Adding or removing one backend moves only the keys that land on its points. Requests without
// a key are spread by the caller's random draw.
#include <algorithm>
#include <atomic>

#include "core/stable_hash.h"
#include "roles/lb/balancer.h"

namespace millions::lb {

namespace {

struct Point {
  uint64_t hash;
  int index;         // into the snapshot the ring was built for
  std::string name;  // to notice a ring older or newer than the caller's snapshot
  bool operator<(const Point& o) const { return hash < o.hash; }
};
struct Ring {
  std::vector<Point> points;  // sorted by hash
};

class ConsistentHash : public Policy {
 public:
  void Rebuild(const Pool& pool) override {
    auto ring = std::make_shared<Ring>();
    for (int i = 0; i < static_cast<int>(pool.backends.size()); ++i) {
      const Backend& b = pool.backends[i];
      for (int v = 0; v < 100 * b.weight; ++v)
        ring->points.push_back({StableHash(b.name + "#" + std::to_string(v)), i, b.name});
    }
    std::sort(ring->points.begin(), ring->points.end());
    ring_.store(std::move(ring));
  }

  int Pick(const Pool& pool, const PickContext& ctx, int exclude) override {
    auto ring = ring_.load();
    if (!ring || ring->points.empty() || pool.backends.empty()) return -1;
    uint64_t h = ctx.hash_key.empty() ? ctx.random : StableHash(ctx.hash_key);
    auto it = std::lower_bound(ring->points.begin(), ring->points.end(), Point{h, 0, {}});
    for (size_t k = 0; k < ring->points.size(); ++k, ++it) {
      if (it == ring->points.end()) it = ring->points.begin();
      int i = it->index;
      if (i >= static_cast<int>(pool.backends.size()) || pool.backends[i].name != it->name) {
        // The ring belongs to another snapshot: find the backend by name.
        i = -1;
        for (int j = 0; j < static_cast<int>(pool.backends.size()); ++j)
          if (pool.backends[j].name == it->name) i = j;
        if (i < 0) continue;
      }
      if (Eligible(pool.backends[i], i, exclude)) return i;
    }
    return -1;
  }

 private:
  std::atomic<std::shared_ptr<const Ring>> ring_;
};

}  // namespace

std::unique_ptr<Policy> MakeConsistentHash() { return std::make_unique<ConsistentHash>(); }

}  // namespace millions::lb
