// The netns address plan and the topology rewrite, without making any namespace.
#include "ctl/netns.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "core/config.h"

namespace millions::ctl::netns {
namespace {

const char* kTopology = R"(
[deployment]
name = "two"
[[dc]]
name = "dc1"
[[dc]]
name = "dc2"
[network]
mode = "netns"
[etcd]
listen = "127.0.0.1:2379"
peer_listen = "127.0.0.1:2380"
[[postgres.node]]
name = "pg1"
dc = "dc1"
listen = "127.0.0.1:5432"
rest = "127.0.0.1:8008"
[[web.node]]
name = "web1"
dc = "dc2"
listen = "127.0.1.1:8081"
[[web.node]]
name = "web2"
dc = "dc1"
listen = "127.0.1.2:8081"
[[lb.node]]
name = "lb1"
dc = "dc1"
listen = "127.0.0.1:8080"
tls_listen = "127.0.0.1:8443"
admin = "127.0.0.1:9080"
)";

struct NetnsTest : ::testing::Test {
  void SetUp() override {
    path = std::filesystem::temp_directory_path() / ("netns_test_" + std::to_string(getpid()));
    std::ofstream(path) << kTopology;
    t = topo::Topology::Load(path.string());
  }
  void TearDown() override { std::filesystem::remove(path); }
  const Host& HostOf(const Network& n, const std::string& node) {
    for (const auto& h : n.hosts)
      if (h.node == node) return h;
    throw std::runtime_error("no host " + node);
  }
  std::filesystem::path path;
  topo::Topology t;
};

TEST_F(NetnsTest, ReadsTheMode) { EXPECT_EQ(t.network_mode, "netns"); }

TEST_F(NetnsTest, ModeDefaultsToLoopbackAndRejectsOthers) {
  std::ofstream(path) << "[deployment]\nname = \"x\"\n";
  EXPECT_EQ(topo::Topology::Load(path.string()).network_mode, "loopback");
  std::ofstream(path) << "[network]\nmode = \"bridge\"\n";
  EXPECT_THROW(topo::Topology::Load(path.string()), config::ConfigError);
}

TEST_F(NetnsTest, EveryNodeGetsAHostOnItsDcsNetwork) {
  Network n = Plan(t, 0);
  EXPECT_EQ(n.cidr, "198.18.0.0/21");
  ASSERT_EQ(n.hosts.size(), 5u);  // etcd, pg1, web1, web2, lb1
  EXPECT_EQ(n.hosts[0].node, "etcd");
  EXPECT_EQ(HostOf(n, "pg1").priv, "198.18.2.12");   // dc1: network 2
  EXPECT_EQ(HostOf(n, "web1").priv, "198.18.3.13");  // dc2: network 3
  EXPECT_EQ(HostOf(n, "web1").dc_index, 1);
  EXPECT_EQ(HostOf(n, "web2").priv, "198.18.2.14");
  EXPECT_EQ(n.dc_gateways, (std::vector<std::string>{"198.18.2.1", "198.18.3.1"}));
  EXPECT_EQ(n.client, "198.18.1.2");
  std::set<std::string> names, addresses;
  for (const auto& h : n.hosts) {
    EXPECT_TRUE(names.insert(h.ns).second) << h.ns;
    EXPECT_TRUE(addresses.insert(h.priv).second) << h.priv;
    EXPECT_EQ(h.ns.rfind("mn0-", 0), 0u);
  }
  EXPECT_EQ(n.Namespaces().size(), 7u);  // + router and public
}

TEST_F(NetnsTest, OnlyPublicRolesHaveAPublicAddress) {
  Network n = Plan(t, 0);
  for (const auto& h : n.hosts) EXPECT_EQ(h.pub.empty(), h.node != "lb1") << h.node;
  EXPECT_EQ(HostOf(n, "lb1").pub, "198.18.1.15");
  // The balancer serves clients on the public side, its admin listener on the private one.
  EXPECT_EQ(n.rewrite.at("127.0.0.1:8080"), "198.18.1.15:8080");
  EXPECT_EQ(n.rewrite.at("127.0.0.1:8443"), "198.18.1.15:8443");
  EXPECT_EQ(n.rewrite.at("127.0.0.1:9080"), "198.18.2.15:9080");
  EXPECT_EQ(n.rewrite.at("127.0.0.1:8008"), "198.18.2.12:8008");  // Patroni's REST
  EXPECT_EQ(n.rewrite.at("127.0.0.1:2380"), "198.18.2.11:2380");  // etcd's peers
}

TEST_F(NetnsTest, SlotsTakeApartRanges) {
  EXPECT_EQ(Plan(t, 1).cidr, "198.18.8.0/21");
  Network last = Plan(t, 63);
  EXPECT_EQ(last.cidr, "198.19.248.0/21");
  EXPECT_EQ(HostOf(last, "web1").priv, "198.19.251.13");
  EXPECT_EQ(last.router_ns, "mn63-router");
  EXPECT_EQ(last.root_link, "mn63h");
}

TEST_F(NetnsTest, ApplyAndRewriteMoveEveryAddress) {
  Network n = Plan(t, 2);
  topo::Topology moved = t;
  Apply(n, &moved);
  EXPECT_EQ(moved.web[0].listen, "198.18.19.13:8081");
  EXPECT_EQ(moved.lb[0].admin, "198.18.18.15:9080");
  // The clusters' copies of the postgres nodes move too (up creates the database through them).
  ASSERT_EQ(moved.pg_clusters.size(), 1u);
  ASSERT_EQ(moved.pg_clusters[0].nodes.size(), 1u);
  EXPECT_EQ(moved.pg_clusters[0].nodes[0].listen, moved.postgres[0].listen);
  EXPECT_EQ(moved.pg_clusters[0].nodes[0].rest, moved.postgres[0].rest);
  EXPECT_EQ(moved.pg_clusters[0].nodes[0].listen.rfind("198.18.", 0), 0u);
  EXPECT_EQ(moved.runner.etcd[0].peer, "198.18.18.11:2380");
  EXPECT_EQ(moved.runner.admin, t.runner.admin);  // the runner stays on the machine's loopback
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string out = RewriteText(n, text);
  EXPECT_EQ(out.find("127.0."), std::string::npos) << out;
  EXPECT_NE(out.find("listen = \"198.18.17.15:8080\""), std::string::npos);
  // The rewritten file reads back with the moved addresses.
  std::ofstream(path) << out;
  topo::Topology again = topo::Topology::Load(path.string());
  EXPECT_EQ(again.web[1].listen, moved.web[1].listen);
  EXPECT_EQ(again.postgres[0].rest, moved.postgres[0].rest);
  EXPECT_EQ(NamespacePath(n, "web2"), "/run/netns/mn2-web2");
  EXPECT_EQ(NamespacePath(n, "prometheus"), "");
  EXPECT_EQ(NamespacePath(Network{}, "web2"), "");
}

TEST_F(NetnsTest, TooManyDcsIsAnError) {
  topo::Topology big = t;
  big.dcs = {"a", "b", "c", "d", "e", "f", "g"};
  EXPECT_THROW(Plan(big, 0), config::ConfigError);
}

}  // namespace
}  // namespace millions::ctl::netns
