#include "data/ids.h"

#include <gtest/gtest.h>

#include <set>

namespace millions::data {
namespace {

TEST(Ids, SortByTimeAndCarryTheShard) {
  FakeEnv env;
  IdGenerator gen(env, 37);
  int64_t a = gen.Next();
  env.Advance(std::chrono::milliseconds(5));
  int64_t b = gen.Next();
  EXPECT_LT(a, b);
  EXPECT_EQ(ShardOf(a), 37);
  EXPECT_EQ(ShardOf(b), 37);
  EXPECT_EQ(MillisOf(b), env.WallMillis());
}

TEST(Ids, UniqueWithinOneMillisecondAndWhenTheClockStepsBack) {
  FakeEnv env;
  IdGenerator gen(env, 1);
  std::set<int64_t> seen;
  for (int i = 0; i < 3000; ++i) ASSERT_TRUE(seen.insert(gen.Next()).second);
  env.SetWallMillis(env.WallMillis() - 1000);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(seen.insert(gen.Next()).second);
}

TEST(Ids, Parse) {
  EXPECT_EQ(ParseId("123").value(), 123);
  EXPECT_FALSE(ParseId("").has_value());
  EXPECT_FALSE(ParseId("0").has_value());
  EXPECT_FALSE(ParseId("-5").has_value());
  EXPECT_FALSE(ParseId("12a").has_value());
  EXPECT_FALSE(ParseId("99999999999999999999").has_value());
}

}  // namespace
}  // namespace millions::data
