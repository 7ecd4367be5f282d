// BlockingPool: a bounded set of threads for work that cannot avoid blocking (SQLite, argon2id,
// libvips), so that it never runs on an event loop thread.
// `co_await pool.Run(fn)` runs fn on the pool and resumes the coroutine on its own executor.
// fn must return a type constructible from Error (Result<T> or Status): an exception thrown by
// fn becomes a 500 Error rather than escaping into the event loop.
// Thread-safety: Run may be called from any thread. Ownership: owns its threads; Stop() joins
// them after the work in hand finishes.
//
// Callers name the work before the co_await (`auto work = ...; co_await
// pool.Run(std::move(work))`): GCC 12 destroys a temporary of a co_await expression twice when it
// owns memory. Run is deliberately not a coroutine: GCC 12 destroys closure-typed coroutine
// parameters twice, so the closure travels inside the asynchronous operation instead.
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "core/log.h"
#include "core/result.h"

namespace millions {

class BlockingPool {
 public:
  explicit BlockingPool(size_t threads) : pool_(threads) {}
  ~BlockingPool() { Stop(); }

  // Takes fn by reference and moves it into the operation: a by-value parameter would be a
  // temporary of the caller's co_await expression, which GCC 12 mishandles.
  template <class Fn>
  auto Run(Fn&& f) {
    using F = std::decay_t<Fn>;
    using R = std::invoke_result_t<F&>;
    static_assert(std::is_constructible_v<R, Error>, "Run needs a Result or Status");
    return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(R)>(
        [this](auto handler, F fn) {
          boost::asio::post(pool_, [handler = std::move(handler), fn = std::move(fn)]() mutable {
            std::optional<R> out;
            try {
              out.emplace(fn());
            } catch (const std::exception& e) {
              out.emplace(MakeError(Errc::kInternal, "internal", e.what()));
            }
            auto ex = boost::asio::get_associated_executor(handler);
            boost::asio::dispatch(ex,
                                  [handler = std::move(handler), out = std::move(out)]() mutable {
                                    std::move(handler)(std::move(*out));
                                  });
          });
        },
        boost::asio::use_awaitable, F(std::forward<Fn>(f)));
  }

  // Runs fn under the request's log context (log::WithContext), so that the lines fn writes on
  // the pool thread carry the request's ids.
  template <class Fn>
  auto Run(const log::Context& ctx, Fn&& f) {
    return Run(log::WithContext(std::decay_t<Fn>(std::forward<Fn>(f)), ctx));
  }

  void Stop() { pool_.join(); }

 private:
  boost::asio::thread_pool pool_;
};

}  // namespace millions
