// `single-vs-tiers` (stage 1 against stage 2) and `cache` (the cache tier's effect on the
// database), each two runs of `millions load` on this machine.
#include <cmath>

#include "ctl/scenarios.h"

namespace millions::ctl {

namespace {

std::vector<std::string> LoadRow(const std::string& name, const std::string& nodes,
                                 const LoadResult& l) {
  return {name, nodes, Num(l.rps), Num(l.p50_ms, 2), Num(l.p99_ms, 2), Num(l.errors, 0)};
}

PlotSeries Timeline(const std::string& label, const LoadResult& l) {
  PlotSeries s{label, {}};
  for (const auto& [ok, err] : l.timeline) s.values.push_back(ok);
  return s;
}

std::vector<double> Seconds(size_t n) {
  std::vector<double> x;
  for (size_t i = 1; i <= n; ++i) x.push_back(static_cast<double>(i));
  return x;
}

}  // namespace

ScenarioResult RunSingleVsTiers(ScenarioEnv& env) {
  const int users = env.Pick(32, 6), secs = env.Pick(30, 4);
  env.Say("before: millions single");
  std::string url = env.StartSingle();
  LoadResult single = env.Load(url, users, secs, "default");
  env.StopSingle();

  env.Say("after: a balancer, two web nodes, PostgreSQL (Patroni, etcd), a Redis cache node");
  TopoSpec spec;
  spec.web = 2;
  spec.redis = 1;
  url = env.Up("tiers", spec);
  LoadResult tiers = env.Load(url, users, secs, "default");
  env.Down();

  ScenarioResult r;
  r.table.columns = {"setup", "processes", "ok/s", "p50 ms", "p99 ms", "errors"};
  r.table.rows = {LoadRow("single", "1", single),
                  LoadRow("tiers", "lb, 2 web, etcd, patroni+pg, redis", tiers)};
  r.plot.lines = true;
  r.plot.title = "Successes per second under the same load";
  r.plot.y_label = "ok/s";
  r.plot.x_label = "seconds";
  r.plot.x = Seconds(std::max(single.timeline.size(), tiers.timeline.size()));
  r.plot.series = {Timeline("single", single), Timeline("tiers", tiers)};
  double ratio = single.rps > 0 ? tiers.rps / single.rps : NAN;
  r.summary = "The same " + std::to_string(users) + "-user mix for " + std::to_string(secs) +
              " s: the tiers serve " + Num(ratio, 2) + "x the single process's successes/s (p99 " +
              Num(tiers.p99_ms, 1) + " ms against " + Num(single.p99_ms, 1) +
              " ms). On one machine the tiers add hops and share the same cores; what they buy "
              "is room to add machines and to lose one (see lb-failover, replicas).";
  r.notes = {
      "Closed loop: each simulated user waits for its answer. The load generator runs on "
      "the same cores as the service."};
  return r;
}

ScenarioResult RunCache(ScenarioEnv& env) {
  const int users = env.Pick(32, 6), secs = env.Pick(30, 4);
  struct Mode {
    std::string name;
    int redis;
    int64_t l1;
    LoadResult load;
    double reads = 0, requests = 0;
  };
  std::vector<Mode> modes = {{"no cache", 0, 0, {}}, {"L1 + L2 (2 Redis)", 2, 67108864, {}}};
  for (auto& m : modes) {
    TopoSpec spec;
    spec.web = 2;
    spec.redis = m.redis;
    spec.l1_bytes = m.l1;
    std::string url = env.Up(m.redis == 0 ? "nocache" : "cache", spec);
    const std::vector<std::string> read{"kind=\"read\""};
    double reads0 = env.MetricSum("web", "millions_db_queries_total", read);
    double req0 = env.MetricSum("web", "millions_http_requests_total");
    m.load = env.Load(url, users, secs, "browse");
    m.reads = env.MetricSum("web", "millions_db_queries_total", read) - reads0;
    m.requests = env.MetricSum("web", "millions_http_requests_total") - req0;
    env.Down();
    if (m.requests <= 0) throw std::runtime_error("the web nodes counted no requests");
  }
  ScenarioResult r;
  r.table.columns = {"setup",        "ok/s",     "p99 ms",           "errors",
                     "web requests", "db reads", "db reads/request", "db reads/s"};
  r.plot.title = "Requests and database reads per second";
  r.plot.y_label = "per second";
  r.plot.series = {{"requests/s", {}}, {"database reads/s", {}}};
  for (const auto& m : modes) {
    double secs_run = m.load.seconds > 0 ? m.load.seconds : secs;
    r.table.rows.push_back({m.name, Num(m.load.rps), Num(m.load.p99_ms, 2), Num(m.load.errors, 0),
                            Num(m.requests, 0), Num(m.reads, 0), Num(m.reads / m.requests, 3),
                            Num(m.reads / secs_run)});
    r.plot.categories.push_back(m.name);
    r.plot.series[0].values.push_back(m.load.rps);
    r.plot.series[1].values.push_back(m.reads / secs_run);
  }
  double before = modes[0].reads / modes[0].requests, after = modes[1].reads / modes[1].requests;
  r.summary = "A read-heavy Zipf mix (browse): the database answers " + Num(before, 3) +
              " reads per request without a cache and " + Num(after, 3) + " with L1 and L2, " +
              Num(before > 0 ? 100.0 * (1 - after / before) : NAN, 1) + "% fewer.";
  r.notes = {
      "Reads and requests are the web nodes' counters over the whole load run, its "
      "sign-ups included (three requests per simulated user)."};
  return r;
}

}  // namespace millions::ctl
