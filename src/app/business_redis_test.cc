// Business metrics on a real redis-server through the L2's ring (RedisTallies: HyperLogLogs and
// counters), with a fake clock across UTC days: a cohort's day-1 and day-7 retention, two web
// nodes' records landing in the same sets, the keys' expiry, and an outage.
#include <gtest/gtest.h>

#include <thread>

#include "app/business.h"
#include "app/business_test_util.h"
#include "redis_instance.h"

namespace millions::app {
namespace {

using std::chrono::milliseconds;
using testing::kDayMs;
using testing::MorningOf;
using testing::UserAt;

TEST(BusinessRedis, TwoNodesOneCohortAcrossDays) {
  millions::testing::RedisInstance redis;
  ASSERT_EQ(redis.Start(), "");
  cache::RedisL2Options o;
  o.nodes.push_back({"r1", "127.0.0.1", redis.port()});
  o.timeout = milliseconds(1000);
  auto l2 = cache::OpenRedisL2(o, Env::Default());
  for (int i = 0; i < 200 && !(l2->Stats().size() == 1 && l2->Stats()[0].up); ++i)
    std::this_thread::sleep_for(milliseconds(10));
  FakeEnv env;
  const int64_t d0 = 20'800;  // 2026-12-13
  env.SetWallMillis(MorningOf(d0));
  metrics::Registry r1, r2;
  auto store = std::make_shared<cache::RedisTallies>(*l2);
  Business web1(env, store, r1), web2(env, store, r2);  // two nodes, one shared store

  // Day 0: ten sign-ups, five on each node.
  std::vector<int64_t> u;
  for (int i = 0; i < 10; ++i) u.push_back(UserAt(MorningOf(d0) + i, i));
  for (int i = 0; i < 10; ++i) (i % 2 ? web1 : web2).Event(BusinessEvent::kSignUp, u[i]);
  web1.Event(BusinessEvent::kUpload, u[1]);
  web2.Event(BusinessEvent::kEdit, u[2]);
  web1.Flush();
  web2.Flush();
  // Day 1: four come back, each seen by both nodes; day 7: three come back.
  env.SetWallMillis(MorningOf(d0 + 1));
  for (int i = 0; i < 4; ++i) {
    web1.Active(u[i]);
    web2.Active(u[i]);
  }
  web2.Event(BusinessEvent::kFollow, u[3]);
  web1.Flush();
  web2.Flush();
  web1.Refresh();
  auto s = web1.snapshot();
  ASSERT_TRUE(s.valid);
  EXPECT_EQ(s.active_today, 4) << "one user on two nodes counts once";
  EXPECT_EQ(s.active_yesterday, 10);
  EXPECT_EQ(s.events_today[int(BusinessEvent::kFollow)], 1);
  ASSERT_EQ(s.cohorts.size(), 1u);
  EXPECT_EQ(s.cohorts[0].users, 10);
  EXPECT_DOUBLE_EQ(s.cohorts[0].day1, 0.4);
  env.SetWallMillis(MorningOf(d0 + 7));
  for (int i = 5; i < 8; ++i) web2.Active(u[i]);
  web2.Flush();
  web1.Refresh();
  s = web1.snapshot();
  EXPECT_DOUBLE_EQ(s.cohorts[0].day1, 0.4);
  EXPECT_DOUBLE_EQ(s.cohorts[0].day7, 0.3);
  EXPECT_NE(r1.Render().find("millions_business_retention_ratio{cohort_day=\"2026-12-13\","
                             "day=\"7\"} 0.3"),
            std::string::npos);

  // The keys are HyperLogLogs that expire about 35 days after their last write.
  auto ttl = l2->Run("biz:cohort:2026-12-13", {{"PTTL", "biz:cohort:2026-12-13"}});
  ASSERT_TRUE(ttl.ok());
  EXPECT_GT((*ttl)[0].integer, 34 * kDayMs);
  EXPECT_LE((*ttl)[0].integer, 35 * kDayMs);
  auto type = l2->Run("biz:active:2026-12-13", {{"GET", "biz:active:2026-12-13"}});
  ASSERT_TRUE(type.ok());
  EXPECT_EQ((*type)[0].str.rfind("HYLL", 0), 0u) << "a HyperLogLog, not a set";

  // The cache node dies: records wait, the last figures stay exported.
  redis.Kill();
  web1.Active(u[9]);
  web1.Flush();
  web1.Refresh();
  EXPECT_DOUBLE_EQ(web1.snapshot().cohorts[0].day7, 0.3);
  EXPECT_EQ(r1.Render().find("millions_business_store_errors_total 0"), std::string::npos);
}

}  // namespace
}  // namespace millions::app
