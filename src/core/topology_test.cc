// The shared part of a topology (core/topology.h) as files write it: the queue's nodes (NATS
// servers, photo workers) and [nats], the timeline store's nodes and [timeline], with the errors
// that name what is missing. The web role's
// tables are tested with their reader (roles/web/settings_test.cc).
#include "core/topology.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace millions::topo {
namespace {

std::string Write(const std::string& text) {
  char path[] = "/tmp/millions-topology-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  std::ofstream(path) << text;
  return path;
}

// Loads `text` and checks the shared tables; the error, or "" when it loads.
std::string LoadError(const std::string& text, Topology* out = nullptr) {
  std::string path = Write(text);
  try {
    Topology t = Topology::Load(path);
    t.Check({});
    if (out) *out = t;
  } catch (const config::ConfigError& e) {
    unlink(path.c_str());
    return e.what();
  }
  unlink(path.c_str());
  return "";
}

constexpr const char* kOneNats = R"([[dc]]
name = "dc1"
[[nats.node]]
name = "nats1"
dc = "dc1"
listen = "127.0.0.1:24222"
admin = "127.0.0.1:28222"
)";

constexpr const char* kWorkers = R"([[worker.node]]
name = "worker1"
listen = "127.0.2.1:8090"
[[worker.node]]
name = "worker2"
listen = "127.0.2.2:8090"
)";

// `size` servers, each with its route listener but the last, which has `last_peer`.
std::string Cluster(const std::string& last_peer, int size = 3) {
  std::string s = "[[dc]]\nname = \"dc1\"\n";
  for (int i = 1; i <= size; ++i) {
    std::string n = std::to_string(i);
    s += "[[nats.node]]\nname = \"nats" + n + "\"\nlisten = \"127.0.0.1:2422" + n +
         "\"\nadmin = \"127.0.0.1:2822" + n + "\"\n";
    if (i < size || !last_peer.empty())
      s += "peer_listen = \"" + (i < size ? "127.0.0.1:2624" + n : last_peer) + "\"\n";
  }
  return s;
}

TEST(TopologyQueue, NatsNodesAndWorkersAreRead) {
  Topology t;
  ASSERT_EQ(LoadError(std::string(kOneNats) + kWorkers, &t), "");
  ASSERT_EQ(t.nats.size(), 1u);
  EXPECT_EQ(t.nats[0].name, "nats1");
  EXPECT_EQ(t.nats[0].listen, "127.0.0.1:24222");
  EXPECT_EQ(t.nats[0].admin, "127.0.0.1:28222");
  EXPECT_EQ(t.nats[0].peer, "") << "one server needs no route listener";
  EXPECT_EQ(t.nats_stream_replicas, 1) << "the default";
  ASSERT_EQ(t.worker.size(), 2u);
  EXPECT_EQ(t.worker[1].name, "worker2");
  EXPECT_EQ(t.worker[1].listen, "127.0.2.2:8090");
  EXPECT_EQ(t.worker[1].dc, "dc1") << "the first dc when none is named";
}

TEST(TopologyQueue, AClusterReadsItsRoutesAndReplicas) {
  Topology t;
  ASSERT_EQ(LoadError(Cluster("127.0.0.1:26243") + "[nats]\nstream_replicas = 3\n", &t), "");
  ASSERT_EQ(t.nats.size(), 3u);
  EXPECT_EQ(t.nats[2].peer, "127.0.0.1:26243");
  EXPECT_EQ(t.nats_stream_replicas, 3);
}

TEST(TopologyQueue, AClusterMemberWithoutARouteListenerIsNamed) {
  std::string err = LoadError(Cluster(""));
  EXPECT_NE(err.find("'nats3' needs peer_listen"), std::string::npos) << err;
}

TEST(TopologyQueue, ANatsNodeNeedsItsMonitor) {
  std::string err = LoadError("[[nats.node]]\nname = \"n1\"\nlisten = \"127.0.0.1:24222\"\n");
  EXPECT_NE(err.find("'n1' needs admin"), std::string::npos) << err;
}

