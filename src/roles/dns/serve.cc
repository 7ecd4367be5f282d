// The process around the DNS server, on the node harness (io threads, SIGINT/SIGTERM withdraw
// then drain, /livez /readyz /metrics): the UDP and TCP listeners, the admin listener and the
// checker thread that tests the balancers.
#include "roles/dns/serve.h"

#include <atomic>
#include <thread>

#include "core/config.h"
#include "core/http_server.h"
#include "core/log.h"
#include "core/node_harness.h"
#include "core/periodic.h"
#include "core/router.h"
#include "core/topology.h"
#include "roles/dns/health.h"
#include "roles/dns/server.h"
#include "roles/dns/settings.h"

namespace millions::dns {
namespace asio = boost::asio;
using asio::awaitable;

namespace {

int Run(const DnsConfig& cfg) {
  const Settings& s = cfg.settings;
  log::Init(cfg.name, "dns", log::ParseLevel(s.log_level));
  // One thread: the reactor takes no lock per operation (the checker thread never touches
  // io()). More: a context and a UDP socket each (SO_REUSEPORT), TCP connections spread over
  // them.
  node::NodeHarness harness(
      {.threads = s.threads, .unsafe_one_thread = true, .context_per_thread = true});
  asio::io_context& ioc = harness.io();
  metrics::Registry reg;
  Health health(cfg, reg, HttpProbe(s.check_path));
  // The first round before serving: the first answers already leave out dead balancers.
  health.Check();
  Server server(
      harness.contexts(), cfg, [&health] { return health.zone(); }, reg);

  std::atomic<bool> ready{false};
  http::Router admin_routes;
  node::AddOpsRoutes(admin_routes, ready, reg);
  admin_routes.Add("GET", "/status", [&health](http::Request&) -> awaitable<http::Response> {
    co_return http::Json(200, health.StatusJson());
  });
  node::AdminServer admin(ioc, cfg.admin, "dns_admin", admin_routes);
  server.Start();
  admin.Start();

  node::Periodic checker(
      std::chrono::milliseconds(s.check_interval_ms), [&health] { health.Check(); },
      node::Periodic::First::kAfterInterval);
  ready = true;
  log::Info("listening", {{"address", cfg.listen},
                          {"admin", cfg.admin},
                          {"zone", s.zone.zone},
                          {"balancers", int64_t(s.zone.balancers.size())},
                          {"regions", int64_t(s.zone.regions.size())},
                          {"threads", s.threads}});
  harness.Run([&] { ready = false; },
              [&](std::function<void()> done) {
                server.Stop();
                admin.Drain(std::move(done));
              });
  checker.Stop();
  return 0;
}

}  // namespace

int Serve(const std::string& path, const std::string& node) {
  topo::Topology t = topo::Topology::Load(path);
  DnsConfig c = ReadConfig(t, node);
  t.Check(kTables);
  return Run(c);
}

}  // namespace millions::dns
