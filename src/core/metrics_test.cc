#include "core/metrics.h"

#include <gtest/gtest.h>

namespace millions::metrics {
namespace {

TEST(Metrics, RendersCountersGaugesAndHistograms) {
  Registry r;
  r.GetCounter("millions_x_total", "x", {{"role", "web"}}).Inc();
  r.GetCounter("millions_x_total", "x", {{"role", "web"}}).Inc(2);
  r.GetGauge("millions_g", "g", {}).Set(5);
  r.GetHistogram("millions_h_seconds", "h", {{"route", "/a"}}).Observe(0.003);
  std::string out = r.Render();
  EXPECT_NE(out.find("# TYPE millions_x_total counter"), std::string::npos);
  EXPECT_NE(out.find("millions_x_total{role=\"web\"} 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("millions_g 5\n"), std::string::npos);
  EXPECT_NE(out.find("millions_h_seconds_bucket{route=\"/a\",le=\"0.0025\"} 0\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("millions_h_seconds_bucket{route=\"/a\",le=\"0.005\"} 1\n"),
            std::string::npos);
  EXPECT_NE(out.find("millions_h_seconds_count{route=\"/a\"} 1\n"), std::string::npos);
}

TEST(Metrics, EscapesLabelValues) {
  EXPECT_EQ(FormatLabels({{"a", "x\"y\\z"}}), "{a=\"x\\\"y\\\\z\"}");
}

}  // namespace
}  // namespace millions::metrics
