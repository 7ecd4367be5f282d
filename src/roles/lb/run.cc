// `millions serve lb`: the process around the balancer, on the node harness (io threads,
// SIGINT/SIGTERM withdraw-then-drain, /livez /readyz /metrics): the public (and TLS) listeners,
// the admin listener with the balancer's /status, the checker thread and SIGHUP reloads.
#include <boost/asio/signal_set.hpp>
#include <thread>

#include "core/config.h"
#include "core/http_server.h"
#include "core/log.h"
#include "core/node_harness.h"
#include "core/periodic.h"
#include "core/router.h"
#include "roles/lb/proxy_internal.h"

namespace millions::lb {
namespace asio = boost::asio;
using asio::awaitable;

int Run(const LbConfig& cfg) {
  const Settings& s = cfg.settings;
  log::Init(cfg.name, "lb", log::ParseLevel(s.log_level));
  // One event-loop thread: the reactor needs no locks per operation (nothing else touches this
  // io_context from another thread: the checker thread has its own client and context).
  // More threads: a context each, connections spread over them (node_harness.h).
  node::NodeHarness harness(
      {.threads = s.threads, .unsafe_one_thread = true, .context_per_thread = true});
  asio::io_context& ioc = harness.io();
  Proxy balancer(cfg);
  auto& reg = balancer.registry();

  auto pub = config::ParseHostPort(cfg.listen);
  http::ServerOptions so;
  so.host = pub.host;
  so.port = pub.port;
  so.role = "lb";
  so.limits = s.limits;
  so.stream_bodies_over = kStreamOver;  // large uploads pass through, never held whole
  so.one_thread = s.threads == 1;
  if (s.threads > 1) so.contexts = harness.contexts();
  http::HttpServer server(
      ioc, so, [&balancer](http::Request& req) { return balancer.Handle(req); }, &reg);

  // The admin listener: liveness, readiness, metrics and the balancer's view of its pool.
  std::atomic<bool> ready{false};
  http::Router admin_routes;
  node::AddOpsRoutes(admin_routes, ready, reg);
  admin_routes.Add("GET", "/status", [&balancer](http::Request&) -> awaitable<http::Response> {
    co_return http::Json(200, balancer.StatusJson());
  });
  node::AdminServer admin(ioc, cfg.admin, "lb_admin", admin_routes);
  std::unique_ptr<http::HttpServer> tls_server;
  if (!cfg.tls_listen.empty()) {
    auto tl = config::ParseHostPort(cfg.tls_listen);
    http::ServerOptions to = so;
    to.host = tl.host;
    to.port = tl.port;
    to.tls_cert_file = s.tls_cert;
    to.tls_key_file = s.tls_key;
    // HSTS only where it means something: a browser ignores it over plain HTTP, and a plain
    // listener must not claim it (RFC 6797 section 7.2).
    if (s.hsts_max_age_s > 0)
      to.extra_headers +=
          "Strict-Transport-Security: max-age=" + std::to_string(s.hsts_max_age_s) + "\r\n";
    tls_server = std::make_unique<http::HttpServer>(
        ioc, to, [&balancer](http::Request& req) { return balancer.Handle(req); }, &reg);
    tls_server->Start();
  }
  server.Start();
  admin.Start();

  node::Periodic checker(std::chrono::milliseconds(s.check_interval_ms),
                         [&balancer] { balancer.CheckAll(); });
  ready = true;
  log::Info("listening", {{"address", cfg.listen},
                          {"tls_address", cfg.tls_listen},
                          {"admin", cfg.admin},
                          {"policy", s.policy}});

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

  // SIGTERM: /readyz turns 503, then the public, TLS and admin servers drain in turn (the admin
  // listener last, so /readyz answers 503 while the others finish).
  harness.Run(
      [&] {
        ready = false;
        hup.cancel();
      },
      [&](std::function<void()> done) {
        auto last = [&admin, done = std::move(done)] { admin.Drain(done); };
        server.Drain([&tls_server, last] {
          if (tls_server) {
            tls_server->Drain(last);
          } else {
            last();
          }
        });
      });
  checker.Stop();
  return 0;
}

}  // namespace millions::lb
