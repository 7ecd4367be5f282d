// CacheKey and VaryKey: what makes two requests one key and what keeps them apart.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <type_traits>

#include "roles/edge/store.h"

namespace millions::edge {
namespace {

std::string Key(std::string_view host, std::string_view path, std::string_view query = "") {
  return CacheKey("GET", host, path, query);
}

TEST(CacheKey, LayoutIsMethodPathQueryHost) {
  EXPECT_EQ(Key("example.com", "/media/a.jpg", "w=100"), "GET /media/a.jpg?w=100 example.com");
  EXPECT_EQ(Key("example.com", "/"), "GET / example.com");
}

TEST(CacheKey, HeadSharesGet) {
  EXPECT_EQ(CacheKey("HEAD", "h", "/a", ""), CacheKey("GET", "h", "/a", ""));
  EXPECT_NE(CacheKey("POST", "h", "/a", ""), CacheKey("GET", "h", "/a", ""));
}

TEST(CacheKey, HostLowerCasedWithoutDefaultPorts) {
  EXPECT_EQ(Key("Example.COM", "/a"), Key("example.com", "/a"));
  EXPECT_EQ(Key("example.com:80", "/a"), Key("example.com", "/a"));
  EXPECT_EQ(Key("example.com:443", "/a"), Key("example.com", "/a"));
  EXPECT_EQ(Key("example.com:", "/a"), Key("example.com", "/a"));
  EXPECT_EQ(Key("example.com:0080", "/a"), Key("example.com", "/a"));
  EXPECT_EQ(Key("[::1]:443", "/a"), Key("[::1]", "/a"));
  EXPECT_NE(Key("example.com:8080", "/a"), Key("example.com", "/a"));
  EXPECT_EQ(Key("example.com:08080", "/a"), Key("example.com:8080", "/a"));
  EXPECT_NE(Key("other.com", "/a"), Key("example.com", "/a"));
}

TEST(CacheKey, PathAsReceived) {
  EXPECT_NE(Key("h", "/A"), Key("h", "/a"));
  EXPECT_NE(Key("h", "/a%2Fb"), Key("h", "/a/b"));
  EXPECT_EQ(Key("h", ""), Key("h", "/"));
}

TEST(CacheKey, QuerySortedByNameThenValue) {
  EXPECT_EQ(Key("h", "/a", "b=2&a=1"), Key("h", "/a", "a=1&b=2"));
  EXPECT_EQ(Key("h", "/a", "a=2&a=1"), Key("h", "/a", "a=1&a=2"));
  EXPECT_EQ(Key("h", "/a", "b=2&a=1"), "GET /a?a=1&b=2 h");
}

TEST(CacheKey, QueryPercentEncodingNormalized) {
  // The header's own example.
  EXPECT_EQ(Key("h", "/a", "b=2&a=1"), Key("h", "/a", "a=1&b=%32"));
  EXPECT_EQ(Key("h", "/a", "n%61me=%7Ex"), Key("h", "/a", "name=~x"));
  EXPECT_EQ(Key("h", "/a", "x=%2f"), Key("h", "/a", "x=%2F"));
  // Reserved characters keep their encoded or literal form: the origin may tell them apart.
  EXPECT_NE(Key("h", "/a", "x=%2B"), Key("h", "/a", "x=+"));
  EXPECT_NE(Key("h", "/a", "x=%26y"), Key("h", "/a", "x=&y"));
  EXPECT_NE(Key("h", "/a", "x=%3D"), Key("h", "/a", "x=="));
  EXPECT_NE(Key("h", "/a", "x=%"), Key("h", "/a", "x=%25"));
  // What may not appear literally is encoded.
  EXPECT_EQ(Key("h", "/a", "x=a b"), Key("h", "/a", "x=a%20b"));
  EXPECT_EQ(Key("h", "/a", "x=\"<>"), Key("h", "/a", "x=%22%3C%3E"));
}

TEST(CacheKey, EmptyQueryIsNoQuery) {
  EXPECT_EQ(Key("h", "/a", ""), "GET /a h");
  EXPECT_EQ(Key("h", "/a", "&"), Key("h", "/a", ""));
  EXPECT_EQ(Key("h", "/a", "a=1&&b=2&"), Key("h", "/a", "a=1&b=2"));
  // "a" and "a=" may mean different things to the origin.
  EXPECT_NE(Key("h", "/a", "a"), Key("h", "/a", "a="));
}

TEST(CacheKey, NoByteBreaksTheLayout) {
  // A space in a host or path (never in a valid request) cannot forge another key's layout.
  EXPECT_EQ(Key("h x", "/a"), "GET /a h%20x");
  EXPECT_EQ(Key("h", "/a b"), "GET /a%20b h");
}

TEST(CacheKey, PrefixesSpanHosts) {
  std::string prefix = CacheKeyPathPrefix("/media/");
  EXPECT_TRUE(Key("a.example", "/media/x.jpg").starts_with(prefix));
  EXPECT_TRUE(Key("b.example:8080", "/media/y/z.jpg", "w=1").starts_with(prefix));
  EXPECT_FALSE(Key("a.example", "/assets/x.js").starts_with(prefix));
  std::string url = CacheKeyAnyHost("/media/x.jpg", "b=2&a=1");
  EXPECT_TRUE(Key("a.example", "/media/x.jpg", "a=1&b=%32").starts_with(url));
  EXPECT_FALSE(Key("a.example", "/media/x.jpg", "a=1").starts_with(url));
  EXPECT_FALSE(Key("a.example", "/media/x.jpg2", "a=1&b=2").starts_with(url));
  EXPECT_TRUE(Key("a.example", "/media/x.jpg").starts_with(CacheKeyAnyHost("/media/x.jpg", "")));
  EXPECT_FALSE(
      Key("a.example", "/media/x.jpg", "a=1").starts_with(CacheKeyAnyHost("/media/x.jpg", "")));
}

// CacheKey takes no headers but Host, so X-Forwarded-Host and the like cannot reach the key;
// a signature that grew a header lookup fails to compile here. (That the server passes Host,
// not X-Forwarded-Host, is the edge server's integration test.)
static_assert(
    std::is_same_v<decltype(&CacheKey), std::string (*)(std::string_view, std::string_view,
                                                        std::string_view, std::string_view)>);

TEST(CacheKey, OnlyHostNamesTheSite) {
  std::string key = Key("edge.example", "/media/a.jpg");
  EXPECT_EQ(key.find("evil"), std::string::npos);
  EXPECT_NE(Key("evil.example", "/media/a.jpg"), key);
}

HeaderLookup Headers(std::map<std::string, std::string> h) {
  return [h = std::move(h)](std::string_view name) -> std::optional<std::string> {
    for (const auto& [k, v] : h)
      if (strcasecmp(k.c_str(), std::string(name).c_str()) == 0) return v;
    return std::nullopt;
  };
}

TEST(VaryKey, ValuesTrimmedAroundCommasAndEnds) {
  std::vector<std::string> vary = {"accept-encoding"};
  EXPECT_EQ(VaryKey(vary, Headers({{"Accept-Encoding", "  gzip ,\tbr  "}})),
            VaryKey(vary, Headers({{"accept-encoding", "gzip,br"}})));
  EXPECT_NE(VaryKey(vary, Headers({{"Accept-Encoding", "gzip"}})),
            VaryKey(vary, Headers({{"Accept-Encoding", "br"}})));
  // Inner whitespace that is not around a comma is part of the value.
  EXPECT_NE(VaryKey(vary, Headers({{"Accept-Encoding", "a b"}})),
            VaryKey(vary, Headers({{"Accept-Encoding", "ab"}})));
}

TEST(VaryKey, FieldNamesLowerCased) {
  auto req = Headers({{"Accept-Encoding", "gzip"}});
  EXPECT_EQ(VaryKey({"Accept-Encoding"}, req), VaryKey({"accept-encoding"}, req));
}

TEST(VaryKey, AbsentDiffersFromEmpty) {
  std::vector<std::string> vary = {"accept-encoding"};
  EXPECT_NE(VaryKey(vary, Headers({})), VaryKey(vary, Headers({{"Accept-Encoding", ""}})));
  EXPECT_EQ(VaryKey(vary, Headers({})), VaryKey(vary, Headers({{"Other", "x"}})));
}

TEST(VaryKey, FieldsInOrderAndSeparated) {
  auto req = Headers({{"A", "1"}, {"B", "2"}});
  EXPECT_NE(VaryKey({"a", "b"}, req), VaryKey({"b", "a"}, req));
  // One field's value cannot pass for two fields'.
  EXPECT_NE(VaryKey({"a"}, Headers({{"A", "1,b:2"}})), VaryKey({"a", "b"}, req));
  EXPECT_EQ(VaryKey({}, req), "");
}

}  // namespace
}  // namespace millions::edge
