// Topology files: the cache tier's tables read into what the web nodes and the runner use, and
// bad values refused with the key named.
#include "app/topology.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace millions::app {
namespace {

constexpr const char* kBase = R"([[web.node]]
name = "web1"
listen = "127.0.0.1:8081"
[[postgres.node]]
name = "pg1"
listen = "127.0.0.1:5432"
)";

std::string Write(const std::string& text) {
  char path[] = "/tmp/millions-topology-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  std::ofstream(path) << kBase << text;
  return path;
}

// The error Load throws for `text`, or "" when it loads.
std::string LoadError(const std::string& text) {
  std::string path = Write(text);
  try {
    Topology::Load(path);
  } catch (const config::ConfigError& e) {
    unlink(path.c_str());
    return e.what();
  }
  unlink(path.c_str());
  return "";
}

TEST(Topology, CacheTierTablesAreRead) {
  std::string path = Write(R"([cache]
l1_ttl_ms = 1500
hot_key_reads_per_s = 50
lease_ms = 3000
l2_timeout_ms = 80
[cache.ttl]
feed_ms = 5000
[redis]
maxmemory = "128mb"
eviction_policy = "allkeys-lfu"
[[redis.node]]
name = "redis1"
listen = "127.0.0.1:26379"
[[redis.node]]
name = "redis2"
listen = "127.0.0.1:26380"
)");
  Topology t = Topology::Load(path);
  unlink(path.c_str());
  ASSERT_EQ(t.redis.size(), 2u);
  EXPECT_EQ(t.redis_settings.maxmemory, "128mb");
  EXPECT_EQ(t.redis_settings.eviction_policy, "allkeys-lfu");
  const auto& w = t.web_defaults;
  ASSERT_EQ(w.l2.nodes.size(), 2u);
  EXPECT_EQ(w.l2.nodes[1].port, 26380);
  EXPECT_EQ(w.l2.timeout.count(), 80);
  EXPECT_EQ(w.l2.lease.count(), 3000);
  EXPECT_EQ(w.cache.lease_wait.count(), 3000);
  EXPECT_EQ(w.cache.l1_ttl.count(), 1500);
  EXPECT_EQ(w.cache.hot_key_reads_per_s, 50);
  EXPECT_EQ(w.cache.ttl[size_t(cache::Kind::kFeed)].count(), 5000);
  EXPECT_EQ(w.cache.ttl[size_t(cache::Kind::kUser)].count(), 300000);  // the default
}

TEST(Topology, NoCacheNodesMeansL1Only) {
  std::string path = Write("[cache]\nttl_ms = 1000\n");
  Topology t = Topology::Load(path);
  unlink(path.c_str());
  EXPECT_TRUE(t.web_defaults.l2.nodes.empty());
  for (auto ttl : t.web_defaults.cache.ttl) EXPECT_EQ(ttl.count(), 1000);  // every kind
}

TEST(Topology, BadCacheSettingsNameTheKey) {
  EXPECT_NE(LoadError("[redis]\nmaxmemory = \"lots\"\n").find("maxmemory"), std::string::npos);
  EXPECT_NE(LoadError("[redis]\neviction_policy = \"lru\"\n").find("eviction_policy"),
            std::string::npos);
  EXPECT_NE(LoadError("[cache]\nhot_key_reads_per_s = -1\n").find("hot_key_reads_per_s"),
            std::string::npos);
  EXPECT_NE(LoadError("[cache.ttl]\nfeeds_ms = 10\n").find("feeds_ms"), std::string::npos);
  EXPECT_NE(LoadError("[cache]\nttl_jitter = 0.9\n").find("ttl_jitter"), std::string::npos);
  EXPECT_NE(LoadError("[[redis.node]]\nname = \"r\"\n").find("listen"), std::string::npos);
  EXPECT_NE(LoadError("[[redis.node]]\nname = \"web1\"\nlisten = \"127.0.0.1:1\"\n")
                .find("two nodes are named 'web1'"),
            std::string::npos);
  EXPECT_EQ(LoadError(""), "");
}

// etcd's members and the watchdog's bound: read, and refused with the key named when wrong.
TEST(Topology, EtcdMembersAndTheFence) {
  std::string path = Write(
      "[[etcd.node]]\nname = \"e1\"\nlisten = \"127.0.0.1:1\"\npeer_listen = \"127.0.0.1:2\"\n"
      "[[etcd.node]]\nname = \"e2\"\nlisten = \"127.0.0.1:3\"\npeer_listen = \"127.0.0.1:4\"\n");
  Topology t = Topology::Load(path);
  unlink(path.c_str());
  ASSERT_EQ(t.runner.etcd.size(), 2u);
  EXPECT_EQ(t.runner.etcd[1].peer, "127.0.0.1:4");
  EXPECT_EQ(t.runner.fence_after_ms, 5000);  // half of the default ttl_s 10
  EXPECT_TRUE(t.runner.patroni_failsafe_mode);
  EXPECT_NE(
      LoadError("[[etcd.node]]\nname = \"e1\"\nlisten = \"127.0.0.1:1\"\n").find("peer_listen"),
      std::string::npos);
  EXPECT_NE(LoadError("[postgres.patroni]\nfence_after_ms = 10000\n").find("fence_after_ms"),
            std::string::npos);
  EXPECT_NE(LoadError("[postgres.patroni]\nfence_after_ms = -5\n").find("fence_after_ms"),
            std::string::npos);
  EXPECT_EQ(LoadError("[postgres.patroni]\nfence_after_ms = 0\n"), "");  // off
}

}  // namespace
}  // namespace millions::app
