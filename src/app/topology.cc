#include "app/topology.h"

#include <regex>
#include <set>

namespace millions::app {
namespace {

std::vector<NodeEntry> ReadNodes(config::Section role, const char* what,
                                 const std::set<std::string>& dcs, std::set<std::string>* names,
                                 const std::string& file) {
  std::vector<NodeEntry> out;
  for (auto& n : role.SubArray("node")) {
    NodeEntry e;
    e.dc = dcs.empty() ? "dc1" : *dcs.begin();
    n.Get("name", &e.name);
    n.Get("dc", &e.dc);
    n.Get("listen", &e.listen);
    if (std::string(what) == "postgres") {
      n.Get("rest", &e.rest);  // required by `millions up`, which runs Patroni
      if (!e.rest.empty()) config::ParseHostPort(e.rest);
    }
    if (std::string(what) == "etcd") {
      n.Get("peer_listen", &e.peer);
      if (e.peer.empty())
        throw config::ConfigError(file + ": [[etcd.node]] '" + e.name +
                                  "' needs peer_listen = \"host:port\" (the members' raft)");
      config::ParseHostPort(e.peer);
    }
    if (std::string(what) == "lb") {
      n.Get("admin", &e.admin);
      if (e.admin.empty())
        throw config::ConfigError(file + ": [[lb.node]] '" + e.name +
                                  "' needs admin = \"host:port\" (status and metrics)");
      config::ParseHostPort(e.admin);
      n.Get("tls_listen", &e.tls_listen);
      if (!e.tls_listen.empty()) config::ParseHostPort(e.tls_listen);
    }
    if (e.name.empty() || e.listen.empty())
      throw config::ConfigError(file + ": every [[" + std::string(what) +
                                ".node]] needs a name and a listen address");
    config::ParseHostPort(e.listen);
    if (!dcs.empty() && !dcs.count(e.dc))
      throw config::ConfigError(file + ": node '" + e.name + "' names unknown dc '" + e.dc + "'");
    if (!names->insert(e.name).second)
      throw config::ConfigError(file + ": two nodes are named '" + e.name + "'");
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

Topology Topology::Load(const std::string& path) {
  Topology t;
  auto file = config::ConfigFile::Load(path);
  file->Table("deployment").Get("name", &t.name);
  std::set<std::string> dcs;
  for (auto& dc : file->Root().SubArray("dc")) {
    std::string name;
    dc.Get("name", &name);
    if (name.empty()) throw config::ConfigError(path + ": every [[dc]] needs a name");
    dcs.insert(name);
    t.dcs.push_back(name);
  }
  std::set<std::string> names;
  auto web = file->Table("web");
  WebNodeConfig& w = t.web_defaults;
  web.Get("threads", &w.threads, 1, 64);
  web.Get("blocking_threads", &w.blocking_threads, 1, 256);
  web.GetChoice("log_level", &w.log_level, {"debug", "info", "warn", "error"});
  t.web = ReadNodes(web, "web", dcs, &names, path);
  auto pg = file->Table("postgres");
  pg.Get("database", &t.pg_database);
  pg.Get("user", &t.pg_user);
  pg.Get("pool_size", &t.pg_pool_size, 1, 1000);
  pg.Get("statement_timeout_ms", &t.pg_statement_timeout_ms, 100, 600'000);
  pg.Get("max_replica_lag_bytes", &t.pg_max_replica_lag_bytes, 0, int64_t{1} << 40);
  pg.Get("failover_wait_ms", &t.pg_failover_wait_ms, 0, 600'000);
  t.postgres = ReadNodes(pg, "postgres", dcs, &names, path);
  file->Table("queue").Get("lease_ms", &t.queue_lease_ms, 1000, 3'600'000);
  auto lb = file->Table("lb");
  LbSettings& l = t.lb_settings;
  lb.Get("threads", &l.threads, 1, 64);
  lb.Get("policy", &l.policy);
  {
    std::vector<std::string> names = {"round_robin", "weighted_round_robin", "least_outstanding",
                                      "p2c", "consistent_hash"};
    lb.GetChoice("policy", &l.policy, names);
  }
  lb.Get("hash_header", &l.hash_header);
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
  lb.Get("tls_key", &l.tls_key);
  t.lb = ReadNodes(lb, "lb", dcs, &names, path);
  for (const auto& n : t.lb)
    if (!n.tls_listen.empty() && (l.tls_cert.empty() || l.tls_key.empty()))
      throw config::ConfigError(path + ": [[lb.node]] '" + n.name +
                                "' has tls_listen but [lb] has no tls_cert and tls_key");
  auto redis = file->Table("redis");
  redis.Get("maxmemory", &t.redis_settings.maxmemory);
  if (!std::regex_match(t.redis_settings.maxmemory, std::regex("[0-9]+(b|kb|mb|gb)?")))
    throw config::ConfigError(path + ": [redis] maxmemory must be a size such as \"64mb\", not '" +
                              t.redis_settings.maxmemory + "'");
  redis.GetChoice("eviction_policy", &t.redis_settings.eviction_policy,
                  {"allkeys-lru", "allkeys-lfu", "volatile-lru", "volatile-lfu", "allkeys-random",
                   "noeviction"});
  t.redis = ReadNodes(redis, "redis", dcs, &names, path);
  auto runner = file->Table("runner");
  runner.Get("run_dir", &t.runner.run_dir);
  runner.Get("admin", &t.runner.admin);
  runner.Get("engine_user", &t.runner.engine_user);
  config::ParseHostPort(t.runner.admin);
  auto etcd = file->Table("etcd");
  t.runner.etcd = ReadNodes(etcd, "etcd", dcs, &names, path);
  if (t.runner.etcd.empty()) {
    NodeEntry one{
        "etcd",          t.dcs.empty() ? "dc1" : t.dcs.front(), "127.0.0.1:2379", "", "", "",
        "127.0.0.1:2380"};
    etcd.Get("listen", &one.listen);
    etcd.Get("peer_listen", &one.peer);
    config::ParseHostPort(one.listen);
    config::ParseHostPort(one.peer);
    t.runner.etcd.push_back(std::move(one));
  } else {
    std::string ignored;
    etcd.Get("listen", &ignored);
    if (!ignored.empty())
      throw config::ConfigError(path + ": [etcd] has [[etcd.node]] members: put listen in each");
  }
  auto patroni = pg.Sub("patroni");
  patroni.Get("ttl_s", &t.runner.patroni_ttl_s, 5, 600);
  patroni.Get("loop_wait_s", &t.runner.patroni_loop_wait_s, 1, 60);
  patroni.Get("retry_timeout_s", &t.runner.patroni_retry_timeout_s, 1, 600);
  patroni.Get("synchronous_mode", &t.runner.patroni_synchronous_mode);
  patroni.Get("synchronous_mode_strict", &t.runner.patroni_synchronous_mode_strict);
  patroni.Get("failsafe_mode", &t.runner.patroni_failsafe_mode);
  patroni.Get("fence_after_ms", &t.runner.fence_after_ms, 0, 600'000);
  if (t.runner.fence_after_ms < 0) t.runner.fence_after_ms = t.runner.patroni_ttl_s * 500;
  if (t.runner.fence_after_ms >= t.runner.patroni_ttl_s * 1000)
    throw config::ConfigError(path + ": [postgres.patroni] fence_after_ms must be shorter than " +
                              "ttl_s, or the lease expires before the fence");
  ReadWebSettings(*file, &w);
  for (const auto& n : t.redis) {
    auto hp = config::ParseHostPort(n.listen);
    w.l2.nodes.push_back({n.name, hp.host, hp.port});
  }
  file->RejectUnknownKeys();
  if (t.web.empty()) throw config::ConfigError(path + ": the topology has no [[web.node]]");
  if (t.postgres.empty())
    throw config::ConfigError(path + ": the topology has no [[postgres.node]]");
  return t;
}

const NodeEntry* Topology::FindWeb(const std::string& name) const {
  for (const auto& n : web)
    if (n.name == name) return &n;
  return nullptr;
}

data::ClusterOptions Topology::Cluster() const {
  data::ClusterOptions o;
  for (const auto& n : postgres) {
    auto hp = config::ParseHostPort(n.listen);
    o.members.push_back({n.name, hp.host, hp.port, n.rest, ""});
  }
  o.database = pg_database;
  o.user = pg_user;
  o.pool_size = pg_pool_size;
  o.statement_timeout_ms = pg_statement_timeout_ms;
  o.max_replica_lag_bytes = pg_max_replica_lag_bytes;
  o.failover_wait = std::chrono::milliseconds(pg_failover_wait_ms);
  return o;
}

pg::Options Topology::PgOptions() const {
  std::string hosts, ports;
  for (const auto& n : postgres) {
    auto hp = config::ParseHostPort(n.listen);
    hosts += (hosts.empty() ? "" : ",") + hp.host;
    ports += (ports.empty() ? "" : ",") + std::to_string(hp.port);
  }
  pg::Options o;
  // Several hosts: libpq tries each and keeps the one that takes writes.
  o.conninfo = "host=" + hosts + " port=" + ports + " dbname=" + pg_database + " user=" + pg_user +
               " target_session_attrs=read-write application_name=millions";
  o.pool_size = pg_pool_size;
  o.statement_timeout_ms = pg_statement_timeout_ms;
  return o;
}

}  // namespace millions::app
