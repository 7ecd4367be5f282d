// The shared part of a topology (core/topology.h) as files write it: the queue's nodes (NATS
// servers, photo workers) and [nats], with the errors that name what is missing. The web role's
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

}  // namespace
}  // namespace millions::topo
