// SIGHUP for the balancer: what a reload may change in place (policy, static pool, health
// settings, rate limits) and how; listeners, threads and hash_header need a restart.
#include "core/log.h"
#include "roles/lb/proxy_internal.h"

namespace millions::lb {

void Proxy::Reconfigure(const LbConfig& next) {
  const Settings& s = next.settings;
  limiter_.Configure(s.rate_limit_rps, s.rate_limit_burst);
  std::string current;
  {
    std::lock_guard lock(mu_);
    health_options_ = ToHealthOptions(s);  // for backends seen from now on
    current = cfg_.settings.policy;
  }
  if (s.policy != current) {
    auto p = std::shared_ptr<Policy>(MakePolicy(s.policy));
    if (p) {
      p->Rebuild(*pool_.load());
      policy_.store(p);
      std::lock_guard lock(mu_);
      cfg_.settings.policy = s.policy;
    }
  }
  // Under a runner, it owns the pool; without one, the reloaded list replaces it. A list for
  // the other side of upstream_tls (TLS listeners for a plain client, or the reverse) waits
  // for a restart: the client's TLS context is made once.
  if (s.upstream_tls != cfg_.settings.upstream_tls) {
    log::Warn("[lb] upstream_tls changed: it needs a restart; keeping the running pool");
  } else if (static_members_) {
    static_members_->Replace(ToMembers(next.backends, s.upstream_tls));
    Publish(next.backends);
  }
  log::Info("configuration reloaded",
            {{"policy", s.policy}, {"backends", int64_t(next.backends.size())}});
}

}  // namespace millions::lb
