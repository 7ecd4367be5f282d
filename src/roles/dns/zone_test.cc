#include "roles/dns/zone.h"

#include <gtest/gtest.h>

#include "roles/dns/test_util.h"

namespace millions::dns {
namespace {

using testing::Ecs4;
using testing::MakeQuery;
using testing::QueryOpts;

Subnet Ip(const char* s) { return *ParseAddress(s); }

// Two DCs with two balancers each (one of dc2's on IPv6), two regions preferring their own.
ZoneConfig TwoDcs() {
  ZoneConfig z;
  z.zone = "millions.test";
  z.dcs = {"dc1", "dc2"};
  z.balancers = {{"lb1", "dc1", Ip("127.0.3.1")},
                 {"lb2", "dc1", Ip("127.0.3.2")},
                 {"lb3", "dc2", Ip("127.0.4.1")},
                 {"lb4", "dc2", Ip("::1")}};
  z.regions = {{"east", {*ParseSubnet("198.18.1.0/24")}, {"dc1", "dc2"}},
               {"west", {*ParseSubnet("198.18.2.0/24")}, {"dc2", "dc1"}}};
  z.name_servers = {{"dns1", Ip("127.0.0.1")}, {"dns2", Ip("127.0.0.2")}};
  return z;
}

struct Fixture {
  ZoneConfig cfg = TwoDcs();
  std::vector<bool> healthy = {true, true, true, true};
  Subnet source = Ip("10.1.2.3");

