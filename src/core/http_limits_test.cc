#include "core/http_limits.h"

#include <gtest/gtest.h>

namespace millions::http {
namespace {

TEST(ParseRequest, ParsesTargetQueryHeadersAndBody) {
  auto r = ParseRequest(
      "POST /api/photos%2Fx?caption=hi%20there&a=b HTTP/1.1\r\nHost: h\r\n"
      "X-Request-Id: abc-1\r\ntraceparent: "
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
      "Content-Length: 3\r\n\r\nxyz",
      Limits{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->method, "POST");
  EXPECT_EQ(r->path, "/api/photos/x");
  EXPECT_EQ(r->query_param("caption").value(), "hi there");
  EXPECT_EQ(r->body, "xyz");
  EXPECT_EQ(r->request_id, "abc-1");
  EXPECT_EQ(r->trace_id, "0af7651916cd43dd8448eb211c80319c");
}

TEST(ParseRequest, RejectsTooManyHeadersWith431) {
  Limits lim;
  lim.max_headers = 3;
  std::string req = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 5; ++i) req += "X-H" + std::to_string(i) + ": v\r\n";
  req += "\r\n";
  auto r = ParseRequest(req, lim);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status(), 431);
}

TEST(ParseRequest, RejectsHugeHeadersWith431) {
  Limits lim;
  lim.max_header_bytes = 100;
  auto r = ParseRequest("GET / HTTP/1.1\r\nX: " + std::string(200, 'a') + "\r\n\r\n", lim);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status(), 431);
}

TEST(ParseRequest, RejectsLargeBodyWith413) {
  Limits lim;
  lim.max_body_bytes = 10;
  auto r = ParseRequest("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n01234567890", lim);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status(), 413);
}

TEST(ParseRequest, RejectsMalformedWith400) {
  for (const char* bad : {"GARBAGE\r\n\r\n", "GET http://x/ HTTP/1.1\r\n\r\n",
                          "GET /a%zz HTTP/1.1\r\n\r\n", "GET /a%00 HTTP/1.1\r\n\r\n",
                          "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"}) {
    auto r = ParseRequest(bad, Limits{});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().status(), 400) << bad;
  }
}

TEST(ParseRequest, BadRequestIdIsReplaced) {
  auto r = ParseRequest("GET / HTTP/1.1\r\nHost: h\r\nX-Request-Id: a b\"c\r\n\r\n", Limits{});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->request_id.size(), 32u);
}

TEST(Request, Cookies) {
  Request r;
  r.headers.push_back({"Cookie", "a=1; sid=xyz; b=2"});
  EXPECT_EQ(r.cookie("sid").value(), "xyz");
  EXPECT_FALSE(r.cookie("none").has_value());
}

}  // namespace
}  // namespace millions::http

namespace millions::http {
namespace {

// RFC 9112 framing: everything that could be read two ways is a 400.
TEST(ParseRequest, StrictFraming) {
  const char* bad[] = {
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: "
      "chunked\r\n\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na",
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\na",
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\na",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
      "POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
      "GET / HTTP/1.1\nHost: x\n\n",
      "GET / HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n",
      "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET / HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
      "GET / HTTP/1.0\r\nHost: x\r\nHost: x\r\n\r\n",  // found by the fuzzer
  };
  for (const char* b : bad) {
    auto r = ParseRequest(b, Limits{});
    EXPECT_FALSE(r.ok()) << b;
    if (!r.ok()) {
      EXPECT_EQ(r.error().status(), 400) << b;
    }
  }
  EXPECT_TRUE(ParseRequest("GET / HTTP/1.0\r\n\r\n", Limits{}).ok());  // 1.0 may omit Host
  std::string nul("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", 38);
  EXPECT_FALSE(ParseRequest(nul, Limits{}).ok());
  EXPECT_TRUE(ParseRequest("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "1;ext=1\r\na\r\n0\r\n\r\n",
                           Limits{})
                  .ok());
}

}  // namespace
}  // namespace millions::http