TEST(TopologyQueue, StreamReplicasAreBoundedByTheServers) {
  std::string err = LoadError(std::string(kOneNats) + "[nats]\nstream_replicas = 3\n");
  EXPECT_NE(err.find("stream_replicas = 3 needs as many [[nats.node]]"), std::string::npos) << err;
  // JetStream keeps at most five replicas of a stream, however many servers there are.
  err = LoadError(Cluster("127.0.0.1:26246", 6) + "[nats]\nstream_replicas = 6\n");
  EXPECT_NE(err.find("stream_replicas' must be between 1 and 5"), std::string::npos) << err;
  EXPECT_EQ(LoadError(Cluster("127.0.0.1:26246", 6) + "[nats]\nstream_replicas = 5\n"), "");
  EXPECT_NE(LoadError(std::string(kOneNats) + "[nats]\nstream_replicas = 0\n"), "");
  EXPECT_EQ(LoadError(std::string(kOneNats) + "[nats]\nstream_replicas = 1\n"), "");
}

TEST(TopologyQueue, WorkersNeedNats) {
  std::string err = LoadError(std::string("[[dc]]\nname = \"dc1\"\n") + kWorkers);
  EXPECT_NE(err.find("workers take jobs from NATS: the topology has no [[nats.node]]"),
            std::string::npos)
      << err;
}

TEST(TopologyQueue, UnknownKeysInTheQueueTablesAreRefused) {
  std::string err = LoadError(std::string(kOneNats) + "[nats]\nstream_replica = 1\n");
  EXPECT_NE(err.find("nats.stream_replica"), std::string::npos) << err;
  err = LoadError(std::string(kOneNats) + kWorkers + "admin = \"127.0.0.1:1\"\n");
  EXPECT_NE(err.find("admin"), std::string::npos) << "workers have no admin listener: " << err;
}

constexpr const char* kTimeline = R"([[dc]]
name = "dc1"
[[timeline.node]]
name = "timeline1"
listen = "127.0.0.1:26479"
[[timeline.node]]
name = "timeline2"
listen = "127.0.0.1:26480"
)";

TEST(TopologyTimeline, NodesAreReadInOrderTheFirstIsThePrimary) {
  Topology t;
  ASSERT_EQ(LoadError(kTimeline, &t), "");
  ASSERT_EQ(t.timeline.size(), 2u);
  EXPECT_EQ(t.timeline[0].name, "timeline1") << "the primary: the runner starts it first";
  EXPECT_EQ(t.timeline[1].name, "timeline2");
  EXPECT_EQ(t.timeline[1].listen, "127.0.0.1:26480");
  EXPECT_EQ(t.timeline[1].dc, "dc1");
  EXPECT_EQ(t.timeline_settings.maxmemory, "256mb") << "the default";
  ASSERT_EQ(LoadError(std::string(kTimeline) + "[timeline]\nmaxmemory = \"1gb\"\n", &t), "");
  EXPECT_EQ(t.timeline_settings.maxmemory, "1gb");
  ASSERT_EQ(LoadError("[[dc]]\nname = \"dc1\"\n", &t), "");
  EXPECT_TRUE(t.timeline.empty()) << "optional: without it, feeds come from the database";
}

TEST(TopologyTimeline, BadNodesAndSizesAreNamed) {
  std::string err = LoadError(std::string(kTimeline) + "[timeline]\nmaxmemory = \"lots\"\n");
  EXPECT_NE(err.find("[timeline] maxmemory must be a size"), std::string::npos) << err;
  err = LoadError("[[timeline.node]]\nname = \"t1\"\n");
  EXPECT_NE(err.find("every [[timeline.node]] needs a name and a listen address"),
            std::string::npos)
      << err;
  err = LoadError(std::string(kTimeline) + "[[redis.node]]\nname = \"timeline1\"\n" +
                  "listen = \"127.0.0.1:26379\"\n");
  EXPECT_NE(err.find("two nodes are named 'timeline1'"), std::string::npos) << err;
  err = LoadError(std::string(kTimeline) + "[[timeline.node]]\nname = \"t3\"\n" +
                  "listen = \"127.0.0.1:26481\"\nadmin = \"127.0.0.1:1\"\n");
  EXPECT_NE(err.find("timeline.node[2].admin"), std::string::npos) << err;
}

