// Prometheus under `millions up` (the recipe is recipes/prometheus.cc): the topology's
// [prometheus] section, and the files the runner writes for it under RUN_DIR/prometheus: the
// configuration (scrape interval, rule file, file-based discovery of the targets), the recording
// and alerting rules (thresholds from the section), and the targets file: every node with a
// Prometheus endpoint, labelled dc, tier (its role) and node, rewritten whole and renamed into
// place when nodes come and go, so Prometheus follows `scale` without a restart.
// Thread-safety: functions only. Ownership: values.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/topology.h"
#include "ctl/recipe.h"

namespace millions::ctl {

// [prometheus]; a topology without the section runs no Prometheus. Thresholds:
// docs/observability.md.
struct PrometheusConfig {
  std::string listen = "127.0.0.1:9095";
  int scrape_interval_ms = 5000;
  std::string retention = "1d";    // Prometheus' duration: 12h, 1d, 2w
  int alert_for_s = 30;            // an objective broken this long fires its alert
  double error_ratio = 0.05;       // 5xx / requests per tier and dc, over the rate window
  int p99_ms = 500;                // p99 per tier and dc
  int64_t replica_lag_bytes = -1;  // -1: [postgres] max_replica_lag_bytes
  int backlog_age_s = 60;          // the queue's backlog over its drain rate
  double edge_hit_ratio = 0.5;     // hits / (hits + misses + stale) per dc, with traffic
};

// Reads [prometheus] (marking its keys as known); nothing when the section is absent. Throws
// config::ConfigError for a bad value.
std::optional<PrometheusConfig> ReadPrometheus(const topo::Topology& t);

// The roles whose nodes serve Prometheus text at their check endpoint (Node::check_host/port):
// web, lb (admin), edge (admin), worker, patroni (REST API), etcd (client URL). Redis, the
// timeline store and NATS have none.
const std::vector<std::string>& ScrapedKinds();

// The file_sd targets: one group per node still wanted (a node down stays, so `up` is 0 and its
// alert fires; one scaled away goes).
std::string TargetsJson(const std::vector<Node>& nodes);
// prometheus.yml: targets from `targets_glob`, rules from `rules_file`; with `runner` (the
// runner's admin host:port) a second job, `millions_runner`, scrapes the runner's /metrics: the
// nodes' host metrics, whose node, role and dc labels are kept (honor_labels), sending the
// admin token read from `runner_token_file` (the runner's API needs it: admin_token.h).
std::string PrometheusYaml(const PrometheusConfig& c, const std::string& deployment,
                           const std::string& targets_glob, const std::string& rules_file,
                           const std::string& runner = "",
                           const std::string& runner_token_file = "");
// The recording and alerting rules.
std::string RulesYaml(const PrometheusConfig& c, const topo::Topology& t);
// The dashboard's view of Prometheus' /api/v1/alerts answer `body`: {"alerts":[{"name",
// "state" (pending | firing), "severity", "node", "tier", "dc", "summary", "since"}]}, firing
// first; {"alerts":[],"error":..} when the answer is not Prometheus'.
boost::json::object SummarizeAlerts(std::string_view body);
// Asks the Prometheus at host:port for its alerts (a short timeout: the admin thread waits) and
// summarizes them, with "prometheus" (its URL).
std::string AlertsJson(const std::string& host, int port);
// Writes `text` to `path` through a temporary file and a rename: a reader sees the old file or
// the new one, never half. False when it could not.
bool WriteAtomically(const std::string& path, const std::string& text);

}  // namespace millions::ctl