  Message Ask(std::string_view name, uint16_t qtype, QueryOpts o = {}, bool udp = true,
              Outcome* out = nullptr) {
    Zone z(cfg, healthy);
    std::string resp;
    Outcome oc = z.Respond(MakeQuery(name, qtype, o), source, udp, &resp);
    if (out) *out = oc;
    auto m = ParseMessage(resp);
    EXPECT_TRUE(m);
    return m.value_or(Message{});
  }
};

std::vector<std::string> Addresses(const Message& m) {
  std::vector<std::string> out;
  for (const auto& r : m.answer) {
    Subnet s;
    s.family = r.type == type::kA ? 1 : 2;
    s.prefix = s.family == 1 ? 32 : 128;
    std::copy(r.rdata.begin(), r.rdata.end(), s.address.begin());
    std::string f = FormatSubnet(s);
    out.push_back(f.substr(0, f.find('/')));
  }
  return out;
}

TEST(DnsZone, EachRegionGetsItsOwnDc) {
  Fixture f;
  auto east = f.Ask("www.millions.test", type::kA, {.edns = true, .ecs = Ecs4(198, 18, 1, 0, 24)});
  EXPECT_EQ(Addresses(east), (std::vector<std::string>{"127.0.3.1", "127.0.3.2"}));
  EXPECT_TRUE(east.aa);
  EXPECT_EQ(east.answer[0].ttl, 5u);
  ASSERT_TRUE(east.edns && east.edns->ecs);
  EXPECT_EQ(east.edns->ecs->scope_prefix, 24);
  auto west = f.Ask("www.millions.test", type::kA, {.edns = true, .ecs = Ecs4(198, 18, 2, 0, 24)});
  EXPECT_EQ(Addresses(west), (std::vector<std::string>{"127.0.4.1"}));
  auto west6 =
      f.Ask("www.millions.test", type::kAaaa, {.edns = true, .ecs = Ecs4(198, 18, 2, 0, 24)});
  EXPECT_EQ(Addresses(west6), (std::vector<std::string>{"::1"}));
  // dc1 has no IPv6 balancer: NODATA with the SOA.
  auto east6 =
      f.Ask("www.millions.test", type::kAaaa, {.edns = true, .ecs = Ecs4(198, 18, 1, 0, 24)});
  EXPECT_EQ(east6.rcode, 0);
  EXPECT_TRUE(east6.answer.empty());
  ASSERT_EQ(east6.authority.size(), 1u);
  EXPECT_EQ(east6.authority[0].type, type::kSoa);
  // Without ECS the source address decides: 198.18.2.7 is west.
  f.source = Ip("198.18.2.7");
  EXPECT_EQ(Addresses(f.Ask("millions.test", type::kA)), (std::vector<std::string>{"127.0.4.1"}));
  // ECS with source prefix 0: the source address decides (west), the scope is 0.
  auto zero = f.Ask("www.millions.test", type::kA, {.edns = true, .ecs = Ecs4(0, 0, 0, 0, 0)});
  EXPECT_EQ(Addresses(zero), (std::vector<std::string>{"127.0.4.1"}));
  ASSERT_TRUE(zero.edns && zero.edns->ecs);
  EXPECT_EQ(zero.edns->ecs->scope_prefix, 0);
  // In no region: the DCs in the topology's order.
  f.source = Ip("10.0.0.1");
  EXPECT_EQ(Addresses(f.Ask("www.millions.test", type::kA)),
            (std::vector<std::string>{"127.0.3.1", "127.0.3.2"}));
}

TEST(DnsZone, UnhealthyDcIsSkippedAndFailOpen) {
  Fixture f;
  f.healthy = {false, false, true, true};
  Zone z(f.cfg, f.healthy);
  EXPECT_EQ(z.chosen_dcs()[0], "dc2");
  auto east = f.Ask("www.millions.test", type::kA, {.edns = true, .ecs = Ecs4(198, 18, 1, 0, 24)});
  EXPECT_EQ(Addresses(east), (std::vector<std::string>{"127.0.4.1"}));
  f.healthy = {true, false, true, true};  // one of dc1's down: the other answers alone
  east = f.Ask("www.millions.test", type::kA, {.edns = true, .ecs = Ecs4(198, 18, 1, 0, 24)});
  EXPECT_EQ(Addresses(east), (std::vector<std::string>{"127.0.3.1"}));
  f.healthy = {false, false, false, false};  // fail open: all, the preferred DC first
  Zone none(f.cfg, f.healthy);
  EXPECT_TRUE(none.fail_open());
  auto west = f.Ask("www.millions.test", type::kA, {.edns = true, .ecs = Ecs4(198, 18, 2, 0, 24)});
  EXPECT_EQ(Addresses(west), (std::vector<std::string>{"127.0.4.1", "127.0.3.1", "127.0.3.2"}));
}

TEST(DnsZone, ApexNamesAndErrors) {
  Fixture f;
  auto soa = f.Ask("millions.test", type::kSoa);
  ASSERT_EQ(soa.answer.size(), 1u);
  EXPECT_EQ(soa.answer[0].type, type::kSoa);
  auto ns = f.Ask("Millions.Test", type::kNs);
  EXPECT_EQ(ns.answer.size(), 2u);
  EXPECT_EQ(ns.additional.size(), 2u);  // glue
  EXPECT_EQ(ns.qname, "millions.test");
  EXPECT_EQ(Addresses(f.Ask("dns2.millions.test", type::kA)),
            (std::vector<std::string>{"127.0.0.2"}));
  Outcome o;
  auto nx = f.Ask("nope.millions.test", type::kA, {}, true, &o);
  EXPECT_EQ(nx.rcode, 3);
  EXPECT_TRUE(nx.aa);
  ASSERT_EQ(nx.authority.size(), 1u);
  EXPECT_EQ(nx.authority[0].type, type::kSoa);
  EXPECT_EQ(nx.authority[0].name, "millions.test");
  EXPECT_EQ(o.rcode, Rcode::kNxDomain);
  auto other = f.Ask("example.com", type::kA);
  EXPECT_EQ(other.rcode, 5);
  EXPECT_FALSE(other.aa);
  EXPECT_EQ(f.Ask("millionstest", type::kA).rcode, 5);
  EXPECT_EQ(f.Ask("xmillions.test", type::kA).rcode, 5);
  auto mx = f.Ask("www.millions.test", 15);  // MX: NODATA
  EXPECT_EQ(mx.rcode, 0);
  EXPECT_TRUE(mx.answer.empty());
  EXPECT_EQ(mx.authority.size(), 1u);
  EXPECT_EQ(f.Ask("millions.test", type::kAxfr).rcode, 5);
  auto notimp = f.Ask("millions.test", type::kA, {.opcode = 4});
  EXPECT_EQ(notimp.rcode, 4);
  auto badvers = f.Ask("millions.test", type::kA, {.edns = true, .version = 1});
  EXPECT_EQ(badvers.rcode, 16);
}

TEST(DnsZone, FormErrAndDrops) {
  Fixture f;
  Zone z(f.cfg, f.healthy);
  std::string out;
  Outcome o = z.Respond(std::string("\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05", 13),
                        f.source, true, &out);
  EXPECT_EQ(o.rcode, Rcode::kFormErr);
  auto m = ParseMessage(out);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->id, 0xabcd);
  EXPECT_EQ(m->rcode, 1);
  o = z.Respond("short", f.source, true, &out);
  EXPECT_FALSE(o.answered);
  std::string resp = MakeQuery("millions.test", type::kA);
  resp[2] = static_cast<char>(resp[2] | 0x80);
  EXPECT_FALSE(z.Respond(resp, f.source, true, &out).answered);
}

TEST(DnsZone, TruncationOverUdpOnly) {
  Fixture f;
  f.cfg.balancers.clear();
  f.cfg.regions.clear();
  for (int i = 1; i <= 40; ++i)
    f.cfg.balancers.push_back(
        {"lb" + std::to_string(i), "dc1", Ip(("127.0.5." + std::to_string(i)).c_str())});
  f.healthy.assign(40, true);
  Outcome o;
  auto udp = f.Ask("www.millions.test", type::kA, {}, true, &o);
  EXPECT_TRUE(udp.tc);
  EXPECT_TRUE(o.truncated);
  EXPECT_TRUE(udp.answer.empty());
  auto big = f.Ask("www.millions.test", type::kA, {.edns = true, .udp_size = 1232}, true, &o);
  EXPECT_FALSE(big.tc);  // 40 * 16 bytes fit in 1232
  EXPECT_EQ(big.answer.size(), 40u);
  auto tcp = f.Ask("www.millions.test", type::kA, {}, false, &o);
  EXPECT_FALSE(tcp.tc);
  EXPECT_EQ(tcp.answer.size(), 40u);
}

}  // namespace
}  // namespace millions::dns