// [timeline] is read by two readers: maxmemory here, cap and celebrity_followers by the web
// role's. So the table is not shared: a balancer (Check with its own tables) does not refuse the
// web role's keys, `up` (Check({"*"})) refuses them only when no reader read them, and a typo
// is refused wherever the table is checked.
TEST(TopologyTimeline, TheWebRolesKeysPassOnceItsReaderReadsThem) {
  std::string text = std::string(kTimeline) +
                     "[timeline]\nmaxmemory = \"256mb\"\ncap = 800\ncelebrity_followers = 10000\n";
  std::string path = Write(text);
  Topology t = Topology::Load(path);
  EXPECT_NO_THROW(t.Check({})) << "a role that does not read [timeline] (the balancer)";
  EXPECT_THROW(t.Check({"*"}), config::ConfigError) << "nobody read cap yet";
  EXPECT_THROW(t.Check({"timeline"}), config::ConfigError);
  auto table = t.file().Table("timeline");  // what the web role's reader does
  int64_t cap = 0, celebrity = 0;
  table.Get("cap", &cap, 1, 1'000'000);
  table.Get("celebrity_followers", &celebrity, 1, int64_t{1} << 40);
  EXPECT_EQ(cap, 800);
  EXPECT_NO_THROW(t.Check({"timeline"}));
  EXPECT_NO_THROW(t.Check({"*"}));
  unlink(path.c_str());
  path = Write(text + "maxmemroy = \"1mb\"\n");
  t = Topology::Load(path);
  t.file().Table("timeline").Get("cap", &cap, 1, 1'000'000);
  t.file().Table("timeline").Get("celebrity_followers", &celebrity, 1, int64_t{1} << 40);
  try {
    t.Check({"*"});
    ADD_FAILURE() << "a misspelt key passed";
  } catch (const config::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown key 'timeline.maxmemroy'"), std::string::npos)
        << e.what();
  }
  unlink(path.c_str());
}

}  // namespace
}  // namespace millions::topo

namespace millions::topo {
namespace {

// Four members in two clusters (docs/sharding.md), under a [shards] table.
std::string Pg(const char* name, int port, const char* cluster) {
  std::string s = std::string("[[postgres.node]]\nname = \"") + name +
                  "\"\nlisten = \"127.0.0.1:" + std::to_string(port) +
                  "\"\nrest = \"127.0.0.1:" + std::to_string(port + 1000) + "\"\n";
  if (cluster) s += std::string("cluster = \"") + cluster + "\"\n";
  return s;
}

TEST(TopologyShards, ClustersAreReadInOrderEachItsOwnScope) {
  Topology t;
  std::string text = "[shards]\nfunction = \"ring\"\nlogical = 256\n" + Pg("pg1", 5001, "s2") +
                     Pg("pg2", 5002, "s1") + Pg("pg3", 5003, "s2") + Pg("pg4", 5004, "s1");
  ASSERT_EQ(LoadError(text, &t), "");
  EXPECT_TRUE(t.shards.enabled);
  EXPECT_EQ(t.shards.function, "ring");
  EXPECT_EQ(t.shards.logical, 256);
  EXPECT_EQ(t.shards.initial, 0) << "the first map uses every cluster";
  ASSERT_EQ(t.pg_clusters.size(), 2u);
  EXPECT_EQ(t.pg_clusters[0].name, "s2") << "the order the file first names them";
  EXPECT_EQ(t.pg_clusters[0].scope, "millions-s2");
  ASSERT_EQ(t.pg_clusters[0].nodes.size(), 2u);
  EXPECT_EQ(t.pg_clusters[0].nodes[1].name, "pg3");
  EXPECT_EQ(t.pg_clusters[1].scope, "millions-s1");
  EXPECT_EQ(ClusterOfNode(t, "pg4")->name, "s1");
  EXPECT_EQ(ClusterOfNode(t, "pg9"), nullptr);
  EXPECT_EQ(t.postgres.size(), 4u) << "every member is still a postgres node";
}

TEST(TopologyShards, WithoutShardsAllMembersAreOneClusterAsBefore) {
  Topology t;
  ASSERT_EQ(LoadError(Pg("pg1", 5001, nullptr) + Pg("pg2", 5002, nullptr), &t), "");
  EXPECT_FALSE(t.shards.enabled);
  EXPECT_EQ(t.shards.logical, 1024);
  ASSERT_EQ(t.pg_clusters.size(), 1u);
  EXPECT_EQ(t.pg_clusters[0].name, "");
  EXPECT_EQ(t.pg_clusters[0].scope, "millions") << "the scope older run dirs were made with";
  EXPECT_EQ(t.pg_clusters[0].nodes.size(), 2u);
  Topology none;
  ASSERT_EQ(LoadError("", &none), "");
  EXPECT_TRUE(none.pg_clusters.empty());
}

TEST(TopologyShards, MistakesAreNamed) {
  EXPECT_NE(LoadError(Pg("pg1", 5001, "s1")).find("no [shards] table"), std::string::npos);
  EXPECT_NE(LoadError("[shards]\n" + Pg("pg1", 5001, nullptr)).find("needs cluster"),
            std::string::npos);
  EXPECT_NE(LoadError("[shards]\n" + Pg("pg1", 5001, "S-1")).find("lower case"), std::string::npos);
  EXPECT_NE(LoadError("[shards]\nfunction = \"hash\"\n" + Pg("pg1", 5001, "s1")).find("function"),
            std::string::npos);
  EXPECT_NE(LoadError("[shards]\nlogical = 9000\n" + Pg("pg1", 5001, "s1")).find("logical"),
            std::string::npos);
  EXPECT_NE(LoadError("[shards]\n").find("needs [[postgres.node]]"), std::string::npos);
  EXPECT_NE(LoadError("[shards]\ninitial = 2\n" + Pg("pg1", 5001, "s1")).find("initial = 2"),
            std::string::npos)
      << "more initial clusters than the topology has";
  Topology two;
  ASSERT_EQ(
      LoadError("[shards]\ninitial = 1\n" + Pg("pg1", 5001, "s1") + Pg("pg2", 5002, "s2"), &two),
      "");
  EXPECT_EQ(two.shards.initial, 1);
  EXPECT_NE(LoadError("[shards]\nshards = 2\n" + Pg("pg1", 5001, "s1")).find("shards"),
            std::string::npos)
      << "an unknown key in [shards]";
}

}  // namespace
}  // namespace millions::topo

