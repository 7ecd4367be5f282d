// `load --region`'s DNS exchange: the query it sends (read back by our server's parser) and the
// addresses it takes from an answer.
#include "ctl/load_region.h"

#include <gtest/gtest.h>

#include "roles/dns/message.h"

namespace millions::ctl {
namespace {

TEST(LoadRegion, QueryCarriesTheRegionsClientSubnet) {
  const uint8_t east[4] = {10, 1, 0, 0};
  std::string q = DnsQuery(0x1234, "www.dc.test", east, 16);
  auto r = dns::ParseQuery(q);
  ASSERT_TRUE(r.query.has_value());
  EXPECT_EQ(r.query->id, 0x1234);
  EXPECT_EQ(r.query->name(), "www.dc.test");
  EXPECT_EQ(r.query->qtype, 1);
  ASSERT_TRUE(r.query->edns && r.query->edns->ecs);
  EXPECT_EQ(r.query->edns->ecs->source_prefix, 16);
  EXPECT_EQ(r.query->edns->ecs->address[0], 10);
  EXPECT_EQ(r.query->edns->ecs->address[1], 1);
  // Without a subnet: EDNS(0) alone.
  auto plain = dns::ParseQuery(DnsQuery(7, "dc.test", east, 0));
  ASSERT_TRUE(plain.query && plain.query->edns);
  EXPECT_FALSE(plain.query->edns->ecs.has_value());
}

std::string Answer(uint16_t id, uint16_t flags, std::vector<std::array<uint8_t, 4>> as) {
  std::string m;
  auto put16 = [&](uint16_t v) {
    m.push_back(char(v >> 8));
    m.push_back(char(v & 0xff));
  };
  put16(id);
  put16(flags);
  put16(1);
  put16(uint16_t(as.size()));
  put16(0);
  put16(0);
  dns::AppendName("www.dc.test", &m);
  put16(1);
  put16(1);
  for (const auto& a : as) {
    put16(0xC00C);  // the question's name
    put16(1);
    put16(1);
    put16(0);
    put16(5);
    put16(4);
    m.append(reinterpret_cast<const char*>(a.data()), 4);
  }
  return m;
}

TEST(LoadRegion, TakesEveryAddressOfTheAnswer) {
  auto got = DnsAnswerAddresses(Answer(9, 0x8400, {{198, 18, 1, 15}, {198, 18, 1, 16}}), 9);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(*got, (std::vector<std::string>{"198.18.1.15", "198.18.1.16"}));
}

TEST(LoadRegion, RefusesWrongIdsErrorsAndEmptyAnswers) {
  EXPECT_FALSE(DnsAnswerAddresses(Answer(9, 0x8400, {{1, 2, 3, 4}}), 10).ok());  // not ours
  EXPECT_FALSE(DnsAnswerAddresses(Answer(9, 0x0400, {{1, 2, 3, 4}}), 9).ok());   // a query
  auto nx = DnsAnswerAddresses(Answer(9, 0x8403, {}), 9);
  ASSERT_FALSE(nx.ok());
  EXPECT_NE(nx.error().message.find("NXDOMAIN"), std::string::npos) << nx.error().message;
  EXPECT_FALSE(DnsAnswerAddresses(Answer(9, 0x8400, {}), 9).ok());
  EXPECT_FALSE(DnsAnswerAddresses("garbage", 9).ok());
}

}  // namespace
}  // namespace millions::ctl
