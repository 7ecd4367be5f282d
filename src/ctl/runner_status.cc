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
#include "core/pg.h"
#include "core/router.h"
#include "ctl/dashboard.h"
#include "ctl/runner_internal.h"

namespace millions::ctl::detail {

std::string Runner::StatusJson() {
  json::array arr;
  // Copies taken under the lock: asking Patroni below is I/O, and supervision must not wait.
  std::vector<Node> nodes;
  std::deque<std::pair<std::string, std::string>> events_copy;
  {
    std::lock_guard lock(mu_);
    for (auto& up : nodes_) nodes.push_back(*up);
    events_copy = events_;
  }
  // Patroni's view of the cluster (any member answers for all): timeline and lag per member.
  std::map<std::string, json::object> members;
  {
    std::vector<std::pair<std::string, int>> rests;
    for (Node& n : nodes)
      if (n.role == "patroni" && n.pid > 0) rests.emplace_back(n.check_host, n.check_port);
    for (const auto& m : PatroniMembers(rests, milliseconds(500)))
      if (m.is_object() && m.as_object().contains("name"))
        members[std::string(m.at("name").as_string())] = m.as_object();
  }
  for (Node& n : nodes) {
    if (!n.wanted && n.pid == 0 && n.role == "web" && n.state == "stopped") continue;
    std::string state = n.paused ? "stopped" : n.state;
    json::object o{
        {"name", n.name},
        {"role", n.role},
        {"dc", n.dc},
        {"address",
         n.role == "patroni" ? n.check_host + ":" + std::to_string(n.check_port) : n.address},
        {"state", state},
        {"pid", n.pid}};
    if (n.role == "redis" && n.pid > 0) AddRedisInfo(n, &o);
    arr.push_back(o);
    if (n.role == "patroni") {
      // The PostgreSQL this Patroni manages: its postmaster pid and its role right now.
      int64_t pm = 0;
      std::ifstream pidf(n.pg_data_dir + "/postmaster.pid");
      pidf >> pm;
      if (pm > 0 && kill(static_cast<pid_t>(pm), 0) != 0) pm = 0;
      std::string db_role = "unknown";
      http::FetchRequest r;
      r.host = n.check_host;
      r.port = n.check_port;
      r.target = "/patroni";
      r.timeout = milliseconds(500);
      if (auto res = http::Fetch(r); res.ok() && res->status < 500) {
        boost::system::error_code ec;
        auto v = json::parse(res->body, ec);
        if (!ec && v.is_object() && v.as_object().contains("role")) {
          std::string role(v.as_object().at("role").as_string());
          db_role = role == "replica" ? "replica" : "primary";
        }
      }
      arr.push_back(
          json::object{{"name", n.name + "-pg"},
                       {"role", "postgres"},
                       {"dc", n.dc},
                       {"address", n.address},
                       {"shard", 0},
                       {"db_role", db_role},
                       {"state", pm > 0 ? state : (state == "running" ? "failed" : state)},
                       {"pid", pm}});
      if (auto it = members.find(n.name); it != members.end()) {
        auto& o = arr.back().as_object();
        if (it->second.contains("timeline")) o["timeline"] = it->second.at("timeline");
        if (it->second.contains("lag") && it->second.at("lag").is_number())
          o["lag_bytes"] = it->second.at("lag");
      }
    }
  }
  json::array events;
  for (const auto& [ts, text] : events_copy)
    events.push_back(json::object{{"ts", ts}, {"text", text}});
  json::object root{{"nodes", std::move(arr)},
                    {"endpoints", json::object{{"public", PublicUrl()},
                                               {"dashboard", "http://" + t_.runner.admin + "/"}}},
                    {"events", std::move(events)}};
  return json::serialize(root);
}

// Scrapes every running web node's /metrics and sums them per tier: requests, 5xx, the latency
// histogram (the dashboard turns successive scrapes into rates and a p99), and the database's
// connection count.
std::string Runner::MetricsJson() {
  struct Tier {
    double requests = 0, errors = 0;
    std::map<double, double> buckets;
  };
  std::map<std::string, Tier> tiers;
  // The cache's effect, from the web nodes: reads served by L1 and by L2, reads that went to
  // the database after a miss, and every database read.
  double l1_hits = 0, l2_hits = 0, loads = 0, db_reads = 0;
  std::vector<std::pair<std::string, std::pair<std::string, int>>> targets;
  {
    std::lock_guard lock(mu_);
    for (auto& n : nodes_)
      if ((n->role == "web" || n->role == "lb") && n->pid > 0 && n->state == "running")
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
      if (line.rfind("millions_http_requests_total{", 0) == 0) {
        t.requests += v;
        if (line.find("code=\"5") != std::string::npos) t.errors += v;
      } else if (line.rfind("millions_http_request_duration_seconds_bucket{", 0) == 0) {
        size_t le = line.find("le=\"");
        std::string bound = line.substr(le + 4, line.find('"', le + 4) - le - 4);
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
  int64_t db_conns = 0;
  for (const auto& e : t_.postgres) {
    auto hp = config::ParseHostPort(e.listen);
    pg::Options o;
    o.conninfo =
        "host=" + hp.host + " port=" + std::to_string(hp.port) + " dbname=postgres user=postgres";
    o.pool_size = 1;
    o.connect_timeout_s = 1;
    pg::Pool pool(o);
    if (auto c = pool.Acquire(); c.ok()) {
      if (auto rows = (*c)->Exec("n", "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                                 {pg::P(t_.pg_database)});
          rows.ok())
        db_conns += rows->Int(0, 0);
    }
  }
  json::object out;
  for (auto& [name, t] : tiers) {
    json::array b;
    for (auto& [le, c] : t.buckets)
      b.push_back(
          json::array{le > 1e299 ? json::value("+Inf") : json::value(std::to_string(le)), c});
    out[name] = json::object{{"requests", t.requests},
                             {"errors", t.errors},
                             {"buckets", b},
                             {"db_connections", db_conns}};
  }
  json::object cache{
      {"l1_hits", l1_hits}, {"l2_hits", l2_hits}, {"loads", loads}, {"db_reads", db_reads}};
  return json::serialize(json::object{{"tiers", out}, {"cache", cache}});
}

void Runner::ServeAdmin() {
  auto hp = config::ParseHostPort(t_.runner.admin);
  auto* router = new http::Router();
  using boost::asio::awaitable;
  router->Add("GET", "/", [](http::Request&) -> awaitable<http::Response> {
    http::Response r;
    r.body = std::string(DashboardHtml());
    r.set("Content-Type", "text/html; charset=utf-8");
    co_return r;
  });
  router->Add("GET", "/api/status", [this](http::Request&) -> awaitable<http::Response> {
    co_return http::Json(200, StatusJson());
  });
  router->Add("GET", "/api/metrics", [this](http::Request&) -> awaitable<http::Response> {
    co_return http::Json(200, MetricsJson());
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
  router->Add("POST", "/api/scale/web", [this](http::Request& req) -> awaitable<http::Response> {
    auto n = req.query_param("n");
    int count = n ? std::atoi(n->c_str()) : 0;
    std::string err = ScaleWeb(count);
    if (!err.empty()) co_return http::JsonError(400, "bad_scale", err);
    co_return http::Json(200, "{\"ok\":true}");
  });
  // The last `millions chaos matrix` (it writes the file as each row ends), for the dashboard.
  router->Add("GET", "/api/chaos-matrix", [this](http::Request&) -> awaitable<http::Response> {
    std::ifstream in(run_ + "/chaos_matrix.json");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    boost::system::error_code ec;
    json::parse(text, ec);
    co_return http::Json(200, ec ? std::string("{\"rows\":[]}") : text);
  });
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
      [router](http::Request& req) -> awaitable<http::Response> {
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
