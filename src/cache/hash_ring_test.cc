#include "cache/hash_ring.h"

#include <gtest/gtest.h>

#include <map>

namespace millions::cache {
namespace {

const auto kAllUp = [](size_t) { return true; };

TEST(HashRing, StableAcrossInstancesAndOrder) {
  HashRing a({"r1", "r2", "r3"}), b({"r3", "r1", "r2"});
  for (int i = 0; i < 1000; ++i) {
    std::string k = "u:" + std::to_string(i);
    EXPECT_EQ(a.name(a.Route(k, kAllUp)), b.name(b.Route(k, kAllUp)));
  }
  // The hash is fixed: a change would send every key to a new node after an upgrade.
  EXPECT_EQ(StableHash("millions"), StableHash("millions"));
  EXPECT_NE(StableHash("u:1"), StableHash("u:2"));
}

TEST(HashRing, SpreadsKeysEvenly) {
  HashRing r({"r1", "r2", "r3", "r4"});
  std::map<int, int> count;
  for (int i = 0; i < 40000; ++i) ++count[r.Route("k" + std::to_string(i), kAllUp)];
  ASSERT_EQ(count.size(), 4u);
  for (auto& [node, n] : count) {
    EXPECT_GT(n, 7000) << node;
    EXPECT_LT(n, 13000) << node;
  }
}

TEST(HashRing, DownNodeMovesOnlyItsKeysToItsSuccessor) {
  HashRing r({"r1", "r2", "r3"});
  auto down1 = [](size_t n) { return n != 1; };
  int moved = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string k = "p:" + std::to_string(i);
    int before = r.Route(k, kAllUp);
    int after = r.Route(k, down1);
    auto [owner, next] = r.OwnerAndSuccessor(k);
    EXPECT_EQ(owner, before);
    if (before != 1) {
      EXPECT_EQ(after, before);  // keys of live nodes stay put
    } else {
      ++moved;
      EXPECT_EQ(after, next);  // a dead node's keys go to the next node clockwise
    }
  }
  EXPECT_GT(moved, 1000);
}

TEST(HashRing, NoneUpAndEmpty) {
  HashRing r({"r1", "r2"});
  EXPECT_EQ(r.Route("x", [](size_t) { return false; }), -1);
  HashRing empty({});
  EXPECT_EQ(empty.Route("x", kAllUp), -1);
  HashRing one({"r1"});
  EXPECT_EQ(one.OwnerAndSuccessor("x").second, -1);
}

}  // namespace
}  // namespace millions::cache
