#include "core/upstream.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "core/http_server.h"

namespace millions::upstream {
namespace {

namespace asio = boost::asio;

Outcome Failed(Failure f) {
  Outcome o;
  o.failure = f;
  return o;
}

TEST(Upstream, RetryRules) {
  Outcome connect = Failed(Failure::kConnect);
  Outcome reset = Failed(Failure::kReset);
  Outcome timeout = Failed(Failure::kTimeout);
  EXPECT_TRUE(ShouldRetry(connect, "POST", 0));  // never reached a backend
  EXPECT_TRUE(ShouldRetry(connect, "POST", 2));
  EXPECT_TRUE(ShouldRetry(reset, "GET", 0));  // idempotent: once
  EXPECT_FALSE(ShouldRetry(reset, "GET", 1));
  EXPECT_FALSE(ShouldRetry(reset, "POST", 0));
  EXPECT_FALSE(ShouldRetry(timeout, "GET", 0));
  Outcome sent = Failed(Failure::kConnect);
  sent.body_sent = true;  // part of a streamed body went out
  EXPECT_FALSE(ShouldRetry(sent, "PUT", 0));
  Outcome client = Failed(Failure::kConnect);
  client.client_error = MakeError(Errc::kTooLarge, "payload_too_large", "");
  EXPECT_FALSE(ShouldRetry(client, "GET", 0));
  EXPECT_FALSE(ShouldRetry(Outcome{}, "GET", 0));
}

// A backend on a free port, the client and a coroutine driving both on one io_context.
class UpstreamClient : public ::testing::Test {
 protected:
  void SetUp() override {
    http::ServerOptions so;
    so.port = 0;
    so.limits.max_body_bytes = 8 << 20;
    // One thread runs the test's context: the server reads through the poller and its plain
    // connections leave Asio's reactor (http_server_impl.h, ServerConn::Unregister), so each test
    // below also drives the server's raw path and its way back to Asio (a 300 KiB answer the
    // socket cannot take at once, a 4 MiB request body read by Beast's parser).
    so.one_thread = true;
    server_ = std::make_unique<http::HttpServer>(
        ioc_, so,
        [](http::Request& req) -> asio::awaitable<http::Response> {
          http::Response r;
          r.body = req.path == "/big" ? std::string(300 * 1024, 'x') : "hello " + req.body;
          r.set("X-Backend", "b1");
          co_return r;
        },
        &Registry());
    server_->Start();
    address_ = "127.0.0.1:" + std::to_string(server_->port());
  }
  // Runs `fn` to its end on the io_context.
  template <class Fn>
  void Run(Fn fn) {
    asio::co_spawn(ioc_, std::move(fn), [this](std::exception_ptr e) {
      ioc_.stop();
      if (e) std::rethrow_exception(e);
    });
    ioc_.run();
    ioc_.restart();
  }

  // One for the process: the server's per-thread metric handles are keyed by the registry's
  // address, which a registry per test could reuse after the last one is gone.
  static metrics::Registry& Registry() {
    static auto* reg = new metrics::Registry;
    return *reg;
  }

