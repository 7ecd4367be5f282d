#include "roles/dns/settings.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace millions::dns {
namespace {

// A topology file with two DCs, a balancer in each, one DNS node and `extra` appended.
topo::Topology Load(const std::string& extra) {
  auto path = std::filesystem::temp_directory_path() /
              ("dns_settings_test_" + std::to_string(::getpid()) + ".toml");
  std::ofstream(path) << R"([[dc]]
name = "dc1"
[[dc]]
name = "dc2"
[[lb.node]]
name = "lb1"
dc = "dc1"
listen = "127.0.3.1:8080"
admin = "127.0.0.1:9080"
[[lb.node]]
name = "lb2"
dc = "dc2"
listen = "[::1]:8080"
admin = "127.0.0.1:9081"
[[dns.node]]
name = "ns1"
dc = "dc1"
listen = "127.0.0.1:8053"
admin = "127.0.0.1:9053"
)" << extra;
  auto t = topo::Topology::Load(path.string());
  std::filesystem::remove(path);
  return t;
}

TEST(DnsSettings, DefaultsRegionsAndBalancers) {
  auto t = Load(R"([dns]
zone = "Example.TEST."
[[dns.region]]
name = "east"
subnets = ["198.18.1.0/24", "2001:db8::/32"]
dcs = ["dc1", "dc2"]
)");
  DnsConfig c = ReadConfig(t, "ns1");
  t.Check(kTables);
  EXPECT_EQ(c.settings.zone.zone, "example.test");  // lower case, no final dot
  EXPECT_EQ(c.settings.zone.ttl, 5u);
  EXPECT_EQ(c.settings.threads, 1);
  ASSERT_EQ(c.settings.zone.regions.size(), 1u);
  EXPECT_EQ(c.settings.zone.regions[0].subnets.size(), 2u);
  ASSERT_EQ(c.settings.zone.balancers.size(), 2u);
  EXPECT_EQ(c.settings.zone.balancers[1].ip.family, 2);  // [::1]: AAAA
  ASSERT_EQ(c.checks.size(), 2u);
  EXPECT_EQ(c.checks[0].port, 9080);  // the balancer's admin listener
  ASSERT_EQ(c.settings.zone.name_servers.size(), 1u);
  EXPECT_EQ(c.settings.zone.name_servers[0].label, "ns1");
}

TEST(DnsSettings, Errors) {
  // An unknown key, in [dns] and in a region; a region naming an unknown DC; a subnet with bits
  // past its prefix; a zone that is not a name; an unknown node.
  EXPECT_THROW(Load("[dns]\nzonee = \"x.test\"\n").Check(kTables), config::ConfigError);
  {
    auto t = Load("[[dns.region]]\nname = \"a\"\nsubnets = []\ndcs = [\"dc1\"]\ncolor = 1\n");
    ReadSettings(t);
    EXPECT_THROW(t.Check(kTables), config::ConfigError);
  }
  EXPECT_THROW(ReadSettings(Load("[[dns.region]]\nname = \"a\"\ndcs = [\"dc9\"]\n")),
               config::ConfigError);
  EXPECT_THROW(ReadSettings(Load(
                   "[[dns.region]]\nname = \"a\"\nsubnets = [\"10.0.0.1/8\"]\ndcs = [\"dc1\"]\n")),
               config::ConfigError);
  EXPECT_THROW(ReadSettings(Load("[dns]\nzone = \"a..b\"\n")), config::ConfigError);
  EXPECT_THROW(ReadConfig(Load(""), "nope"), config::ConfigError);
}

}  // namespace
}  // namespace millions::dns
