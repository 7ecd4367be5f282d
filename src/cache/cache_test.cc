#include "cache/cache.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace millions::cache {
namespace {

using std::chrono::milliseconds;

// Room for exactly three entries with one-byte keys and values.
constexpr size_t kThree = 3 * (2 + kEntryOverhead);

std::unique_ptr<Cache> Make(const char* policy, FakeEnv& env, size_t cap = kThree,
                            milliseconds ttl = milliseconds(0)) {
  return Cache::Create({policy, cap, ttl}, env);
}

TEST(Cache, LruEvictsLeastRecentlyUsed) {
  FakeEnv env;
  auto c = Make("lru", env);
  c->Put("a", "1");
  c->Put("b", "2");
  c->Put("c", "3");
  ASSERT_TRUE(c->Get("a"));  // a is now the most recent; b the least
  c->Put("d", "4");
  EXPECT_FALSE(c->Get("b"));
  EXPECT_TRUE(c->Get("a"));
  EXPECT_TRUE(c->Get("c"));
  EXPECT_TRUE(c->Get("d"));
  EXPECT_EQ(c->Stats().evictions, 1u);
}

TEST(Cache, LfuEvictsLeastFrequentlyUsedTiesByRecency) {
  FakeEnv env;
  auto c = Make("lfu", env);
  c->Put("a", "1");
  c->Put("b", "2");
  c->Put("c", "3");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c->Get("a"));
  ASSERT_TRUE(c->Get("c"));
  // b: 1 use, c: 2, a: 4 -> b goes.
  c->Put("d", "4");
  EXPECT_FALSE(c->Get("b"));
  // d: 1 use, c: 2 -> d goes although it is the most recent: frequency comes before recency.
  c->Put("e", "5");
  EXPECT_FALSE(c->Get("d"));
  EXPECT_TRUE(c->Get("a"));
  EXPECT_TRUE(c->Get("c"));
}

TEST(Cache, LfuTieGoesToLeastRecent) {
  FakeEnv env;
  auto c = Make("lfu", env);
  c->Put("a", "1");
  c->Put("b", "2");
  c->Put("c", "3");
  c->Put("d", "4");  // all at one use: a is the least recent
  EXPECT_FALSE(c->Get("a"));
  EXPECT_TRUE(c->Get("b"));
}

TEST(Cache, FifoEvictsFirstInsertedEvenIfRead) {
  FakeEnv env;
  auto c = Make("fifo", env);
  c->Put("a", "1");
  c->Put("b", "2");
  c->Put("c", "3");
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c->Get("a"));
  c->Put("d", "4");
  EXPECT_FALSE(c->Get("a"));
  EXPECT_TRUE(c->Get("b"));
}

TEST(Cache, TtlExpiresWithTheClock) {
  FakeEnv env;
  auto c = Make("lru", env, 1 << 20, milliseconds(1000));
  c->Put("k", "v");
  env.Advance(milliseconds(999));
  EXPECT_EQ(c->Get("k").value(), "v");
  env.Advance(milliseconds(1));
  EXPECT_FALSE(c->Get("k"));
  EXPECT_EQ(c->Stats().expirations, 1u);
  EXPECT_EQ(c->Stats().entries, 0u);
}

TEST(Cache, PerEntryTtlOverridesTheDefault) {
  FakeEnv env;
  auto c = Make("lru", env, 1 << 20, milliseconds(1000));
  c->Put("short", "v", milliseconds(10));
  c->Put("forever", "v", milliseconds(0));
  env.Advance(milliseconds(50));
  EXPECT_FALSE(c->Get("short"));
  env.Advance(std::chrono::hours(1000));
  EXPECT_TRUE(c->Get("forever"));
}

TEST(Cache, ByteBoundHoldsAndOverwriteRecountsBytes) {
  FakeEnv env;
  auto c = Make("lru", env, 4096);
  for (int i = 0; i < 200; ++i) {
    c->Put("key" + std::to_string(i), std::string(i % 50, 'x'));
    ASSERT_LE(c->Stats().bytes, 4096u);
  }
  c->Put("same", std::string(100, 'x'));
  uint64_t before = c->Stats().bytes;
  c->Put("same", std::string(10, 'x'));
  EXPECT_EQ(c->Stats().bytes, before - 90);
  c->Put("huge", std::string(5000, 'x'));  // larger than the cache: not stored
  EXPECT_FALSE(c->Get("huge"));
  EXPECT_LE(c->Stats().bytes, 4096u);
  c->Put("same", std::string(5000, 'x'));  // an oversized replacement drops the stale value
  EXPECT_FALSE(c->Get("same"));
}

TEST(Cache, OverwriteStartsTheEntryAfresh) {
  FakeEnv env;
  auto c = Make("fifo", env);
  c->Put("a", "1");
  c->Put("b", "2");
  c->Put("c", "3");
  c->Put("a", "9");  // a goes to the back of the queue, so b is now the oldest
  c->Put("d", "4");
  EXPECT_FALSE(c->Get("b"));
  EXPECT_EQ(c->Get("a").value(), "9");
  EXPECT_EQ(c->Stats().entries, 3u);
}

TEST(Cache, CountsHitsAndMisses) {
  FakeEnv env;
  auto c = Make("lru", env);
  c->Put("a", "1");
  EXPECT_EQ(c->Get("a").value(), "1");
  EXPECT_FALSE(c->Get("zz"));
  auto s = c->Stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.entries, 1u);
  EXPECT_EQ(s.bytes, 2 + kEntryOverhead);
}

TEST(Cache, EraseAndStats) {
  FakeEnv env;
  auto c = Make("lru", env);
  c->Put("a", "1");
  EXPECT_TRUE(c->Erase("a"));
  EXPECT_FALSE(c->Erase("a"));
  EXPECT_FALSE(c->Get("a"));
  auto s = c->Stats();
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.bytes, 0u);
}

TEST(Cache, UnknownPolicyThrowsNamingIt) {
  FakeEnv env;
  try {
    Make("random", env);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("random"), std::string::npos) << e.what();
  }
}

TEST(Cache, ConcurrentUseKeepsTheBound) {
  for (const char* policy : {"lru", "lfu", "fifo"}) {
    auto c = Cache::Create({policy, 64 * 1024, milliseconds(0)}, Env::Default());
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 5000; ++i) {
          std::string k = "k" + std::to_string((i * 7 + t) % 997);
          if (i % 3 == 0)
            c->Put(k, std::string(i % 100, 'v'));
          else if (i % 11 == 0)
            c->Erase(k);
          else
            c->Get(k);
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_LE(c->Stats().bytes, 64u * 1024) << policy;
  }
}

}  // namespace
}  // namespace millions::cache
