// The process around the edge, on the node harness (io threads, SIGINT/SIGTERM withdraw then
// drain, /livez /readyz /metrics): the public listener (and its HTTPS twin on tls_listen), the
// admin listener and the checker thread that tests the origins.
#include "roles/edge/serve.h"

#include <atomic>
#include <memory>
#include <thread>

#include "core/config.h"
#include "core/http_server.h"
#include "core/log.h"
#include "core/node_harness.h"
#include "core/periodic.h"
#include "core/router.h"
#include "core/topology.h"
#include "roles/edge/edge.h"

namespace millions::edge {
namespace asio = boost::asio;
using asio::awaitable;

namespace {

int Run(const EdgeConfig& cfg) {
  const Settings& s = cfg.settings;
  log::Init(cfg.name, "edge", log::ParseLevel(s.log_level));
  // A context per thread, connections spread over them; not the unsafe single-thread reactor:
  // coalesced waiters are woken from other threads, and disk reads come back from a pool.
  node::NodeHarness harness({.threads = s.threads, .context_per_thread = true});
  asio::io_context& ioc = harness.io();
  metrics::Registry reg;
  Edge edge(cfg, reg, Env::Default());

  auto pub = config::ParseHostPort(cfg.listen);
  http::ServerOptions so;
  so.host = pub.host;
  so.port = pub.port;
  so.role = "edge";
  so.limits = s.limits;
  so.stream_bodies_over = 256 * 1024;  // uploads passed to the origin are streamed, not held
  so.one_thread = s.threads == 1;
  if (s.threads > 1) so.contexts = harness.contexts();
  http::HttpServer server(
      ioc, so, [&edge](http::Request& req) { return edge.Handle(req); }, &reg);

  std::atomic<bool> ready{false};
  http::Router admin_routes;
  node::AddOpsRoutes(admin_routes, ready, reg);
  admin_routes.Add("GET", "/status", [&edge](http::Request&) -> awaitable<http::Response> {
    co_return http::Json(200, edge.StatusJson());
  });
  admin_routes.Add("POST", "/purge", [&edge](http::Request& req) -> awaitable<http::Response> {
    co_return co_await edge.Purge(req);
  });
  node::AdminServer admin(ioc, cfg.admin, "edge_admin", admin_routes);
  // HTTPS beside the plain listener: the balancer's TLS (core/http_server.cc: TLS 1.2 and 1.3,
  // forward-secret AEAD suites), the same cache behind both.
  std::unique_ptr<http::HttpServer> tls_server;
  if (!cfg.tls_listen.empty()) {
    auto tl = config::ParseHostPort(cfg.tls_listen);
    http::ServerOptions to = so;
    to.host = tl.host;
    to.port = tl.port;
    to.tls_cert_file = s.tls_cert;
    to.tls_key_file = s.tls_key;
    tls_server = std::make_unique<http::HttpServer>(
        ioc, to, [&edge](http::Request& req) { return edge.Handle(req); }, &reg);
    tls_server->Start();
  }
  server.Start();
  admin.Start();

  node::Periodic checker(std::chrono::milliseconds(s.check_interval_ms),
                         [&edge] { edge.CheckOrigins(); });
  ready = true;
  log::Info("listening", {{"address", cfg.listen},
                          {"tls_address", cfg.tls_listen},
                          {"admin", cfg.admin},
                          {"origins", int64_t(cfg.origins.size())},
                          {"memory_bytes", uint64_t(s.store.memory_bytes)},
                          {"disk_dir", s.store.disk_dir}});
  harness.Run([&] { ready = false; },
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

}  // namespace

int Serve(const std::string& path, const std::string& node) {
  topo::Topology t = topo::Topology::Load(path);
  EdgeConfig c = ReadConfig(t, node);
  t.Check(kTables);
  return Run(c);
}

}  // namespace millions::edge
