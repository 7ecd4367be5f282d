// RESP encoding and parsing: every reply type, nesting, nil forms, incremental arrival (a
// multi-reply stream split at every byte), limits, and malformed input.
#include "cache/resp.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace millions::cache {
namespace {

using State = RespParser::State;
using Type = RedisReply::Type;

// Parses exactly one reply that must use the whole input.
RedisReply ParseOne(std::string_view in, RespLimits limits = {}) {
  RespParser p(limits);
  RedisReply r;
  size_t used = 0;
  EXPECT_EQ(p.Parse(in, &r, &used), State::kReply) << in;
  EXPECT_EQ(used, in.size()) << in;
  return r;
}

State StateOf(std::string_view in, RespLimits limits = {}) {
  RespParser p(limits);
  RedisReply r;
  size_t used = 123;
  State s = p.Parse(in, &r, &used);
  if (s != State::kReply) {
    EXPECT_EQ(used, 0u) << "consumed bytes without a reply: " << in;
  }
  return s;
}

// A canonical text form, so whole trees compare in one assertion.
std::string Show(const RedisReply& r) {
  switch (r.type) {
    case Type::kString:
      return "s(" + r.str + ")";
    case Type::kError:
      return "e(" + r.str + ")";
    case Type::kInteger:
      return "i(" + std::to_string(r.integer) + ")";
    case Type::kNil:
      return "nil";
    case Type::kArray: {
      std::string s = "[";
      for (const auto& e : r.elements) s += Show(e) + ",";
      return s + "]";
    }
  }
  return "?";
}

TEST(RespParse, SimpleStringErrorAndInteger) {
  EXPECT_EQ(Show(ParseOne("+OK\r\n")), "s(OK)");
  EXPECT_EQ(Show(ParseOne("+\r\n")), "s()");
  RedisReply e = ParseOne("-ERR wrong type\r\n");
  EXPECT_TRUE(e.is_error());
  EXPECT_EQ(e.str, "ERR wrong type");
  EXPECT_EQ(ParseOne(":0\r\n").integer, 0);
  EXPECT_EQ(ParseOne(":-17\r\n").integer, -17);
  EXPECT_EQ(ParseOne(":9223372036854775807\r\n").integer, INT64_MAX);
  EXPECT_EQ(ParseOne(":-9223372036854775808\r\n").integer, INT64_MIN);
  EXPECT_EQ(ParseOne(":42\r\n").type, Type::kInteger);
}

TEST(RespParse, BulkStringsAreBinarySafe) {
  EXPECT_EQ(Show(ParseOne("$5\r\nhello\r\n")), "s(hello)");
  EXPECT_EQ(Show(ParseOne("$0\r\n\r\n")), "s()");
  RedisReply r = ParseOne(std::string("$6\r\na\r\nb\0c\r\n", 12));
  EXPECT_EQ(r.str, std::string("a\r\nb\0c", 6));
}

TEST(RespParse, NilForms) {
  EXPECT_TRUE(ParseOne("$-1\r\n").is_nil());
  EXPECT_TRUE(ParseOne("*-1\r\n").is_nil());
  EXPECT_EQ(Show(ParseOne("*2\r\n$-1\r\n*-1\r\n")), "[nil,nil,]");
}

TEST(RespParse, ArraysAndNesting) {
  EXPECT_EQ(Show(ParseOne("*0\r\n")), "[]");
  EXPECT_EQ(Show(ParseOne("*3\r\n:1\r\n+two\r\n$5\r\nthree\r\n")), "[i(1),s(two),s(three),]");
  EXPECT_EQ(Show(ParseOne("*2\r\n*2\r\n:1\r\n:2\r\n*1\r\n-ERR x\r\n")),
            "[[i(1),i(2),],[e(ERR x),],]");
  // A pub/sub push, as the subscriber sees it.
  EXPECT_EQ(Show(ParseOne("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nhi!\r\n")),
            "[s(message),s(ch),s(hi!),]");
}

TEST(RespParse, ReusedReplyIsReset) {
  RespParser p;
  RedisReply r;
  size_t used = 0;
  ASSERT_EQ(p.Parse("*2\r\n:1\r\n:2\r\n", &r, &used), State::kReply);
  ASSERT_EQ(p.Parse("$3\r\nabc\r\n", &r, &used), State::kReply);
  EXPECT_EQ(Show(r), "s(abc)");
  ASSERT_EQ(p.Parse(":5\r\n", &r, &used), State::kReply);
  EXPECT_EQ(Show(r), "i(5)");
  EXPECT_TRUE(r.str.empty());
}

TEST(RespParse, ConsumesOnlyTheFirstReply) {
  RespParser p;
  RedisReply r;
  size_t used = 0;
  std::string in = "+OK\r\n:1\r\n";
  ASSERT_EQ(p.Parse(in, &r, &used), State::kReply);
  EXPECT_EQ(used, 5u);
  ASSERT_EQ(p.Parse(std::string_view(in).substr(used), &r, &used), State::kReply);
  EXPECT_EQ(r.integer, 1);
}

TEST(RespParse, IncompleteNeedsMoreAndConsumesNothing) {
  for (const char* in : {"",
                         "+",
                         "+OK",
                         "+OK\r",
                         ":",
                         ":12",
                         ":-",
                         "$",
                         "$5",
                         "$5\r",
                         "$5\r\n",
                         "$5\r\nhel",
                         "$5\r\nhello",
                         "$5\r\nhello\r",
                         "$-1\r",
                         "*",
                         "*2\r\n",
                         "*2\r\n:1\r\n",
                         "*2\r\n:1\r\n$3\r\nab",
                         "*1\r\n*1\r\n*1\r\n"})
    EXPECT_EQ(StateOf(in), State::kNeedMore) << in;
}

// The stream a client reads, cut into two reads at every possible byte: the same replies come
// out whatever the cut, and nothing is consumed from an incomplete tail.
TEST(RespParse, SplitAtEveryOffsetGivesTheSameReplies) {
  const std::string stream = std::string("+OK\r\n-ERR bad\r\n:-5\r\n$-1\r\n*-1\r\n$0\r\n\r\n") +
                             std::string("$4\r\n\r\n\0x\r\n", 10) +
                             "*3\r\n:1\r\n*2\r\n+a\r\n$1\r\nb\r\n*0\r\n" +
                             "*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\npp\r\n";
  auto drain = [](std::string& buf, std::vector<std::string>* out) {
    RespParser p;
    RedisReply r;
    size_t used = 0;
    for (;;) {
      State s = p.Parse(buf, &r, &used);
      if (s == State::kNeedMore) return true;
      if (s == State::kProtocolError) return false;
      EXPECT_GT(used, 0u);
      out->push_back(Show(r));
      buf.erase(0, used);
    }
  };
  std::vector<std::string> whole;
  std::string all = stream;
  ASSERT_TRUE(drain(all, &whole));
  EXPECT_TRUE(all.empty());
  ASSERT_EQ(whole.size(), 9u);
  EXPECT_EQ(whole[6], std::string("s(\r\n\0x)", 7));
  EXPECT_EQ(whole[7], "[i(1),[s(a),s(b),],[],]");
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    std::vector<std::string> got;
    std::string buf = stream.substr(0, cut);
    ASSERT_TRUE(drain(buf, &got)) << cut;
    buf += stream.substr(cut);
    ASSERT_TRUE(drain(buf, &got)) << cut;
    EXPECT_TRUE(buf.empty()) << cut;
    EXPECT_EQ(got, whole) << "cut at " << cut;
  }
  // One byte at a time, as a slow network delivers it.
  std::vector<std::string> got;
  std::string buf;
  for (char c : stream) {
    buf += c;
    ASSERT_TRUE(drain(buf, &got));
  }
  EXPECT_EQ(got, whole);
}

