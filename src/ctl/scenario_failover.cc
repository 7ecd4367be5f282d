// `lb-failover` (a web node killed under load, behind the balancer) and `replicas` (reads on the
// replicas; a replica, then the primary killed under load). The faults are `millions chaos
// kill NODE --hold S`: the supervisor keeps the node down S seconds, as a machine that stays
// down, so the run sees the service without it.
#include <algorithm>
#include <cmath>
#include <map>

#include "ctl/scenarios.h"

namespace millions::ctl {

namespace {

struct Window {
  double ok_per_s = 0, errors = 0;
  int error_seconds = 0;    // seconds with at least one error
  double min_ok = 0;        // the fewest successes in one second
  int stalled_seconds = 0;  // seconds without a single success
};

Window Between(const LoadResult& l, size_t from, size_t to) {
  Window w;
  to = std::min(to, l.timeline.size());
  w.min_ok = from < to ? l.timeline[from].first : 0;
  for (size_t i = from; i < to; ++i) {
    w.min_ok = std::min(w.min_ok, l.timeline[i].first);
    if (l.timeline[i].first == 0) ++w.stalled_seconds;
    w.ok_per_s += l.timeline[i].first;
    w.errors += l.timeline[i].second;
    if (l.timeline[i].second > 0) ++w.error_seconds;
  }
  if (to > from) w.ok_per_s /= static_cast<double>(to - from);
  return w;
}

// The timeline as two line series (successes/s, errors/s) with x in seconds.
void TimelinePlot(const LoadResult& l, Plot* p) {
  p->lines = true;
  p->x_label = "seconds";
  p->y_label = "per second";
  p->series = {{"successes/s", {}}, {"errors/s", {}}};
  for (size_t i = 0; i < l.timeline.size(); ++i) {
    p->x.push_back(static_cast<double>(i + 1));
    p->series[0].values.push_back(l.timeline[i].first);
    p->series[1].values.push_back(l.timeline[i].second);
  }
}

// Runs a load of `secs` s and, `at` seconds into it, kills `node` for `hold` s. Returns the load
// and sets *killed_at to the second the kill was sent (the timeline's clock).
LoadResult LoadWithKill(ScenarioEnv& env, const std::string& url, int users, int secs,
                        const std::string& mix, const std::string& node, double at, int hold,
                        double* killed_at) {
  bool done = false;
  return env.Load(url, users, secs, mix, [&](double t) {
    if (done || t < at) return;
    done = true;
    *killed_at = t;
    env.Say("kill " + node + " at " + Num(t) + " s, held down " + std::to_string(hold) + " s");
    env.Chaos({"kill", node, "--hold", std::to_string(hold)});
  });
}

}  // namespace

ScenarioResult RunLbFailover(ScenarioEnv& env) {
  const int users = env.Pick(24, 6), secs = env.Pick(30, 8);
  const double at = secs / 3.0;
  TopoSpec spec;
  spec.web = 2;
  std::string url = env.Up("lb", spec);
  double killed_at = -1;
  LoadResult l = LoadWithKill(env, url, users, secs, "default", "web1", at, secs + 30, &killed_at);
  env.Down();
  if (killed_at < 0) throw std::runtime_error("the load ended before the kill");
  size_t k = static_cast<size_t>(killed_at);
  Window before = Between(l, 0, k), after = Between(l, k, l.timeline.size());
  Window settled = Between(l, k + 3, l.timeline.size());
  ScenarioResult r;
  r.table.columns = {"phase", "seconds", "ok/s", "errors", "seconds with errors"};
  r.table.rows = {
      {"two web nodes", std::to_string(k), Num(before.ok_per_s), Num(before.errors, 0),
       std::to_string(before.error_seconds)},
      {"web1 killed", std::to_string(l.timeline.size() - k), Num(after.ok_per_s),
       Num(after.errors, 0), std::to_string(after.error_seconds)},
      {"  from 3 s after",
       std::to_string(l.timeline.size() > k + 3 ? l.timeline.size() - k - 3 : 0),
       Num(settled.ok_per_s), Num(settled.errors, 0), std::to_string(settled.error_seconds)}};
  TimelinePlot(l, &r.plot);
  r.plot.title = "Through the balancer: web1 killed under load";
  r.plot.markers = {{killed_at, "web1 killed"}};
  r.summary = "A balancer in front of two web nodes; web1 is killed (SIGKILL) " + Num(killed_at) +
              " s into a " + std::to_string(secs) + " s load and kept down. " +
              Num(after.errors, 0) + " requests failed after the kill (" +
              std::to_string(after.error_seconds) + " s with errors); the survivor served " +
              Num(settled.ok_per_s) + " ok/s against " + Num(before.ok_per_s) + " before.";
  r.notes = {
      "Requests in flight on the killed node fail unless the balancer may retry them "
      "(idempotent reads); the node is ejected by its health check (every 0.5 s, fall 2)."};
  return r;
}

ScenarioResult RunReplicas(ScenarioEnv& env) {
  const int users = env.Pick(24, 6), secs = env.Pick(20, 6), fail_secs = env.Pick(45, 30);
  TopoSpec spec;
  spec.web = 2;
  spec.pg = 3;
  spec.l1_bytes = 0;  // no cache tier: every read reaches a database member
  std::string url = env.Up("replicas", spec);
  auto roles = [&] {  // member (Patroni node) name -> "primary" | "replica"
    std::map<std::string, std::string> out;
    auto st = env.Status();
    for (const auto& n : st["nodes"].as_array()) {
      const auto& o = n.as_object();
      if (o.at("role").as_string() != "postgres" || !o.contains("db_role")) continue;
      // "pg1-pg" is the PostgreSQL of member pg1, the name `chaos` takes (the whole host).
      std::string name(o.at("name").as_string());
      if (name.size() > 3 && name.ends_with("-pg")) name.resize(name.size() - 3);
      out[name] = std::string(o.at("db_role").as_string());
    }
    return out;
  };
  auto m = roles();
  std::string primary, replica;
  for (const auto& [name, role] : m) (role == "primary" ? primary : replica) = name;
  if (primary.empty() || replica.empty())
    throw std::runtime_error("no primary and replica in millions status");
  ScenarioResult r;
  r.table.columns = {"phase",
                     "ok/s",
                     "p99 ms",
                     "errors",
                     "reads on primary/s",
                     "reads on replicas/s",
                     "seconds with errors",
                     "fewest ok in 1 s",
                     "seconds with no success"};
  r.plot.title = "Database reads by member role";
  r.plot.y_label = "reads/s";
  r.plot.series = {{"on the primary", {}}, {"on replicas", {}}};
  auto phase = [&](const std::string& name, const std::string& kill, double at) {
    auto reads = [&](const char* role) {
      return env.MetricSum("web", "millions_db_queries_total",
                           {"kind=\"read\"", std::string("member_role=\"") + role + "\""});
    };
    double p0 = reads("primary"), r0 = reads("replica"), killed_at = -1;
    int s = kill.empty() ? secs : fail_secs;
    LoadResult l = kill.empty()
                       ? env.Load(url, users, s, "browse")
                       : LoadWithKill(env, url, users, s, "default", kill, at, 600, &killed_at);
    double dp = reads("primary") - p0, dr = reads("replica") - r0;
    double run = l.seconds > 0 ? l.seconds : s;
    Window w = Between(l, 0, l.timeline.size());
    r.table.rows.push_back({name, Num(l.rps), Num(l.p99_ms, 2), Num(l.errors, 0), Num(dp / run),
                            Num(dr / run), std::to_string(w.error_seconds), Num(w.min_ok, 0),
                            std::to_string(w.stalled_seconds)});
    r.plot.categories.push_back(name);
    r.plot.series[0].values.push_back(dp / run);
    r.plot.series[1].values.push_back(dr / run);
    return w;
  };
  env.Say("primary " + primary + ", replica " + replica);
  phase("3 members", "", 0);
  env.Chaos({"kill", replica, "--hold", "600"});
  phase(replica + " (replica) down", "", 0);
  Window fo = phase(primary + " (primary) killed", primary, 3);
  auto after = roles();
  std::string new_primary = "none";
  for (const auto& [name, role] : after)
    if (role == "primary") new_primary = name;
  env.Down();
  r.summary =
      "Three PostgreSQL members under Patroni behind two web nodes: reads go to the "
      "replicas, writes to the primary. With " +
      replica + " down the service kept serving; killing the primary " + primary + " cost " +
      Num(fo.errors, 0) + " failed requests (" + std::to_string(fo.error_seconds) +
      " s with errors) and " + std::to_string(fo.stalled_seconds) +
      " s in which nothing succeeded (requests waited for the new primary); " + new_primary +
      " is the primary now.";
  r.notes = {"No cache tier here (no L1, no Redis), so that reads reach the database.",
             "The first two phases run the read-heavy browse mix; the third the default mix "
             "(with writes), the primary killed 3 s in and held down.",
             "Patroni's leader key lasts ttl_s (10 s): a failover takes about that long, and "
             "writes wait up to failover_wait_ms (15 s) for it before a 503."};
  return r;
}

}  // namespace millions::ctl
