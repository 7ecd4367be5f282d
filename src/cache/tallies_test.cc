#include "cache/tallies.h"

#include <gtest/gtest.h>

namespace millions::cache {
namespace {

using std::chrono::milliseconds;

TEST(LocalTallies, DistinctMembersCountsAndExpiry) {
  FakeEnv env;
  LocalTallies t(env, 100);
  ASSERT_TRUE(t.AddMembers("a", {1, 2, 2, 3}, milliseconds(1000)).ok());
  ASSERT_TRUE(t.AddMembers("a", {3, 4}, milliseconds(1000)).ok());
  EXPECT_EQ(*t.Distinct("a"), 4) << "members counted once";
  ASSERT_TRUE(t.AddCount("n", 2, milliseconds(1000)).ok());
  ASSERT_TRUE(t.AddCount("n", 5, milliseconds(2000)).ok());
  EXPECT_EQ(*t.Count("n"), 7);
  EXPECT_EQ(*t.Distinct("absent"), 0);
  EXPECT_EQ(*t.Count("absent"), 0);
  env.Advance(milliseconds(1000));
  EXPECT_EQ(*t.Distinct("a"), 0) << "expired";
  EXPECT_EQ(*t.Count("n"), 7) << "the last write moved its expiry";
  env.Advance(milliseconds(1000));
  EXPECT_EQ(*t.Count("n"), 0);
  EXPECT_EQ(t.keys(), 0u) << "expired keys are dropped: memory stays bounded";
}

TEST(LocalTallies, BoundedInMembers) {
  FakeEnv env;
  LocalTallies t(env, 3);
  ASSERT_TRUE(t.AddMembers("a", {1, 2}, milliseconds(1000)).ok());
  ASSERT_TRUE(t.AddMembers("b", {1, 2, 3}, milliseconds(1000)).ok());
  EXPECT_EQ(*t.Distinct("a") + *t.Distinct("b"), 3);
  env.Advance(milliseconds(1000));
  ASSERT_TRUE(t.AddMembers("c", {1, 2, 3}, milliseconds(1000)).ok());
  EXPECT_EQ(*t.Distinct("c"), 3) << "expired members free their room";
}

}  // namespace
}  // namespace millions::cache
