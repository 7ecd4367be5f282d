#include "app/job_waiters.h"

#include <boost/asio/post.hpp>
#include <vector>

namespace millions::app {

bool JobWaiters::Add(int64_t job, const std::shared_ptr<Timer>& timer) {
  std::lock_guard lock(mu_);
  if (waiting_.size() >= kMax) return false;
  waiting_.emplace(job, timer);
  return true;
}

void JobWaiters::Remove(int64_t job, const Timer* timer) {
  std::lock_guard lock(mu_);
  auto [b, e] = waiting_.equal_range(job);
  for (auto it = b; it != e; ++it)
    if (it->second.get() == timer) {
      waiting_.erase(it);
      return;
    }
}

void JobWaiters::Notify(int64_t job) {
  std::vector<std::shared_ptr<Timer>> wake;
  {
    std::lock_guard lock(mu_);
    auto [b, e] = waiting_.equal_range(job);
    for (auto it = b; it != e; ++it) wake.push_back(it->second);
  }
  // A timer is not thread-safe: each is cancelled on the executor its request runs on.
  for (auto& t : wake) boost::asio::post(t->get_executor(), [t] { t->cancel(); });
}

void JobWaiters::NotifyAll() {
  std::vector<std::shared_ptr<Timer>> wake;
  {
    std::lock_guard lock(mu_);
    for (auto& [job, t] : waiting_) wake.push_back(t);
  }
  for (auto& t : wake) boost::asio::post(t->get_executor(), [t] { t->cancel(); });
}

size_t JobWaiters::Size() {
  std::lock_guard lock(mu_);
  return waiting_.size();
}

}  // namespace millions::app
