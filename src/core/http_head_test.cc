#include "core/http_head.h"

#include <gtest/gtest.h>

#include <string>

#include "core/http_convert.h"
#include "core/http_limits.h"

namespace millions::http {
namespace {

TEST(RequestHead, ReadsTheCommonGet) {
  std::string in =
      "GET /api/users/7?x=1 HTTP/1.1\r\nHost: a:1\r\nUser-Agent:  wrk  \r\nAccept: */*\r\n\r\n";
  RequestHeadView v;
  ASSERT_EQ(ParseRequestHead(in, v), FastHead::kOk);
  EXPECT_EQ(v.method, "GET");
  EXPECT_EQ(v.target, "/api/users/7?x=1");
  EXPECT_EQ(v.version, 11);
  ASSERT_EQ(v.count, 3u);
  EXPECT_EQ(v.fields[1].name, "User-Agent");
  EXPECT_EQ(v.fields[1].value, "wrk");
  Request req;
  req.body = "left over";
  req.route = "old";
  ASSERT_TRUE(FillRequest(v.method, v.target, v.version, v.fields, v.count, Limits{}, req).ok());
  EXPECT_EQ(req.path, "/api/users/7");
  EXPECT_EQ(req.query, "x=1");
  EXPECT_TRUE(req.keep_alive);
  EXPECT_TRUE(req.body.empty());
  EXPECT_TRUE(req.route.empty());
  EXPECT_EQ(req.request_id.size(), 32u);
  EXPECT_EQ(req.trace_id.size(), 32u);
}

// Everything outside the strict subset goes to the full parser, which decides.
TEST(RequestHead, LeavesTheRestToTheFullParser) {
  for (std::string in : {
           "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
           "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
           "GET / HTTP/1.1\nHost: a\n\n",
           "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
           "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
           "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
           "get / HTTP/1.1\r\nHost: a\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: a\r\n\r\nextra",
       }) {
    RequestHeadView v;
    EXPECT_EQ(ParseRequestHead(in, v), FastHead::kFallback) << in;
  }
}

TEST(RequestHead, SameRequestAsTheFullParser) {
  for (std::string in : {
           "GET /a%20b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
           "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
           "GET / HTTP/1.0\r\n\r\n",
           "DELETE /x HTTP/1.1\r\nHost: a\r\nX-Request-Id: abc-1\r\nConnection: a, close\r\n\r\n",
       }) {
    RequestHeadView v;
    ASSERT_EQ(ParseRequestHead(in, v), FastHead::kOk) << in;
    Request fast;
    ASSERT_TRUE(FillRequest(v.method, v.target, v.version, v.fields, v.count, Limits{}, fast).ok());
    auto full = ParseRequest(in, Limits{});
    ASSERT_TRUE(full.ok()) << in;
    EXPECT_EQ(full->path, fast.path);
    EXPECT_EQ(full->keep_alive, fast.keep_alive) << in;
    EXPECT_EQ(full->headers.size(), fast.headers.size());
  }
  // The same checks refuse the same requests: two Hosts, no Host on 1.1, a bad target.
  for (std::string in :
       {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "GET / HTTP/1.1\r\n\r\n",
        "GET x HTTP/1.1\r\nHost: a\r\n\r\n", "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n"}) {
    RequestHeadView v;
    ASSERT_EQ(ParseRequestHead(in, v), FastHead::kOk) << in;
    Request fast;
    EXPECT_FALSE(
        FillRequest(v.method, v.target, v.version, v.fields, v.count, Limits{}, fast).ok());
    EXPECT_FALSE(ParseRequest(in, Limits{}).ok()) << in;
  }
}

TEST(ResponseHead, ReadsALengthFramedResponse) {
  std::string in =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n"
      "X-Request-Id: r1\r\n\r\n";
  ResponseHeadView v;
  ASSERT_EQ(ParseResponseHead(in, v), FastHead::kOk);
  EXPECT_EQ(v.status, 200);
  EXPECT_TRUE(v.has_length);
  EXPECT_EQ(v.content_length, 12u);
  EXPECT_FALSE(v.close);
  EXPECT_TRUE(v.request_id);
  EXPECT_EQ(v.count, 3u);
  std::string close = "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
  ASSERT_EQ(ParseResponseHead(close, v), FastHead::kOk);
  EXPECT_TRUE(v.close);
  std::string old = "HTTP/1.0 204 No Content\r\n\r\n";
  ASSERT_EQ(ParseResponseHead(old, v), FastHead::kOk);
  EXPECT_TRUE(v.close);
}

TEST(ResponseHead, LeavesTheRestToTheFullParser) {
  for (std::string in : {
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
           "HTTP/1.1 200 OK\r\n\r\n",  // read to the close
           "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n", "HTTP/1.1 100 Continue\r\n\r\n",
           "HTTP/1.1 200 OK\r\nConnection: close, x\r\nContent-Length: 0\r\n\r\n",
           "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
           "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
           "HTTP/1.1 204\r\n\r\n",  // no SP after the code: the full parser decides
       }) {
    ResponseHeadView v;
    EXPECT_EQ(ParseResponseHead(in, v), FastHead::kFallback) << in;
  }
}

}  // namespace
}  // namespace millions::http
