// SeedGenerator: the same seed makes the same rows in any order; IDs name the handle's logical
// shard and are unique; sign-ups fall in the window in index order; follows average what was
// asked, never self or twice, and gather on a few users as on a real service.
#include "data/seed_gen.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "data/ids.h"
#include "data/shard_map.h"

namespace millions::data {
namespace {

SeedOptions Opts(int64_t users) {
  SeedOptions o;
  o.users = users;
  o.follows_per_user = 10;
  o.photos_per_user = 2;
  o.seed = 7;
  o.now_ms = 1'800'000'000'000;
  return o;
}

TEST(SeedGenTest, UsersAreDeterministicShardedUniqueAndInTheWindow) {
  SeedGenerator g(Opts(100'000));
  std::set<int64_t> ids;
  int64_t last_ms = 0;
  for (int64_t i = 0; i < 100'000; ++i) {
    SeedUser u = g.User(i);
    EXPECT_EQ(u.handle, "seed" + std::to_string(i));
    ASSERT_EQ(ShardOf(u.id), LogicalShardOfHandle(u.handle, 1024)) << i;
    ASSERT_EQ(MillisOf(u.id), u.created_ms);
    ASSERT_GE(u.created_ms, last_ms);
    last_ms = u.created_ms;
    ASSERT_TRUE(ids.insert(u.id).second) << "duplicate id at " << i;
  }
  EXPECT_GE(g.User(0).created_ms, g.options().now_ms - 30LL * 86'400'000);
  EXPECT_LT(last_ms, g.options().now_ms - 3'600'000);
  SeedGenerator again(Opts(100'000));
  EXPECT_EQ(again.User(4242).id, g.User(4242).id);
  EXPECT_EQ(again.FolloweesOf(4242), g.FolloweesOf(4242));
}

TEST(SeedGenTest, FollowsAverageTheAskAndGatherOnAFewUsers) {
  const int64_t n = 20'000;
  SeedGenerator g(Opts(n));
  std::map<int64_t, int64_t> followers;
  int64_t edges = 0;
  for (int64_t i = 0; i < n; ++i) {
    auto f = g.FolloweesOf(i);
    std::set<int64_t> uniq(f.begin(), f.end());
    ASSERT_EQ(uniq.size(), f.size()) << "a duplicate edge from " << i;
    ASSERT_EQ(uniq.count(i), 0u) << i << " follows itself";
    for (int64_t who : f) {
      ASSERT_GE(who, 0);
      ASSERT_LT(who, n);
      ++followers[who];
    }
    edges += static_cast<int64_t>(f.size());
  }
  EXPECT_NEAR(double(edges) / n, 10.0, 0.5);
  std::vector<int64_t> counts;
  for (auto& [who, c] : followers) counts.push_back(c);
  std::sort(counts.rbegin(), counts.rend());
  int64_t top = 0;
  for (size_t i = 0; i < counts.size() && i < size_t(n / 100); ++i) top += counts[i];
  // With 1/rank popularity the top 1% of users hold about half the edges; uniform choice
  // would give them about 1-2%.
  EXPECT_GT(double(top) / edges, 0.3) << "top 1% hold " << top << " of " << edges;
  EXPECT_GT(counts.front(), n / 20) << "the most followed user is a celebrity";
}

TEST(SeedGenTest, PhotosBelongToTheirOwnerAndComeAfterTheSignUp) {
  SeedGenerator g(Opts(5'000));
  std::set<int64_t> ids;
  int64_t photos = 0;
  for (int64_t i = 0; i < 5'000; ++i) {
    SeedUser u = g.User(i);
    for (const auto& p : g.PhotosOf(i)) {
      ASSERT_EQ(p.owner_index, i);
      ASSERT_EQ(ShardOf(p.id), u.logical);
      ASSERT_GT(p.created_ms, u.created_ms);
      ASSERT_LT(p.created_ms, g.options().now_ms - 3'600'000);
      ASSERT_TRUE(ids.insert(p.id).second);
      ++photos;
    }
  }
  EXPECT_NEAR(double(photos) / 5'000, 2.0, 0.1);
}

}  // namespace
}  // namespace millions::data
