// `millions serve lb`: the process around the balancer: its event loop, the public (and TLS)
// listeners, the admin listener, the checker thread, SIGHUP reloads and the SIGTERM drain.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <thread>

#include "core/config.h"
#include "core/http_server.h"
#include "core/log.h"
#include "core/router.h"
#include "roles/lb/proxy_internal.h"

namespace millions::lb {
namespace asio = boost::asio;
using asio::awaitable;

int Run(const LbConfig& cfg) {
  log::Init(cfg.name, "lb", log::ParseLevel(cfg.log_level));
  // One event-loop thread: the reactor needs no locks per operation (nothing else touches this
  // io_context from another thread: the checker thread has its own client and context).
  asio::io_context ioc(cfg.threads == 1 ? BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO : cfg.threads);
  Proxy balancer(cfg, ioc);
  auto& reg = balancer.registry();
  AddBackendCollector(reg, balancer);

  auto pub = config::ParseHostPort(cfg.listen);
  http::ServerOptions so;
  so.host = pub.host;
  so.port = pub.port;
  so.role = "lb";
  so.limits = cfg.limits;
  so.stream_bodies_over = kStreamOver;  // large uploads pass through, never held whole
  so.one_thread = cfg.threads == 1;
  http::HttpServer server(
      ioc, so, [&balancer](http::Request& req) { return balancer.Handle(req); }, &reg);

  // The admin listener: liveness, readiness, metrics and the balancer's view of its pool.
  std::atomic<bool> ready{false};
  http::Router admin_routes;
  admin_routes.Add("GET", "/livez", [](http::Request&) -> awaitable<http::Response> {
    co_return http::Json(200, "{\"ok\":true}");
  });
  admin_routes.Add("GET", "/readyz", [&ready](http::Request&) -> awaitable<http::Response> {
    if (!ready) co_return http::JsonError(503, "not_ready", "starting or draining");
    co_return http::Json(200, "{\"ready\":true}");
  });
  admin_routes.Add("GET", "/metrics", [&reg](http::Request&) -> awaitable<http::Response> {
    http::Response r;
    r.body = reg.Render();
    r.set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    co_return r;
  });
  admin_routes.Add("GET", "/status", [&balancer](http::Request&) -> awaitable<http::Response> {
    co_return http::Json(200, balancer.StatusJson());
  });
  auto adm = config::ParseHostPort(cfg.admin);
  http::ServerOptions ao;
  ao.host = adm.host;
  ao.port = adm.port;
  ao.role = "lb_admin";
  metrics::Registry admin_reg;
  http::HttpServer admin(
      ioc, ao,
      [&admin_routes](http::Request& req) -> awaitable<http::Response> {
        auto m = admin_routes.Find(req.method, req.path);
        if (m.outcome != http::Router::Outcome::kMatched)
          co_return http::JsonError(404, "not_found", "no such admin route");
        req.route = std::string(m.route);
        co_return co_await (*m.handler)(req);
      },
      &admin_reg);
  std::unique_ptr<http::HttpServer> tls_server;
  if (!cfg.tls_listen.empty()) {
    auto tl = config::ParseHostPort(cfg.tls_listen);
    http::ServerOptions to = so;
    to.host = tl.host;
    to.port = tl.port;
    to.tls_cert_file = cfg.tls_cert;
    to.tls_key_file = cfg.tls_key;
    tls_server = std::make_unique<http::HttpServer>(
        ioc, to, [&balancer](http::Request& req) { return balancer.Handle(req); }, &reg);
    tls_server->Start();
  }
  server.Start();
  admin.Start();

  std::atomic<bool> stop{false};
  std::thread checker([&] {
    while (!stop) {
      balancer.CheckAll();
      for (int i = 0; i < cfg.check_interval_ms / 50 && !stop; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  ready = true;
  log::Info("listening", {{"address", cfg.listen},
                          {"tls_address", cfg.tls_listen},
                          {"admin", cfg.admin},
                          {"policy", cfg.policy}});

  asio::signal_set hup(ioc, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_hup =
      [&](const boost::system::error_code& ec, int) {
        if (ec) return;
        if (cfg.reload) {
          if (auto next = cfg.reload()) {
            balancer.Reconfigure(*next);
          } else {
            log::Warn("reload failed: keeping the running configuration");
          }
        }
        hup.async_wait(on_hup);
      };
  hup.async_wait(on_hup);
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    ready = false;
    hup.cancel();
    auto last = [&] { admin.Drain([&] { ioc.stop(); }); };
    server.Drain([&, last] {
      if (tls_server) {
        tls_server->Drain(last);
      } else {
        last();
      }
    });
  });
  std::vector<std::thread> threads;
  for (int i = 1; i < cfg.threads; ++i) threads.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();
  stop = true;
  checker.join();
  return 0;
}

}  // namespace millions::lb
