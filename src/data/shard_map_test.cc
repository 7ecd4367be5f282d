#include "data/shard_map.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "data/shard_map_etcd.h"

namespace millions::data {
namespace {

std::vector<std::string> Clusters(int n) {
  std::vector<std::string> c;
  for (int i = 1; i <= n; ++i) c.push_back("pg" + std::to_string(i));
  return c;
}

// Grows from 1 to `to` clusters one at a time; the fraction of shards each step moved.
std::vector<double> Growth(const ShardFunction& f, int to, int logical = 1024) {
  std::vector<double> moved;
  ShardMap m = NextShardMap(f, Clusters(1), logical, nullptr);
  for (int n = 2; n <= to; ++n) {
    ShardMap next = NextShardMap(f, Clusters(n), logical, &m);
    moved.push_back(double(MovedShards(m, next).size()) / logical);
    m = next;
  }
  return moved;
}

TEST(ShardMap, HandleShardIsStableAndSpread) {
  EXPECT_EQ(LogicalShardOfHandle("alice", 1024), LogicalShardOfHandle("alice", 1024));
  std::vector<int> n(16, 0);
  for (int i = 0; i < 16000; ++i) ++n[LogicalShardOfHandle("user" + std::to_string(i), 16)];
  for (int c : n) EXPECT_NEAR(c, 1000, 150);
}

TEST(ShardMap, ModuloMovesMostShards) {
  auto moved = Growth(*MakeModuloShardFunction(), 6);
  for (size_t i = 0; i < moved.size(); ++i) {
    double n = double(i + 1);  // from n to n+1 clusters
    EXPECT_NEAR(moved[i], n / (n + 1), 0.01) << "step " << i;
  }
}

TEST(ShardMap, RingMovesAboutOneShareButIsUneven) {
  auto f = MakeRingShardFunction();
  auto moved = Growth(*f, 6);
  for (size_t i = 0; i < moved.size(); ++i) {
    double n = double(i + 1);
    EXPECT_NEAR(moved[i], 1 / (n + 1), 0.12) << "step " << i;
  }
  ShardMap m = NextShardMap(*f, Clusters(4), 1024, nullptr);
  auto c = m.Counts();
  EXPECT_EQ(std::accumulate(c.begin(), c.end(), 0), 1024);
}

TEST(ShardMap, BalancedMovesTheLeastWithEqualCounts) {
  auto f = MakeBalancedShardFunction();
  ShardMap m = NextShardMap(*f, Clusters(1), 1024, nullptr);
  for (int n = 2; n <= 7; ++n) {
    ShardMap next = NextShardMap(*f, Clusters(n), 1024, &m);
    auto counts = next.Counts();
    auto [lo, hi] = std::minmax_element(counts.begin(), counts.end());
    EXPECT_LE(*hi - *lo, 1) << n << " clusters";
    // The least any equal-count rule can move: what the new cluster must receive.
    EXPECT_EQ(int(MovedShards(m, next).size()), counts.back()) << n << " clusters";
    EXPECT_EQ(next.version, m.version + 1);
    m = next;
  }
}

TEST(ShardMap, BalancedRemovingAClusterMovesOnlyItsShards) {
  auto f = MakeBalancedShardFunction();
  ShardMap m = NextShardMap(*f, Clusters(4), 1024, nullptr);
  ShardMap three = NextShardMap(*f, {"pg1", "pg2", "pg4"}, 1024, &m);
  for (int s : MovedShards(m, three)) EXPECT_EQ(m.ClusterOf(s), "pg3");
  EXPECT_EQ(MovedShards(m, three).size(), 256u);
}

TEST(ShardMap, AssignIsDeterministic) {
  for (const char* name : {"modulo", "ring", "balanced"}) {
    auto f = MakeShardFunction(name);
    ASSERT_NE(f, nullptr) << name;
    ShardMap a = NextShardMap(*f, Clusters(3), 512, nullptr);
    ShardMap b = NextShardMap(*f, Clusters(3), 512, nullptr);
    EXPECT_EQ(a.owner, b.owner) << name;
  }
  EXPECT_EQ(MakeShardFunction("random"), nullptr);
}

TEST(ShardMap, JsonRoundTripAndRejects) {
  ShardMap m = NextShardMap(*MakeBalancedShardFunction(), Clusters(3), 64, nullptr);
  auto back = ShardMapFromJson(ShardMapToJson(m));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->version, m.version);
  EXPECT_EQ(back->clusters, m.clusters);
  EXPECT_EQ(back->owner, m.owner);
  for (const char* bad : {"", "[]", R"({"version":1,"clusters":[],"owner":[0]})",
                          R"({"version":0,"clusters":["a"],"owner":[0]})",
                          R"({"version":1,"clusters":["a"],"owner":[1]})",
                          R"({"version":1,"clusters":["a"],"owner":[-1]})",
                          R"({"version":1,"clusters":[""],"owner":[0]})",
                          R"({"version":1,"clusters":["a"],"owner":[]})",
                          R"({"version":"1","clusters":["a"],"owner":[0]})"}) {
    auto r = ShardMapFromJson(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, "bad_shard_map");
    }
  }
}

// The watcher's snapshot only moves forward: a newer version is swapped in, an equal or older
// one (a stale etcd member, a poll racing a refresh) is not.
TEST(ShardMapSnapshot, SwapsOnlyToANewerVersion) {
  auto make = [](int64_t version) {
    auto m = std::make_shared<ShardMap>(
        NextShardMap(*MakeBalancedShardFunction(), {"a", "b"}, 16, nullptr));
    m->version = version;
    return std::shared_ptr<const ShardMap>(m);
  };
  std::atomic<std::shared_ptr<const ShardMap>> current;
  EXPECT_TRUE(SwapIfNewer(current, make(3))) << "the first map";
  EXPECT_FALSE(SwapIfNewer(current, make(3)));
  EXPECT_FALSE(SwapIfNewer(current, make(2)));
  EXPECT_EQ(current.load()->version, 3);
  auto four = make(4);
  EXPECT_TRUE(SwapIfNewer(current, four));
  EXPECT_EQ(current.load(), four);
  EXPECT_EQ(ShardMapKey("local"), "/millions/local/shardmap");
}

}  // namespace
}  // namespace millions::data
