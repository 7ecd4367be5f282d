// Power of two random choices: draw two healthy backends at random and take the one with fewer
// requests in flight (weighted). Nearly as good as least-outstanding, with no scan and no herd
// on the single least-loaded node when many balancers share stale counts.
#include "roles/lb/balancer.h"

namespace millions::lb {
namespace {

class P2C : public Policy {
 public:
  int Pick(const Pool& pool, const PickContext& ctx, int exclude) override {
    std::vector<int> ok;
    ok.reserve(pool.backends.size());
    for (int i = 0; i < static_cast<int>(pool.backends.size()); ++i)
      if (Eligible(pool.backends[i], i, exclude)) ok.push_back(i);
    if (ok.empty()) return -1;
    if (ok.size() == 1) return ok[0];
    // Two distinct positions from one draw: the second skips over the first.
    uint64_t r = ctx.random;
    size_t n = ok.size();
    size_t pa = r % n;
    size_t pb = (r / n) % (n - 1);
    if (pb >= pa) ++pb;
    int a = ok[pa], b = ok[pb];
    auto load = [&](int i) {
      const Backend& x = pool.backends[i];
      return (x.stats->outstanding.load(std::memory_order_relaxed) + 1) / EffectiveWeight(x);
    };
    return load(b) < load(a) ? b : a;
  }
};

}  // namespace

std::unique_ptr<Policy> MakeP2C() { return std::make_unique<P2C>(); }

}  // namespace millions::lb
