#include "app/node.h"

#include "app/workers.h"
#include "core/blocking_pool.h"
#include "core/http_server.h"
#include "core/log.h"
#include "core/node_harness.h"
#include "data/ids.h"
#include "media/media.h"

namespace millions::app {

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

}  // namespace

void ReadWebSettings(config::ConfigFile& file, WebNodeConfig* c) {
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
}

int RunWebNode(const WebNodeConfig& cfg, data::Store& store, queue::JobQueue& queue) {
  media::Init();
  Env& env = Env::Default();
  metrics::Registry registry;
  store.RegisterMetrics(registry);  // queries by member role, replica lag
  cache::Tiered cache(cfg.cache, nullptr, env, registry);
  if (!cfg.l2.nodes.empty()) {
    // Broadcasts arrive on the L2's io thread; dropping from L1 is quick and never blocks.
    cache::RedisL2Options l2 = cfg.l2;
    l2.on_invalidate = [&cache](const std::vector<std::string>& keys) { cache.OnBroadcast(keys); };
    cache.AttachL2(cache::OpenRedisL2(std::move(l2), env));
  }
  data::IdGenerator ids(env, cfg.shard);
  Service service(store, cache, queue, ids, env, registry, cfg.service);
  // Read at scrape time: the cache's size and nodes, the queue's depth.
  registry.AddCollector([&cache, &queue](metrics::Families* out) {
    cache.CollectMetrics(out);
    metrics::AddGauge(out, "millions_queue_backlog", "Edit jobs waiting to run.")
        .Add({}, double(queue.Backlog()));
  });

  BlockingPool pool(static_cast<size_t>(cfg.blocking_threads));
  WebApp web(service, pool, registry, cfg.web);
  node::NodeHarness harness({.threads = cfg.threads, .withdraw = cfg.limits.withdraw});
  auto hp = config::ParseHostPort(cfg.listen);
  http::ServerOptions so;
  so.host = hp.host;
  so.port = hp.port;
  so.role = cfg.role;
  so.limits = cfg.limits;
  so.one_thread = cfg.threads == 1;
  http::HttpServer server(
      harness.io(), so, [&web](http::Request& req) { return web.Handle(req); }, &registry);
  server.Start();

  if (Status st = service.RecoverJobs(); !st.ok())
    log::Warn("could not re-queue unfinished jobs", {{"error", st.error().message}});
  Workers workers(service, queue, registry, cfg.worker_threads);
  workers.Start();
  web.SetReady(true);
  log::Info("listening", {{"address", hp.host + ":" + std::to_string(server.port())},
                          {"port", int64_t{server.port()}}});

  // SIGTERM: /readyz turns 503 first, the server drains after the withdraw period.
  harness.Run([&web] { web.SetReady(false); },
              [&server](std::function<void()> done) { server.Drain(std::move(done)); });
  workers.Stop();
  pool.Stop();
  log::Info("stopped");
  return 0;
}

}  // namespace millions::app
