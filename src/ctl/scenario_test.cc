// The scenarios' pure parts: flags, tables, SVG, HTML, metric sums, load summaries and the
// sharding figures. The runs themselves are tests/integration/scenario_test.py.
#include "ctl/scenario.h"

#include <gtest/gtest.h>

#include <cmath>

#include "ctl/scenario_env.h"
#include "ctl/scenarios.h"

namespace millions::ctl {
namespace {

int Count(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(ScenarioFlags, ParsesNameAndOptions) {
  ScenarioFlags f;
  EXPECT_EQ(ParseScenarioFlags({"cache", "--short", "--report", "/tmp/r", "--keep"}, &f), -1);
  EXPECT_EQ(f.name, "cache");
  EXPECT_TRUE(f.short_form);
  EXPECT_TRUE(f.keep);
  EXPECT_EQ(f.report_dir, "/tmp/r");
  ScenarioFlags g;
  EXPECT_EQ(ParseScenarioFlags({"all", "--skip", "replicas,cdn"}, &g), -1);
  EXPECT_EQ(g.skip, (std::vector<std::string>{"replicas", "cdn"}));
  EXPECT_EQ(g.report_dir, "scenarios");
  EXPECT_FALSE(g.short_form);
}

TEST(ScenarioFlags, UsageErrorsAndHelp) {
  ScenarioFlags f;
  EXPECT_EQ(ParseScenarioFlags({"no-such-scenario"}, &f), 2);
  EXPECT_EQ(ParseScenarioFlags({}, &f), 2);
  EXPECT_EQ(ParseScenarioFlags({"cache", "--bogus"}, &f), 2);
  EXPECT_EQ(ParseScenarioFlags({"all", "--skip", "nope"}, &f), 2);
  EXPECT_EQ(ParseScenarioFlags({"--help"}, &f), 0);
}

TEST(Scenarios, EveryScenarioIsBuilt) {
  for (const char* n : {"single-vs-tiers", "lb-failover", "replicas", "cache", "cdn", "sharding",
                        "queue", "dc-failover"}) {
    ASSERT_NE(FindScenario(n), nullptr) << n;
    EXPECT_TRUE(FindScenario(n)->built) << n;
    EXPECT_TRUE(FindScenario(n)->run) << n;
  }
  EXPECT_EQ(Scenarios().size(), 8u);
}

TEST(ScenarioReport, TableIsAligned) {
  ScenarioTable t{{"setup", "ok/s"}, {{"single", "12.5"}, {"tiers", "1234.0"}}};
  EXPECT_EQ(FormatTable(t),
            "setup     ok/s\n"
            "--------------\n"
            "single    12.5\n"
            "tiers   1234.0\n");
  EXPECT_EQ(Num(1.25, 1), "1.2");  // printf rounding, to even here
  EXPECT_EQ(Num(NAN), "-");
}

TEST(ScenarioReport, BarsSvg) {
  Plot p;
  p.title = "a <b> & c";
  p.categories = {"x", "y", "z"};
  p.series = {{"one", {1, 2, 3}}, {"two", {4, NAN, 6}}};
  std::string svg = RenderSvg(p);
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_NE(svg.find("a &lt;b&gt; &amp; c"), std::string::npos);
  // One bar per finite value, a background and one legend square per series.
  EXPECT_EQ(Count(svg, "<rect"), 5 + 1 + 2);
  EXPECT_EQ(Count(svg, "<title>"), 5);
  EXPECT_EQ(svg.find("<script"), std::string::npos);
}

TEST(ScenarioReport, LinesSvgWithMarker) {
  Plot p;
  p.lines = true;
  p.x = {1, 2, 3, 4};
  p.series = {{"ok/s", {10, 20, 0, 20}}, {"errors/s", {0, 0, 5, 0}}};
  p.markers = {{2.5, "killed"}};
  std::string svg = RenderSvg(p);
  EXPECT_EQ(Count(svg, "<polyline"), 2);
  EXPECT_NE(svg.find(">killed</text>"), std::string::npos);
  // The y axis rounds up to a nice 20: the highest point sits on the top grid line (y = 40).
  EXPECT_NE(svg.find(",40 "), std::string::npos);
}

TEST(ScenarioReport, HtmlHoldsEveryResult) {
  ScenarioResult a;
  a.name = "cache";
  a.title = "cache tier";
  a.summary = "fewer <reads>";
  a.table = {{"setup", "reads"}, {{"none", "10"}, {"l1", "2"}}};
  a.plot.categories = {"none", "l1"};
  a.plot.series = {{"reads", {10, 2}}};
  ScenarioResult b;
  b.name = "dc-failover";
  b.built = false;
  b.summary = "Not built yet.";
  std::string html = RenderHtml({a, b}, "report");
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(Count(html, "<section"), 2);
  EXPECT_EQ(Count(html, "<svg"), 1);
  EXPECT_EQ(Count(html, "<tr>"), 3);
  EXPECT_NE(html.find("fewer &lt;reads&gt;"), std::string::npos);
  EXPECT_NE(html.find("Not built yet."), std::string::npos);
}

TEST(ScenarioEnv, SumMetricFiltersByLabels) {
  std::string text =
      "# HELP millions_db_queries_total x\n"
      "millions_db_queries_total{shard=\"0\",member_role=\"primary\",kind=\"read\"} 5\n"
      "millions_db_queries_total{shard=\"0\",member_role=\"replica\",kind=\"read\"} 7\n"
      "millions_db_queries_total{shard=\"0\",member_role=\"primary\",kind=\"write\"} 3\n"
      "millions_db_queries_total_extra{kind=\"read\"} 100\n"
      "millions_up 1\n";
  EXPECT_EQ(SumMetric(text, "millions_db_queries_total", {}), 15);
  EXPECT_EQ(SumMetric(text, "millions_db_queries_total", {"kind=\"read\""}), 12);
  EXPECT_EQ(
      SumMetric(text, "millions_db_queries_total", {"kind=\"read\"", "member_role=\"replica\""}),
      7);
  EXPECT_EQ(SumMetric(text, "millions_up", {}), 1);
  EXPECT_EQ(SumMetric(text, "millions_nothing", {}), 0);
}

TEST(ScenarioEnv, ParsesLoadSummary) {
  auto parsed =
      ParseLoadJson(R"({"rps":12.5,"p50_ms":1.5,"p99_ms":9,"seconds":3,"requests":40,"errors":2,)"
                    R"("timeline":[[10,0],[15,2],[12,0]]})");
  ASSERT_TRUE(parsed);
  const LoadResult& r = *parsed;
  EXPECT_EQ(r.rps, 12.5);
  EXPECT_EQ(r.p99_ms, 9);
  EXPECT_EQ(r.errors, 2);
  ASSERT_EQ(r.timeline.size(), 3u);
  EXPECT_EQ(r.timeline[1].first, 15);
  EXPECT_EQ(r.timeline[1].second, 2);
  EXPECT_FALSE(ParseLoadJson("not json"));
  EXPECT_FALSE(ParseLoadJson("[1]"));
  EXPECT_FALSE(ParseLoadJson(R"({"timeline":[[1]]})"));
  EXPECT_FALSE(ParseLoadJson(R"({"timeline":{}})"));
}

TEST(ScenarioSharding, RingMovesFewerThanModulo) {
  auto steps = ShardMoves(20000, 5);
  ASSERT_EQ(steps.size(), 3u * 4u);
  double modulo = 0, ring = 0;
  for (const auto& s : steps) {
    if (s.policy == "modulo") modulo += s.moved_pct;
    if (s.policy == "ring") ring += s.moved_pct;
    EXPECT_GE(s.moved_pct, 0);
    EXPECT_LE(s.moved_pct, 100);
  }
  // Modulo moves most users at every step (2->3 moves about two thirds); the ring about 1/n.
  EXPECT_GT(modulo / 4, 50);
  EXPECT_LT(ring / 4, 40);
}

}  // namespace
}  // namespace millions::ctl
