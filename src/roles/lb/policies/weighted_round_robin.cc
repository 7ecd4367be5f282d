// Smooth weighted round robin (as nginx does it): every pick adds each backend's weight to its
// current score, takes the highest, and subtracts the total from the winner. Over any window
// each backend gets its share, interleaved rather than in bursts. Slow start scales weights.
#include <mutex>
#include <unordered_map>

#include "roles/lb/balancer.h"

namespace millions::lb {
namespace {

class WeightedRoundRobin : public Policy {
 public:
  int Pick(const Pool& pool, const PickContext&, int exclude) override {
    std::lock_guard lock(mu_);  // the scores are shared state; the section is tiny
    double total = 0;
    int best = -1;
    for (int i = 0; i < static_cast<int>(pool.backends.size()); ++i) {
      const Backend& b = pool.backends[i];
      if (!Eligible(b, i, exclude)) continue;
      double w = EffectiveWeight(b);
      double& score = current_[b.name];
      score += w;
      total += w;
      if (best < 0 || score > current_[pool.backends[best].name]) best = i;
    }
    if (best >= 0) current_[pool.backends[best].name] -= total;
    return best;
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, double> current_;
};

}  // namespace

std::unique_ptr<Policy> MakeWeightedRoundRobin() { return std::make_unique<WeightedRoundRobin>(); }

}  // namespace millions::lb
