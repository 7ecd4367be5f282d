// A token bucket per client IP for the balancer: `rps` tokens a second up to `burst`; a request
// takes one. Off (rps <= 0) it takes no lock. Bounded memory: the table is cleared past 100000
// addresses rather than grown under an address spray.
// Thread-safety: every method may be called from any thread.
// Ownership: owns its buckets.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace millions::lb {

class RateLimiter {
 public:
  RateLimiter(double rps, double burst) : rps_(rps), burst_(burst) {}
  // Whether a request from `ip` may pass now (and takes its token).
  bool Allow(const std::string& ip);
  // A reload's limits; every bucket starts full again.
  void Configure(double rps, double burst);

 private:
  using Clock = std::chrono::steady_clock;
  struct Bucket {
    double tokens;
    Clock::time_point last;
  };
  std::atomic<double> rps_;
  std::atomic<double> burst_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace millions::lb
