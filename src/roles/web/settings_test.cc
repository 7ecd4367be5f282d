// Topology files: the shared tables and the web role's read into what the web nodes and the runner
// use, bad values refused with the key named, and each role checking only its own sections.
#include "roles/web/settings.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace millions::web {

using topo::Topology;
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
    Topology t = Topology::Load(path);
    ReadSettings(t);
    t.Check(kTables);
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
  WebNodeConfig w = ReadSettings(t);
  unlink(path.c_str());
  ASSERT_EQ(t.redis.size(), 2u);
  EXPECT_EQ(t.redis_settings.maxmemory, "128mb");
  EXPECT_EQ(t.redis_settings.eviction_policy, "allkeys-lfu");
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
  WebNodeConfig w = ReadSettings(t);
  unlink(path.c_str());
  EXPECT_TRUE(w.l2.nodes.empty());
  for (auto ttl : w.cache.ttl) EXPECT_EQ(ttl.count(), 1000);  // every kind
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

// A process reads and checks the shared tables and its own: the web node leaves the balancer's
// settings to the balancer, but a typo in its own tables or the shared ones is refused; a
// topology without a database loads (a balancer-only one), and `up`'s whole check catches all.
TEST(Topology, EachRoleChecksItsOwnSections) {
  EXPECT_EQ(LoadError("[lb]\npolicy = \"p2c\"\nwhatever = 1\n"), "");
  EXPECT_NE(LoadError("[web]\nthreadz = 2\n").find("web.threadz"), std::string::npos);
  EXPECT_NE(LoadError("[runner]\nrun_dri = \"x\"\n").find("runner.run_dri"), std::string::npos);
  EXPECT_NE(LoadError("[[web.node]]\nname = \"w2\"\nlisten = \"127.0.0.1:2\"\nport = 1\n")
                .find("web.node[1].port"),
            std::string::npos);
  // After kBase's [[postgres.node]], a key lands in that node: a shared table.
  EXPECT_NE(LoadError("typo = 1\n").find("postgres.node[0].typo"), std::string::npos);
  std::string path = Write("[lb]\nwhatever = 1\n");
  Topology t = Topology::Load(path);
  unlink(path.c_str());
  ReadSettings(t);
  try {
    t.Check({"*"});
    ADD_FAILURE() << "the whole check missed lb.whatever";
  } catch (const config::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("lb.whatever"), std::string::npos) << e.what();
  }
}

TEST(Topology, ABalancerOnlyTopologyNeedsNoDatabase) {
  char p[] = "/tmp/millions-topology-XXXXXX";
  int fd = mkstemp(p);
  close(fd);
  std::ofstream(p) << "[[lb.node]]\nname = \"lb1\"\nlisten = \"127.0.0.1:1\"\n"
                      "admin = \"127.0.0.1:2\"\n";
  Topology t = Topology::Load(p);
  unlink(p);
  EXPECT_TRUE(t.postgres.empty());
  EXPECT_TRUE(t.web.empty());
  ASSERT_EQ(t.lb.size(), 1u);
  EXPECT_EQ(t.lb[0].admin, "127.0.0.1:2");
}

}  // namespace
TEST(Topology, AuthThrottleAndTrustedBalancers) {
  std::string path = Write(R"([auth]
login_max_failures = 3
login_backoff_s = 30
signup_per_minute = 0
trusted_proxies = ["10.0.0.9"]
[[lb.node]]
name = "lb1"
listen = "127.0.0.2:8000"
admin = "127.0.0.2:8001"
tls_listen = "127.0.0.3:8443"
)");
  Topology t = Topology::Load(path);
  WebNodeConfig w = ReadSettings(t);
  unlink(path.c_str());
  EXPECT_TRUE(w.web.throttle.enabled);
  EXPECT_EQ(w.web.throttle.login_max_failures, 3);
  EXPECT_EQ(w.web.throttle.login_backoff, std::chrono::seconds(30));
  EXPECT_EQ(w.web.throttle.login_window, std::chrono::seconds(60)) << "defaults stay";
  EXPECT_EQ(w.web.throttle.signup_per_minute, 0);
  EXPECT_EQ(w.web.trusted_proxies, (std::vector<std::string>{"10.0.0.9", "127.0.0.2", "127.0.0.3"}))
      << "the balancers' own addresses are trusted, each once";
  EXPECT_NE(LoadError("[auth]\nlogin_max_failure = 3\n").find("auth.login_max_failure"),
            std::string::npos);
  EXPECT_NE(LoadError("[auth]\nlogin_max_failures = 0\n").find("login_max_failures"),
            std::string::npos);
}

}  // namespace millions::web
