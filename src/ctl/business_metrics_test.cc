// The dashboard's business figures from two web nodes' scrapes: global gauges taken once (max),
// each node's own event counters summed.
#include "ctl/business_metrics.h"

#include <gtest/gtest.h>

namespace millions::ctl {
namespace {

TEST(BusinessTotals, GlobalFiguresTakenOnceNodeCountsSummed) {
  BusinessTotals t;
  EXPECT_TRUE(t.Json().at("active_day").is_null()) << "nothing reported yet";
  for (double stale : {0.0, 1.0}) {  // web2's snapshot is a little older
    t.Add("millions_business_active_users{window=\"day\"}", 40 - stale);
    t.Add("millions_business_active_users{window=\"previous_day\"}", 90);
    t.Add("millions_business_events_today{kind=\"signup\"}", 7 - stale);
    t.Add("millions_business_events_total{kind=\"signup\"}", 3);
    t.Add("millions_business_cohort_users{cohort_day=\"2026-12-01\"}", 20);
    t.Add("millions_business_retention_ratio{cohort_day=\"2026-12-01\",day=\"1\"}", 0.5);
    t.Add("millions_business_cohort_users{cohort_day=\"2026-12-02\"}", 10);
    t.Add("millions_http_requests_total{role=\"web\",route=\"/\",method=\"GET\",code=\"200\"}", 9);
  }
  auto j = t.Json();
  EXPECT_EQ(j.at("active_day").as_double(), 40);
  EXPECT_EQ(j.at("active_previous_day").as_double(), 90);
  EXPECT_EQ(j.at("events_today").at("signup").as_double(), 7);
  EXPECT_EQ(j.at("events_total").at("signup").as_double(), 6);
  const auto& cohorts = j.at("cohorts").as_array();
  ASSERT_EQ(cohorts.size(), 2u);
  EXPECT_EQ(cohorts[0].at("day").as_string(), "2026-12-02") << "newest first";
  EXPECT_TRUE(cohorts[0].at("day1").is_null());
  EXPECT_EQ(cohorts[1].at("users").as_double(), 20);
  EXPECT_EQ(cohorts[1].at("day1").as_double(), 0.5);
  EXPECT_TRUE(cohorts[1].at("day7").is_null());
}

}  // namespace
}  // namespace millions::ctl
