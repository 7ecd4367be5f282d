#include "roles/worker/serve.h"

#include <boost/asio/awaitable.hpp>

#include "app/requests.h"
#include "app/service.h"
#include "app/workers.h"
#include "cache/l2.h"
#include "cache/tiered.h"
#include "cache/timeline.h"
#include "core/http_server.h"
#include "core/log.h"
#include "core/node_harness.h"
#include "core/router.h"
#include "core/secret.h"
#include "core/topology.h"
#include "data/store.h"
#include "media/media.h"
#include "queue/job_queue.h"
#include "roles/web/data_layer.h"
#include "roles/web/settings.h"

namespace millions::worker {

using boost::asio::awaitable;

int Serve(const std::string& path, const std::string& node) {
  topo::Topology t = topo::Topology::Load(path);
  web::WebNodeConfig cfg = web::ReadSettings(t);
  t.Check(web::kTables);
  const topo::NodeEntry* me = topo::FindNode(t.worker, node);
  if (!me) throw config::ConfigError(path + ": no [[worker.node]] is named '" + node + "'");
  if (t.nats.empty())
    throw config::ConfigError(path + ": a worker takes jobs from NATS: the topology has no " +
                              "[[nats.node]]");
  if (t.postgres.empty())
    throw config::ConfigError(path + ": a worker needs the database: the topology has no " +
                              "[[postgres.node]]");
  log::Init(me->name, "worker", log::ParseLevel(cfg.log_level));
  // What a worker renders into the cache names media as the web nodes do (docs/edge.md).
  app::SetMediaOrigin(web::EdgeOrigin(t, me->dc));
  // libvips before any thread starts: its cache bounded and untrusted loaders blocked.
  media::Init();

  // A worker's own NATS user: it takes jobs and acknowledges them (docs/credentials.md).
  if (std::string pw = secret::FromEnv("nats_worker"); !pw.empty())
    for (queue::NatsOptions* o : {&cfg.nats, &cfg.fanout_nats}) {
      o->user = "worker";
      o->password = pw;
    }

  Env& env = Env::Default();
  metrics::Registry registry;
  // One connection per job thread and one for the reconciler is all a worker uses.
  web::DataLayer data =
      web::OpenDataLayer(t, std::max(2, cfg.worker_threads + 1) + cfg.fanout_threads, me->dc);
  data::Store* store = data.store.get();
  store->RegisterMetrics(registry);
  cfg.nats.name = me->name;
  auto queue = queue::OpenNatsQueue(cfg.nats);
  // The cache only for invalidation: a finished job changes the photo's pages in every web
  // node's L1 (through the cache nodes' broadcast) and in the cache nodes.
  cache::Tiered cache(cfg.cache, nullptr, env, registry);
  web::PlaceCacheByDc(t, me->dc, &cfg);
  if (!cfg.l2.nodes.empty()) cache.AttachL2(cache::OpenRedisL2(cfg.l2, env));
  for (const auto& remote : cfg.l2_remote) cache.AttachRemote(cache::OpenRedisL2(remote, env));
  // Workers mint no IDs; the generator is the Service's, with shard bits no web node uses.
  app::Service service(*store, cache, *queue, env, registry, cfg.service);

  app::WorkerOptions wo;
  wo.threads = std::max(1, cfg.worker_threads);
  wo.progress_every = cfg.nats.ack_wait / 3;
  wo.reconcile_every = std::chrono::milliseconds(cfg.reconcile_ms);
  wo.reconcile_age = std::chrono::milliseconds(cfg.reconcile_age_ms);
  app::Workers workers(service, *queue, registry, wo);

  // Feed fan-out: its own stream and consumer, its own threads (a burst of edits does not hold
  // up the feed, nor a celebrity's followers the edits).
  std::unique_ptr<cache::TimelineStore> timelines;
  std::unique_ptr<queue::JobQueue> fanout;
  std::unique_ptr<app::Workers> fanout_workers;
  if (!cfg.timelines.nodes.empty() && cfg.fanout_threads > 0) {
    timelines = cache::OpenRedisTimelines(cfg.timelines);
    queue::NatsOptions fo = cfg.fanout_nats;
    fo.name = me->name + "-fanout";
    fanout = queue::OpenNatsQueue(fo);
    service.AttachTimelines(timelines.get(), fanout.get(), cfg.feed);
    app::WorkerOptions fw;
    fw.threads = cfg.fanout_threads;
    fw.fanout = true;
    fw.progress_every = fo.ack_wait / 3;
    fanout_workers = std::make_unique<app::Workers>(service, *fanout, registry, fw);
  }
  registry.AddCollector([&queue, &workers, &fanout](metrics::Families* out) {
    metrics::AddGauge(out, "millions_queue_backlog", "Edit jobs waiting to run or running.")
        .Add({}, double(queue->Backlog()));
    metrics::AddGauge(out, "millions_worker_busy", "Job threads running a job now.")
        .Add({}, double(workers.Busy()));
    if (fanout)
      metrics::AddGauge(out, "millions_fanout_backlog", "Fan-out jobs waiting or running.")
          .Add({}, double(fanout->Backlog()));
  });

  std::atomic<bool> ready{false};
  http::Router routes;
  node::AddOpsRoutes(routes, ready, registry);
  node::NodeHarness harness({.threads = 1, .withdraw = cfg.limits.withdraw});
  auto hp = config::ParseHostPort(me->listen);
  http::ServerOptions so;
  so.host = hp.host;
  so.port = hp.port;
  so.role = "worker";
  so.limits = cfg.limits;
  http::HttpServer server(
      harness.io(), so,
      [&routes](http::Request& req) -> awaitable<http::Response> {
        auto m = routes.Find(req.method, req.path);
        if (m.outcome != http::Router::Outcome::kMatched)
          co_return http::JsonError(404, "not_found", "a worker serves /livez, /readyz, /metrics");
        req.route = std::string(m.route);
        co_return co_await (*m.handler)(req);
      },
      &registry);
  server.Start();
  workers.Start();
  if (fanout_workers) fanout_workers->Start();
  ready = true;
  log::Info("taking jobs", {{"address", me->listen},
                            {"threads", int64_t{wo.threads}},
                            {"nats", cfg.nats.servers.front()}});

  // SIGTERM: not ready at once; after the withdraw period the jobs in hand finish (Stop waits
  // for them) and the listener drains.
  harness.Run([&ready] { ready = false; },
              [&server, &workers, &fanout_workers](std::function<void()> done) {
                workers.Stop();
                if (fanout_workers) fanout_workers->Stop();
                server.Drain(std::move(done));
              });
  log::Info("stopped");
  return 0;
}

}  // namespace millions::worker
