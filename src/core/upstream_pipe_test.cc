// Pipelined GETs (upstream_pipe.cc) against our HttpServer, which holds back its answers to a
// batch, and against raw backends that misbehave: an answer for another request, a cut.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <vector>

#include "core/http_server.h"
#include "core/upstream.h"

namespace millions::upstream {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;

// An answer of unknown length (sent chunked by the server): `n` pieces of odd sizes.
class Pieces final : public http::BodyStream {
 public:
  explicit Pieces(int n) : left_(n) {}
  awaitable<Status> Read(std::string& piece) override {
    piece.clear();
    if (left_ > 0) piece.assign(static_cast<size_t>(1000 + 37 * left_--), 'c');
    co_return Ok();
  }

 private:
  int left_;
};

metrics::Registry& Registry() {
  static auto* reg = new metrics::Registry;
  return *reg;
}

std::string Head(const std::string& path, const std::string& id) {
  return "GET " + path + " HTTP/1.1\r\nHost: t\r\nX-Request-Id: " + id + "\r\n\r\n";
}

http::Request Get(const std::string& path, const std::string& id) {
  http::Request req;
  req.method = "GET";
  req.target = req.path = path;
  req.request_id = id;
  return req;
}

// One request's result, filled by its coroutine.
struct Result {
  Outcome out;
  std::string body;  // the whole body, streamed or not
  double ms = 0;     // from the batch's start to the answer
  bool done = false;
};

// Forwards every path of `paths` at once (one coroutine each, started in the same turn of the
// event loop, as a balancer's clients whose requests came in one poller round) and reads each
// answer whole.
void ForwardBatch(asio::io_context& ioc, Client& client, const std::string& address,
                  const std::vector<std::string>& paths, std::vector<Result>& results) {
  results.assign(paths.size(), {});
  const auto t0 = Clock::now();
  for (size_t i = 0; i < paths.size(); ++i) {
    asio::co_spawn(
        ioc,
        [&ioc, &client, &results, address, path = paths[i], i, t0]() -> awaitable<void> {
          const std::string backend = "b1";
          const std::string id = "req" + std::to_string(i);
          const std::string head = Head(path, id);
          http::Request req = Get(path, id);
          Result& r = results[i];
          r.out = co_await client.Forward(backend, address, head, req);
          r.body = r.out.response.body;
          if (r.out.response.body_stream) {
            std::string piece;
            do {
              Status st = co_await r.out.response.body_stream->Read(piece);
              if (!st.ok()) break;
              r.body += piece;
            } while (!piece.empty());
          }
          r.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
          r.done = true;
        },
        asio::detached);
  }
}

class Pipelined : public ::testing::Test {
 protected:
  void SetUp() override {
    http::ServerOptions so;
    so.port = 0;
    so.one_thread = true;  // read through the poller: answers to a batch are held back
    server_ = std::make_unique<http::HttpServer>(
        ioc_, so,
        [this](http::Request& req) -> awaitable<http::Response> {
          ++handled_;
          http::Response r;
          if (req.path == "/slow") {
            asio::steady_timer t(ioc_, std::chrono::milliseconds(300));
            co_await t.async_wait(use_awaitable);
          }
          if (req.path == "/chunked") {
            r.body_stream = std::make_shared<Pieces>(50);
            co_return r;
          }
          r.body = req.path == "/big" ? std::string(300 * 1024, 'x') : "answer " + req.path;
          co_return r;
        },
        &Registry());
    server_->Start();
    address_ = "127.0.0.1:" + std::to_string(server_->port());
  }
  // Runs the context until every result is in (or 10 s pass).
  void RunUntilDone(std::vector<Result>& results) {
    const auto until = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < until) {
      ioc_.run_for(std::chrono::milliseconds(5));
      bool all = true;
      for (auto& r : results) all = all && r.done;
      if (all) return;
    }
    ADD_FAILURE() << "the batch did not finish";
  }
  Options PipeOptions(size_t depth) {
    Options o;
    o.one_thread = true;
    o.pipeline_depth = depth;
    return o;
  }

  asio::io_context ioc_{1};
  std::unique_ptr<http::HttpServer> server_;
  std::string address_;
  int handled_ = 0;
};