namespace millions::topo {
namespace {

// [postgres] primary_dc (docs/datacentres.md): a Patroni cluster per DC, the primary DC's first
// with the scope every run directory had, each other DC's a standby cluster of it.
std::string TwoDcs(const std::string& postgres) {
  return "[[dc]]\nname = \"dc1\"\n[[dc]]\nname = \"dc2\"\n[postgres]\n" + postgres +
         "[[postgres.node]]\nname = \"pg3\"\ndc = \"dc2\"\nlisten = \"127.0.0.1:5434\"\n"
         "[[postgres.node]]\nname = \"pg1\"\ndc = \"dc1\"\nlisten = \"127.0.0.1:5432\"\n"
         "[[postgres.node]]\nname = \"pg2\"\ndc = \"dc1\"\nlisten = \"127.0.0.1:5433\"\n";
}

TEST(TopologyDcs, EachDcIsAClusterTheOthersStandbysOfThePrimaryDc) {
  Topology t;
  ASSERT_EQ(LoadError(TwoDcs("primary_dc = \"dc1\"\ndc_failover_after_ms = 5000\n"), &t), "");
  ASSERT_EQ(t.dc_clusters.size(), 2u);
  EXPECT_EQ(t.dc_clusters[0].scope, "millions");
  EXPECT_EQ(t.dc_clusters[0].dc, "dc1");
  EXPECT_FALSE(t.dc_clusters[0].standby);
  ASSERT_EQ(t.dc_clusters[0].nodes.size(), 2u);
  EXPECT_EQ(t.dc_clusters[1].scope, "millions-dc2");
  EXPECT_TRUE(t.dc_clusters[1].standby);
  EXPECT_EQ(t.pg_dc_failover_after_ms, 5000);
  // The primary DC's members start first (a standby cluster starts by a base backup from them);
  // the data layer still sees one set of every member.
  EXPECT_EQ(t.postgres.front().name, "pg1");
  ASSERT_EQ(t.pg_clusters.size(), 1u);
  EXPECT_EQ(t.pg_clusters[0].nodes.size(), 3u);
  EXPECT_EQ(PatroniClusterOfNode(t, "pg3")->scope, "millions-dc2");
  // Without primary_dc: one cluster, as before.
  ASSERT_EQ(LoadError(TwoDcs(""), &t), "");
  EXPECT_TRUE(t.dc_clusters.empty());
  EXPECT_EQ(PatroniClusterOfNode(t, "pg3")->scope, "millions");
}

TEST(TopologyDcs, AnUnknownOrEmptyPrimaryDcIsNamed) {
  EXPECT_NE(LoadError(TwoDcs("primary_dc = \"dc9\"\n")).find("unknown dc 'dc9'"),
            std::string::npos);
  std::string no_pg =
      "[[dc]]\nname = \"dc1\"\n[[dc]]\nname = \"dc2\"\n[postgres]\n"
      "primary_dc = \"dc2\"\n[[postgres.node]]\nname = \"pg1\"\ndc = \"dc1\"\n"
      "listen = \"127.0.0.1:5432\"\n";
  EXPECT_NE(LoadError(no_pg).find("no [[postgres.node]] is in it"), std::string::npos);
}

}  // namespace
}  // namespace millions::topo
