// Hosts in a topology (topology_hosts.cc): [[host]] tables and each node's host key with the
// errors that name what is wrong, --host's choice of nodes, and the etcd members' spread over the
// DCs (EtcdDcLossWarnings).
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "core/topology.h"

namespace millions::topo {
namespace {

// Loads `text`; the error, or "" when it loads.
std::string LoadError(const std::string& text, Topology* out = nullptr) {
  char path[] = "/tmp/millions-hosts-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  std::ofstream(path) << text;
  std::string err;
  try {
    Topology t = Topology::Load(path);
    t.Check({"*"});
    if (out) *out = t;
  } catch (const config::ConfigError& e) {
    err = e.what();
  }
  unlink(path);
  return err;
}

constexpr const char* kHosts = R"([[dc]]
name = "dc1"
[[dc]]
name = "dc2"
[[dc]]
name = "dc3"
[[host]]
name = "h1"
address = "127.0.0.1"
[[host]]
name = "h2"
address = "127.0.0.2"
admin = "127.0.0.2:7071"
[[host]]
name = "h3"
)";

std::string Etcd(const std::string& name, const std::string& dc, const std::string& host,
                 const std::string& ip, int port) {
  return "[[etcd.node]]\nname = \"" + name + "\"\ndc = \"" + dc + "\"\nhost = \"" + host +
         "\"\nlisten = \"" + ip + ":" + std::to_string(port) + "\"\npeer_listen = \"" + ip + ":" +
         std::to_string(port + 1) + "\"\n";
}

std::string Web(const std::string& name, const std::string& host, const std::string& listen) {
  return "[[web.node]]\nname = \"" + name + "\"\nhost = \"" + host + "\"\nlisten = \"" + listen +
         "\"\n";
}

TEST(TopologyHosts, HostsAndEachNodesHostAreRead) {
  Topology t;
  ASSERT_EQ(LoadError(std::string(kHosts) + Etcd("e1", "dc1", "h1", "127.0.0.1", 2379) +
                          Etcd("e2", "dc2", "h2", "127.0.0.2", 2379) +
                          Etcd("e3", "dc3", "h3", "127.0.0.9", 2379) +
                          Web("web1", "h2", "127.0.0.2:8080"),
                      &t),
            "");
  ASSERT_EQ(t.hosts.size(), 3u);
  EXPECT_EQ(t.hosts[1].name, "h2");
  EXPECT_EQ(t.hosts[1].address, "127.0.0.2");
  EXPECT_EQ(t.hosts[1].admin, "127.0.0.2:7071");
  EXPECT_EQ(t.hosts[2].address, "") << "optional: h3's nodes may be anywhere";
  EXPECT_EQ(t.web[0].host, "h2");
  EXPECT_EQ(t.runner.etcd[2].host, "h3");
  EXPECT_TRUE(OnThisHost(t, t.web[0])) << "no host selected: every node here";
  EXPECT_TRUE(IsFirstHost(t));

  Topology h2 = t;
  SelectHost(&h2, "h2");
  EXPECT_EQ(h2.this_host, "h2");
  EXPECT_EQ(h2.runner.admin, "127.0.0.2:7071") << "the host's own admin listener";
  EXPECT_TRUE(OnThisHost(h2, h2.web[0]));
  EXPECT_FALSE(OnThisHost(h2, h2.runner.etcd[0]));
  EXPECT_TRUE(OnThisHost(h2, h2.runner.etcd[1]));
  EXPECT_FALSE(IsFirstHost(h2));
  topo::NodeEntry no_host;  // the one [etcd] member, [prometheus]: the first host's
  EXPECT_FALSE(OnThisHost(h2, no_host));
  Topology h1 = t;
  SelectHost(&h1, "h1");
  EXPECT_EQ(h1.runner.admin, "127.0.0.1:7070") << "[runner] admin when the host names none";
  EXPECT_TRUE(OnThisHost(h1, no_host));
  EXPECT_FALSE(OnThisHost(h1, h1.web[0]));
  EXPECT_TRUE(IsFirstHost(h1));
}

TEST(TopologyHosts, MistakesAreNamed) {
  std::string base = kHosts;
  // A node without a host when there are hosts: the error lists them.
  std::string err = LoadError(base + "[[web.node]]\nname = \"web1\"\nlisten = \"127.0.0.1:1\"\n");
  EXPECT_NE(err.find("'web1' needs host"), std::string::npos) << err;
  EXPECT_NE(err.find("h1, h2, h3"), std::string::npos) << err;
  err = LoadError(base + Web("web1", "h9", "127.0.0.1:1"));
  EXPECT_NE(err.find("names host 'h9', which is not one of"), std::string::npos) << err;
  err = LoadError("[[web.node]]\nname = \"web1\"\nhost = \"h1\"\nlisten = \"127.0.0.1:1\"\n");
  EXPECT_NE(err.find("no [[host]] tables"), std::string::npos) << err;
  // A node at another host's address.
  err = LoadError(base + Web("web1", "h2", "127.0.0.1:8080"));
  EXPECT_NE(err.find("is on host 'h2' (127.0.0.2) but has the address 127.0.0.1:8080"),
            std::string::npos)
      << err;
  err = LoadError(base + Etcd("e1", "dc1", "h1", "127.0.0.1", 2379) +
                  "[[etcd.node]]\nname = \"e2\"\nhost = \"h2\"\nlisten = \"127.0.0.2:1\"\n"
                  "peer_listen = \"127.0.0.1:2\"\n");
  EXPECT_NE(err.find("127.0.0.1:2"), std::string::npos) << "the peer address is checked too";
  EXPECT_NE(LoadError(base + "[[host]]\nname = \"h1\"\n").find("two [[host]] tables"),
            std::string::npos);
  EXPECT_NE(LoadError(base + "[[host]]\naddress = \"127.0.0.4\"\n").find("needs a name"),
            std::string::npos);
  EXPECT_NE(LoadError(base + "[[host]]\nname = \"h4\"\nport = 1\n").find("port"), std::string::npos)
      << "an unknown key in [[host]]";

  // --host naming no host: the error lists the hosts.
  Topology t;
  ASSERT_EQ(LoadError(base, &t), "");
  try {
    SelectHost(&t, "h7");
    ADD_FAILURE() << "h7 is no host";
  } catch (const config::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--host h7: no such host in the topology; its hosts are "
                                         "h1, h2, h3"),
              std::string::npos)
        << e.what();
  }
  Topology none;
  ASSERT_EQ(LoadError("", &none), "");
  EXPECT_THROW(SelectHost(&none, "h1"), config::ConfigError);
}

