// BlockingPool: a bounded set of threads for work that cannot avoid blocking (SQLite, argon2id,
// libvips), so that it never runs on an event loop thread.
// Run() is awaited from a coroutine: the work runs on the pool and the coroutine resumes on its
// own executor. Thread-safety: Run may be called from any thread. Ownership: owns its threads;
// Stop() joins them (after in-flight work finishes).
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <type_traits>

namespace millions {

class BlockingPool {
 public:
  explicit BlockingPool(size_t threads) : pool_(threads) {}
  ~BlockingPool() { Stop(); }

  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F>> Run(F f) {
    using R = std::invoke_result_t<F>;
    co_return co_await boost::asio::co_spawn(
        pool_.get_executor(), [f = std::move(f)]() mutable -> boost::asio::awaitable<R> {
          co_return f();
        },
        boost::asio::use_awaitable);
  }

  void Stop() {
    pool_.join();
  }

 private:
  boost::asio::thread_pool pool_;
};

}  // namespace millions
