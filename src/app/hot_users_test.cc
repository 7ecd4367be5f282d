// HotUsers: the hottest users of the last complete window, found among many cold ones by a
// sketch smaller than the crowd, with rates and error bounds; windows roll on a fake clock.
#include "app/hot_users.h"

#include <gtest/gtest.h>

#include <thread>

namespace millions::app {
namespace {

using namespace std::chrono_literals;

TEST(HotUsersTest, FindsTheHottestAmongManyColdOnes) {
  FakeEnv env;
  HotUsers hot(env, 16, 10s);
  // 1000 reads of user 7, 500 of user 8, and one each of 3000 others, interleaved: far more
  // distinct users than the sketch's 16 counters.
  int cold = 100;
  for (int round = 0; round < 500; ++round) {
    hot.Note(7);
    hot.Note(7);
    hot.Note(8);
    for (int i = 0; i < 6; ++i) hot.Note(cold++);
  }
  EXPECT_TRUE(hot.Top(2).empty()) << "no window has ended yet";
  env.Advance(10s);
  auto top = hot.Top(2);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].user_id, 7);
  EXPECT_EQ(top[1].user_id, 8);
  // Space-Saving overestimates by at most the recorded error, never underestimates.
  EXPECT_GE(top[0].per_second, 100.0);
  EXPECT_LE(top[0].per_second - top[0].error, 100.0);
  EXPECT_GE(top[1].per_second, 50.0);
  EXPECT_LE(top[1].per_second - top[1].error, 50.0);
}

TEST(HotUsersTest, AnswersFromTheLastCompleteWindowOnly) {
  FakeEnv env;
  HotUsers hot(env, 8, 10s);
  for (int i = 0; i < 30; ++i) hot.Note(1);
  env.Advance(10s);
  for (int i = 0; i < 50; ++i) hot.Note(2);  // the new window: not reported yet
  auto top = hot.Top(5);
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].user_id, 1);
  EXPECT_DOUBLE_EQ(top[0].per_second, 3.0);
  EXPECT_DOUBLE_EQ(top[0].error, 0.0);
  env.Advance(10s);
  top = hot.Top(5);
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].user_id, 2);
  EXPECT_DOUBLE_EQ(top[0].per_second, 5.0);
  env.Advance(25s);  // a whole window with no reads: nobody is hot
  EXPECT_TRUE(hot.Top(5).empty());
}

TEST(HotUsersTest, CountsFromManyThreadsAndExports) {
  FakeEnv env;
  auto hot = std::make_shared<HotUsers>(env, 8, 10s);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&hot] {
      for (int i = 0; i < 10000; ++i) hot->Note(42);
    });
  for (auto& t : threads) t.join();
  env.Advance(10s);
  auto top = hot->Top(1);
  ASSERT_EQ(top.size(), 1u);
  EXPECT_DOUBLE_EQ(top[0].per_second, 4000.0);

  metrics::Registry registry;
  HotUsers::Export(hot, registry);
  std::string text = registry.Render();
  EXPECT_NE(text.find("millions_hot_user_requests_per_second{user=\"42\"} 4000"), std::string::npos)
      << text;
  hot.reset();
  EXPECT_EQ(registry.Render().find("user=\"42\""), std::string::npos) << "gone with its owner";
}

}  // namespace
}  // namespace millions::app
