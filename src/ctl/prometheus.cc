#include "ctl/prometheus.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/config.h"
#include "core/http_client.h"

namespace millions::ctl {
namespace {

namespace json = boost::json;

// A Prometheus duration (whole units only: "800ms", "5s").
std::string Seconds(double s) {
  long long ms = std::llround(s * 1000);
  char buf[32];
  if (ms % 1000 == 0)
    snprintf(buf, sizeof buf, "%llds", ms / 1000);
  else
    snprintf(buf, sizeof buf, "%lldms", ms);
  return buf;
}

std::string Num(double v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// One alerting rule; `what` is its summary, with {{ $labels.x }} and {{ $value }} as Prometheus
// fills them.
std::string Alert(const std::string& name, const std::string& expr, int for_s,
                  const std::string& severity, const std::string& what) {
  return "      - alert: " + name + "\n        expr: " + expr +
         "\n        for: " + std::to_string(for_s) +
         "s\n        labels:\n          severity: " + severity +
         "\n        annotations:\n          summary: '" + what + "'\n";
}

std::string Record(const std::string& name, const std::string& expr) {
  return "      - record: " + name + "\n        expr: " + expr + "\n";
}

}  // namespace

std::optional<PrometheusConfig> ReadPrometheus(const topo::Topology& t) {
  auto s = t.file().Table("prometheus");
  if (!s.present()) return std::nullopt;
  PrometheusConfig c;
  s.Get("listen", &c.listen);
  config::ParseHostPort(c.listen);  // throws for a bad address
  s.Get("scrape_interval_ms", &c.scrape_interval_ms, 200, 300'000);
  s.Get("retention", &c.retention);
  if (c.retention.empty() || c.retention.find_first_not_of("0123456789smhdwy") != std::string::npos)
    throw config::ConfigError(t.path + ": [prometheus] retention \"" + c.retention +
                              "\": not a Prometheus duration (12h, 1d, 2w)");
  s.Get("alert_for_s", &c.alert_for_s, 0, 86'400);
  s.Get("error_ratio", &c.error_ratio, 0, 1);
  s.Get("p99_ms", &c.p99_ms, 1, 600'000);
  s.Get("replica_lag_bytes", &c.replica_lag_bytes, 1, int64_t(1) << 40);
  s.Get("backlog_age_s", &c.backlog_age_s, 1, 86'400);
  s.Get("edge_hit_ratio", &c.edge_hit_ratio, 0, 1);
  if (c.replica_lag_bytes < 0) c.replica_lag_bytes = t.pg_max_replica_lag_bytes;
  return c;
}

const std::vector<std::string>& ScrapedKinds() {
  static const std::vector<std::string> kinds = {"web",     "lb",   "edge", "worker",
                                                 "patroni", "etcd", "dns"};
  return kinds;
}

std::string TargetsJson(const std::vector<Node>& nodes) {
  json::array groups;
  for (const Node& n : nodes) {
    if (!n.wanted || n.check_port == 0) continue;
    groups.push_back(
        json::object{{"targets", json::array{n.check_host + ":" + std::to_string(n.check_port)}},
                     {"labels", json::object{{"dc", n.dc}, {"tier", n.role}, {"node", n.name}}}});
  }
  return json::serialize(groups) + "\n";
}

std::string PrometheusYaml(const PrometheusConfig& c, const std::string& deployment,
                           const std::string& targets_glob, const std::string& rules_file,
                           const std::string& runner, const std::string& runner_token_file) {
  double interval = c.scrape_interval_ms / 1000.0;
  // A scrape gives up before the next one is due (and never waits past 10 s).
  double timeout = std::min(10.0, std::max(0.1, interval * 0.8));
  std::string s = "# Written by `millions up` from the topology's [prometheus] at every start.\n";
  s += "global:\n  scrape_interval: " + Seconds(interval) +
       "\n  scrape_timeout: " + Seconds(timeout) + "\n  evaluation_interval: " + Seconds(interval) +
       "\n  external_labels:\n    deployment: '" + deployment + "'\n";
  s += "rule_files:\n  - '" + rules_file + "'\n";
  s += "scrape_configs:\n  - job_name: millions\n    file_sd_configs:\n      - files: ['" +
       targets_glob + "']\n        refresh_interval: 30s\n";
  // No dc label on the runner's target: `max by (dc) (up)` must not see a DC up because the
  // runner is.
  if (!runner.empty()) {
    s += "  - job_name: millions_runner\n    honor_labels: true\n";
    if (!runner_token_file.empty())
      s += "    authorization:\n      type: Bearer\n      credentials_file: '" + runner_token_file +
           "'\n";
    s += "    static_configs:\n      - targets: ['" + runner +
         "']\n        labels:\n          tier: runner\n          node: runner\n";
  }
  return s;
}

std::string RulesYaml(const PrometheusConfig& c, const topo::Topology&) {
  // Rates over at least four scrapes, and at least a minute.
  std::string w = Seconds(std::max(60.0, 4 * c.scrape_interval_ms / 1000.0));
  std::string s = "# Written by `millions up` from the topology's [prometheus] at every start.\n";
  s += "groups:\n  - name: millions_recording\n    rules:\n";
  s += Record("tier:millions_http_requests:rate",
              "sum by (dc, tier) (rate(millions_http_requests_total[" + w + "]))");
  s += Record("tier:millions_http_errors:rate",
              "sum by (dc, tier) (rate(millions_http_requests_total{code=~\"5..\"}[" + w + "]))");
  s += Record("tier:millions_http_error_ratio:rate",
              "tier:millions_http_errors:rate / tier:millions_http_requests:rate > -1");
  for (const char* q : {"0.5", "0.99"})
    s += Record(
        std::string("tier:millions_http_request_duration_seconds:p") + (q[2] == '5' ? "50" : "99"),
        std::string("histogram_quantile(") + q +
            ", sum by (dc, tier, le) (rate(millions_http_request_duration_seconds_bucket[" + w +
            "])))");
  s += Record(
      "dc:millions_edge_requests:rate",
      "sum by (dc) (rate(millions_edge_requests_total{result=~\"hit|miss|stale\"}[" + w + "]))");
  s += Record("dc:millions_edge_hit_ratio:rate",
              "sum by (dc) (rate(millions_edge_requests_total{result=\"hit\"}[" + w +
                  "])) / dc:millions_edge_requests:rate > -1");
  s += Record("millions_queue_backlog:max", "max(millions_queue_backlog)");
  s += Record("millions_jobs_acked:rate",
              "sum(rate(millions_jobs_acked_total{kind=\"edit\"}[" + w + "]))");
  // For the dashboard's graphs and Grafana (graphs.h): the cache's hit ratio (reads served by
  // L1 or L2 over all reads), database reads, the replicas' lag, workers up, nodes' CPU and RSS.
  s += Record("dc:millions_cache_hit_ratio:rate",
              "sum by (dc) (rate(millions_cache_requests_total{result=\"hit\"}[" + w +
                  "])) / (sum by (dc) (rate(millions_cache_requests_total{result=\"hit\"}[" + w +
                  "])) + sum by (dc) (rate(millions_cache_loads_total[" + w + "]))) > -1");
  s += Record(
      "dc:millions_db_reads:rate",
      "sum by (dc, member_role) (rate(millions_db_queries_total{kind=\"read\"}[" + w + "]))");
  s += Record("member:millions_db_replica_lag_bytes:max",
              "max by (member) (millions_db_replica_lag_bytes)");
  s += Record("dc:millions_workers_up:count", "sum by (dc) (up{job=\"millions\",tier=\"worker\"})");
  s += Record("node:millions_node_cpu:rate",
              "sum by (dc, role, node) (rate(millions_node_cpu_seconds_total[" + w + "]))");
  s += Record("node:millions_node_resident_bytes:sum",
              "sum by (dc, role, node) (millions_node_resident_bytes)");
  // Business metrics (docs/metrics.md, Business): every web node reports the same global
  // figures from the cache tier, so they are taken once (max), never summed; the event
  // counters are each node's own, so they are summed.
  s += Record("millions_business_active_users:max",
              "max by (window) (millions_business_active_users)");
  s += Record("millions_business_events:rate",
              "sum by (kind) (rate(millions_business_events_total[" + w + "]))");
  s += Record("millions_business_cohort_users:max",
              "max by (cohort_day) (millions_business_cohort_users)");
  s += Record("millions_business_retention_ratio:max",
              "max by (cohort_day, day) (millions_business_retention_ratio)");
  // Little's law: the backlog over its drain rate is how long the newest job waits; a backlog
  // that does not drain at all counts as a thousand seconds per job.
  s += Record("millions_queue_backlog_age_seconds:estimate",
              "millions_queue_backlog:max / clamp_min(millions_jobs_acked:rate, 0.001)");

  int f = c.alert_for_s;
  s += "  - name: millions_alerts\n    rules:\n";
  s += Alert("NodeDown", "up == 0", f, "critical",
             "{{ $labels.tier }} node {{ $labels.node }} in {{ $labels.dc }} does not answer "
             "its scrape");
  s += Alert("DataCentreDown", "max by (dc) (up{job=\"millions\"}) == 0", f, "critical",
             "no node of {{ $labels.dc }} answers");
  s += Alert("HighErrorRatio", "tier:millions_http_error_ratio:rate > " + Num(c.error_ratio), f,
             "warning",
             "{{ $labels.tier }} in {{ $labels.dc }}: {{ $value | humanizePercentage }} of "
             "requests fail (objective " +
                 Num(c.error_ratio * 100) + "%)");
  s += Alert("HighLatencyP99",
             "tier:millions_http_request_duration_seconds:p99 > " + Num(c.p99_ms / 1000.0), f,
             "warning",
             "{{ $labels.tier }} in {{ $labels.dc }}: p99 {{ $value | humanizeDuration }} "
             "(objective " +
                 std::to_string(c.p99_ms) + " ms)");
  s += Alert("ReplicaLag",
             "max by (dc, member) (millions_db_replica_lag_bytes) > " +
                 std::to_string(c.replica_lag_bytes),
             f, "warning",
             "replica {{ $labels.member }} is {{ $value | humanize1024 }}B behind (objective " +
                 std::to_string(c.replica_lag_bytes) + " B)");
  s += Alert("QueueBacklogAge",
             "millions_queue_backlog_age_seconds:estimate > " + std::to_string(c.backlog_age_s), f,
             "warning",
             "edit jobs wait about {{ $value | humanizeDuration }} (objective " +
                 std::to_string(c.backlog_age_s) + " s)");
  s += Alert("EdgeHitRatioLow",
             "dc:millions_edge_hit_ratio:rate < " + Num(c.edge_hit_ratio) +
                 " and dc:millions_edge_requests:rate > 1",
             f, "warning",
             "the edge of {{ $labels.dc }} hits {{ $value | humanizePercentage }} (objective " +
                 Num(c.edge_hit_ratio * 100) + "%)");
  return s;
}

json::object SummarizeAlerts(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  const json::value* list = nullptr;
  if (!ec && v.is_object())
    if (auto* data = v.as_object().if_contains("data"); data && data->is_object())
      list = data->as_object().if_contains("alerts");
  if (!list || !list->is_array())
    return json::object{{"alerts", json::array{}}, {"error", "not an answer of Prometheus"}};
  auto str = [](const json::object& o, const char* k) -> std::string {
    if (auto* f = o.if_contains(k); f && f->is_string()) return std::string(f->as_string());
    return "";
  };
  json::array out;
  for (const auto& a : list->as_array()) {
    if (!a.is_object()) continue;
    const auto& o = a.as_object();
    json::object labels, notes;
    if (auto* l = o.if_contains("labels"); l && l->is_object()) labels = l->as_object();
    if (auto* n = o.if_contains("annotations"); n && n->is_object()) notes = n->as_object();
    out.push_back(json::object{{"name", str(labels, "alertname")},
                               {"state", str(o, "state")},
                               {"severity", str(labels, "severity")},
                               {"node", str(labels, "node")},
                               {"tier", str(labels, "tier")},
                               {"dc", str(labels, "dc")},
                               {"summary", str(notes, "summary")},
                               {"since", str(o, "activeAt")}});
  }
  std::stable_sort(out.begin(), out.end(), [](const json::value& a, const json::value& b) {
    return a.at("state").as_string() == "firing" && b.at("state").as_string() != "firing";
  });
  return json::object{{"alerts", std::move(out)}};
}

std::string AlertsJson(const std::string& host, int port) {
  http::FetchRequest r;
  r.host = host;
  r.port = port;
  r.target = "/api/v1/alerts";
  r.timeout = std::chrono::milliseconds(800);
  auto res = http::Fetch(r);
  json::object o =
      res.ok() && res->status == 200
          ? SummarizeAlerts(res->body)
          : json::object{{"alerts", json::array{}}, {"error", "Prometheus does not answer"}};
  o["prometheus"] = "http://" + host + ":" + std::to_string(port) + "/";
  return json::serialize(o);
}

bool WriteAtomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out.flush()) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

}  // namespace millions::ctl