TEST(RespParse, MalformedInputIsAProtocolError) {
  for (const char* in : {"?x\r\n",
                         "OK\r\n",
                         "\r\n",
                         "+OK\rX",
                         "+OK\r\r\n",
                         ":\r\n",
                         ":-\r\n",
                         ":12a\r\n",
                         ":+1\r\n",
                         ":1 \r\n",
                         ":1\rx",
                         ":9223372036854775808\r\n",
                         ":-9223372036854775809\r\n",
                         ":99999999999999999999999\r\n",
                         ":000000000000000000000001\r\n",
                         "$-2\r\n",
                         "$x\r\n",
                         "$\r\n",
                         "$3\r\nabcd\r\n",
                         "$3\r\nabc\n\r",
                         "$3\r\nabcXY",
                         "*-2\r\n",
                         "*1x\r\n",
                         "*1\r\n?\r\n",
                         "*2\r\n:1\r\n!\r\n",
                         "$18446744073709551615\r\n"})
    EXPECT_EQ(StateOf(in), State::kProtocolError) << in;
}

TEST(RespParse, LimitsAreEnforced) {
  RespLimits lim;
  lim.max_bulk_bytes = 4;
  lim.max_array_elements = 2;
  lim.max_depth = 2;
  EXPECT_EQ(Show(ParseOne("$4\r\nabcd\r\n", lim)), "s(abcd)");
  EXPECT_EQ(StateOf("$5\r\n", lim), State::kProtocolError);  // refused before the body arrives
  EXPECT_EQ(Show(ParseOne("+abcd\r\n", lim)), "s(abcd)");
  EXPECT_EQ(StateOf("+abcd", lim), State::kNeedMore);
  EXPECT_EQ(StateOf("+abcde", lim), State::kProtocolError);  // an endless line is cut short
  EXPECT_EQ(StateOf("-abcdef\r\n", lim), State::kProtocolError);
  EXPECT_EQ(Show(ParseOne("*2\r\n:1\r\n:2\r\n", lim)), "[i(1),i(2),]");
  EXPECT_EQ(StateOf("*3\r\n", lim), State::kProtocolError);
  EXPECT_EQ(Show(ParseOne("*1\r\n*1\r\n:1\r\n", lim)), "[[i(1),],]");
  EXPECT_EQ(StateOf("*1\r\n*1\r\n*1\r\n", lim), State::kProtocolError);
  EXPECT_EQ(Show(ParseOne("*1\r\n*1\r\n*-1\r\n", lim)), "[[nil,],]");  // a nil array is no level
}

