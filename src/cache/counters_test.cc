#include "cache/counters.h"

#include <gtest/gtest.h>

namespace millions::cache {
namespace {

using std::chrono::milliseconds;

TEST(LocalCounters, FixedWindowAndSliding) {
  FakeEnv env;
  LocalCounters c(env, 100);
  EXPECT_EQ(*c.Increment("a", milliseconds(1000), false), 1);
  env.Advance(milliseconds(600));
  EXPECT_EQ(*c.Increment("a", milliseconds(1000), false), 2);
  EXPECT_EQ(*c.Remaining("a"), 400);  // fixed: from the first increment
  env.Advance(milliseconds(400));
  EXPECT_EQ(*c.Value("a"), 0);  // expired
  EXPECT_EQ(*c.Increment("s", milliseconds(1000), true), 1);
  env.Advance(milliseconds(600));
  EXPECT_EQ(*c.Increment("s", milliseconds(1000), true), 2);
  env.Advance(milliseconds(600));
  EXPECT_EQ(*c.Value("s"), 2);  // sliding: 1000 ms after the last
  EXPECT_EQ(*c.Remaining("s"), 400);
}

TEST(LocalCounters, MarksExpireAndRemove) {
  FakeEnv env;
  LocalCounters c(env, 100);
  EXPECT_EQ(*c.Remaining("m"), 0);
  ASSERT_TRUE(c.Mark("m", milliseconds(5000)).ok());
  EXPECT_EQ(*c.Remaining("m"), 5000);
  ASSERT_TRUE(c.Expire("m", milliseconds(100)).ok());
  EXPECT_EQ(*c.Remaining("m"), 100);
  ASSERT_TRUE(c.Remove("m").ok());
  EXPECT_EQ(*c.Remaining("m"), 0);
}

TEST(LocalCounters, BoundedDropsNearestExpiryFirst) {
  FakeEnv env;
  LocalCounters c(env, 3);
  (void)c.Increment("short", milliseconds(100), false);
  (void)c.Increment("long1", milliseconds(10000), false);
  (void)c.Increment("long2", milliseconds(10000), false);
  (void)c.Increment("long3", milliseconds(10000), false);
  EXPECT_EQ(c.size(), 3u);
  EXPECT_EQ(*c.Value("short"), 0);
  EXPECT_EQ(*c.Value("long1"), 1);
  for (int i = 0; i < 1000; ++i)
    (void)c.Increment("k" + std::to_string(i), milliseconds(20000), false);
  EXPECT_EQ(c.size(), 3u);
}

class DownL2 : public L2 {
 public:
  L2Lookup Get(const std::string&) override { return {}; }
  std::string TryLease(const std::string&, const std::string&) override { return ""; }
  bool Fill(const std::string&, const std::string&, const std::string&, milliseconds) override {
    return false;
  }
  void Release(const std::string&, const std::string&) override {}
  void Delete(const std::vector<std::string>&) override {}
  void Publish(const std::vector<std::string>&) override {}
  std::vector<L2NodeStats> Stats() const override { return {}; }
};

TEST(FallbackCounters, CountsLocallyWhileTheSharedStoreIsDown) {
  FakeEnv env;
  DownL2 l2;
  int fallbacks = 0;
  FallbackCounters c(std::make_unique<RedisCounters>(l2), std::make_unique<LocalCounters>(env, 10),
                     [&] { ++fallbacks; });
  EXPECT_EQ(*c.Increment("x", milliseconds(1000), true), 1);
  EXPECT_EQ(*c.Increment("x", milliseconds(1000), true), 2);
  EXPECT_EQ(*c.Value("x"), 2);
  EXPECT_EQ(fallbacks, 3);
}

}  // namespace
}  // namespace millions::cache
