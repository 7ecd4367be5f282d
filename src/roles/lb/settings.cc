#include "roles/lb/settings.h"

#include <algorithm>

namespace millions::lb {

const std::vector<std::string> kTables = {"lb", "http"};

Settings ReadSettings(const topo::Topology& t) {
  Settings l;
  auto& file = t.file();
  auto lb = file.Table("lb");
  lb.Get("threads", &l.threads, 1, 64);
  lb.GetChoice(
      "policy", &l.policy,
      {"round_robin", "weighted_round_robin", "least_outstanding", "p2c", "consistent_hash"});
  lb.Get("hash_header", &l.hash_header);
  lb.Get("pipeline_depth", &l.pipeline_depth, 1, 64);
  lb.Get("check_interval_ms", &l.check_interval_ms, 100, 60000);
  lb.Get("rise", &l.rise, 1, 100);
  lb.Get("fall", &l.fall, 1, 100);
  lb.Get("consecutive_failures", &l.consecutive_failures, 1, 1000);
  lb.Get("base_ejection_ms", &l.base_ejection_ms, 100, 3'600'000);
  lb.Get("max_ejection_ms", &l.max_ejection_ms, 100, 3'600'000);
  lb.Get("slow_start_ms", &l.slow_start_ms, 0, 3'600'000);
  lb.Get("rate_limit_rps", &l.rate_limit_rps, 0, 1e9);
  lb.Get("rate_limit_burst", &l.rate_limit_burst, 1, 1e9);
  lb.Get("tls_cert", &l.tls_cert);
  lb.Get("hsts_max_age_s", &l.hsts_max_age_s, 0, 63'072'000);
  lb.Get("tls_key", &l.tls_key);
  lb.Get("upstream_tls", &l.upstream_tls);
  l.upstream_ca = topo::UpstreamTlsDir(t.runner.run_dir) + "/ca.pem";
  if (l.upstream_tls)
    for (const auto& n : t.web)
      if (n.tls_listen.empty())
        throw config::ConfigError(t.path + ": [lb] upstream_tls needs tls_listen in every " +
                                  "[[web.node]]: '" + n.name + "' has none");
  for (const auto& n : t.lb)
    if (!n.tls_listen.empty() && (l.tls_cert.empty() || l.tls_key.empty()))
      throw config::ConfigError(t.path + ": [[lb.node]] '" + n.name +
                                "' has tls_listen but [lb] has no tls_cert and tls_key");
  // The balancer holds every client's connection: bound what each may queue in the kernel, so
  // a slow-read attack cannot take the machine's TCP memory (docs/security.md).
  l.limits.send_buffer_bytes = 128 * 1024;
  http::ReadLimits(file.Table("http"), &l.limits);
  // The web nodes raise their body limit to the largest upload ([media] max_upload_bytes, the
  // web's default when absent); the balancer in front must let the same bodies through.
  int64_t upload = 20 * 1024 * 1024;
  file.Table("media").Get("max_upload_bytes", &upload, 1024, int64_t{1} << 31);
  l.limits.max_body_bytes = std::max(l.limits.max_body_bytes, static_cast<size_t>(upload));
  // One log level for the deployment unless the balancer names its own.
  const std::vector<std::string> levels = {"debug", "info", "warn", "error"};
  file.Table("web").GetChoice("log_level", &l.log_level, levels);
  lb.GetChoice("log_level", &l.log_level, levels);
  return l;
}

HealthOptions ToHealthOptions(const Settings& s) {
  HealthOptions h;
  h.rise = s.rise;
  h.fall = s.fall;
  h.consecutive_failures = s.consecutive_failures;
  h.base_ejection = std::chrono::milliseconds(s.base_ejection_ms);
  h.max_ejection = std::chrono::milliseconds(s.max_ejection_ms);
  h.slow_start = std::chrono::milliseconds(s.slow_start_ms);
  return h;
}

}  // namespace millions::lb
