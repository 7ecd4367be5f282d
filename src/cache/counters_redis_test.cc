// RedisCounters against a real redis-server (the throttle's shared store): INCR with a fixed or
// sliding PEXPIRE, marks and their remaining time, through the L2's ring.
#include <gtest/gtest.h>

#include <thread>

#include "cache/counters.h"
#include "redis_instance.h"

namespace millions::cache {
namespace {

using std::chrono::milliseconds;

TEST(RedisCounters, FixedAndSlidingWindowsMarksAndRemoval) {
  testing::RedisInstance redis;
  ASSERT_EQ(redis.Start(), "");
  RedisL2Options o;
  o.nodes.push_back({"r1", "127.0.0.1", redis.port()});
  o.timeout = milliseconds(1000);
  auto l2 = OpenRedisL2(o, Env::Default());
  for (int i = 0; i < 200 && !(l2->Stats().size() == 1 && l2->Stats()[0].up); ++i)
    std::this_thread::sleep_for(milliseconds(10));
  RedisCounters c(*l2);

  EXPECT_EQ(*c.Increment("th:fixed", milliseconds(60'000), false), 1);
  ASSERT_TRUE(c.Expire("th:fixed", milliseconds(30'000)).ok());
  EXPECT_EQ(*c.Increment("th:fixed", milliseconds(60'000), false), 2);
  int64_t left = *c.Remaining("th:fixed");
  EXPECT_GT(left, 20'000);
  EXPECT_LE(left, 30'000) << "a fixed window's expiry is not moved by later increments";
  EXPECT_EQ(*c.Increment("th:slide", milliseconds(60'000), true), 1);
  ASSERT_TRUE(c.Expire("th:slide", milliseconds(30'000)).ok());
  EXPECT_EQ(*c.Increment("th:slide", milliseconds(60'000), true), 2);
  EXPECT_GT(*c.Remaining("th:slide"), 50'000) << "a sliding window restarts at each increment";
  EXPECT_EQ(*c.Value("th:slide"), 2);
  EXPECT_EQ(*c.Value("th:absent"), 0);
  EXPECT_EQ(*c.Remaining("th:absent"), 0);
  ASSERT_TRUE(c.Mark("th:mark", milliseconds(5000)).ok());
  EXPECT_GT(*c.Remaining("th:mark"), 4000);
  ASSERT_TRUE(c.Remove("th:mark").ok());
  EXPECT_EQ(*c.Remaining("th:mark"), 0);
  ASSERT_TRUE(c.Mark("th:short", milliseconds(50)).ok());
  std::this_thread::sleep_for(milliseconds(120));
  EXPECT_EQ(*c.Value("th:short"), 0) << "keys expire in Redis: memory stays bounded";

  redis.Kill();
  EXPECT_FALSE(c.Increment("th:fixed", milliseconds(1000), false).ok())
      << "a dead node is an error (FallbackCounters then counts locally)";
}

}  // namespace
}  // namespace millions::cache
