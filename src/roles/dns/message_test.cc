#include "roles/dns/message.h"

#include <gtest/gtest.h>

#include "roles/dns/test_util.h"

namespace millions::dns {
namespace {

using testing::Ecs4;
using testing::MakeQuery;
using testing::Put16;
using testing::WireName;

TEST(DnsParse, PlainQuery) {
  auto r = ParseQuery(MakeQuery("WWW.Millions.Test", type::kA));
  ASSERT_TRUE(r.query);
  EXPECT_EQ(r.query->id, 0x1234);
  EXPECT_EQ(r.query->name(), "www.millions.test");  // lower case
  EXPECT_EQ(r.query->qtype, type::kA);
  EXPECT_EQ(r.query->qclass, kClassIn);
  EXPECT_TRUE(r.query->rd);
  EXPECT_FALSE(r.query->edns);
}

TEST(DnsParse, Edns) {
  auto r = ParseQuery(MakeQuery("a.b", type::kAaaa, {.edns = true, .udp_size = 100}));
  ASSERT_TRUE(r.query);
  ASSERT_TRUE(r.query->edns);
  EXPECT_EQ(r.query->edns->udp_size, 512);  // below 512 reads as 512
  EXPECT_EQ(r.query->edns->version, 0);
}

TEST(DnsParse, ClientSubnet) {
  auto r = ParseQuery(MakeQuery("a.b", type::kA, {.edns = true, .ecs = Ecs4(198, 18, 1, 0, 24)}));
  ASSERT_TRUE(r.query && r.query->edns && r.query->edns->ecs);
  const auto& e = *r.query->edns->ecs;
  EXPECT_EQ(e.family, 1);
  EXPECT_EQ(e.source_prefix, 24);
  EXPECT_EQ(e.address[0], 198);
  EXPECT_EQ(e.address[2], 1);
  EXPECT_EQ(e.address[3], 0);
}

TEST(DnsParse, BadClientSubnets) {
  // Bits past the source prefix, too many octets, too few, an unknown family, prefix > 32.
  std::string bits = Ecs4(198, 18, 1, 0, 23);
  bits[6] = 1;  // 198.18.1.x with /23: the last bit of the third octet is past the prefix
  std::string many = Ecs4(198, 18, 1, 0, 16) + std::string(1, '\x01');
  std::string few = Ecs4(198, 18, 1, 0, 24).substr(0, 6);
  std::string fam = Ecs4(198, 18, 1, 0, 24);
  fam[1] = 3;
  std::string big = Ecs4(198, 18, 1, 0, 24);
  big[2] = 33;
  for (const auto& e : {bits, many, few, fam, big}) {
    auto r = ParseQuery(MakeQuery("a.b", type::kA, {.edns = true, .ecs = e}));
    EXPECT_FALSE(r.query);
    EXPECT_EQ(r.error, ParseError::kBadEcs);
    EXPECT_EQ(r.id, 0x1234);
  }
}

TEST(DnsParse, DroppedAndNotImp) {
  EXPECT_EQ(ParseQuery(std::string(11, '\0')).error, ParseError::kShort);
  std::string resp = MakeQuery("a.b", type::kA);
  resp[2] = static_cast<char>(resp[2] | 0x80);
  EXPECT_EQ(ParseQuery(resp).error, ParseError::kResponse);
  auto r = ParseQuery(MakeQuery("a.b", type::kA, {.opcode = 2}));
  EXPECT_EQ(r.error, ParseError::kNotImp);
  EXPECT_EQ(r.opcode, 2);
}

TEST(DnsParse, FormErrs) {
  std::string q = MakeQuery("a.b", type::kA);
  // Two questions; counts larger than the bytes; trailing bytes; a cut question.
  std::string two = q;
  two[5] = 2;
  std::string counts = q;
  counts[11] = 50;
  std::string trailing = q + "x";
  std::string cut = q.substr(0, q.size() - 1);
  for (const auto& m : {two, counts, trailing, cut}) {
    auto r = ParseQuery(m);
    EXPECT_FALSE(r.query);
    EXPECT_EQ(r.error, ParseError::kFormErr);
  }
  // Two OPT records.
  std::string opt("\0\0\x29\x04\xd0\0\0\0\0\0\0", 11);
  std::string twice = q + opt + opt;
  twice[11] = 2;
  EXPECT_EQ(ParseQuery(twice).error, ParseError::kFormErr);
  std::string once = q + opt;
  once[11] = 1;
  EXPECT_TRUE(ParseQuery(once).query);
}

std::string Header(uint16_t qd) {
  std::string h;
  Put16(&h, 7);
  Put16(&h, 0x0100);
  Put16(&h, qd);
  Put16(&h, 0);
  Put16(&h, 0);
  Put16(&h, 0);
  return h;
}

TEST(DnsParse, NameBounds) {
  // A 64-octet label, a name of 256 octets, extended label types.
  std::string q64 = Header(1) + std::string(1, 64) + std::string(64, 'a') + std::string(1, 0) +
                    std::string("\0\1\0\1", 4);
  EXPECT_FALSE(ParseQuery(q64).query);
  std::string longname;
  for (int i = 0; i < 5; ++i) longname += std::string(1, 63) + std::string(63, 'a');
  std::string qlong = Header(1) + longname + std::string(1, 0) + std::string("\0\1\0\1", 4);
  EXPECT_FALSE(ParseQuery(qlong).query);
  std::string q63 = Header(1) + std::string(1, 63) + std::string(63, 'a') + std::string(1, 0) +
                    std::string("\0\1\0\1", 4);
  EXPECT_TRUE(ParseQuery(q63).query);
  std::string ext = Header(1) + std::string("\x41", 1) + std::string("\0\0\1\0\1", 5);
  EXPECT_FALSE(ParseQuery(ext).query);
  std::string dot = Header(1) + std::string("\3a.b\0\0\1\0\1", 9);
  EXPECT_FALSE(ParseQuery(dot).query);
}

TEST(DnsParse, CompressionPointers) {
  std::array<char, 256> name;
  uint16_t len = 0;
  size_t next = 0;
  // A pointer to itself, a forward pointer, and a loop between two pointers.
  std::string self = Header(1) + std::string("\xc0\x0c", 2);
  EXPECT_FALSE(ReadName(self, 12, &name, &len, &next));
  std::string fwd = Header(1) + std::string("\xc0\x0e\x01x\x00", 5);
  EXPECT_FALSE(ReadName(fwd, 12, &name, &len, &next));
  std::string loop = Header(1) + std::string("\x01x\xc0\x0c", 4);  // x, then back to x
  EXPECT_FALSE(ReadName(loop, 12, &name, &len, &next));
  // A good backward pointer: "a" then a pointer to "b.c" earlier in the message.
  std::string ok = Header(0) + WireName("b.c") +
                   std::string(
                       "\x01"
                       "a\xc0\x0c",
                       4);
  size_t at = 12 + WireName("b.c").size();
  ASSERT_TRUE(ReadName(ok, at, &name, &len, &next));
  EXPECT_EQ(std::string_view(name.data(), len), "a.b.c");
  EXPECT_EQ(next, ok.size());
  // A question whose name points into the header (the response's header differs): FORMERR.
  std::string into_header =
      Header(1) + std::string("\3www\xc0\x02", 6) + std::string("\0\1\0\1", 4);
  EXPECT_FALSE(ParseQuery(into_header).query);
  // A pointer cut in half.
  std::string half = Header(1) + std::string("\xc0", 1);
  EXPECT_FALSE(ReadName(half, 12, &name, &len, &next));
}

TEST(DnsBuild, ResponseRoundTrip) {
  std::string q = MakeQuery("www.millions.test", type::kA, {.edns = true});
  auto p = ParseQuery(q);
  ASSERT_TRUE(p.query);
  std::vector<Record> answer = {
      MakeRecord(std::string("\xc0\x0c", 2), type::kA, 5, "\x7f\0\0\1"),
      MakeRecord(std::string("\xc0\x0c", 2), type::kA, 5, std::string("\x7f\0\0\2", 4))};
  ResponseSpec spec;
  spec.answer = answer;
  spec.edns = true;
  ClientSubnet e;
  e.source_prefix = 24;
  e.scope_prefix = 16;
  e.address = {198, 18, 1};
  spec.ecs = e;
  std::string out;
  EXPECT_FALSE(BuildResponse(p.query->id, 0, true, false, p.query->question_wire, spec, 512, &out));
  auto m = ParseMessage(out);
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->qr);
  EXPECT_TRUE(m->aa);
  EXPECT_FALSE(m->tc);
  EXPECT_EQ(m->id, 0x1234);
  EXPECT_EQ(m->qname, "www.millions.test");
  ASSERT_EQ(m->answer.size(), 2u);
  EXPECT_EQ(m->answer[0].name, "www.millions.test");  // the pointer to the question
  EXPECT_EQ(m->answer[0].ttl, 5u);
  EXPECT_EQ(m->answer[1].rdata, std::string("\x7f\0\0\2", 4));
  ASSERT_TRUE(m->edns && m->edns->ecs);
  EXPECT_EQ(m->edns->ecs->scope_prefix, 16);
  EXPECT_EQ(m->edns->ecs->source_prefix, 24);

  // Too big for the limit: TC, no records, the OPT kept.
  EXPECT_TRUE(BuildResponse(p.query->id, 0, true, false, p.query->question_wire, spec, 40, &out));
  m = ParseMessage(out);
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->tc);
  EXPECT_TRUE(m->answer.empty());
  EXPECT_TRUE(m->edns);
}

TEST(DnsBuild, BadVersCarriesExtendedBits) {
  ResponseSpec spec;
  spec.rcode = Rcode::kBadVers;
  spec.edns = true;
  std::string out;
  BuildResponse(1, 0, false, false, "", spec, 512, &out);
  auto m = ParseMessage(out);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->rcode, 16);
}

TEST(DnsBuild, AppendNameBounds) {
  std::string out;
  EXPECT_TRUE(AppendName("a.b", &out));
  EXPECT_EQ(out, std::string("\1a\1b\0", 5));
  out.clear();
  EXPECT_FALSE(AppendName(std::string(64, 'x'), &out));
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(AppendName("a..b", &out));
}

}  // namespace
}  // namespace millions::dns
