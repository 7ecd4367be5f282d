#include "roles/web/settings.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "core/secret.h"

namespace millions::web {

const std::vector<std::string> kTables = {"web",      "http",  "cache",    "media", "workers",
                                          "sessions", "queue", "timeline", "auth"};

namespace {

using std::chrono::milliseconds;

void GetMs(config::Section& s, const char* key, milliseconds* out, int64_t min, int64_t max) {
  int64_t v = out->count();
  s.Get(key, &v, min, max);
  *out = milliseconds(v);
}

void ReadCacheSettings(config::Section cache, cache::TieredOptions* t, cache::RedisL2Options* l2) {
  cache.GetChoice("policy", &t->l1.policy, {"lru", "lfu", "fifo"});
  int64_t bytes = static_cast<int64_t>(t->l1.capacity_bytes);
  cache.Get("capacity_bytes", &bytes, 0, int64_t{1} << 40);
  t->l1.capacity_bytes = static_cast<size_t>(bytes);
  // ttl_ms: every kind's TTL; [cache.ttl] sets kinds one by one.
  int64_t ttl = -1;
  cache.Get("ttl_ms", &ttl, 1, 86'400'000);
  if (ttl > 0) t->ttl.fill(milliseconds(ttl));
  auto per_kind = cache.Sub("ttl");
  for (size_t k = 0; k < cache::kKinds; ++k) {
    std::string key = std::string(cache::KindName(cache::Kind(k))) + "_ms";
    GetMs(per_kind, key.c_str(), &t->ttl[k], 1, 86'400'000);
  }
  GetMs(cache, "l1_ttl_ms", &t->l1_ttl, 1, 86'400'000);
  cache.Get("hot_key_reads_per_s", &t->hot_key_reads_per_s, 0, 1'000'000);
  cache.Get("ttl_jitter", &t->ttl_jitter, 0, 0.5);
  cache.Get("early_expiry_beta", &t->early_expiry_beta, 0, 10);
  GetMs(cache, "lease_ms", &t->lease_wait, 10, 60'000);
  l2->lease = t->lease_wait;
  GetMs(cache, "l2_timeout_ms", &l2->timeout, 1, 10'000);
  GetMs(cache, "write_marker_ms", &l2->write_marker, 0, 60'000);
}

// [auth]: log-in and sign-up throttling (app/throttle.h, docs/security.md).
void ReadAuthSettings(config::Section auth, app::WebOptions* w) {
  app::ThrottleOptions& o = w->throttle;
  auth.Get("throttle", &o.enabled);
  auth.Get("login_max_failures", &o.login_max_failures, 1, 1000);
  int64_t s = o.login_window.count() / 1000;
  auth.Get("login_window_s", &s, 1, 86'400);
  o.login_window = milliseconds(s * 1000);
  s = o.login_backoff.count() / 1000;
  auth.Get("login_backoff_s", &s, 1, 86'400);
  o.login_backoff = milliseconds(s * 1000);
  s = o.login_max_backoff.count() / 1000;
  auth.Get("login_max_backoff_s", &s, 1, 7 * 86'400);
  o.login_max_backoff = std::max(milliseconds(s * 1000), o.login_backoff);
  auth.Get("attack_failures", &o.attack_failures, 0, 10'000'000);
  auth.Get("attack_max_failures", &o.attack_max_failures, 1, 1000);
  GetMs(auth, "attack_delay_ms", &o.attack_delay, 0, 10'000);
  auth.Get("signup_per_minute", &o.signup_per_minute, 0, 1'000'000);
  auth.Get("trusted_proxies", &w->trusted_proxies);
}

}  // namespace

void ReadSettings(config::ConfigFile& file, WebNodeConfig* c) {
  ReadAuthSettings(file.Table("auth"), &c->web);
  http::ReadLimits(file.Table("http"), &c->limits);
  ReadCacheSettings(file.Table("cache"), &c->cache, &c->l2);
  auto media = file.Table("media");
  int64_t upload = static_cast<int64_t>(c->web.max_upload_bytes);
  media.Get("max_upload_bytes", &upload, 1024, int64_t{1} << 31);
  c->web.max_upload_bytes = static_cast<size_t>(upload);
  media.Get("max_pixels", &c->service.media.max_pixels, 1, int64_t{1} << 31);
  media.Get("max_dimension", &c->service.media.max_dimension, 1, 65535);
  auto workers = file.Table("workers");
  workers.Get("threads", &c->worker_threads, 0, 64);
  workers.Get("max_attempts", &c->service.max_job_attempts, 1, 100);
  int64_t hours = c->service.session_ttl_ms / 3'600'000;
  file.Table("sessions").Get("ttl_hours", &hours, 1, 24 * 365);
  c->service.session_ttl_ms = hours * 3'600'000;
  // The body limit must let the largest upload through; the upload check answers 413 itself.
  c->limits.max_body_bytes = std::max(c->limits.max_body_bytes, c->web.max_upload_bytes);
  auto queue = file.Table("queue");
  queue.Get("lease_ms", &c->queue_lease_ms, 1000, 3'600'000);
  GetMs(queue, "ack_wait_ms", &c->nats.ack_wait, 300, 3'600'000);
  GetMs(queue, "duplicate_window_ms", &c->nats.duplicate_window, 1000, 86'400'000);
  queue.Get("reconcile_ms", &c->reconcile_ms, 100, 3'600'000);
  queue.Get("reconcile_age_ms", &c->reconcile_age_ms, 100, 86'400'000);
  auto timeline = file.Table("timeline");
  timeline.Get("cap", &c->timelines.cap, 10, 100'000);
  timeline.Get("celebrity_followers", &c->feed.celebrity_followers, 0, 10'000'000);
  timeline.Get("fanout_threads", &c->fanout_threads, 0, 64);
  GetMs(timeline, "timeout_ms", &c->timelines.timeout, 1, 10'000);
  // One delivery more than the attempts: a job whose every attempt stopped its worker is
  // delivered once more, to be marked failed (app/service.cc).
  c->nats.max_deliver = c->service.max_job_attempts + 1;
}

WebNodeConfig ReadSettings(const topo::Topology& t) {
  WebNodeConfig w;
  auto web = t.file().Table("web");
  web.Get("threads", &w.threads, 1, 64);
  web.Get("blocking_threads", &w.blocking_threads, 1, 256);
  web.GetChoice("log_level", &w.log_level, {"debug", "info", "warn", "error"});
  ReadSettings(t.file(), &w);
  w.service.logical_shards = t.shards.logical;
  for (const auto& n : t.redis) {
    auto hp = config::ParseHostPort(n.listen);
    w.l2.nodes.push_back({n.name, hp.host, hp.port});
  }
  // Credentials from the run's secrets when `up` started this node (docs/credentials.md).
  if (std::string pw = secret::FromEnv("redis_cache"); !pw.empty()) {
    w.l2.user = "cache";
    w.l2.password = pw;
  }
  if (std::string pw = secret::FromEnv("redis_timeline"); !pw.empty()) {
    w.timelines.user = "timeline";
    w.timelines.password = pw;
  }
  // The balancers' addresses: their X-Forwarded-For names the client (and no one else's does).
  for (const auto& n : t.lb)
    for (const std::string* a : {&n.listen, &n.tls_listen, &n.admin}) {
      if (a->empty()) continue;
      std::string host = config::ParseHostPort(*a).host;
      if (std::find(w.web.trusted_proxies.begin(), w.web.trusted_proxies.end(), host) ==
          w.web.trusted_proxies.end())
        w.web.trusted_proxies.push_back(host);
    }
  for (const auto& n : t.nats) w.nats.servers.push_back("nats://" + n.listen);
  w.nats.replicas = t.nats_stream_replicas;
  if (std::string pw = secret::FromEnv("nats_web"); !pw.empty()) {
    w.nats.user = "web";  // publishes jobs, hears they are done; a worker overrides it
    w.nats.password = pw;
  }
  w.fanout_nats = FanoutNatsOptions(w.nats);
  for (const auto& n : t.timeline) {
    auto hp = config::ParseHostPort(n.listen);
    w.timelines.nodes.push_back({n.name, hp.host, hp.port});
  }
  return w;
}

queue::NatsOptions FanoutNatsOptions(const queue::NatsOptions& edits) {
  queue::NatsOptions f = edits;
  f.stream = "MILLIONS_FANOUT";
  f.subject_prefix = "millions.fanout.job";
  f.dead_stream = "MILLIONS_FANOUT_DEAD";
  f.dead_prefix = "millions.dead.fanout";
  f.done_prefix = "millions.fanout.done";
  f.consumer = "fanout";
  f.ack_wait = std::chrono::milliseconds(10'000);
  // A fan-out fails only while the timeline store or the database is down: it is retried
  // (with back-off up to 12.8 s) for about ten minutes before it is dead-lettered.
  f.max_deliver = 50;
  return f;
}

namespace {
const topo::NodeEntry* PickEdge(const topo::Topology& t, const std::string& dc) {
  if (t.edge.empty()) return nullptr;
  for (const auto& e : t.edge)
    if (e.dc == dc) return &e;
  return &t.edge.front();
}
}  // namespace

std::string EdgeOrigin(const topo::Topology& t, const std::string& dc) {
  const topo::NodeEntry* e = PickEdge(t, dc);
  return e ? "http://" + e->listen : "";
}

std::string EdgeTlsOrigin(const topo::Topology& t, const std::string& dc) {
  const topo::NodeEntry* e = PickEdge(t, dc);
  return e && !e->tls_listen.empty() ? "https://" + e->tls_listen : "";
}

void PlaceCacheByDc(const topo::Topology& t, const std::string& dc, WebNodeConfig* cfg) {
  std::map<std::string, std::vector<cache::RedisL2Options::Node>> by_dc;
  for (const auto& n : t.redis) {
    auto hp = config::ParseHostPort(n.listen);
    by_dc[n.dc].push_back({n.name, hp.host, hp.port});
  }
  if (by_dc.size() < 2 || !by_dc.count(dc)) return;
  cfg->l2.nodes = by_dc[dc];
  for (auto& [other, nodes] : by_dc) {
    if (other == dc) continue;
    cache::RedisL2Options remote = cfg->l2;
    remote.nodes = nodes;
    cfg->l2_remote.push_back(std::move(remote));
  }
}

data::ClusterOptions ClusterOptions(const topo::Topology& t) {
  return ClusterOptions(t, topo::PgClusterEntry{"", "millions", t.postgres});
}

data::ClusterOptions ClusterOptions(const topo::Topology& t, const topo::PgClusterEntry& c) {
  data::ClusterOptions o;
  for (const auto& n : c.nodes) {
    auto hp = config::ParseHostPort(n.listen);
    o.members.push_back({n.name, hp.host, hp.port, n.rest, "", n.dc});
  }
  if (!c.name.empty()) o.shard = c.name;
  o.database = t.pg_database;
  o.user = t.pg_user;
  o.pool_size = t.pg_pool_size;
  o.statement_timeout_ms = t.pg_statement_timeout_ms;
  o.max_replica_lag_bytes = t.pg_max_replica_lag_bytes;
  o.failover_wait = std::chrono::milliseconds(t.pg_failover_wait_ms);
  return o;
}

pg::Options PgOptions(const topo::Topology& t) {
  std::string hosts, ports;
  for (const auto& n : t.pg_clusters.empty() ? t.postgres : t.pg_clusters.front().nodes) {
    auto hp = config::ParseHostPort(n.listen);
    hosts += (hosts.empty() ? "" : ",") + hp.host;
    ports += (ports.empty() ? "" : ",") + std::to_string(hp.port);
  }
  pg::Options o;
  // Several hosts: libpq tries each and keeps the one that takes writes.
  o.conninfo = "host=" + hosts + " port=" + ports + " dbname=" + t.pg_database +
               " user=" + t.pg_user + " target_session_attrs=read-write application_name=millions";
  o.pool_size = t.pg_pool_size;
  o.statement_timeout_ms = t.pg_statement_timeout_ms;
  return o;
}

}  // namespace millions::web
