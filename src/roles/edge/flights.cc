// Request coalescing: concurrent misses of one key make one origin fetch (edge_internal.h). The
// leader fetches; the others park on timers of their own executors, and Finish cancels each
// on its executor, so every waiter wakes on its own event loop.
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "roles/edge/edge_internal.h"

namespace millions::edge {
namespace asio = boost::asio;

std::pair<std::shared_ptr<Flight>, bool> Edge::Impl::Join(const std::string& key) {
  std::lock_guard lock(flights_mu);
  auto [it, inserted] = flights.try_emplace(key);
  if (inserted) it->second = std::make_shared<Flight>();
  return {it->second, inserted};
}

void Edge::Impl::Finish(const std::string& key, const std::shared_ptr<Flight>& f,
                        ObjectPtr object) {
  {
    std::lock_guard lock(flights_mu);
    auto it = flights.find(key);
    if (it != flights.end() && it->second == f) flights.erase(it);
  }
  std::vector<std::shared_ptr<asio::steady_timer>> waiters;
  {
    std::lock_guard lock(f->mu);
    f->done = true;
    f->object = std::move(object);
    waiters.swap(f->waiters);
  }
  for (auto& t : waiters) asio::post(t->get_executor(), [t] { t->cancel(); });
}

asio::awaitable<ObjectPtr> Edge::Impl::Wait(std::shared_ptr<Flight> f) {
  auto ex = co_await asio::this_coro::executor;
  auto timer = std::make_shared<asio::steady_timer>(ex);
  // Bounded: a leader that never finishes (it cannot: every path finishes) costs one timeout.
  timer->expires_after(std::chrono::milliseconds(cfg.settings.origin_timeout_ms + 1000));
  {
    std::lock_guard lock(f->mu);
    if (f->done) co_return f->object;
    f->waiters.push_back(timer);
  }
  boost::system::error_code ec;
  co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  std::lock_guard lock(f->mu);
  co_return f->done ? f->object : nullptr;
}

}  // namespace millions::edge