TEST_F(Pipelined, ABatchSharesOneConnectionAndEachGetsItsOwnAnswer) {
  Client client(PipeOptions(8));
  std::vector<std::string> paths;
  for (int i = 0; i < 8; ++i) paths.push_back("/p" + std::to_string(i));
  std::vector<Result> results;
  ForwardBatch(ioc_, client, address_, paths, results);
  RunUntilDone(results);
  for (size_t i = 0; i < paths.size(); ++i) {
    EXPECT_EQ(results[i].out.failure, Failure::kNone) << i;
    EXPECT_EQ(results[i].out.response.status, 200);
    EXPECT_EQ(results[i].body, "answer " + paths[i]);
  }
  EXPECT_EQ(client.PipelinedCount("b1"), 1u);  // the whole batch on one connection
  EXPECT_EQ(client.IdleCount("b1"), 0u);
  // A second batch reuses it.
  ForwardBatch(ioc_, client, address_, paths, results);
  RunUntilDone(results);
  for (size_t i = 0; i < paths.size(); ++i) EXPECT_EQ(results[i].body, "answer " + paths[i]);
  EXPECT_EQ(client.PipelinedCount("b1"), 1u);
}

TEST_F(Pipelined, TheDepthBoundsABatch) {
  Client client(PipeOptions(4));
  std::vector<std::string> paths(10, "/x");
  std::vector<Result> results;
  ForwardBatch(ioc_, client, address_, paths, results);
  RunUntilDone(results);
  for (auto& r : results) EXPECT_EQ(r.body, "answer /x");
  EXPECT_EQ(client.PipelinedCount("b1"), 3u);  // 4 + 4 + 2
}

TEST_F(Pipelined, OffItIsAConnectionPerRequest) {
  Client client(PipeOptions(1));
  std::vector<std::string> paths(4, "/x");
  std::vector<Result> results;
  ForwardBatch(ioc_, client, address_, paths, results);
  RunUntilDone(results);
  for (auto& r : results) EXPECT_EQ(r.body, "answer /x");
  EXPECT_EQ(client.PipelinedCount("b1"), 0u);
  EXPECT_EQ(client.IdleCount("b1"), 4u);
}

// The server holds back an answer only while it handles the next request without waiting: the
// answer before a slow one goes out when the slow handler yields, not after it.
TEST_F(Pipelined, AnAnswerIsNotHeldBehindASlowOne) {
  Client client(PipeOptions(8));
  std::vector<Result> results;
  ForwardBatch(ioc_, client, address_, {"/a", "/slow", "/c"}, results);
  RunUntilDone(results);
  for (auto& r : results) EXPECT_EQ(r.out.failure, Failure::kNone);
  EXPECT_EQ(results[1].body, "answer /slow");
  EXPECT_LT(results[0].ms, 150.0) << "the first answer waited for the slow one";
  EXPECT_GE(results[2].ms, 290.0);  // behind it on the connection, as HTTP/1.1 orders them
}

// A large answer in the middle is streamed; the request behind it gets its turn after it.
TEST_F(Pipelined, AStreamedAnswerInABatch) {
  Client client(PipeOptions(8));
  std::vector<Result> results;
  ForwardBatch(ioc_, client, address_, {"/a", "/big", "/c"}, results);
  RunUntilDone(results);
  EXPECT_EQ(results[0].body, "answer /a");
  EXPECT_TRUE(results[1].out.response.body_stream != nullptr);
  EXPECT_EQ(results[1].body.size(), 300u * 1024);
  EXPECT_EQ(results[2].body, "answer /c");
  EXPECT_EQ(client.PipelinedCount("b1"), 1u);
  // Of unknown length (chunked): its pieces end mid-chunk in the buffer more than once.
  ForwardBatch(ioc_, client, address_, {"/a", "/chunked", "/c"}, results);
  RunUntilDone(results);
  size_t want = 0;
  for (int i = 1; i <= 50; ++i) want += static_cast<size_t>(1000 + 37 * i);
  EXPECT_EQ(results[1].body.size(), want);
  EXPECT_EQ(results[2].body, "answer /c");
  EXPECT_EQ(client.PipelinedCount("b1"), 1u);
}

