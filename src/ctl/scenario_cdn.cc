// `millions scenario cdn`: origin offload through the CDN edge. One run of `up` with an edge in
// front of the balancer; photos uploaded, then the same Zipf-popular photo reads sent twice:
// straight at the balancer (every read reaches a web node), then at the edge (only its misses
// do). Origin requests are the web nodes' own count of media requests.
#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <random>

#include "ctl/png.h"
#include "ctl/scenarios.h"

namespace millions::ctl {

namespace {

struct Reads {
  double n = 0, ok = 0, hits = 0, origin = 0, p50_ms = 0, p99_ms = 0, seconds = 0;
};

std::string PathOf(const std::string& url) {  // "http://h:p/media/k" or "/media/k" -> "/media/k"
  auto p = url.find("/media/");
  return p == std::string::npos ? url : url.substr(p);
}

}  // namespace

ScenarioResult RunCdn(ScenarioEnv& env) {
  const int photos = env.Pick(100, 20), reads = env.Pick(3000, 300);
  TopoSpec spec;
  spec.web = 2;
  spec.edge = true;
  std::string lb = env.Up("cdn", spec);
  std::string edge;
  {
    auto st = env.Status();
    auto& ep = st["endpoints"].as_object();
    if (auto* e = ep.if_contains("edge")) edge = std::string(e->as_string());
  }
  if (edge.empty()) throw std::runtime_error("millions status names no edge endpoint");
  env.Say("uploading " + std::to_string(photos) + " photos");
  auto [uid, token] = SignUpUser(lb, "cdn_scenario");
  std::vector<std::string> paths;
  for (int i = 0; i < photos; ++i) {
    env.Check();
    auto a = Api(lb, "POST", "/api/photos?caption=cdn", MakePng(320, 240, i), "image/png", token);
    if (a.status != 201) throw std::runtime_error("upload failed: " + std::to_string(a.status));
    paths.push_back(
        PathOf(std::string(boost::json::parse(a.body).as_object().at("url").as_string())));
  }
  // Zipf over photos, the same sequence for both runs.
  std::vector<double> w;
  for (int i = 0; i < photos; ++i) w.push_back(1.0 / (i + 1));
  auto run = [&](const std::string& base, const char* name) {
    env.Say(std::string("reading ") + std::to_string(reads) + " photos " + name);
    std::mt19937 rng(7);
    std::discrete_distribution<int> pick(w.begin(), w.end());
    const std::vector<std::string> media{"route=\"/media/"};
    double origin0 = env.MetricSum("web", "millions_http_requests_total", media);
    Reads r;
    std::vector<double> ms;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reads; ++i) {
      if (i % 100 == 0) env.Check();
      auto s = std::chrono::steady_clock::now();
      auto a = Api(base, "GET", paths[static_cast<size_t>(pick(rng))]);
      ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s).count());
      r.n += 1;
      if (a.status == 200) r.ok += 1;
      if (a.x_cache == "HIT") r.hits += 1;
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.origin = env.MetricSum("web", "millions_http_requests_total", media) - origin0;
    std::sort(ms.begin(), ms.end());
    r.p50_ms = ms[ms.size() / 2];
    r.p99_ms = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
    if (r.ok < r.n) throw std::runtime_error(std::string("photo reads failed ") + name);
    return r;
  };
  Reads direct = run(lb, "at the balancer"), cdn = run(edge, "through the edge");
  env.Down();
  ScenarioResult r;
  r.table.columns = {"path",    "reads",  "edge hits", "origin requests", "origin offload %",
                     "reads/s", "p50 ms", "p99 ms"};
  for (auto [name, x] : {std::pair<std::string, Reads>{"balancer (no edge)", direct},
                         std::pair<std::string, Reads>{"through the edge", cdn}})
    r.table.rows.push_back({name, Num(x.n, 0), Num(x.hits, 0), Num(x.origin, 0),
                            Num(100.0 * (1 - x.origin / x.n)), Num(x.n / x.seconds),
                            Num(x.p50_ms, 2), Num(x.p99_ms, 2)});
  r.plot.title = "Photo reads and what reaches the origin";
  r.plot.y_label = "requests";
  r.plot.categories = {"balancer (no edge)", "through the edge"};
  r.plot.series = {{"reads", {direct.n, cdn.n}}, {"origin requests", {direct.origin, cdn.origin}}};
  r.summary = std::to_string(reads) + " Zipf-popular reads of " + std::to_string(photos) +
              " photos: through the edge " + Num(cdn.origin, 0) +
              " reached the web nodes (an origin offload of " +
              Num(100.0 * (1 - cdn.origin / cdn.n)) + "%), against " + Num(direct.origin, 0) +
              " without it.";
  r.notes = {
      "One client, one request per connection, reads in sequence: latency, not "
      "throughput, is the figure to compare.",
      "The edge's first read of each photo is a miss (the origin serves it once)."};
  return r;
}

}  // namespace millions::ctl
