#include "roles/lb/rate_limiter.h"

#include <algorithm>

namespace millions::lb {

bool RateLimiter::Allow(const std::string& ip) {
  double rps = rps_.load(std::memory_order_relaxed);
  if (rps <= 0) return true;  // off: no lock on the request path
  double burst = burst_.load(std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  auto now = Clock::now();
  // Bounded memory under address sprays. Cleared before the lookup: clearing after it left the
  // bucket reference dangling.
  if (buckets_.size() >= 100000) buckets_.clear();
  auto [it, fresh] = buckets_.try_emplace(ip, Bucket{burst, now});
  Bucket& b = it->second;
  double secs = std::chrono::duration<double>(now - b.last).count();
  b.tokens = std::min(burst, b.tokens + secs * rps);
  b.last = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

void RateLimiter::Configure(double rps, double burst) {
  std::lock_guard lock(mu_);
  rps_ = rps;
  burst_ = burst;
  buckets_.clear();
}

}  // namespace millions::lb
