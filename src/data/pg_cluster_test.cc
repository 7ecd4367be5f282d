#include "data/pg_cluster.h"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>

namespace millions::data {
namespace {

MemberState M(const char* name, bool primary, int64_t lag, bool reachable = true) {
  MemberState m;
  m.name = name;
  m.primary = primary;
  m.lag_bytes = primary ? -1 : lag;
  m.reachable = reachable;
  return m;
}

ClusterView Three(int64_t lag2, int64_t lag3) {
  ClusterView v;
  v.members = {M("pg1", true, 0), M("pg2", false, lag2), M("pg3", false, lag3)};
  v.primary = 0;
  return v;
}

TEST(PickMember, ReplicaReadsSpreadOverReplicas) {
  ClusterView v = Three(0, 10);
  std::set<int> seen;
  for (uint64_t i = 0; i < 6; ++i) seen.insert(PickMember(v, Need::kReplica, 1024, i, {}));
  EXPECT_EQ(seen, (std::set<int>{1, 2}));
}

TEST(PickMember, LaggingReplicaIsSkipped) {
  ClusterView v = Three(0, 5000);
  for (uint64_t i = 0; i < 6; ++i) EXPECT_EQ(PickMember(v, Need::kReplica, 1024, i, {}), 1);
}

TEST(PickMember, NoQualifyingReplicaFallsBackToPrimary) {
  ClusterView v = Three(5000, 5000);
  EXPECT_EQ(PickMember(v, Need::kReplica, 1024, 0, {}), 0);
  v.members[1].reachable = false;
  v.members[2].lag_bytes = -1;  // unknown lag never qualifies
  EXPECT_EQ(PickMember(v, Need::kReplica, 1 << 30, 0, {}), 0);
}

TEST(PickMember, AvoidedMembersAreSkipped) {
  ClusterView v = Three(0, 0);
  EXPECT_EQ(PickMember(v, Need::kReplica, 1024, 0, {"pg2"}), 2);
  EXPECT_EQ(PickMember(v, Need::kReplica, 1024, 0, {"pg2", "pg3"}), 0);
  EXPECT_EQ(PickMember(v, Need::kReplica, 1024, 0, {"pg1", "pg2", "pg3"}), -1);
}

TEST(PickMember, WritesNeedThePrimary) {
  ClusterView v = Three(0, 0);
  EXPECT_EQ(PickMember(v, Need::kPrimary, 1024, 7, {}), 0);
  v.primary = -1;  // a failover under way
  EXPECT_EQ(PickMember(v, Need::kPrimary, 1024, 7, {}), -1);
  EXPECT_EQ(PickMember(v, Need::kReplica, 1024, 0, {}), 1);  // reads go on
}

// Two DCs: pg1 (primary) and pg2 in dc1, pg3 (the standby cluster's leader) in dc2.
ClusterView TwoDcs(int64_t lag3) {
  ClusterView v = Three(0, lag3);
  v.members[0].dc = v.members[1].dc = "dc1";
  v.members[2].dc = "dc2";
  return v;
}

TEST(PickMember, ReadsPreferTheirOwnDc) {
  ClusterView v = TwoDcs(0);
  for (uint64_t i = 0; i < 4; ++i) {
    EXPECT_EQ(PickMember(v, Need::kReplica, 1024, i, {}, "dc2"), 2);
    EXPECT_EQ(PickMember(v, Need::kReplica, 1024, i, {}, "dc1"), 1);
  }
  // The local standby too far behind: another DC's replica, then the primary.
  v = TwoDcs(1 << 20);
  EXPECT_EQ(PickMember(v, Need::kReplica, 1024, 0, {}, "dc2"), 1);
  EXPECT_EQ(PickMember(v, Need::kReplica, 1024, 0, {"pg2"}, "dc2"), 0);
  // No replica in dc1 left: dc1's own primary before dc2's standby.
  v = TwoDcs(0);
  EXPECT_EQ(PickMember(v, Need::kReplica, 1024, 0, {"pg2"}, "dc1"), 0);
  // Writes go to the primary wherever it is.
  EXPECT_EQ(PickMember(v, Need::kPrimary, 1024, 0, {}, "dc2"), 0);
}

TEST(PickPrimary, NewestTimelineWins) {
  ClusterView v = TwoDcs(0);
  v.members[2].primary = true;  // dc2 promoted, dc1's old primary still up
  v.members[0].timeline = 3;
  v.members[2].timeline = 4;
  EXPECT_EQ(PickPrimary(v, {0, 2}, "pg1"), 2);
  v.members[2].timeline = 3;  // the same timeline: only Patroni's leader counts
  EXPECT_EQ(PickPrimary(v, {0, 2}, "pg3"), 2);
  EXPECT_EQ(PickPrimary(v, {0, 2}, ""), -1);
}

TEST(ParseLsn, TextToBytes) {
  EXPECT_EQ(ParseLsn("0/0"), 0u);
  EXPECT_EQ(ParseLsn("0/16B3748"), 0x16B3748u);
  EXPECT_EQ(ParseLsn("16/B374D848"), (0x16ull << 32) | 0xB374D848ull);
  EXPECT_EQ(ParseLsn("16/B374D848") - ParseLsn("16/B374D000"), 0x848u);
  for (const char* bad : {"", "/", "1/", "/1", "x/1", "1/1/1", "123456789/0"})
    EXPECT_EQ(ParseLsn(bad), 0u) << bad;
}

// The collector keeps the names, types, labels and HELP the text renderer had (replication_test
// and dashboards read them). A member on a closed port: down, counted as a replica, no lag series.
TEST(PgCluster, CollectsMemberStateAsFamilies) {
  ClusterOptions o;
  o.members.push_back({"pg1", "127.0.0.1", 1, "", ""});
  o.connect_timeout_s = 1;
  o.poll_interval = std::chrono::milliseconds(60'000);
  PgCluster cluster(o);
  metrics::Registry registry;
  registry.AddCollector([&](metrics::Families* out) { cluster.CollectMetrics(out); });
  std::string text = registry.Render();
  for (const char* want :
       {"# HELP millions_db_member_up 1 when the data layer reaches the member.\n"
        "# TYPE millions_db_member_up gauge\n"
        "millions_db_member_up{shard=\"0\",member=\"pg1\",member_role=\"replica\"} 0\n",
        "# HELP millions_db_replica_lag_bytes WAL bytes a replica has yet to replay.\n"
        "# TYPE millions_db_replica_lag_bytes gauge\n",
        "# HELP millions_db_replica_lag_seconds Age of the last replayed transaction while a "
        "replica is behind.\n# TYPE millions_db_replica_lag_seconds gauge\n",
        "# HELP millions_db_failovers_total Primary changes the data layer has seen.\n"
        "# TYPE millions_db_failovers_total counter\n"
        "millions_db_failovers_total{shard=\"0\"} 0\n"})
    EXPECT_NE(text.find(want), std::string::npos) << want << "\nin:\n" << text;
  EXPECT_EQ(text.find("millions_db_replica_lag_bytes{"), std::string::npos) << text;
}

}  // namespace
}  // namespace millions::data
