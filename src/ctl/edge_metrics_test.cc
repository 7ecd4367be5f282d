// The dashboard's edge figures from scraped lines: what counts toward the hit ratio and the
// offload, and nothing to divide before the first request.
#include "ctl/edge_metrics.h"

#include <gtest/gtest.h>

namespace millions::ctl {
namespace {

TEST(EdgeTotals, NullRatiosBeforeAnyRequest) {
  auto j = EdgeTotals{}.Json();
  EXPECT_TRUE(j.at("hit_ratio").is_null());
  EXPECT_TRUE(j.at("offload").is_null());
}

TEST(EdgeTotals, HitRatioLeavesPassesOutAndOffloadCountsBytes) {
  EdgeTotals t;
  // Two edges' scrapes, summed; other metrics (and the HELP lines' names) are not read.
  for (int edge = 0; edge < 2; ++edge) {
    t.Add("millions_edge_requests_total{result=\"hit\"}", 6);
    t.Add("millions_edge_requests_total{result=\"miss\"}", 1);
    t.Add("millions_edge_requests_total{result=\"stale\"}", 1);
    t.Add("millions_edge_requests_total{result=\"pass\"}", 100);
    t.Add("millions_edge_bytes_total{source=\"cache\"}", 3000);
    t.Add("millions_edge_bytes_total{source=\"origin\"}", 1000);
    t.Add("millions_edge_coalesced_total", 50);
    t.Add("millions_http_requests_total{role=\"edge\",route=\"/\",method=\"GET\",code=\"200\"}", 9);
  }
  auto j = t.Json();
  EXPECT_EQ(j.at("hit").as_double(), 12);
  EXPECT_EQ(j.at("pass").as_double(), 200);
  EXPECT_DOUBLE_EQ(j.at("hit_ratio").as_double(), 0.75) << "12 / (12 + 2 + 2)";
  EXPECT_DOUBLE_EQ(j.at("offload").as_double(), 0.75) << "6000 / 8000 bytes";
}

}  // namespace
}  // namespace millions::ctl
