// BlockingPool under concurrency: coroutines on two io threads hand work to the pool at once;
// each result comes back on the coroutine's own executor; an exception becomes an Error.
// Written for the ThreadSanitizer run (`make tsan-test`) as much as for the behaviour.
#include "core/blocking_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace millions {
namespace {

namespace asio = boost::asio;

TEST(BlockingPool, ManyCoroutinesOnTwoThreadsGetTheirOwnResultsOnTheirOwnExecutor) {
  asio::io_context ioc;
  BlockingPool pool(4);
  constexpr int kTasks = 400;
  std::atomic<int> done{0}, wrong{0}, on_strand{0};
  int shared_sum = 0;  // touched only on the strand: TSan checks the hand-back
  auto strand = asio::make_strand(ioc);
  for (int i = 0; i < kTasks; ++i) {
    asio::co_spawn(
        strand,
        [&, i]() -> asio::awaitable<void> {
          Result<int> r = co_await pool.Run([i]() -> Result<int> { return i * 2; });
          if (!r.ok() || *r != i * 2) wrong++;
          if (strand.running_in_this_thread()) on_strand++;
          shared_sum += *r;
          done++;
        },
        asio::detached);
  }
  auto work = asio::make_work_guard(ioc);
  std::vector<std::thread> io;
  for (int t = 0; t < 2; ++t) io.emplace_back([&] { ioc.run(); });
  for (int spins = 0; done < kTasks && spins < 3000; ++spins)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  work.reset();
  for (auto& t : io) t.join();
  EXPECT_EQ(done, kTasks);
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(on_strand, kTasks);
  EXPECT_EQ(shared_sum, kTasks * (kTasks - 1));
}

TEST(BlockingPool, AnExceptionBecomesAnInternalError) {
  asio::io_context ioc;
  BlockingPool pool(1);
  std::optional<Status> got;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        got = co_await pool.Run([]() -> Status { throw std::runtime_error("boom"); });
      },
      asio::detached);
  ioc.run();
  ASSERT_TRUE(got);
  ASSERT_FALSE(got->ok());
  EXPECT_EQ(got->error().kind, Errc::kInternal);
  EXPECT_EQ(got->error().message, "boom");
}

// The request's ids cross to the pool thread with the work, each coroutine its own, and the pool
// thread is left without a context afterwards.
TEST(BlockingPool, WorkRunsUnderItsRequestsLogContext) {
  asio::io_context ioc;
  BlockingPool pool(2);
  constexpr int kTasks = 100;
  std::atomic<int> right{0}, leaked{0};
  for (int i = 0; i < kTasks; ++i) {
    asio::co_spawn(
        ioc,
        [&, i]() -> asio::awaitable<void> {
          std::string rid = "req-" + std::to_string(i), tid = "trace-" + std::to_string(i);
          // Named, not a temporary of the co_await expression: GCC 12 destroys such temporaries
          // twice when they own memory (see blocking_pool.h).
          auto work = [&, rid, tid]() -> Status {
            if (log::Current().request_id == rid && log::Current().trace_id == tid) ++right;
            return Ok();
          };
          Status st = co_await pool.Run(log::Context{rid, tid}, std::move(work));
          (void)st;
          Status after = co_await pool.Run([&]() -> Status {
            if (!log::Current().request_id.empty()) ++leaked;
            return Ok();
          });
          (void)after;
        },
        asio::detached);
  }
  ioc.run();
  EXPECT_EQ(right.load(), kTasks);
  EXPECT_EQ(leaked.load(), 0);
}

TEST(BlockingPool, StopFinishesTheWorkInHand) {
  asio::io_context ioc;
  BlockingPool pool(2);
  std::atomic<int> ran{0}, resumed{0};
  for (int i = 0; i < 50; ++i) {
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
          co_await pool.Run([&]() -> Status {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            ran++;
            return Ok();
          });
          resumed++;
        },
        asio::detached);
  }
  ioc.poll();   // starts every coroutine: all 50 are queued on the pool now
  pool.Stop();  // returns only when the queued work has run
  EXPECT_EQ(ran, 50);
  ioc.restart();
  ioc.poll();  // the results were handed back to the io context
  EXPECT_EQ(resumed, 50);
}

}  // namespace
}  // namespace millions
