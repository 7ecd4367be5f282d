#include "ctl/serve_lb.h"

#include <cstdio>

#include "core/topology.h"
#include "roles/lb/proxy.h"
#include "roles/lb/settings.h"

namespace millions::ctl {

namespace {

lb::LbConfig Build(const std::string& path, const std::string& node) {
  topo::Topology t = topo::Topology::Load(path);
  const lb::Settings s = lb::ReadSettings(t);
  t.Check(lb::kTables);
  const topo::NodeEntry* me = topo::FindNode(t.lb, node);
  if (!me) throw config::ConfigError(path + ": no [[lb.node]] is named '" + node + "'");
  lb::LbConfig c;
  c.name = me->name;
  c.listen = me->listen;
  c.admin = me->admin;
  c.tls_listen = me->tls_listen;
  c.tls_cert = s.tls_cert;
  c.tls_key = s.tls_key;
  c.threads = s.threads;
  c.policy = s.policy;
  c.hash_header = s.hash_header;
  c.health.rise = s.rise;
  c.health.fall = s.fall;
  c.health.consecutive_failures = s.consecutive_failures;
  c.health.base_ejection = std::chrono::milliseconds(s.base_ejection_ms);
  c.health.max_ejection = std::chrono::milliseconds(s.max_ejection_ms);
  c.health.slow_start = std::chrono::milliseconds(s.slow_start_ms);
  c.check_interval_ms = s.check_interval_ms;
  c.rate_limit_rps = s.rate_limit_rps;
  c.rate_limit_burst = s.rate_limit_burst;
  c.limits = s.limits;
  c.log_level = s.log_level;
  for (const auto& w : t.web) c.backends.push_back({w.name, w.listen, 1, nullptr});
  for (auto& b : c.backends) b.stats = std::make_shared<lb::BackendStats>();
  // Under `millions up` the runner knows which web nodes run right now (scaling, deaths).
  if (getenv("MILLIONS_RUNNER_ADMIN")) c.runner_admin = getenv("MILLIONS_RUNNER_ADMIN");
  return c;
}

}  // namespace

int ServeLb(const std::string& path, const std::string& node) {
  lb::LbConfig c = Build(path, node);
  c.reload = [path, node]() -> std::optional<lb::LbConfig> {
    try {
      return Build(path, node);
    } catch (const std::exception& e) {
      fprintf(stderr, "%s\n", e.what());
      return std::nullopt;
    }
  };
  return lb::Run(c);
}

}  // namespace millions::ctl
