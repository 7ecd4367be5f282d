#include "roles/web/node.h"

#include <atomic>
#include <memory>

#include "app/business.h"
#include "app/workers.h"
#include "cache/counters.h"
#include "cache/tallies.h"
#include "core/blocking_pool.h"
#include "core/http_server.h"
#include "core/log.h"
#include "core/node_harness.h"
#include "media/media.h"

namespace millions::web {

int RunWebNode(const WebNodeConfig& cfg, data::Store& store, queue::JobQueue& queue) {
  // A node that runs edits loads libvips now (and fails here if it cannot); one whose edits run
  // on worker nodes never maps libvips and the libraries it pulls in: it probes uploads without
  // it (media/sniff.h; docs/performance.md, Memory).
  if (cfg.worker_threads > 0) media::Init();
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
  // Other DCs' cache nodes: this node's writes invalidate there too (docs/datacentres.md).
  for (const auto& remote : cfg.l2_remote) cache.AttachRemote(cache::OpenRedisL2(remote, env));
  app::Service service(store, cache, queue, env, registry, cfg.service);
  // Feed fan-out: timelines read here; posts published as fan-out jobs for the workers (or,
  // without NATS, fanned out here).
  std::unique_ptr<cache::TimelineStore> timelines;
  std::unique_ptr<queue::JobQueue> fanout;
  if (!cfg.timelines.nodes.empty()) {
    timelines = cache::OpenRedisTimelines(cfg.timelines);
    // fanout_threads = 0: no worker takes fan-out jobs, so this node fans out each post itself.
    if (!cfg.fanout_nats.servers.empty() && cfg.fanout_threads > 0) {
      queue::NatsOptions fo = cfg.fanout_nats;
      fo.name = cfg.name + "-fanout";
      fanout = queue::OpenNatsQueue(fo);
    }
    service.AttachTimelines(timelines.get(), fanout.get(), cfg.feed);
  }
  // Read at scrape time: the cache's size and nodes, the queue's depth.
  registry.AddCollector([&cache, &queue](metrics::Families* out) {
    cache.CollectMetrics(out);
    metrics::AddGauge(out, "millions_queue_backlog", "Edit jobs waiting to run.")
        .Add({}, double(queue.Backlog()));
  });

  BlockingPool pool(static_cast<size_t>(cfg.blocking_threads));
  app::WebOptions web_options = cfg.web;
  // The throttle's counters: on the cache nodes, shared by every web node; while they are down,
  // each node counts in its own memory (cache/counters.h). Without cache nodes: this process.
  if (cache::L2* l2 = cache.l2()) {
    auto& fallbacks = registry.GetCounter(
        "millions_auth_throttle_fallbacks_total",
        "Throttle counter operations served from this node's memory: the cache nodes failed.", {});
    web_options.counters = std::make_shared<cache::FallbackCounters>(
        std::make_unique<cache::RedisCounters>(*l2),
        std::make_unique<cache::LocalCounters>(env, 100'000), [&fallbacks] { fallbacks.Inc(); });
  }
  // Business metrics: per-day sets and counts on the cache nodes, shared by every web node
  // (without cache nodes, this process's memory); written and read by their own thread.
  std::shared_ptr<cache::Tallies> tallies;
  if (cache::L2* l2 = cache.l2())
    tallies = std::make_shared<cache::RedisTallies>(*l2);
  else
    tallies = std::make_shared<cache::LocalTallies>(env, 1'000'000);
  app::Business business(env, std::move(tallies), registry);
  service.AttachBusiness(&business);
  business.Start();
  app::WebApp web(service, pool, registry, std::move(web_options));
  // Long polls on a job wake when any node's worker announces it finished.
  queue.Listen([&web](int64_t job) { web.JobFinished(job); });
  node::NodeHarness harness(
      {.threads = cfg.threads, .withdraw = cfg.limits.withdraw, .context_per_thread = true});
  auto hp = config::ParseHostPort(cfg.listen);
  http::ServerOptions so;
  so.host = hp.host;
  so.port = hp.port;
  so.role = cfg.role;
  so.limits = cfg.limits;
  so.one_thread = cfg.threads == 1;
  if (cfg.threads > 1) so.contexts = harness.contexts();
  so.extra_headers = std::string(app::WebApp::kExtraHeaders);
  http::HttpServer server(
      harness.io(), so, [&web](http::Request& req) { return web.Handle(req); }, &registry);
  // The balancers' TLS listener ([lb] upstream_tls): the same service on the same threads.
  std::unique_ptr<http::HttpServer> tls_server;
  if (!cfg.tls_listen.empty()) {
    auto tl = config::ParseHostPort(cfg.tls_listen);
    http::ServerOptions to = so;
    to.host = tl.host;
    to.port = tl.port;
    to.tls_cert_file = cfg.tls_cert;
    to.tls_key_file = cfg.tls_key;
    tls_server = std::make_unique<http::HttpServer>(
        harness.io(), to, [&web](http::Request& req) { return web.Handle(req); }, &registry);
    tls_server->Start();  // throws (start-up) when the certificate or key cannot be read
  }
  server.Start();

  // A node that runs no workers leaves lost jobs to the workers' reconciler.
  if (cfg.worker_threads > 0) {
    if (Status st = service.RecoverJobs(); !st.ok())
      log::Warn("could not re-queue unfinished jobs", {{"error", st.error().message}});
  }
  app::Workers workers(service, queue, registry, {.threads = cfg.worker_threads});
  workers.Start();
  web.SetReady(true);
  log::Info("listening", {{"address", hp.host + ":" + std::to_string(server.port())},
                          {"port", int64_t{server.port()}},
                          {"tls_address", cfg.tls_listen}});

  // SIGTERM: /readyz turns 503 first, the server drains after the withdraw period.
  harness.Run([&web] { web.SetReady(false); },
              [&server, &tls_server](std::function<void()> done) {
                if (!tls_server) return server.Drain(std::move(done));
                // Both listeners drain at once; the last to finish says so.
                auto left = std::make_shared<std::atomic<int>>(2);
                std::function<void()> one = [left, done = std::move(done)] {
                  if (left->fetch_sub(1) == 1) done();
                };
                server.Drain(one);
                tls_server->Drain(one);
              });
  workers.Stop();
  queue.Listen(nullptr);
  pool.Stop();
  business.Stop();  // its last flush
  log::Info("stopped");
  return 0;
}

}  // namespace millions::web
