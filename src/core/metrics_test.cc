#include "core/metrics.h"

#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <thread>

namespace millions::metrics {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find(line) != std::string::npos;
}

TEST(Metrics, RendersCountersGaugesAndHistograms) {
  Registry r;
  r.GetCounter("millions_x_total", "x", {{"role", "web"}}).Inc();
  r.GetCounter("millions_x_total", "x", {{"role", "web"}}).Inc(2);
  r.GetGauge("millions_g", "g", {}).Set(5);
  r.GetHistogram("millions_h_seconds", "h", {{"route", "/a"}}).Observe(0.003);
  std::string out = r.Render();
  EXPECT_TRUE(Has(out, "# HELP millions_x_total x\n# TYPE millions_x_total counter\n")) << out;
  EXPECT_TRUE(Has(out, "millions_x_total{role=\"web\"} 3\n")) << out;
  EXPECT_TRUE(Has(out, "# TYPE millions_g gauge\nmillions_g 5\n")) << out;
  EXPECT_TRUE(Has(out, "# TYPE millions_h_seconds histogram\n")) << out;
  EXPECT_TRUE(Has(out, "millions_h_seconds_bucket{route=\"/a\",le=\"0.0025\"} 0\n")) << out;
  EXPECT_TRUE(Has(out, "millions_h_seconds_bucket{route=\"/a\",le=\"0.005\"} 1\n")) << out;
  EXPECT_TRUE(Has(out, "millions_h_seconds_bucket{route=\"/a\",le=\"+Inf\"} 1\n")) << out;
  EXPECT_TRUE(Has(out, "millions_h_seconds_count{route=\"/a\"} 1\n")) << out;
  EXPECT_TRUE(Has(out, "millions_h_seconds_sum{route=\"/a\"} 0.003\n")) << out;
}

TEST(Metrics, HandlesAreLookedUpOnce) {
  Registry r;
  Counter& a = r.GetCounter("millions_x_total", "x", {{"role", "web"}});
  EXPECT_EQ(&a, &r.GetCounter("millions_x_total", "x", {{"role", "web"}}));
  EXPECT_NE(&a, &r.GetCounter("millions_x_total", "x", {{"role", "lb"}}));
  EXPECT_THROW(r.GetGauge("millions_x_total", "x", {}), std::logic_error);
}

// The count is the buckets' total: a scrape never shows count != the +Inf bucket.
TEST(Metrics, HistogramCountMatchesInfBucketUnderConcurrentObserves) {
  Registry r;
  Histogram& h = r.GetHistogram("millions_h_seconds", "h", {});
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    while (!stop) h.Observe(0.01);
  });
  for (int i = 0; i < 200; ++i) {
    prometheus::ClientMetric m;
    h.Collect(&m);
    ASSERT_EQ(m.histogram.sample_count, m.histogram.bucket.back().cumulative_count);
  }
  stop = true;
  writer.join();
}

TEST(Metrics, CallbackCollectorsFillFamiliesAtScrapeTime) {
  Registry r;
  int up = 1;
  r.AddCollector([&up](Families* out) {
    AddGauge(out, "millions_node_up", "1 when the node answers.")
        .Add({{"node", "a"}}, up)
        .Add({{"node", "b\"q"}}, 0);
    AddCounter(out, "millions_y_total", "y").Add({}, 7);
  });
  std::string out = r.Render();
  EXPECT_TRUE(Has(out, "# HELP millions_node_up 1 when the node answers.\n")) << out;
  EXPECT_TRUE(Has(out, "# TYPE millions_node_up gauge\n")) << out;
  EXPECT_TRUE(Has(out, "millions_node_up{node=\"a\"} 1\n")) << out;
  EXPECT_TRUE(Has(out, "millions_node_up{node=\"b\\\"q\"} 0\n")) << out;
  EXPECT_TRUE(Has(out, "# TYPE millions_y_total counter\nmillions_y_total 7\n")) << out;
  up = 0;  // read at each scrape, not at registration
  EXPECT_TRUE(Has(r.Render(), "millions_node_up{node=\"a\"} 0\n"));
}

TEST(Metrics, FamiliesOfOneNameAreMergedAndASecondTypeIsDropped) {
  Registry r;
  r.GetCounter("millions_e_total", "e", {{"level", "l1"}}).Inc(4);
  r.AddCollector([](Families* out) {
    AddCounter(out, "millions_e_total", "e").Add({{"level", "l2"}}, 9);
    AddGauge(out, "millions_e_total", "e").Add({{"level", "l3"}}, 1);
  });
  auto families = r.Collect();
  ASSERT_EQ(families.size(), 1u);
  EXPECT_EQ(families[0].metric.size(), 2u);
  std::string out = r.Render();
  EXPECT_EQ(out.find("# TYPE millions_e_total"), out.rfind("# TYPE millions_e_total")) << out;
  EXPECT_TRUE(Has(out, "millions_e_total{level=\"l2\"} 9\n")) << out;
  EXPECT_FALSE(Has(out, "l3")) << out;
}

// A collector may register a series while the registry collects (it runs unlocked).
TEST(Metrics, CollectorMayRegisterSeries) {
  Registry r;
  r.AddCollector([&r](Families*) { r.GetCounter("millions_late_total", "l", {}).Inc(); });
  r.Render();
  EXPECT_TRUE(Has(r.Render(), "millions_late_total 1\n"));
}

TEST(Metrics, CollectsPrometheusCollectablesAndTextCollectors) {
  Registry r;
  auto lib = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
      .Name("millions_lib_total")
      .Help("l")
      .Register(*lib)
      .Add({})
      .Increment(2);
  r.AddCollectable(lib);
  std::string out = r.Render();
  EXPECT_TRUE(Has(out, "millions_lib_total 2\n")) << out;
  lib.reset();  // held weakly: an expired collectable is skipped
  EXPECT_FALSE(Has(r.Render(), "millions_lib_total"));
}

TEST(Metrics, EscapesLabelValues) {
  EXPECT_EQ(FormatLabels({{"a", "x\"y\\z"}}), "{a=\"x\\\"y\\\\z\"}");
}

}  // namespace
}  // namespace millions::metrics
