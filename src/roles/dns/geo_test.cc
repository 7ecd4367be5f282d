#include "roles/dns/geo.h"

#include <gtest/gtest.h>

namespace millions::dns {
namespace {

Subnet S(const char* text) {
  auto s = ParseSubnet(text);
  EXPECT_TRUE(s) << text;
  return s.value_or(Subnet{});
}

TEST(DnsGeo, ParseSubnet) {
  EXPECT_TRUE(ParseSubnet("198.18.1.0/24"));
  EXPECT_TRUE(ParseSubnet("0.0.0.0/0"));
  EXPECT_TRUE(ParseSubnet("2001:db8::/32"));
  EXPECT_FALSE(ParseSubnet("198.18.1.7/24"));  // bits past the prefix
  EXPECT_FALSE(ParseSubnet("198.18.1.0/33"));
  EXPECT_FALSE(ParseSubnet("198.18.1.0"));
  EXPECT_FALSE(ParseSubnet("198.18.1.0/"));
  EXPECT_FALSE(ParseSubnet("nonsense/8"));
  EXPECT_EQ(FormatSubnet(S("2001:db8::/32")), "2001:db8::/32");
}

TEST(DnsGeo, LongestPrefixWinsAndScopes) {
  // Region 0: 198.18.0.0/15; region 1: 198.18.1.0/24 inside it; region 2: v6.
  GeoMap g({{S("198.18.0.0/15")}, {S("198.18.1.0/24")}, {S("2001:db8::/32")}});
  auto a = *ParseAddress("198.18.1.9");
  GeoMatch m = g.Lookup(1, a.address, 32);
  EXPECT_EQ(m.region, 1);
  EXPECT_EQ(m.scope, 24);
  // In the /15 but not the /24: the answer holds up to the bit where the /24 differs.
  auto b = *ParseAddress("198.18.2.9");
  m = g.Lookup(1, b.address, 32);
  EXPECT_EQ(m.region, 0);
  EXPECT_EQ(m.scope, 23);  // 198.18.2.0/23 excludes 198.18.1.0/24
  auto c = *ParseAddress("198.19.0.1");
  m = g.Lookup(1, c.address, 32);
  EXPECT_EQ(m.region, 0);
  EXPECT_EQ(m.scope, 16);
  // A client that told only /16 of 198.18.x: the /24 inside is more specific than that.
  auto d = *ParseAddress("198.18.0.0");
  m = g.Lookup(1, d.address, 16);
  EXPECT_EQ(m.region, 0);
  EXPECT_EQ(m.scope, 24);
  // Outside everything: no region, scope up to the first bit apart from the nearest subnet.
  auto e = *ParseAddress("10.0.0.1");
  m = g.Lookup(1, e.address, 32);
  EXPECT_EQ(m.region, -1);
  EXPECT_EQ(m.scope, 1);  // 10/8 and 198.18/15 differ at the first bit
  auto v6 = *ParseAddress("2001:db8::1");
  m = g.Lookup(2, v6.address, 128);
  EXPECT_EQ(m.region, 2);
  EXPECT_EQ(m.scope, 32);
}

}  // namespace
}  // namespace millions::dns
