#include "core/membership.h"

#include <gtest/gtest.h>

namespace millions::membership {
namespace {

TEST(Membership, RunnerStatusKeepsRunningNodesOfTheRole) {
  auto m = ParseRunnerStatus(R"({"nodes":[
      {"name":"web1","role":"web","state":"running","address":"127.0.0.1:1"},
      {"name":"web2","role":"web","state":"stopped","address":"127.0.0.1:2"},
      {"name":"lb1","role":"lb","state":"running","address":"127.0.0.1:3"},
      {"name":"web3","role":"web","state":"running","address":"127.0.0.1:4",
       "tls_address":"127.0.0.1:5"}]})",
                             "web");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m,
            (Members{{"web1", "127.0.0.1:1", 1, ""}, {"web3", "127.0.0.1:4", 1, "127.0.0.1:5"}}));
  EXPECT_FALSE(ParseRunnerStatus("{", "web").ok());
  EXPECT_FALSE(ParseRunnerStatus(R"({"nodes":3})", "web").ok());
}

TEST(Membership, SnapshotsNeverChangeAndEqualListsPublishNothing) {
  StaticMembership m({{"a", "127.0.0.1:1", 1, ""}});
  Snapshot before = m.Current();
  EXPECT_FALSE(m.Refresh());
  EXPECT_FALSE(m.Replace({{"a", "127.0.0.1:1", 1, ""}}));
  EXPECT_EQ(m.Current(), before);  // the same snapshot, not a copy
  EXPECT_TRUE(m.Replace({{"a", "127.0.0.1:1", 5, ""}}));
  EXPECT_EQ(before->at(0).weight, 1);  // a reader's snapshot is untouched
  EXPECT_EQ(m.Current()->at(0).weight, 5);
}

TEST(Membership, AnUnreachableRunnerKeepsTheStartingList) {
  RunnerMembership m("127.0.0.1:1", "web", {{"a", "127.0.0.1:9", 1, ""}});
  EXPECT_FALSE(m.Refresh());
  EXPECT_EQ(m.Current()->size(), 1u);
}

}  // namespace
}  // namespace millions::membership
