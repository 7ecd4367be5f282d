// The [prometheus] section and the files the runner writes for Prometheus: defaults and bad
// values, targets with their labels (a node scaled away leaves, a node down stays), thresholds in
// the rules, and (when Debian's promtool is installed) Prometheus' own check of both files.
#include "ctl/prometheus.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/config.h"

namespace millions::ctl {
namespace {

namespace fs = std::filesystem;

topo::Topology Load(const std::string& text) {
  auto path = fs::temp_directory_path() / ("prom_test_" + std::to_string(getpid()) + ".toml");
  std::ofstream(path) << "[deployment]\nname = \"t\"\n[[dc]]\nname = \"dc1\"\n" << text;
  auto t = topo::Topology::Load(path.string());
  fs::remove(path);
  return t;
}

TEST(Prometheus, AbsentSectionMeansNoPrometheus) { EXPECT_FALSE(ReadPrometheus(Load(""))); }

TEST(Prometheus, DefaultsAndBadValues) {
  auto t = Load("[postgres]\nmax_replica_lag_bytes = 4096\n[prometheus]\n");
  auto c = ReadPrometheus(t);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->listen, "127.0.0.1:9095");
  EXPECT_EQ(c->scrape_interval_ms, 5000);
  EXPECT_EQ(c->replica_lag_bytes, 4096);  // the web tier's own bound on a replica's lag
  EXPECT_THROW(ReadPrometheus(Load("[prometheus]\nretention = \"a week\"\n")), config::ConfigError);
  EXPECT_THROW(ReadPrometheus(Load("[prometheus]\nscrape_interval_ms = 10\n")),
               config::ConfigError);
  EXPECT_THROW(ReadPrometheus(Load("[prometheus]\nlisten = \"nowhere\"\n")), config::ConfigError);
  auto typo = Load("[prometheus]\nscrape_interval = 5\n");
  ReadPrometheus(typo);
  EXPECT_THROW(typo.Check({"*"}), config::ConfigError);
}

TEST(Prometheus, TargetsLabelEveryWantedNode) {
  std::vector<Node> nodes(3);
  nodes[0].name = "web1", nodes[0].role = "web", nodes[0].dc = "dc1";
  nodes[0].check_host = "127.0.1.1", nodes[0].check_port = 8081;
  nodes[1].name = "lb1", nodes[1].role = "lb", nodes[1].dc = "dc2";
  nodes[1].check_host = "127.0.0.1", nodes[1].check_port = 9080, nodes[1].state = "failed";
  nodes[2].name = "web3", nodes[2].role = "web", nodes[2].dc = "dc1";
  nodes[2].check_host = "127.0.1.3", nodes[2].check_port = 8081, nodes[2].wanted = false;
  auto v = boost::json::parse(TargetsJson(nodes)).as_array();
  ASSERT_EQ(v.size(), 2u);  // web3 was scaled away; lb1 is down but stays (its `up` is 0)
  EXPECT_EQ(v[0].at("targets").at(0).as_string(), "127.0.1.1:8081");
  EXPECT_EQ(v[1].at("labels").at("dc").as_string(), "dc2");
  EXPECT_EQ(v[1].at("labels").at("tier").as_string(), "lb");
  EXPECT_EQ(v[1].at("labels").at("node").as_string(), "lb1");
}

TEST(Prometheus, RulesCarryTheThresholdsAndPassPromtool) {
  auto t = Load(
      "[prometheus]\nscrape_interval_ms = 1000\nalert_for_s = 2\nerror_ratio = 0.02\n"
      "p99_ms = 250\nbacklog_age_s = 30\nedge_hit_ratio = 0.6\n");
  auto c = *ReadPrometheus(t);
  std::string rules = RulesYaml(c, t);
  for (const char* want :
       {"tier:millions_http_error_ratio:rate > 0.02", "p99 > 0.25", "estimate > 30", "rate < 0.6",
        "up == 0", "max by (dc) (up{job=\"millions\"}) == 0", "for: 2s",
        "millions_db_replica_lag_bytes) > 1048576", "rate(millions_http_requests_total[60s])"})
    EXPECT_NE(rules.find(want), std::string::npos) << want << "\n" << rules;
  auto dir = fs::temp_directory_path() / ("prom_files_" + std::to_string(getpid()));
  fs::create_directories(dir / "targets");
  ASSERT_TRUE(WriteAtomically((dir / "rules.yml").string(), rules));
  ASSERT_TRUE(WriteAtomically((dir / "targets/m.json").string(), TargetsJson({})));
  ASSERT_TRUE(WriteAtomically(
      (dir / "prometheus.yml").string(),
      PrometheusYaml(c, "t", (dir / "targets/*.json").string(), (dir / "rules.yml").string(),
                     "127.0.0.1:7070", (dir / "runner.token").string())));
  ASSERT_TRUE(WriteAtomically((dir / "runner.token").string(), "abc\n"));
  EXPECT_FALSE(fs::exists(dir / "rules.yml.tmp"));
  if (std::system("command -v promtool >/dev/null") == 0) {
    std::string cmd = "promtool check config " + (dir / "prometheus.yml").string() + " >/dev/null";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << rules;
  }
  fs::remove_all(dir);
}

TEST(Prometheus, AlertsForTheDashboardFiringFirst) {
  auto o = SummarizeAlerts(R"({"status":"success","data":{"alerts":[
    {"labels":{"alertname":"HighLatencyP99","tier":"web","dc":"dc1","severity":"warning"},
     "annotations":{"summary":"web in dc1: p99 1s"},"state":"pending","activeAt":"t1"},
    {"labels":{"alertname":"NodeDown","node":"lb1","tier":"lb","dc":"dc1","severity":"critical"},
     "annotations":{"summary":"lb node lb1"},"state":"firing","activeAt":"t0"}]}})");
  auto& a = o.at("alerts").as_array();
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].at("name").as_string(), "NodeDown");
  EXPECT_EQ(a[0].at("node").as_string(), "lb1");
  EXPECT_EQ(a[0].at("since").as_string(), "t0");
  EXPECT_EQ(a[1].at("state").as_string(), "pending");
  EXPECT_EQ(a[1].at("summary").as_string(), "web in dc1: p99 1s");
  EXPECT_TRUE(SummarizeAlerts("<html>").contains("error"));
  EXPECT_TRUE(SummarizeAlerts("{\"data\":{}}").at("alerts").as_array().empty());
}

}  // namespace
}  // namespace millions::ctl