  // Arguments of a co_await expression are named, never temporaries: GCC 12 destroys a temporary
  // that owns memory twice there.
  const std::string b1_ = "b1";
  asio::io_context ioc_;
  std::unique_ptr<http::HttpServer> server_;
  std::string address_;
};

http::Request Get(std::string path) {
  http::Request req;
  req.method = "GET";
  req.target = req.path = std::move(path);
  return req;
}

TEST_F(UpstreamClient, ForwardsAndPoolsTheConnection) {
  Client client(Options{});
  Run([&]() -> asio::awaitable<void> {
    for (int i = 0; i < 3; ++i) {
      http::Request req = Get("/x");
      Outcome out =
          co_await client.Forward(b1_, address_, "GET /x HTTP/1.1\r\nHost: t\r\n\r\n", req);
      EXPECT_EQ(out.failure, Failure::kNone);
      EXPECT_EQ(out.response.status, 200);
      EXPECT_EQ(out.response.body, "hello ");
      EXPECT_NE(out.response.raw_headers.find("X-Backend: b1\r\n"), std::string::npos);
      EXPECT_EQ(out.response.raw_headers.find("Content-Length"), std::string::npos);
      EXPECT_EQ(client.IdleCount("b1"), 1u);  // one connection, reused each time
    }
  });
}

TEST_F(UpstreamClient, StreamsALargeResponseAndThenPoolsTheConnection) {
  Client client(Options{});
  Run([&]() -> asio::awaitable<void> {
    http::Request req = Get("/big");
    Outcome out =
        co_await client.Forward(b1_, address_, "GET /big HTTP/1.1\r\nHost: t\r\n\r\n", req);
    EXPECT_EQ(out.failure, Failure::kNone);
    EXPECT_TRUE(out.response.body.empty());
    if (!out.response.body_stream) co_return ADD_FAILURE() << "not streamed";
    EXPECT_EQ(out.response.body_length.value_or(0), 300u * 1024);
    EXPECT_EQ(client.IdleCount("b1"), 0u);  // the body owns the connection
    size_t total = 0;
    std::string piece;
    do {
      Status st = co_await out.response.body_stream->Read(piece);
      EXPECT_TRUE(st.ok());
      total += piece.size();
    } while (!piece.empty());
    EXPECT_EQ(total, 300u * 1024);
    EXPECT_EQ(client.IdleCount("b1"), 1u);
  });
}

// one_thread: a plain backend connection is read through the context's poller and taken out
// of Asio's reactor (upstream.cc, PooledConn::Unregister); it must go back to Asio for what only
// Asio does: a streamed response read by Beast's parser, and a request the socket cannot take
// at once. The connection then keeps serving from the pool.
TEST_F(UpstreamClient, OneThreadPollerConnectionServesEveryPath) {
  Options o;
  o.one_thread = true;
  Client client(o);
  Run([&]() -> asio::awaitable<void> {
    for (int i = 0; i < 3; ++i) {  // the common path: raw send, read through the poller
      http::Request req = Get("/x");
      Outcome out =
          co_await client.Forward(b1_, address_, "GET /x HTTP/1.1\r\nHost: t\r\n\r\n", req);
      EXPECT_EQ(out.failure, Failure::kNone);
      EXPECT_EQ(out.response.body, "hello ");
      EXPECT_EQ(client.IdleCount("b1"), 1u);
    }
    {  // Beast's parser streams a large answer: back to Asio, then pooled again
      http::Request req = Get("/big");
      Outcome out =
          co_await client.Forward(b1_, address_, "GET /big HTTP/1.1\r\nHost: t\r\n\r\n", req);
      EXPECT_EQ(out.failure, Failure::kNone);
      if (!out.response.body_stream) co_return ADD_FAILURE() << "not streamed";
      size_t total = 0;
      std::string piece;
      do {
        Status st = co_await out.response.body_stream->Read(piece);
        EXPECT_TRUE(st.ok()) << st.error().message;
        total += piece.size();
      } while (!piece.empty());
      EXPECT_EQ(total, 300u * 1024);
      EXPECT_EQ(client.IdleCount("b1"), 1u);
    }
    {  // a request body larger than the socket takes at once: the rest written by Asio
      http::Request req = Get("/x");
      req.method = "POST";
      req.body = std::string(4 << 20, 'y');
      const std::string head =
          "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(req.body.size()) +
          "\r\n\r\n";
      Outcome out = co_await client.Forward(b1_, address_, head, req);
      EXPECT_EQ(out.failure, Failure::kNone);
      EXPECT_EQ(out.response.status, 200);
      EXPECT_EQ(out.response.body_length.value_or(out.response.body.size()), 6u + req.body.size());
      if (out.response.body_stream) {
        std::string piece;
        do {
          Status st = co_await out.response.body_stream->Read(piece);
          EXPECT_TRUE(st.ok());
        } while (!piece.empty());
      }
    }
    {  // and the pooled connection still answers
      http::Request req = Get("/x");
      Outcome out =
          co_await client.Forward(b1_, address_, "GET /x HTTP/1.1\r\nHost: t\r\n\r\n", req);
      EXPECT_EQ(out.failure, Failure::kNone);
      EXPECT_EQ(out.response.body, "hello ");
    }
  });
}

TEST_F(UpstreamClient, ARefusedConnectionIsAConnectFailure) {
  asio::ip::tcp::acceptor closed(ioc_, {asio::ip::make_address("127.0.0.1"), 0});
  std::string address = "127.0.0.1:" + std::to_string(closed.local_endpoint().port());
  closed.close();
  Client client(Options{});
  Run([&]() -> asio::awaitable<void> {
    http::Request req = Get("/x");
    Outcome out = co_await client.Forward(b1_, address, "GET /x HTTP/1.1\r\n\r\n", req);
    EXPECT_EQ(out.failure, Failure::kConnect);
    EXPECT_TRUE(ShouldRetry(out, "POST", 0));
  });
}

}  // namespace
}  // namespace millions::upstream
