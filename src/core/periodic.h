// Periodic: a thread that calls a function every interval until it is stopped. The health
// checkers of the balancer, the edge and the DNS server run on one each: their checks block
// (a connect and a request per backend with a timeout) and stay off the io threads.
// Thread-safety: Stop (and the destructor) may be called from any thread but the periodic one;
// `fn` runs on the periodic thread only, never two calls at once.
// Ownership: owns its thread (joined by Stop) and `fn`.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace millions::node {

class Periodic {
 public:
  enum class First { kNow, kAfterInterval };  // the first call at once, or one interval in
  Periodic(std::chrono::milliseconds interval, std::function<void()> fn, First first = First::kNow);
  ~Periodic();
  Periodic(const Periodic&) = delete;
  Periodic& operator=(const Periodic&) = delete;

  // Wakes the thread from its wait at once (a call under way finishes first) and joins it.
  // Idempotent.
  void Stop();

 private:
  void Loop(std::chrono::milliseconds interval, First first);

  std::function<void()> fn_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace millions::node
