// The runner's /metrics (host metrics of every node it supervises, engines included, read from
// /proc when Prometheus scrapes: host_metrics.h) and the dashboard's graphs over time: the page
// names a graph of the fixed table (graphs.h) and a range, the runner asks Prometheus'
// query_range API and answers points. The page never sends PromQL.
#include <unistd.h>

#include <chrono>

#include "core/http_client.h"
#include "core/metrics.h"
#include "ctl/graphs.h"
#include "ctl/host_metrics.h"
#include "ctl/runner_internal.h"

namespace millions::ctl::detail {

void Runner::AddGraphRoutes(http::Router& router) {
  using boost::asio::awaitable;
  // Its own registry: the nodes' host metrics and the reshard's (the admin server's own request
  // metrics would make the runner a tier of the graphs).
  static metrics::Registry host;
  static const bool once = [this] {
    host.AddCollector([this](metrics::Families* out) {
      std::vector<Node> copies;
      {
        std::lock_guard lock(mu_);
        for (auto& n : nodes_)
          if (n->pid > 0) copies.push_back(*n);
      }
      std::vector<HostNode> nodes;
      for (const Node& n : copies) {
        nodes.push_back({n.name, n.role, n.dc, n.pid});
        // PostgreSQL under Patroni: a tree of its own (outside the lock: a file read).
        if (auto c = n.recipe->Companion(n); c.pid > 0)
          nodes.push_back({c.name, c.role, n.dc, c.pid});
      }
      AddHostFamilies(out, CollectHostMetrics("/proc", nodes, sysconf(_SC_CLK_TCK)));
    });
    // millions_reshard_* (docs/metrics.md): the watch's last reading, no etcd read at scrape.
    host.AddCollector([this](metrics::Families* out) {
      if (ReshardWatch* w = Reshard()) AddReshardFamilies(out, w->Current());
    });
    return true;
  }();
  (void)once;
  router.Add("GET", "/metrics", [](http::Request&) -> awaitable<http::Response> {
    http::Response r;
    r.body = host.Render();
    r.set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    co_return r;
  });
  router.Add("GET", "/api/graphs", [this](http::Request&) -> awaitable<http::Response> {
    json::array graphs;
    for (const auto& q : GraphQueries())
      graphs.push_back(json::object{{"name", q.name}, {"title", q.title}, {"unit", q.unit}});
    json::value prom = nullptr;
    if (std::vector<Node> p = Nodes("prometheus"); !p.empty())
      prom = "http://" + p[0].address + "/";
    json::object o{{"prometheus", prom},
                   {"ranges", json::array{"5m", "30m", "3h"}},
                   {"graphs", std::move(graphs)}};
    co_return http::Json(200, json::serialize(o));
  });
  router.Add("GET", "/api/graphs/{name}", [this](http::Request& req) -> awaitable<http::Response> {
    std::string name(req.param("name"));
    auto range = req.query_param("range");
    const GraphQuery* q = FindGraph(name);
    if (!q) co_return http::JsonError(400, "unknown_graph", "no graph named \"" + name + "\"");
    if (!range || !GraphRangeSeconds(*range))
      co_return http::JsonError(400, "bad_range", "range must be 5m, 30m or 3h");
    std::vector<Node> prom = Nodes("prometheus");
    if (prom.empty() || !prometheus_)
      co_return http::Json(200, "{\"prometheus\":null,\"series\":[]}");
    // Rounded up: the newest sample (a rule evaluated a moment ago) is inside the range.
    int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count() +
                  1;
    http::FetchRequest r;
    r.host = prom[0].check_host;
    r.port = prom[0].check_port;
    r.target = *GraphTarget(name, *range, now, prometheus_->scrape_interval_ms);
    r.timeout = milliseconds(2000);
    auto res = http::Fetch(r);
    json::object o =
        res.ok() && res->status == 200
            ? SummarizeRange(res->body, *q)
            : json::object{{"series", json::array{}}, {"error", "Prometheus does not answer"}};
    o["prometheus"] = "http://" + prom[0].address + "/";
    o["unit"] = q->unit;
    co_return http::Json(200, json::serialize(o));
  });
}

}  // namespace millions::ctl::detail
