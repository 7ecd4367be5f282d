// The graphs' whitelist (only its names and ranges reach Prometheus; anything else, PromQL
// included, is refused), the query_range target and answer, and docs/grafana/millions.json: valid
// JSON whose every expr names only series of the recording rules, the contract's metrics or the
// runner's host metrics, with a panel for every graph the dashboard draws.
#include "ctl/graphs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "ctl/prometheus.h"

namespace millions::ctl {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

TEST(Graphs, OnlyNamedGraphsAndRanges) {
  ASSERT_TRUE(FindGraph("requests"));
  EXPECT_EQ(FindGraph("requests")->expr, "tier:millions_http_requests:rate");
  EXPECT_FALSE(FindGraph("up"));
  EXPECT_FALSE(FindGraph(""));
  EXPECT_FALSE(FindGraph("tier:millions_http_requests:rate"));  // an expr is not a name
  EXPECT_EQ(GraphRangeSeconds("5m"), 300);
  EXPECT_EQ(GraphRangeSeconds("3h"), 10800);
  for (const char* bad : {"1h", "", "5m&query=up", "300", "5M"})
    EXPECT_FALSE(GraphRangeSeconds(bad)) << bad;
  EXPECT_FALSE(GraphTarget("up", "5m", 1000, 1000));
  EXPECT_FALSE(GraphTarget("sum(up)", "5m", 1000, 1000));
  EXPECT_FALSE(GraphTarget("requests", "1d", 1000, 1000));
  std::set<std::string_view> names;
  for (const auto& q : GraphQueries()) EXPECT_TRUE(names.insert(q.name).second) << q.name;
}

TEST(Graphs, TargetAsksPrometheusForTheRange) {
  auto t = GraphTarget("p99", "30m", 100'000, 1000);
  ASSERT_TRUE(t);
  EXPECT_EQ(*t,
            "/api/v1/query_range?query=tier%3Amillions_http_request_duration_seconds%3Ap99"
            "&start=98200&end=100000&step=12");
  // Never a step below the scrape interval: those points would repeat.
  EXPECT_NE(GraphTarget("requests", "5m", 1000, 5000)->find("&step=5"), std::string::npos);
  EXPECT_NE(GraphTarget("requests", "3h", 20000, 1000)->find("&step=72"), std::string::npos);
}

TEST(Graphs, RangeAnswerBecomesPoints) {
  const GraphQuery& q = *FindGraph("requests");
  auto o = SummarizeRange(R"({"status":"success","data":{"resultType":"matrix","result":[
    {"metric":{"__name__":"x","dc":"dc1","tier":"web"},"values":[[10,"1.5"],[11.5,"2"],[12,"NaN"]]},
    {"metric":{"dc":"dc2","tier":"lb"},"values":[[10,"+Inf"]]}]}})",
                          q);
  auto& s = o.at("series").as_array();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].at("label").as_string(), "dc1 web");
  auto& p = s[0].at("points").as_array();
  ASSERT_EQ(p.size(), 2u);  // NaN dropped
  EXPECT_DOUBLE_EQ(p[1].at(0).as_double(), 11.5);
  EXPECT_DOUBLE_EQ(p[1].at(1).as_double(), 2);
  EXPECT_TRUE(s[1].at("points").as_array().empty());  // +Inf dropped
  EXPECT_TRUE(SummarizeRange("<html>", q).contains("error"));
  EXPECT_TRUE(
      SummarizeRange(R"({"data":{"resultType":"vector","result":[]}})", q).contains("error"));
}

TEST(Graphs, SeriesNamesOutsideMatchers) {
  auto n = SeriesNames(
      "sum by (dc) (rate(millions_cache_requests_total{result=\"millions_x\"}[60s])) / "
      "dc:millions_edge_requests:rate > -1 and up{job=\"millions\"}");
  ASSERT_EQ(n.size(), 2u);
  EXPECT_EQ(n[0], "millions_cache_requests_total");
  EXPECT_EQ(n[1], "dc:millions_edge_requests:rate");
}

// Every series the rules record (RulesYaml), the contract's fixed names and the runner's.
std::set<std::string> Known() {
  std::set<std::string> known = {"millions_http_requests_total",
                                 "millions_http_request_duration_seconds_bucket",
                                 "millions_db_queries_total",
                                 "millions_cache_requests_total",
                                 "millions_lb_backend_up",
                                 "millions_queue_backlog",
                                 "millions_jobs_total",
                                 "millions_edge_requests_total",
                                 "millions_node_cpu_seconds_total",
                                 "millions_node_resident_bytes",
                                 "millions_node_open_files",
                                 "millions_node_disk_written_bytes_total"};
  auto path = fs::temp_directory_path() / ("graphs_test_" + std::to_string(getpid()) + ".toml");
  std::ofstream(path) << "[deployment]\nname = \"t\"\n[[dc]]\nname = \"dc1\"\n[prometheus]\n";
  auto t = topo::Topology::Load(path.string());
  fs::remove(path);
  std::string rules = RulesYaml(*ReadPrometheus(t), t);
  for (size_t at = 0; (at = rules.find("- record: ", at)) != std::string::npos;) {
    at += 10;
    known.insert(rules.substr(at, rules.find('\n', at) - at));
  }
  return known;
}

TEST(Graphs, EveryGraphIsARecordedSeries) {
  auto known = Known();
  for (const auto& q : GraphQueries())
    for (const auto& s : SeriesNames(q.expr)) EXPECT_TRUE(known.count(s)) << q.name << ": " << s;
}

TEST(Graphs, GrafanaDashboardIsValidAndNamesKnownSeries) {
  std::ifstream in(std::string(MILLIONS_DOCS) + "/grafana/millions.json");
  ASSERT_TRUE(in) << "docs/grafana/millions.json";
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  ASSERT_FALSE(ec) << "not JSON: " << ec.message();
  auto known = Known();
  std::set<std::string> exprs;
  ASSERT_TRUE(v.at("panels").is_array());
  for (const auto& p : v.at("panels").as_array()) {
    ASSERT_TRUE(p.as_object().contains("title"));
    for (const auto& target : p.at("targets").as_array()) {
      std::string expr(target.at("expr").as_string());
      auto names = SeriesNames(expr);
      EXPECT_FALSE(names.empty()) << expr;
      for (const auto& s : names) EXPECT_TRUE(known.count(s)) << "unknown series " << s;
      exprs.insert(expr);
    }
  }
  for (const auto& q : GraphQueries())
    EXPECT_TRUE(exprs.count(std::string(q.expr))) << "no Grafana panel for " << q.name;
}

}  // namespace
}  // namespace millions::ctl
