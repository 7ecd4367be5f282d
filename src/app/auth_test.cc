#include "app/auth.h"

#include <gtest/gtest.h>

namespace millions::app {
namespace {

TEST(Auth, PasswordHashIsArgon2idAndVerifies) {
  auto h = HashPassword("correct horse");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->rfind("$argon2id$", 0), 0u) << *h;
  EXPECT_TRUE(VerifyPassword("correct horse", *h));
  EXPECT_FALSE(VerifyPassword("correct horsf", *h));
}

TEST(Auth, TokensAre256BitAndHashed) {
  std::string a = NewSessionToken(Env::Default()), b = NewSessionToken(Env::Default());
  EXPECT_EQ(a.size(), 43u);  // 32 bytes, base64url without padding
  EXPECT_NE(a, b);
  EXPECT_EQ(TokenHash(a).size(), 64u);
  EXPECT_NE(TokenHash(a), TokenHash(b));
}

http::Request Req(std::string method, std::vector<http::Header> headers) {
  http::Request r;
  r.method = std::move(method);
  r.headers = std::move(headers);
  return r;
}

TEST(Auth, CredentialsFromBearerOrCookie) {
  auto bearer = ExtractCredentials(Req("GET", {{"Authorization", "Bearer abc"}}));
  EXPECT_EQ(bearer.source, AuthSource::kBearer);
  EXPECT_EQ(bearer.token, "abc");
  auto cookie = ExtractCredentials(Req("GET", {{"Cookie", "x=1; sid=tok"}}));
  EXPECT_EQ(cookie.source, AuthSource::kCookie);
  EXPECT_EQ(cookie.token, "tok");
  EXPECT_EQ(ExtractCredentials(Req("GET", {})).source, AuthSource::kNone);
}

TEST(Auth, CsrfRules) {
  Credentials cookie{AuthSource::kCookie, "t"};
  Credentials bearer{AuthSource::kBearer, "t"};
  // Cookie without Origin: refused.
  EXPECT_FALSE(CheckCsrf(Req("POST", {{"Host", "h:1"}}), cookie).ok());
  // Same origin: fine.
  EXPECT_TRUE(CheckCsrf(Req("POST", {{"Host", "h:1"}, {"Origin", "http://h:1"}}), cookie).ok());
  EXPECT_TRUE(CheckCsrf(Req("POST", {{"Sec-Fetch-Site", "same-origin"}}), cookie).ok());
  // Cross origin: refused for everyone.
  EXPECT_FALSE(CheckCsrf(Req("POST", {{"Host", "h:1"}, {"Origin", "http://evil"}}), cookie).ok());
  EXPECT_FALSE(CheckCsrf(Req("POST", {{"Host", "h:1"}, {"Origin", "http://evil"}}), bearer).ok());
  // Bearer without Origin, and safe methods: fine.
  EXPECT_TRUE(CheckCsrf(Req("POST", {{"Host", "h:1"}}), bearer).ok());
  EXPECT_TRUE(CheckCsrf(Req("GET", {}), cookie).ok());
}

}  // namespace
}  // namespace millions::app
