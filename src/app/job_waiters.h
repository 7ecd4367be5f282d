// JobWaiters: the requests waiting for a job to finish (GET /api/jobs/{id}?wait_ms=N, the
// browser's long poll). A waiting request parks on a timer; Notify(job), called on whatever
// thread the queue announces a finished job on, cancels the job's timers on their own
// executors, so each request wakes on its own event loop. Bounded: past kMax waiters a request
// is answered at once instead of waiting.
// Thread-safety: every method may be called from any thread. Ownership: shares the timers with
// the requests that wait on them.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace millions::app {

class JobWaiters {
 public:
  static constexpr size_t kMax = 10'000;
  using Timer = boost::asio::steady_timer;

  // False when kMax requests wait already.
  bool Add(int64_t job, const std::shared_ptr<Timer>& timer);
  void Remove(int64_t job, const Timer* timer);
  void Notify(int64_t job);
  // Every waiting request answers now (the node is draining).
  void NotifyAll();
  size_t Size();

 private:
  std::mutex mu_;
  std::unordered_multimap<int64_t, std::shared_ptr<Timer>> waiting_;
};

}  // namespace millions::app