TEST(RespParse, DefaultDepthIsEight) {
  std::string eight, nine;
  for (int i = 0; i < 8; ++i) eight += "*1\r\n";
  nine = eight + "*1\r\n:1\r\n";
  eight += ":1\r\n";
  EXPECT_EQ(ParseOne(eight).type, Type::kArray);
  EXPECT_EQ(StateOf(nine), State::kProtocolError);
}

TEST(RespParse, HugeDeclaredSizesNeedTheirBytesFirst) {
  // A declared length within the limits must not be trusted before its bytes are there.
  EXPECT_EQ(StateOf("$67108864\r\nabc"), State::kNeedMore);
  EXPECT_EQ(StateOf("*1048576\r\n:1\r\n"), State::kNeedMore);
  EXPECT_EQ(StateOf("$67108865\r\n"), State::kProtocolError);
  EXPECT_EQ(StateOf("*1048577\r\n"), State::kProtocolError);
}

TEST(RespParse, ManyRepliesInOneBufferAreLinear) {
  // 200k replies consumed one at a time from one buffer: each parse looks at its reply only.
  std::string buf;
  for (int i = 0; i < 200'000; ++i) buf += "$3\r\nabc\r\n";
  RespParser p;
  RedisReply r;
  size_t used = 0, pos = 0, n = 0;
  while (p.Parse(std::string_view(buf).substr(pos), &r, &used) == State::kReply) {
    pos += used;
    ++n;
  }
  EXPECT_EQ(n, 200'000u);
  EXPECT_EQ(pos, buf.size());
}

TEST(RespEncode, ArrayOfBulkStrings) {
  std::string out = "x";  // appends
  EncodeCommand({"SET", "k", ""}, &out);
  EXPECT_EQ(out, "x*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
  out.clear();
  EncodeCommand({}, &out);
  EXPECT_EQ(out, "*0\r\n");
}

TEST(RespEncode, BinarySafeArgsRoundTrip) {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  std::vector<std::string> argv = {"SET",  std::string("a\r\nb\0c", 6), all, std::string(1000, 'z'),
                                   "\r\n", std::string(1, '\0')};
  std::string out;
  EncodeCommand(argv, &out);
  EXPECT_EQ(out.substr(0, 23), std::string("*6\r\n$3\r\nSET\r\n$6\r\na\r\nb\0c", 23));
  RedisReply r = ParseOne(out);
  ASSERT_EQ(r.type, Type::kArray);
  ASSERT_EQ(r.elements.size(), argv.size());
  for (size_t i = 0; i < argv.size(); ++i) {
    EXPECT_EQ(r.elements[i].type, Type::kString);
    EXPECT_EQ(r.elements[i].str, argv[i]) << i;
  }
}

}  // namespace
}  // namespace millions::cache
