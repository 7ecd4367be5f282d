// ReshardPlan: a plan moves exactly the shards whose cluster changes, steps go only forward (or
// back to a fresh copy), the map in force follows the cut-overs, progress and ETA are computed
// from the moves, and the plan survives JSON (as it must across a crashed reshard) while a
// damaged plan is refused.
#include "data/reshard_plan.h"

#include <gtest/gtest.h>

namespace millions::data {
namespace {

ShardMap TwoToThree(ShardMap* next) {
  auto f = MakeBalancedShardFunction();
  ShardMap two = NextShardMap(*f, {"pg1", "pg2"}, 64, nullptr);
  *next = NextShardMap(*f, {"pg1", "pg2", "pg3"}, 64, &two);
  return two;
}

TEST(ReshardPlanTest, MovesOnlyTheShardsThatChangeCluster) {
  ShardMap three;
  ShardMap two = TwoToThree(&three);
  auto plan = MakeReshardPlan(two, three, 1000);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->moves.size(), MovedShards(two, three).size());
  EXPECT_EQ(plan->moves.size(), 21u);  // balanced: 64 / 3, rounded down, go to the new cluster
  for (const auto& m : plan->moves) {
    EXPECT_EQ(m.to, "pg3");
    EXPECT_EQ(m.from, two.ClusterOf(m.logical));
    EXPECT_EQ(m.state, MoveState::kPending);
  }
  EXPECT_FALSE(plan->done());
  EXPECT_FALSE(MakeReshardPlan(three, two, 0).ok()) << "an older map is no target";
  ShardMap other = three;
  other.owner.pop_back();
  EXPECT_FALSE(MakeReshardPlan(two, other, 0).ok()) << "the logical shard count is fixed";
}

TEST(ReshardPlanTest, StepsGoForwardOnlyAndTheMapFollowsTheCutOvers) {
  ShardMap three;
  ShardMap two = TwoToThree(&three);
  auto plan = *MakeReshardPlan(two, three, 0);
  EXPECT_FALSE(Advance(&plan, 0, MoveState::kSwitched, 1).ok()) << "no skipping the copy";
  ASSERT_TRUE(Advance(&plan, 0, MoveState::kCopying, 1).ok());
  ASSERT_TRUE(Advance(&plan, 0, MoveState::kCatchingUp, 2).ok());
  plan.moves[0].applied_seq = 17;
  ASSERT_TRUE(Advance(&plan, 0, MoveState::kCopying, 3).ok()) << "a lost change log recopies";
  EXPECT_EQ(plan.moves[0].applied_seq, 0);
  EXPECT_FALSE(Advance(&plan, 0, MoveState::kPending, 3).ok());
  ASSERT_TRUE(Advance(&plan, 0, MoveState::kCatchingUp, 4).ok());
  ASSERT_TRUE(Advance(&plan, 0, MoveState::kFrozen, 4).ok());
  ASSERT_TRUE(Advance(&plan, 0, MoveState::kCopying, 4).ok()) << "a failed verify recopies";
  for (MoveState s : {MoveState::kCatchingUp, MoveState::kFrozen, MoveState::kVerified})
    ASSERT_TRUE(Advance(&plan, 0, s, 4).ok());
  EXPECT_FALSE(Advance(&plan, 0, MoveState::kCopying, 4).ok()) << "not once verified";
  EXPECT_EQ(MapInForce(plan).version, two.version) << "nothing switched yet";
  ASSERT_TRUE(Advance(&plan, 0, MoveState::kSwitched, 5).ok());
  ShardMap now = MapInForce(plan);
  EXPECT_EQ(now.version, two.version + 1);
  EXPECT_EQ(now.ClusterOf(plan.moves[0].logical), "pg3");
  EXPECT_EQ(MovedShards(two, now).size(), 1u);
  // Every move through to the end: the map in force is the target's owners.
  for (size_t i = 0; i < plan.moves.size(); ++i)
    while (plan.moves[i].state != MoveState::kCleaned)
      ASSERT_TRUE(Advance(&plan, i, static_cast<MoveState>(int(plan.moves[i].state) + 1), 6).ok());
  EXPECT_TRUE(plan.done());
  EXPECT_TRUE(MovedShards(MapInForce(plan), three).empty());
}

TEST(ReshardPlanTest, NextMovesFinishesWhatIsInFlightFirst) {
  ShardMap three;
  ShardMap two = TwoToThree(&three);
  auto plan = *MakeReshardPlan(two, three, 0);
  auto next = NextMoves(plan, 2);
  EXPECT_EQ(next, (std::vector<size_t>{0, 1}));
  ASSERT_TRUE(Advance(&plan, 3, MoveState::kCopying, 1).ok());  // resumed with 3 in flight
  next = NextMoves(plan, 2);
  EXPECT_EQ(next, (std::vector<size_t>{3, 0}));
  for (MoveState s :
       {MoveState::kCatchingUp, MoveState::kFrozen, MoveState::kVerified, MoveState::kSwitched})
    ASSERT_TRUE(Advance(&plan, 3, s, 1).ok());
  next = NextMoves(plan, 2);
  EXPECT_EQ(next, (std::vector<size_t>{0, 1, 3})) << "switched: still to clean";
}

TEST(ReshardPlanTest, ProgressRateEtaAndPauses) {
  ShardMap three;
  ShardMap two = TwoToThree(&three);
  auto plan = *MakeReshardPlan(two, three, 0);
  auto p = Progress(plan, 10'000);
  EXPECT_EQ(p.shards_total, 21);
  EXPECT_EQ(p.eta_s, -1);
  EXPECT_NE(ProgressLine(p).find("ETA --"), std::string::npos);
  for (size_t i = 0; i < 7; ++i) {
    plan.moves[i].state = MoveState::kSwitched;
    plan.moves[i].users = 10;
    plan.moves[i].rows = 1000;
    plan.moves[i].pause_ms = static_cast<int64_t>(i) * 10;
  }
  p = Progress(plan, 10'000);  // 7 of 21 in 10 s: 20 s to go
  EXPECT_EQ(p.shards_switched, 7);
  EXPECT_EQ(p.users, 70);
  EXPECT_EQ(p.rows, 7000);
  EXPECT_DOUBLE_EQ(p.rows_per_s, 700);
  EXPECT_DOUBLE_EQ(p.eta_s, 20);
  EXPECT_EQ(p.pause_p50_ms, 30);
  EXPECT_EQ(p.pause_max_ms, 60);
  EXPECT_EQ(ProgressLine(p, 6),
            "[##....] 7/21 shards  70 users  7000 rows  700 rows/s  ETA 0:20  pause p50 30 ms max "
            "60 ms");
}

TEST(ReshardPlanTest, SurvivesJsonAndRefusesADamagedPlan) {
  ShardMap three;
  ShardMap two = TwoToThree(&three);
  auto plan = *MakeReshardPlan(two, three, 5);
  ASSERT_TRUE(Advance(&plan, 2, MoveState::kCopying, 9).ok());
  plan.moves[2].rows = 123;
  plan.moves[2].applied_seq = 45;
  std::string json = ReshardPlanToJson(plan);
  auto back = ReshardPlanFromJson(json);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(ReshardPlanToJson(*back), json);
  EXPECT_EQ(back->moves[2].state, MoveState::kCopying);
  EXPECT_EQ(back->moves[2].applied_seq, 45);
  EXPECT_EQ(back->updated_ms, 9);

  auto damaged = [&](std::string from, std::string to) {
    std::string j = json;
    auto at = j.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    j.replace(at, from.size(), to);
    return ReshardPlanFromJson(j).ok();
  };
  EXPECT_FALSE(damaged("\"copying\"", "\"teleporting\""));
  EXPECT_FALSE(damaged("\"to\":\"pg3\"", "\"to\":\"pg2\"")) << "disagrees with the target map";
  EXPECT_FALSE(damaged("\"rows\":123", "\"rows\":\"many\""));
  EXPECT_FALSE(ReshardPlanFromJson("[]").ok());
  EXPECT_FALSE(ReshardPlanFromJson("{").ok());
}

}  // namespace
}  // namespace millions::data
