// Round robin: each healthy backend in turn. The cursor is one atomic counter.
#include <atomic>

#include "roles/lb/balancer.h"

namespace millions::lb {
namespace {

class RoundRobin : public Policy {
 public:
  int Pick(const Pool& pool, const PickContext&, int exclude) override {
    size_t n = pool.backends.size();
    if (n == 0) return -1;
    uint64_t start = next_.fetch_add(1, std::memory_order_relaxed);
    for (size_t i = 0; i < n; ++i) {
      int idx = static_cast<int>((start + i) % n);
      if (Eligible(pool.backends[idx], idx, exclude)) return idx;
    }
    return -1;
  }

 private:
  std::atomic<uint64_t> next_{0};
};

}  // namespace

std::unique_ptr<Policy> MakeRoundRobin() { return std::make_unique<RoundRobin>(); }

}  // namespace millions::lb
