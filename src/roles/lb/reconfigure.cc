// SIGHUP for the balancer: what a reload may change in place (policy, static pool, health
// settings, rate limits) and how; listeners, threads and hash_header need a restart.
#include "core/log.h"
#include "roles/lb/proxy_internal.h"

namespace millions::lb {

void Proxy::Reconfigure(const LbConfig& next) {
  limiter_.Configure(next.rate_limit_rps, next.rate_limit_burst);
  std::string current;
  {
    std::lock_guard lock(mu_);
    cfg_.health = next.health;  // for backends seen from now on
    current = cfg_.policy;
  }
  if (next.policy != current) {
    auto p = std::shared_ptr<Policy>(MakePolicy(next.policy));
    if (p) {
      p->Rebuild(*pool_.load());
      policy_.store(p);
      std::lock_guard lock(mu_);
      cfg_.policy = next.policy;
    }
  }
  // Under a runner, it owns the pool; without one, the reloaded list replaces it.
  if (static_members_) {
    static_members_->Replace(ToMembers(next.backends));
    Publish(next.backends);
  }
  log::Info("configuration reloaded",
            {{"policy", next.policy}, {"backends", int64_t(next.backends.size())}});
}

}  // namespace millions::lb
