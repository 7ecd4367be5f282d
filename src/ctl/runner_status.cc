// The runner's admin API (loopback only): the dashboard, status of every node, metrics summed
// per tier, and the actions `chaos` and `scale` send.
#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "core/env.h"
#include "core/http_server.h"
#include "core/log.h"
#include "core/router.h"
#include "ctl/admin_token.h"
#include "ctl/business_metrics.h"
#include "ctl/dashboard.h"
#include "ctl/edge_metrics.h"
#include "ctl/prometheus.h"
#include "ctl/recipes/patroni.h"
#include "ctl/reshard_watch.h"
#include "ctl/runner_internal.h"
#include "ctl/secrets.h"

namespace millions::ctl::detail {

ReshardWatch* Runner::Reshard() {
  if (!t_.shards.enabled || t_.runner.etcd.empty()) return nullptr;
  std::lock_guard lock(reshard_mu_);
  if (!reshard_) {
    data::EtcdOptions o;
    for (const auto& e : t_.runner.etcd) o.endpoints.push_back(e.listen);
    o.user = "shardmap";
    try {
      o.password = secrets::Get(run_, secrets::kEtcdShardMap);
    } catch (const std::exception&) {
      return nullptr;  // not made yet: the next call tries again
    }
    o.timeout = std::chrono::milliseconds(1500);
    reshard_ = std::make_unique<ReshardWatch>(std::move(o), t_.name);
  }
  return reshard_.get();
}

std::string Runner::StatusJson() {
  json::array arr;
  // Copies taken under the lock: the recipes' status fields are I/O, and supervision must not
  // wait.
  std::vector<Node> nodes;
  std::deque<std::pair<std::string, std::string>> events_copy;
  {
    std::lock_guard lock(mu_);
    for (auto& up : nodes_) nodes.push_back(*up);
    events_copy = events_;
  }
  // One writer per kind for this request: what a recipe asks of its cluster, it asks once.
  std::map<const Recipe*, Recipe::StatusWriter> writers;
  for (const auto& r : recipes_) {
    std::vector<Node> of_kind;
    for (const Node& n : nodes)
      if (n.recipe == r.get()) of_kind.push_back(n);
    writers[r.get()] = r->StatusRows(of_kind);
  }
  for (Node& n : nodes) {
    // A node scaled away is gone from status until it is scaled back.
    bool scalable = !n.recipe->ScaleTable().empty();
    if (!n.wanted && n.pid == 0 && scalable && n.state == "stopped") continue;
    std::string state = n.paused ? "stopped" : n.state;
    json::object o{{"name", n.name},       {"role", n.role}, {"dc", n.dc},
                   {"address", n.address}, {"state", state}, {"pid", n.pid}};
    // The balancers dial a web node here under [lb] upstream_tls (core/membership.h).
    if (!n.tls_address.empty()) o["tls_address"] = n.tls_address;
    if (!n.host.empty()) o["host"] = n.host;
    writers[n.recipe](n, std::move(o), &arr);
  }
  RemoteRows(&arr);  // under --host: the other hosts' nodes, as last probed
  json::array events;
  for (const auto& [ts, text] : events_copy)
    events.push_back(json::object{{"ts", ts}, {"text", text}});
  json::object endpoints{{"public", PublicUrl()}, {"dashboard", "http://" + t_.runner.admin + "/"}};
  if (!t_.edge.empty()) endpoints["edge"] = "http://" + t_.edge.front().listen + "/";
  for (const Node& n : nodes)  // (the config file is not read here: other threads read it)
    if (n.role == "prometheus") endpoints["prometheus"] = "http://" + n.address + "/";
  if (!t_.dns.empty()) {  // CONTRACT.md section 2: a DNS server's host:port and the zone
    endpoints["dns"] = t_.dns.front().listen;
    endpoints["zone"] = t_.dns_zone;  // read with the topology: no config reading here
  }
  // Sharded topologies: each cluster with its primary and the map's version (shards.cc).
  json::array shards = patroni::ShardsStatus(ctx_, arr);
  json::object root{{"nodes", std::move(arr)},
                    {"endpoints", std::move(endpoints)},
                    {"events", std::move(events)}};
  if (!shards.empty()) root["shards"] = std::move(shards);
  // Several DCs: which takes writes and how far behind each standby cluster is (runner_dc.cc).
  if (t_.dcs.size() > 1) root["dcs"] = DcStatus();
  // The reshard in progress (or the last one), as the watch last read it from etcd.
  if (ReshardWatch* w = Reshard()) {
    ReshardView v = w->Current();
    if (v.present) root["reshard"] = ReshardViewJson(v);
  }
  return json::serialize(root);
}

// Scrapes every running node of a scraped kind (web nodes, balancers) and sums them per tier:
// requests, 5xx, the latency histogram (the dashboard turns successive scrapes into rates and a
// p99), and the database's connection count; with edges, their hits and bytes (edge_metrics.h).
std::string Runner::MetricsJson() {
  struct Tier {
    double requests = 0, errors = 0;
    std::map<double, double> buckets;
  };
  std::map<std::string, Tier> tiers;
  // The cache's effect, from the web nodes: reads served by L1 and by L2, reads that went to
  // the database after a miss, and every database read.
  double l1_hits = 0, l2_hits = 0, loads = 0, db_reads = 0;
  EdgeTotals edge;          // the edges' hits and bytes: hit ratio and origin offload
  BusinessTotals business;  // the web nodes' business figures (global: max across nodes)
  std::vector<std::pair<std::string, std::pair<std::string, int>>> targets;
  {
    std::lock_guard lock(mu_);
    for (auto& n : nodes_)
      if (n->recipe->Scraped() && n->pid > 0 && n->state == "running")
        targets.push_back({n->role, {n->check_host, n->check_port}});
  }
  for (const auto& [role, hp] : targets) {
    http::FetchRequest r;
    r.host = hp.first;
    r.port = hp.second;
    r.target = "/metrics";
    r.timeout = milliseconds(500);
    auto res = http::Fetch(r);
    if (!res.ok() || res->status != 200) continue;
    Tier& t = tiers[role];
    std::istringstream in(res->body);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      size_t sp = line.rfind(' ');
      double v = std::atof(line.c_str() + sp + 1);
      if (role == "edge") edge.Add(line, v);
      if (role == "web") business.Add(line, v);
      if (line.rfind("millions_http_requests_total{", 0) == 0) {
        t.requests += v;
        if (line.find("code=\"5") != std::string::npos) t.errors += v;
      } else if (line.rfind("millions_http_request_duration_seconds_bucket{", 0) == 0) {
        // `,le="`: a bare `le="` is also the end of `role="` (every bound read as 0).
        size_t le = line.find(",le=\"");
        if (le == std::string::npos) continue;
        std::string bound = line.substr(le + 5, line.find('"', le + 5) - le - 5);
        t.buckets[bound == "+Inf" ? 1e300 : std::atof(bound.c_str())] += v;
      } else if (line.rfind("millions_cache_requests_total{", 0) == 0 &&
                 line.find("result=\"hit\"") != std::string::npos) {
        (line.find("level=\"l1\"") != std::string::npos ? l1_hits : l2_hits) += v;
      } else if (line.rfind("millions_cache_loads_total{", 0) == 0) {
        loads += v;
      } else if (line.rfind("millions_db_queries_total{", 0) == 0 &&
                 line.find("kind=\"read\"") != std::string::npos) {
        db_reads += v;
      }
    }
  }
  // Fields the recipes add to every tier (patroni: the database's connection count).
  json::object tier_fields;
  for (const auto& r : recipes_) r->TierFields(ctx_, &tier_fields);
  json::object out;
  for (auto& [name, t] : tiers) {
    json::array b;
    for (auto& [le, c] : t.buckets)
      b.push_back(
          json::array{le > 1e299 ? json::value("+Inf") : json::value(std::to_string(le)), c});
    json::object tier{{"requests", t.requests}, {"errors", t.errors}, {"buckets", b}};
    for (const auto& [key, value] : tier_fields) tier[key] = value;
    out[name] = std::move(tier);
  }
  json::object cache{
      {"l1_hits", l1_hits}, {"l2_hits", l2_hits}, {"loads", loads}, {"db_reads", db_reads}};
  json::object root{{"tiers", out}, {"cache", cache}};
  if (!t_.edge.empty()) root["edge"] = edge.Json();
  root["business"] = business.Json();
  return json::serialize(root);
}

