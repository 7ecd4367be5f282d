#include "app/node.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <thread>

#include "app/workers.h"
#include "core/blocking_pool.h"
#include "core/http_server.h"
#include "core/log.h"
#include "data/ids.h"
#include "media/media.h"

namespace millions::app {

namespace {

// Values read at scrape time: L1's size and evictions, each cache node's state, the queue.
void RenderCacheMetrics(const cache::Tiered& cache, queue::JobQueue& queue, std::string* out) {
  auto s = cache.L1Stats();
  *out += "# TYPE millions_cache_evictions_total counter\n";
  *out += "millions_cache_evictions_total{level=\"l1\"} " + std::to_string(s.evictions) + "\n";
  auto nodes = cache.L2Stats();
  for (const auto& n : nodes)
    *out += "millions_cache_evictions_total{level=\"l2\",node=\"" + n.name + "\"} " +
            std::to_string(n.evicted_keys) + "\n";
  *out += "# TYPE millions_cache_entries gauge\nmillions_cache_entries{level=\"l1\"} " +
          std::to_string(s.entries) + "\n";
  *out += "# TYPE millions_cache_bytes gauge\nmillions_cache_bytes{level=\"l1\"} " +
          std::to_string(s.bytes) + "\n";
  if (!nodes.empty()) {
    *out += "# TYPE millions_cache_node_up gauge\n";
    for (const auto& n : nodes)
      *out += "millions_cache_node_up{node=\"" + n.name + "\"} " + (n.up ? "1" : "0") + "\n";
    *out += "# TYPE millions_cache_node_flushes_total counter\n";
    for (const auto& n : nodes)
      *out += "millions_cache_node_flushes_total{node=\"" + n.name + "\"} " +
              std::to_string(n.flushes) + "\n";
  }
  *out += "# TYPE millions_queue_backlog gauge\nmillions_queue_backlog " +
          std::to_string(queue.Backlog()) + "\n";
}

}  // namespace

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
  registry.AddCollector(
      [&cache, &queue](std::string* out) { RenderCacheMetrics(cache, queue, out); });

  BlockingPool pool(static_cast<size_t>(cfg.blocking_threads));
  WebApp web(service, pool, registry, cfg.web);
  boost::asio::io_context ioc(cfg.threads);
  auto hp = config::ParseHostPort(cfg.listen);
  http::ServerOptions so;
  so.host = hp.host;
  so.port = hp.port;
  so.role = cfg.role;
  so.limits = cfg.limits;
  so.one_thread = cfg.threads == 1;
  http::HttpServer server(
      ioc, so, [&web](http::Request& req) { return web.Handle(req); }, &registry);
  server.Start();

  if (Status st = service.RecoverJobs(); !st.ok())
    log::Warn("could not re-queue unfinished jobs", {{"error", st.error().message}});
  Workers workers(service, queue, registry, cfg.worker_threads);
  workers.Start();
  web.SetReady(true);
  log::Info("listening", {{"address", hp.host + ":" + std::to_string(server.port())},
                          {"port", int64_t{server.port()}}});

  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  boost::asio::steady_timer withdraw(ioc);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    // Withdraw first: /readyz turns 503 while the node still serves, so balancers stop sending
    // to it before it stops accepting and closes idle connections.
    log::Info("withdrawing",
              {{"signal", sig}, {"withdraw_ms", int64_t(cfg.limits.withdraw.count())}});
    web.SetReady(false);
    withdraw.expires_after(cfg.limits.withdraw);
    withdraw.async_wait([&](const boost::system::error_code&) {
      log::Info("draining");
      server.Drain([&] { ioc.stop(); });
    });
  });

  std::vector<std::thread> threads;
  for (int i = 1; i < cfg.threads; ++i) threads.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();
  workers.Stop();
  pool.Stop();
  log::Info("stopped");
  return 0;
}

}  // namespace millions::app
