// ReshardWatch's pure parts: the view of a plan (moves by state, users, rows, pauses p50/p99/max,
// running or stopped, done) and its millions_reshard_* series as the runner's /metrics renders
// them.
#include "ctl/reshard_watch.h"

#include <gtest/gtest.h>

namespace millions::ctl {
namespace {

using data::MoveState;

data::ReshardPlan TwoToThree() {
  auto f = data::MakeBalancedShardFunction();
  data::ShardMap two = data::NextShardMap(*f, {"pg1", "pg2"}, 64, nullptr);
  data::ShardMap three = data::NextShardMap(*f, {"pg1", "pg2", "pg3"}, 64, &two);
  return *data::MakeReshardPlan(two, three, 0);
}

void SwitchMove(data::ReshardPlan* plan, size_t m, int64_t pause_ms) {
  for (MoveState s : {MoveState::kCopying, MoveState::kCatchingUp, MoveState::kFrozen,
                      MoveState::kVerified, MoveState::kSwitched})
    ASSERT_TRUE(data::Advance(plan, m, s, 1000).ok());
  plan->moves[m].users = 10;
  plan->moves[m].rows = 100;
  plan->moves[m].pause_ms = pause_ms;
}

TEST(ReshardWatchTest, AViewCountsMovesRowsAndPauses) {
  data::ReshardPlan plan = TwoToThree();
  ASSERT_EQ(plan.moves.size(), 21u);
  for (size_t m = 0; m < 4; ++m) SwitchMove(&plan, m, int64_t(10 * (m + 1)));  // 10..40 ms
  ASSERT_TRUE(data::Advance(&plan, 4, MoveState::kCopying, 1000).ok());
  data::ReshardLockHolder holder{"box", 4242, 0, 1};
  ReshardView v = ViewOf(plan, holder, 2000);
  EXPECT_TRUE(v.present && v.running && !v.done);
  EXPECT_EQ(v.holder, "pid 4242 on box");
  EXPECT_EQ(v.shards_total, 21);
  EXPECT_EQ(v.shards_switched, 4);
  EXPECT_EQ(v.states["switched"], 4);
  EXPECT_EQ(v.states["copying"], 1);
  EXPECT_EQ(v.states["pending"], 16);
  EXPECT_EQ(v.users, 40);
  EXPECT_EQ(v.rows, 400);
  EXPECT_EQ(v.pause_p50_ms, 20);
  EXPECT_EQ(v.pause_p99_ms, 40);
  EXPECT_EQ(v.pause_max_ms, 40);
  EXPECT_EQ(ReshardViewJson(v).at("state"), "running");
  EXPECT_EQ(ReshardViewJson(ViewOf(plan, std::nullopt, 2000)).at("state"), "stopped")
      << "a plan not done with nobody holding the lock: a reshard to resume";

  metrics::Registry registry;
  registry.AddCollector([&v](metrics::Families* out) { AddReshardFamilies(out, v); });
  const std::string text = registry.Render();
  EXPECT_NE(text.find("millions_reshard_running 1"), std::string::npos) << text;
  EXPECT_NE(text.find("millions_reshard_shards{state=\"switched\"} 4"), std::string::npos);
  EXPECT_NE(text.find("millions_reshard_shards{state=\"cleaned\"} 0"), std::string::npos);
  EXPECT_NE(text.find("millions_reshard_rows_moved 400"), std::string::npos);
  EXPECT_NE(text.find("millions_reshard_pause_ms{quantile=\"0.99\"} 40"), std::string::npos);

  metrics::Registry none;
  none.AddCollector([](metrics::Families* out) { AddReshardFamilies(out, ReshardView{}); });
  EXPECT_EQ(none.Render().find("millions_reshard"), std::string::npos)
      << "no plan ever written: no series";
}

}  // namespace
}  // namespace millions::ctl
