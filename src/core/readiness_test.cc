#include "core/readiness.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <string>

namespace millions::net {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

// A connected pair of loopback sockets on `ioc`.
struct Pair {
  explicit Pair(asio::io_context& ioc) : a(ioc), b(ioc) {
    tcp::acceptor acc(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    a.connect(acc.local_endpoint());
    b = acc.accept();
    a.non_blocking(true);
  }
  tcp::socket a, b;
};

// Runs `fn` (a coroutine) on `ioc` until the context runs out of work: it must, even with a
// socket attached and then detached (the poller's wait is armed only while one is attached).
template <class F>
void RunToEnd(asio::io_context& ioc, F fn) {
  asio::co_spawn(ioc, fn(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  ioc.run();
}

TEST(ReadyFd, WaitsForDataThenReadsIt) {
  asio::io_context ioc(1);
  Pair p(ioc);
  ReadyFd r;
  ASSERT_TRUE(r.Attach(ioc, p.a.native_handle()));
  std::string got;
  RunToEnd(ioc, [&]() -> asio::awaitable<void> {
    // The peer writes only after the read has had to wait.
    asio::steady_timer t(ioc, std::chrono::milliseconds(20));
    t.async_wait([&](error_code) { asio::write(p.b, asio::buffer(std::string("hello"))); });
    char buf[64];
    error_code ec;
    size_t n = co_await r.Read(asio::buffer(buf), ec);
    EXPECT_FALSE(ec) << ec.message();
    got.assign(buf, n);
    // A short read drained the socket; the next one waits again, for the next write.
    t.expires_after(std::chrono::milliseconds(20));
    t.async_wait([&](error_code) { asio::write(p.b, asio::buffer(std::string("again"))); });
    n = co_await r.Read(asio::buffer(buf), ec);
    EXPECT_FALSE(ec);
    got.append(buf, n);
    // End of stream.
    p.b.shutdown(tcp::socket::shutdown_send);
    n = co_await r.Read(asio::buffer(buf), ec);
    EXPECT_EQ(n, 0u);
    EXPECT_EQ(ec, asio::error::eof);
    r.Detach();
  });
  EXPECT_EQ(got, "helloagain");
}

TEST(ReadyFd, ReadsWhatIsThereWithoutWaiting) {
  asio::io_context ioc(1);
  Pair p(ioc);
  asio::write(p.b, asio::buffer(std::string("0123456789")));
  ReadyFd r;
  ASSERT_TRUE(r.Attach(ioc, p.a.native_handle()));
  std::string got;
  RunToEnd(ioc, [&]() -> asio::awaitable<void> {
    char buf[4];
    error_code ec;
    while (got.size() < 10) {
      size_t n = co_await r.Read(asio::buffer(buf), ec);
      if (ec) break;
      got.append(buf, n);
    }
    r.Detach();
  });
  EXPECT_EQ(got, "0123456789");
}

TEST(ReadyFd, CancelAndDetachEndAWaitingRead) {
  asio::io_context ioc(1);
  Pair p(ioc);
  ReadyFd r;
  ASSERT_TRUE(r.Attach(ioc, p.a.native_handle()));
  error_code first, second;
  RunToEnd(ioc, [&]() -> asio::awaitable<void> {
    asio::steady_timer t(ioc, std::chrono::milliseconds(20));
    t.async_wait([&](error_code) { r.Cancel(); });
    char buf[8];
    co_await r.Read(asio::buffer(buf), first);
    t.expires_after(std::chrono::milliseconds(20));
    t.async_wait([&](error_code) { r.Detach(); });
    co_await r.Read(asio::buffer(buf), second);
  });
  EXPECT_EQ(first, asio::error::operation_aborted);
  EXPECT_EQ(second, asio::error::operation_aborted);
  EXPECT_FALSE(r.attached());
}

TEST(ReadyFd, DeadlineEndsAWaitingRead) {
  asio::io_context ioc(1);
  Pair p(ioc);
  ReadyFd r;
  ASSERT_TRUE(r.Attach(ioc, p.a.native_handle()));
  error_code ec;
  auto t0 = ReadyFd::Clock::now();
  RunToEnd(ioc, [&]() -> asio::awaitable<void> {
    char buf[8];
    co_await r.Read(asio::buffer(buf), ec, ReadyFd::Clock::now() + std::chrono::milliseconds(50));
    r.Detach();
  });
  EXPECT_EQ(ec, asio::error::timed_out);
  EXPECT_GE(ReadyFd::Clock::now() - t0, std::chrono::milliseconds(50));
}

// Many sockets, each waiting; one write wakes exactly its own reader.
TEST(ReadyFd, WakesTheRightReader) {
  asio::io_context ioc(1);
  std::vector<std::unique_ptr<Pair>> pairs;
  std::vector<std::unique_ptr<ReadyFd>> fds;
  for (int i = 0; i < 5; ++i) {
    pairs.push_back(std::make_unique<Pair>(ioc));
    fds.push_back(std::make_unique<ReadyFd>());
    ASSERT_TRUE(fds.back()->Attach(ioc, pairs.back()->a.native_handle()));
  }
  std::string order;
  for (int i = 0; i < 5; ++i) {
    asio::co_spawn(
        ioc,
        [&, i]() -> asio::awaitable<void> {
          char buf[8];
          error_code ec;
          size_t n = co_await fds[i]->Read(asio::buffer(buf), ec);
          order.append(buf, n);
          fds[i]->Detach();
        },
        asio::detached);
  }
  asio::steady_timer t(ioc, std::chrono::milliseconds(20));
  t.async_wait([&](error_code) {
    for (int i : {3, 1, 4, 0, 2}) asio::write(pairs[i]->b, asio::buffer(std::to_string(i)));
  });
  ioc.run();
  ASSERT_EQ(order.size(), 5u);
  std::string sorted = order;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, "01234");
}

}  // namespace
}  // namespace millions::net