void Runner::ServeAdmin() {
  auto hp = config::ParseHostPort(t_.runner.admin);
  auto* router = new http::Router();
  using boost::asio::awaitable;
  // The page itself holds nothing secret: it asks for the token (from its URL's fragment, or
  // typed in) and sends it on every API call (dashboard.cc).
  router->Add("GET", "/", [](http::Request&) -> awaitable<http::Response> {
    http::Response r;
    r.body = std::string(DashboardHtml());
    r.set("Content-Type", "text/html; charset=utf-8");
    r.set("Cache-Control", "no-store");
    r.set("Content-Security-Policy", "frame-ancestors 'none'");
    r.set("X-Frame-Options", "DENY");
    r.set("Referrer-Policy", "no-referrer");
    co_return r;
  });
  router->Add("GET", "/api/status", [this](http::Request&) -> awaitable<http::Response> {
    co_return http::Json(200, StatusJson());
  });
  router->Add("GET", "/api/metrics", [this](http::Request&) -> awaitable<http::Response> {
    co_return http::Json(200, MetricsJson());
  });
  router->Add("GET", "/api/autoscale", [this](http::Request&) -> awaitable<http::Response> {
    co_return http::Json(200, AutoscaleJson());
  });
  router->Add("POST", "/api/nodes/{name}/{action}",
              [this](http::Request& req) -> awaitable<http::Response> {
                auto hold = req.query_param("hold_ms");
                int hold_ms = hold ? std::clamp(std::atoi(hold->c_str()), 0, 3'600'000) : 0;
                auto part = req.query_param("part");
                std::string err =
                    Act(std::string(req.param("name")), std::string(req.param("action")), hold_ms,
                        part ? std::string(*part) : "");
                if (!err.empty()) co_return http::JsonError(400, "bad_action", err);
                co_return http::Json(200, "{\"ok\":true}");
              });
  router->Add("POST", "/api/dcs/{dc}/{action}",
              [this](http::Request& req) -> awaitable<http::Response> {
                std::string action(req.param("action"));
                if (action != "down" && action != "up")
                  co_return http::JsonError(400, "bad_action", "action must be down or up");
                std::string err = ActDc(std::string(req.param("dc")), action == "up");
                if (!err.empty()) co_return http::JsonError(400, "bad_action", err);
                co_return http::Json(200, "{\"ok\":true}");
              });
  // DC failover (runner_dc.cc): started here, run on a thread of its own, followed by GET.
  router->Add("GET", "/api/dc", [this](http::Request&) -> awaitable<http::Response> {
    co_return http::Json(200, DcJson());
  });
  router->Add("POST", "/api/dc/{action}", [this](http::Request& req) -> awaitable<http::Response> {
    std::string action(req.param("action"));
    auto to = req.query_param("to");
    std::string dc = to ? std::string(*to) : "";
    if (action == "failback") dc = t_.pg_primary_dc;
    if (action != "failover" && action != "failback" && action != "promote")
      co_return http::JsonError(400, "bad_action", "action must be failover, failback or promote");
    if (dc.empty()) co_return http::JsonError(400, "bad_dc", "failover needs ?to=DC");
    std::string err = DcStart(dc, action != "promote");
    if (!err.empty()) co_return http::JsonError(409, "dc_refused", err);
    co_return http::Json(202, "{\"started\":true}");
  });
  // One scale route per kind that scales (web).
  for (const auto& recipe : recipes_) {
    if (recipe->ScaleTable().empty()) continue;
    const Recipe* r = recipe.get();
    router->Add("POST", std::string("/api/scale/") + r->Kind(),
                [this, r](http::Request& req) -> awaitable<http::Response> {
                  auto n = req.query_param("n");
                  int count = n ? std::atoi(n->c_str()) : 0;
                  std::string err = Scale(*r, count);
                  if (!err.empty()) co_return http::JsonError(400, "bad_scale", err);
                  co_return http::Json(200, "{\"ok\":true}");
                });
  }
  // The last `millions chaos matrix` (it writes the file as each row ends), for the dashboard.
  router->Add("GET", "/api/chaos-matrix", [this](http::Request&) -> awaitable<http::Response> {
    std::ifstream in(run_ + "/chaos_matrix.json");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    boost::system::error_code ec;
    json::parse(text, ec);
    co_return http::Json(200, ec ? std::string("{\"rows\":[]}") : text);
  });
  // Prometheus' active alerts, for the dashboard; {"prometheus":null} when the topology has none.
  router->Add("GET", "/api/alerts", [this](http::Request&) -> awaitable<http::Response> {
    std::vector<Node> prom = Nodes("prometheus");
    if (prom.empty()) co_return http::Json(200, "{\"prometheus\":null,\"alerts\":[]}");
    co_return http::Json(200, AlertsJson(prom[0].check_host, prom[0].check_port));
  });
  AddGraphRoutes(*router);
  router->Add("POST", "/api/down", [](http::Request&) -> awaitable<http::Response> {
    g_stop = 1;
    co_return http::Json(202, "{\"stopping\":true}");
  });
  static metrics::Registry registry;
  http::ServerOptions so;
  so.host = hp.host;
  so.port = hp.port;
  so.role = "runner";
  auto* server = new http::HttpServer(
      admin_ioc_, so,
      [router, token = admin_token_](http::Request& req) -> awaitable<http::Response> {
        // Everything but the page needs the token, and nothing is served cross-site.
        if (!(req.method == "GET" && req.path == "/")) {
          std::string code, message;
          if (int status = CheckAdminRequest(req, token, &code, &message); status != 0) {
            http::Response r = http::JsonError(status, code, message);
            if (status == 401) r.set("WWW-Authenticate", "Bearer");
            co_return r;
          }
        }
        auto m = router->Find(req.method, req.path);
        if (m.outcome != http::Router::Outcome::kMatched)
          co_return http::JsonError(404, "not_found", "no such admin route");
        req.route = std::string(m.route);
        req.params = std::move(m.params);
        co_return co_await (*m.handler)(req);
      },
      &registry);
  server->Start();
  // Two threads: a scale-up blocks its handler while the new node starts.
  for (int i = 0; i < 2; ++i) std::thread([this] { admin_ioc_.run(); }).detach();
}

}  // namespace millions::ctl::detail