// Raw backends: each connection reads one chunk of requests and answers with `reply(n)`, n the
// number of requests in it, then closes when `close_after` is set.
class RawBackend {
 public:
  RawBackend(asio::io_context& ioc, std::function<std::string(int)> reply)
      : acceptor_(ioc, {asio::ip::make_address("127.0.0.1"), 0}), reply_(std::move(reply)) {
    asio::co_spawn(ioc, Serve(), asio::detached);
  }
  std::string address() const {
    return "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }

 private:
  awaitable<void> Serve() {
    auto sock = co_await acceptor_.async_accept(use_awaitable);
    std::string got;
    int n = 0;
    // Wait a moment so the whole batch is in, then count its requests.
    asio::steady_timer t(acceptor_.get_executor(), std::chrono::milliseconds(50));
    co_await t.async_wait(use_awaitable);
    char buf[65536];
    boost::system::error_code ec;
    size_t k = sock.read_some(asio::buffer(buf), ec);
    got.assign(buf, k);
    for (size_t p = 0; (p = got.find("\r\n\r\n", p)) != std::string::npos; p += 4) ++n;
    std::string out = reply_(n);
    co_await asio::async_write(sock, asio::buffer(out), use_awaitable);
    sock.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  }
  asio::ip::tcp::acceptor acceptor_;
  std::function<std::string(int)> reply_;
};

std::string Answer(const std::string& id, const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nX-Request-Id: " + id + "\r\n\r\n" + body;
}

// An answer that names another request: it and everything after it on the connection fail as
// cut (retried elsewhere), and no client gets a body meant for another.
TEST_F(Pipelined, AnAnswerForAnotherRequestDropsTheConnection) {
  RawBackend backend(ioc_, [](int) { return Answer("req0", "zero") + Answer("req2", "two"); });
  Client client(PipeOptions(8));
  std::vector<Result> results;
  ForwardBatch(ioc_, client, backend.address(), {"/0", "/1", "/2"}, results);
  RunUntilDone(results);
  EXPECT_EQ(results[0].out.failure, Failure::kNone);
  EXPECT_EQ(results[0].body, "zero");
  EXPECT_EQ(results[1].out.failure, Failure::kReset);
  EXPECT_EQ(results[2].out.failure, Failure::kReset);
  EXPECT_TRUE(results[2].body.empty());
  EXPECT_TRUE(ShouldRetry(results[1].out, "GET", 0));
  EXPECT_EQ(client.PipelinedCount("b1"), 0u);
}

// A backend that answers the first request and closes: the rest were sent, so they fail as cut
// and may be sent again (they are GETs).
TEST_F(Pipelined, ACutAfterTheFirstAnswerFailsTheRestAsCut) {
  RawBackend backend(ioc_, [](int) { return Answer("req0", "zero"); });
  Client client(PipeOptions(8));
  std::vector<Result> results;
  ForwardBatch(ioc_, client, backend.address(), {"/0", "/1", "/2"}, results);
  RunUntilDone(results);
  EXPECT_EQ(results[0].body, "zero");
  for (int i : {1, 2}) {
    EXPECT_EQ(results[i].out.failure, Failure::kReset) << i;
    EXPECT_TRUE(ShouldRetry(results[i].out, "GET", 0));
  }
  EXPECT_EQ(client.PipelinedCount("b1"), 0u);
}

// The backend's server answers a pipelined batch in order and whole when the requests come in
// one write (they do from the balancer).
TEST_F(Pipelined, TheServerAnswersARawBatchInOrder) {
  std::string answers;
  asio::co_spawn(
      ioc_,
      [&]() -> awaitable<void> {
        asio::ip::tcp::socket sock(ioc_);
        co_await sock.async_connect({asio::ip::make_address("127.0.0.1"), server_->port()},
                                    use_awaitable);
        std::string batch = Head("/1", "i1") + Head("/slow", "i2") + Head("/3", "i3");
        co_await asio::async_write(sock, asio::buffer(batch), use_awaitable);
        char buf[4096];
        while (answers.find("answer /3") == std::string::npos) {
          size_t n = co_await sock.async_read_some(asio::buffer(buf), use_awaitable);
          answers.append(buf, n);
        }
      },
      asio::detached);
  const auto until = Clock::now() + std::chrono::seconds(5);
  while (answers.find("answer /3") == std::string::npos && Clock::now() < until)
    ioc_.run_for(std::chrono::milliseconds(5));
  size_t a = answers.find("answer /1"), b = answers.find("answer /slow"),
         c = answers.find("answer /3");
  ASSERT_NE(c, std::string::npos) << answers;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_NE(answers.find("X-Request-Id: i2"), std::string::npos);
}

}  // namespace
}  // namespace millions::upstream
