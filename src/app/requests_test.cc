#include "app/requests.h"

#include <gtest/gtest.h>

namespace millions::app {
namespace {

TEST(Requests, SignUpAcceptsGoodInput) {
  auto s = ParseSignUp(R"({"handle":"alice_1","password":"12345678","display_name":"Alice"})");
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->handle, "alice_1");
  EXPECT_EQ(s->display_name.value(), "Alice");
}

TEST(Requests, SignUpRejectsBadInputWithFieldNames) {
  struct Case {
    const char* body;
    const char* code;
  } cases[] = {
      {"{", "malformed_json"},
      {"[1]", "malformed_json"},
      {R"({"handle":"Al","password":"12345678"})", "bad_field"},
      {R"({"handle":"alice","password":"short"})", "bad_field"},
      {R"({"handle":"alice","password":12345678})", "bad_field"},
      {R"({"handle":"alice"})", "missing_field"},
      {R"({"handle":"alice","password":"12345678","admin":true})", "unknown_field"},
      {R"({"handle":"al/../ce","password":"12345678"})", "bad_field"},
  };
  for (const auto& c : cases) {
    auto r = ParseSignUp(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.error().code, c.code) << c.body;
    EXPECT_EQ(r.error().status(), 400);
  }
}

TEST(Requests, EditOpsParseAndCanonicalise) {
  std::string canon;
  auto ops = ParseEditOps(
      R"({"ops":[{"op":"crop","x":1,"y":2,"width":3,"height":4},{"op":"rotate","degrees":90},)"
      R"({"op":"blur","sigma":1.5},{"op":"grayscale"}]})",
      &canon);
  ASSERT_TRUE(ops.ok()) << ops.error().message;
  ASSERT_EQ(ops->size(), 4u);
  EXPECT_EQ((*ops)[0].kind, media::EditOp::Kind::kCrop);
  EXPECT_EQ((*ops)[0].height, 4);
  auto again = ParseStoredOps(canon);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->size(), 4u);
}

TEST(Requests, EditOpsRejectBadOps) {
  std::string canon;
  for (const char* bad :
       {R"({"ops":[]})", R"({"ops":[{"op":"explode"}]})",
        R"({"ops":[{"op":"rotate","degrees":"90"}]})", R"({"ops":[{"op":"crop","x":1}]})",
        R"({"ops":[{"op":"grayscale","extra":1}]})", R"({"ops":{}})"}) {
    auto r = ParseEditOps(bad, &canon);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().status(), 400) << bad;
  }
}

TEST(Requests, RenderUserUsesStringIds) {
  data::UserRow u;
  u.id = 1234567890123;
  u.handle = "a\"b";
  std::string j = RenderUser(u);
  EXPECT_NE(j.find(R"("id":"1234567890123")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("handle":"a\"b")"), std::string::npos) << j;
}

}  // namespace
}  // namespace millions::app