std::string Spread(const std::vector<std::string>& dcs) {
  std::string s = "[[dc]]\nname = \"dc1\"\n[[dc]]\nname = \"dc2\"\n[[dc]]\nname = \"dc3\"\n";
  int port = 3000;
  for (size_t i = 0; i < dcs.size(); ++i, port += 2)
    s += "[[etcd.node]]\nname = \"e" + std::to_string(i + 1) + "\"\ndc = \"" + dcs[i] +
         "\"\nlisten = \"127.0.0.1:" + std::to_string(port) +
         "\"\npeer_listen = \"127.0.0.1:" + std::to_string(port + 1) + "\"\n";
  return s;
}

std::vector<std::string> Warnings(const std::vector<std::string>& dcs) {
  Topology t;
  EXPECT_EQ(LoadError(Spread(dcs), &t), "");
  return EtcdDcLossWarnings(t);
}

TEST(TopologyEtcdSpread, OneDcsLossMustLeaveAQuorum) {
  // One member in each of three DCs (dc3 the witness): any one DC's loss leaves 2 of 3.
  EXPECT_TRUE(Warnings({"dc1", "dc2", "dc3"}).empty());
  // Five over three DCs, 2+2+1: any loss leaves at least 3 of 5.
  EXPECT_TRUE(Warnings({"dc1", "dc1", "dc2", "dc2", "dc3"}).empty());
  // Two in dc1, one in dc2: losing dc1 leaves 1 of 3.
  auto w = Warnings({"dc1", "dc1", "dc2"});
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].find("losing dc1 leaves 1 of 3 etcd members, and a quorum needs 2"),
            std::string::npos)
      << w[0];
  EXPECT_NE(w[0].find("2 in dc1, 1 in dc2"), std::string::npos) << w[0];
  EXPECT_NE(w[0].find("witness"), std::string::npos) << w[0];
  // Two DCs of two members each: losing either leaves 2 of 4, one short of 3.
  EXPECT_EQ(Warnings({"dc1", "dc1", "dc2", "dc2"}).size(), 2u);
  // Every member in one DC of several.
  EXPECT_EQ(Warnings({"dc1", "dc1", "dc1"}).size(), 1u);
  // One DC only: nothing to survive, nothing to warn about.
  Topology one;
  ASSERT_EQ(LoadError("[[dc]]\nname = \"dc1\"\n", &one), "");
  EXPECT_TRUE(EtcdDcLossWarnings(one).empty());
  // Several DCs and the one [etcd] member: losing its DC loses etcd.
  Topology single;
  ASSERT_EQ(LoadError("[[dc]]\nname = \"dc1\"\n[[dc]]\nname = \"dc2\"\n", &single), "");
  EXPECT_EQ(EtcdDcLossWarnings(single).size(), 1u);
}

}  // namespace
}  // namespace millions::topo
