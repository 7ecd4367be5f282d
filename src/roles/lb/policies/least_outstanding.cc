// Least outstanding requests: the healthy backend with the fewest requests in flight, scaled by
// weight; ties go round robin so that an idle pool still spreads.
#include <atomic>
#include <limits>

#include "roles/lb/balancer.h"

namespace millions::lb {
namespace {

class LeastOutstanding : public Policy {
 public:
  int Pick(const Pool& pool, const PickContext&, int exclude) override {
    size_t n = pool.backends.size();
    if (n == 0) return -1;
    uint64_t start = next_.fetch_add(1, std::memory_order_relaxed);
    int best = -1;
    double best_load = std::numeric_limits<double>::max();
    for (size_t k = 0; k < n; ++k) {
      int i = static_cast<int>((start + k) % n);
      const Backend& b = pool.backends[i];
      if (!Eligible(b, i, exclude)) continue;
      double load = (b.stats->outstanding.load(std::memory_order_relaxed) + 1) / EffectiveWeight(b);
      if (load < best_load) {
        best_load = load;
        best = i;
      }
    }
    return best;
  }

 private:
  std::atomic<uint64_t> next_{0};
};

}  // namespace

std::unique_ptr<Policy> MakeLeastOutstanding() { return std::make_unique<LeastOutstanding>(); }

}  // namespace millions::lb
